//! The network's nodes (`/api/nodes`, `/api/nodes/{publicKey}`) and one
//! packet decoded with every sighting (`/api/packets/{hash}`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{Map, Value};
use shared::api::{
    DecodedPacket, ErrorBody, NodeDetail, NodeObserver, NodeRow, NodesPage, PacketObservation,
    PacketRow,
};
use shared::packet::{payload_type_name, RouteType};
use shared::timefmt::format_unix_secs;

use super::error::ApiError;
use super::read::{
    bad, counts_ready, cursor, cursor_param, int_param, nonempty, packet_row, packet_row_sql,
};
use super::AppState;
use crate::decoder::{self, fields};

/// The roles `?role=` takes (CoreScope's stored names).
use shared::packet::ROLES;
/// A node page lists its newest packets, and the observers of its adverts
/// among this many newest (a bound on the work of one request).
const NODE_PACKETS: i64 = 20;
const NODE_ADVERTS_SCANNED: i64 = 1_000;

const NODE_COLUMNS: &str = "public_key, name, role, lat, lon, first_seen, last_seen,
    COALESCE(advert_count, 0)";

fn node_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRow> {
    Ok(NodeRow {
        public_key: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        lat: r.get(3)?,
        lon: r.get(4)?,
        first_seen: r.get(5)?,
        last_seen: r.get(6)?,
        advert_count: r.get(7)?,
    })
}

/// `?q=` as a `LIKE` pattern (its own `%`, `_` and `\` matched literally).
fn like_pattern(q: &str) -> String {
    let mut out = String::from("%");
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[utoipa::path(get, path = "/api/nodes", tag = "nodes",
    params(
        ("q" = Option<String>, Query, description = "part of the name (any case) or the start of the public key"),
        ("role" = Option<String>, Query, description = "companion, repeater, room or sensor"),
        ("iata" = Option<String>, Query, description = "heard by these regions' observers (their adverts): codes, comma-separated"),
        ("located" = Option<bool>, Query, description = "true: only nodes that advertised a location"),
        ("order" = Option<String>, Query, description = "by last seen: desc (default) or asc"),
        ("limit" = Option<i64>, Query, description = "1-500, default 50"),
        ("cursor" = Option<String>, Query, description = "`cursor` of the page before"),
    ),
    responses((status = 200, body = NodesPage), (status = 400, body = ErrorBody),
        (status = 503, description = "the query ran past its time limit", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<NodesPage>, ApiError> {
    let limit = int_param(&q, "limit", 50, 1, 500)?;
    let role = nonempty(&q, "role")
        .map(|r| {
            let r = r.to_ascii_lowercase();
            ROLES
                .contains(&r.as_str())
                .then_some(r)
                .ok_or_else(|| bad("role", &format!("must be one of {}", ROLES.join(", "))))
        })
        .transpose()?;
    let ascending = match nonempty(&q, "order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(bad("order", "must be asc or desc")),
    };
    let search = nonempty(&q, "q").map(str::to_string);
    if search.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(bad("q", "must be at most 64 characters"));
    }
    let regions = super::read::regions_param(&q)?;
    let located = match nonempty(&q, "located") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(bad("located", "must be true or false")),
    };
    let kind = if ascending { "na" } else { "nd" };
    let after = cursor_param(&q, kind, 2)?;
    let upkeep = state.status.live().upkeep();
    let building = upkeep.nodes != crate::store::Coverage::All
        || (!regions.is_empty() && upkeep.regions != crate::store::Coverage::All);
    let page = state
        .read(move |c| {
            let mut clauses: Vec<String> = Vec::new();
            let mut args: Vec<SqlValue> = Vec::new();
            if let Some(s) = &search {
                clauses.push("(name LIKE ? ESCAPE '\\' OR public_key LIKE ? ESCAPE '\\')".into());
                args.push(SqlValue::Text(like_pattern(s)));
                let prefix = like_pattern(&s.to_ascii_lowercase());
                args.push(SqlValue::Text(prefix[1..].to_string()));
            }
            if let Some(r) = &role {
                clauses.push("role = ?".into());
                args.push(SqlValue::Text(r.clone()));
            }
            if !regions.is_empty() {
                clauses.push(format!(
                    "public_key IN (SELECT public_key FROM _meshscope_node_regions WHERE iata IN ({}))",
                    super::read::placeholders(regions.len())
                ));
                args.extend(regions.iter().cloned().map(SqlValue::Text));
            }
            if located {
                clauses.push("lat IS NOT NULL AND lon IS NOT NULL AND NOT (lat = 0 AND lon = 0)".into());
            }
            // Keyset on (last seen, key); a node never seen sorts as ''.
            let (order, cmp) = if ascending { ("ASC", ">") } else { ("DESC", "<") };
            if let Some(p) = &after {
                clauses.push(format!(
                    "(COALESCE(last_seen, '') {cmp} ? OR (COALESCE(last_seen, '') = ? AND public_key > ?))"
                ));
                args.push(SqlValue::Text(p[0].clone()));
                args.push(SqlValue::Text(p[0].clone()));
                args.push(SqlValue::Text(p[1].clone()));
            }
            let where_sql = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            args.push(SqlValue::Integer(limit + 1));
            let sql = format!(
                "SELECT {NODE_COLUMNS} FROM nodes {where_sql}
                 ORDER BY COALESCE(last_seen, '') {order}, public_key LIMIT ?"
            );
            let mut nodes = c
                .prepare(&sql)?
                .query_map(rusqlite::params_from_iter(args.iter()), node_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let more = nodes.len() as i64 > limit;
            nodes.truncate(limit as usize);
            let cursor = more
                .then(|| {
                    nodes.last().map(|n| {
                        cursor::encode(kind, &[n.last_seen.as_deref().unwrap_or(""), &n.public_key])
                    })
                })
                .flatten();
            Ok(NodesPage {
                nodes,
                cursor,
                building,
            })
        })
        .await?;
    Ok(Json(page))
}

/// A public key from the path: 64 hex characters, any case.
fn public_key(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::BadRequest(
            "publicKey: must be 64 hex characters".into(),
        ))
    }
}

#[utoipa::path(get, path = "/api/nodes/{publicKey}", tag = "nodes",
    params(("publicKey" = String, Path, description = "64 hex characters")),
    responses((status = 200, body = NodeDetail), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn detail(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<NodeDetail>, ApiError> {
    let key = public_key(&key)?;
    let ready = counts_ready(&state);
    let detail = state
        .read(move |c| {
            let Some(node) = c
                .prepare_cached(&format!(
                    "SELECT {NODE_COLUMNS} FROM nodes WHERE public_key = ?1"
                ))?
                .query_row([&key], node_row)
                .optional()?
            else {
                return Ok(None);
            };
            let packets = c
                .prepare_cached(&format!(
                    "SELECT {} FROM transmissions t WHERE t.from_pubkey = ?1
                     ORDER BY t.id DESC LIMIT ?2",
                    packet_row_sql(ready)
                ))?
                .query_map(rusqlite::params![key, NODE_PACKETS], packet_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let observers = c
                .prepare_cached(
                    "SELECT obs.id, obs.name, obs.iata, MAX(o.snr), MAX(o.rssi), COUNT(*),
                            MAX(o.timestamp)
                     FROM (SELECT id FROM transmissions WHERE from_pubkey = ?1
                           ORDER BY id DESC LIMIT ?2) t
                     JOIN observations o ON o.transmission_id = t.id
                     JOIN observers obs ON obs.rowid = o.observer_idx
                     GROUP BY o.observer_idx
                     ORDER BY MAX(o.snr) IS NULL, MAX(o.snr) DESC, obs.id",
                )?
                .query_map(rusqlite::params![key, NODE_ADVERTS_SCANNED], |r| {
                    Ok(NodeObserver {
                        observer_id: r.get(0)?,
                        observer_name: r.get(1)?,
                        iata: r.get(2)?,
                        best_snr: r.get(3)?,
                        best_rssi: r.get(4)?,
                        sightings: r.get(5)?,
                        last_heard: format_unix_secs(r.get(6)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(NodeDetail {
                node,
                packets,
                observers,
            }))
        })
        .await?;
    detail
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no node with this public key".into()))
}

/// A packet hash from the path: 16 hex characters, any case.
fn packet_hash(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 16 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::BadRequest(
            "hash: must be 16 hex characters".into(),
        ))
    }
}

/// The hops of a stored `path_json` (`["A1","B2"]`); anything else is no hops.
fn hops(path_json: Option<String>) -> Vec<String> {
    path_json
        .and_then(|p| serde_json::from_str::<Vec<String>>(&p).ok())
        .unwrap_or_default()
}

/// `GET /api/packets/{hash}`'s packet: the shared fields and the payload's
/// fields typed (numbers as numbers), keyed as CoreScope names them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PacketBody {
    #[serde(flatten)]
    packet: DecodedPacket,
    /// Which fields depends on the payload type; `error` when the payload
    /// is too short for its type.
    #[schema(value_type = Object)]
    payload: Map<String, Value>,
}

/// `GET /api/packets/{hash}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PacketDetail {
    packet: PacketBody,
    /// Every sighting, oldest first.
    observations: Vec<PacketObservation>,
}

/// A field's value as people read it (text unquoted, lists joined).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn body(packet: DecodedPacket, payload: Map<String, Value>) -> PacketBody {
    let mut packet = packet;
    packet.fields = payload.iter().map(|(k, v)| (k.clone(), text(v))).collect();
    PacketBody { packet, payload }
}

fn decode_stored(row: PacketRow) -> Result<PacketBody, String> {
    let bytes = decoder::parse_hex(&row.raw_hex).map_err(|e| e.to_string())?;
    let p = decoder::decode(&bytes).map_err(|e| e.to_string())?;
    let path: Vec<String> = p.path.chunks(p.hop_size).map(hex::encode_upper).collect();
    let payload = fields::payload_fields(p.payload_type, p.payload, p.path);
    let packet = DecodedPacket {
        hash: row.hash,
        kind: payload_type_name(p.payload_type),
        payload_type: i64::from(p.payload_type),
        route: p.route_type.name().to_string(),
        route_type: p.route_type as i64,
        payload_version: i64::from(p.payload_version),
        transport_codes: p
            .transport_codes
            .map(|cs| cs.iter().map(|c| format!("{c:04X}")).collect()),
        hop_size: p.hop_size as i64,
        path,
        fields: Vec::new(),
        raw_hex: row.raw_hex.to_ascii_uppercase(),
        first_seen: row.first_seen,
        last_seen: row.last_seen,
        observation_count: row.observation_count,
    };
    Ok(body(packet, payload))
}

/// A stored packet that no longer decodes (written by another program, or
/// by an older decoder) is still shown: its header and bytes, and why.
fn undecodable(row: PacketRow, why: String) -> PacketBody {
    let header = u8::from_str_radix(row.raw_hex.get(..2).unwrap_or("00"), 16).unwrap_or(0);
    let mut payload = Map::new();
    payload.insert("error".into(), why.into());
    let packet = DecodedPacket {
        hash: row.hash,
        kind: payload_type_name((header >> 2) & 0x0f),
        payload_type: i64::from((header >> 2) & 0x0f),
        route: RouteType::from_bits(header).name().to_string(),
        route_type: i64::from(header & 3),
        payload_version: i64::from(header >> 6),
        transport_codes: None,
        hop_size: 0,
        path: Vec::new(),
        fields: Vec::new(),
        raw_hex: row.raw_hex.to_ascii_uppercase(),
        first_seen: row.first_seen,
        last_seen: row.last_seen,
        observation_count: row.observation_count,
    };
    body(packet, payload)
}

/// The packet `hash` names: its current lowercase hash, the uppercase one
/// older CoreScope versions stored, or a hash `hash_rehash_v1` replaced.
fn read_packet(
    c: &Connection,
    hash: &str,
    mesh: &crate::mesh::Mesh,
) -> Result<Option<PacketDetail>, ApiError> {
    let Some(row) = c
        .prepare_cached(&format!(
            "SELECT {} FROM transmissions t WHERE t.hash = ?1 OR t.hash = upper(?1)
             UNION ALL
             SELECT {} FROM transmissions t WHERE t.id =
                (SELECT transmission_id FROM _meshscope_hash_aliases
                 WHERE hash = ?1 OR hash = upper(?1) LIMIT 1)
             LIMIT 1",
            // Counted here: one packet's sightings are few.
            packet_row_sql(false),
            packet_row_sql(false)
        ))?
        .query_row([hash], packet_row)
        .optional()?
    else {
        return Ok(None);
    };
    let id = row.id;
    let sender = row.from_pubkey.clone();
    let packet = decode_stored(row.clone()).unwrap_or_else(|why| undecodable(row, why));
    let observations = c
        .prepare_cached(
            "SELECT obs.id, obs.name, obs.iata, o.timestamp, o.snr, o.rssi, o.score,
                    o.direction, o.path_json
             FROM observations o LEFT JOIN observers obs ON obs.rowid = o.observer_idx
             WHERE o.transmission_id = ?1 ORDER BY o.timestamp, o.id",
        )?
        .query_map([id], |r| {
            Ok(PacketObservation {
                observer_id: r.get(0)?,
                observer_name: r.get(1)?,
                iata: r.get(2)?,
                timestamp: format_unix_secs(r.get(3)?),
                snr: r.get(4)?,
                rssi: r.get(5)?,
                score: r.get(6)?,
                direction: r.get(7)?,
                path: hops(r.get(8)?),
                resolved_path: Vec::new(),
                observer_node: None,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // Each sighting's hops named, from the in-memory node index.
    let observations = observations
        .into_iter()
        .map(|mut o| {
            o.resolved_path = mesh.resolve(&o.path, sender.as_deref(), o.observer_id.as_deref());
            o.observer_node = o.observer_id.as_deref().and_then(|k| mesh.node(k));
            o
        })
        .collect();
    Ok(Some(PacketDetail {
        packet,
        observations,
    }))
}

#[utoipa::path(get, path = "/api/packets/{hash}", tag = "packets",
    params(("hash" = String, Path, description = "16 hex characters")),
    responses((status = 200, body = PacketDetail), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn packet(
    State(state): State<AppState>,
    Path(hash): Path<String>,
) -> Result<Json<PacketDetail>, ApiError> {
    let hash = packet_hash(&hash)?;
    let mesh = state.mesh.clone();
    state
        .read(move |c| read_packet(c, &hash, &mesh))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no packet with this hash".into()))
}

/// Most hops `?hops=` takes.
const MAX_HOPS: usize = 64;

#[utoipa::path(get, path = "/api/resolve-hops", tag = "nodes",
    params(
        ("hops" = String, Query, description = "hops as heard, sender's end first: hex of 1-3 bytes each, comma-separated (e.g. 7C,A1B2)"),
        ("from" = Option<String>, Query, description = "the sender's public key, when known (an ADVERT's)"),
        ("observer" = Option<String>, Query, description = "the observer's id (its node's public key)"),
    ),
    responses((status = 200, body = shared::api::ResolvedPath), (status = 400, body = ErrorBody)))]
pub(super) async fn resolve_hops(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<shared::api::ResolvedPath>, ApiError> {
    let raw = nonempty(&q, "hops").ok_or_else(|| bad("hops", "is required"))?;
    let hops: Vec<String> = raw
        .split(',')
        .map(|h| {
            crate::mesh::resolve::hop_text(h).ok_or_else(|| {
                bad(
                    "hops",
                    &format!(
                        "{:?} is not a hop: each must be hex of 1, 2 or 3 bytes",
                        h.trim()
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if hops.len() > MAX_HOPS {
        return Err(bad("hops", &format!("at most {MAX_HOPS}")));
    }
    let from = nonempty(&q, "from")
        .map(public_key)
        .transpose()
        .map_err(|_| bad("from", "must be 64 hex characters"))?;
    let observer = nonempty(&q, "observer").map(str::to_string);
    if let Some(o) = &observer {
        crate::ingest::validate_observer(o).map_err(|e| bad("observer", &e.message))?;
    }
    Ok(Json(shared::api::ResolvedPath {
        hops: state
            .mesh
            .resolve(&hops, from.as_deref(), observer.as_deref()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }

    #[test]
    fn path_parameters_are_checked() {
        assert_eq!(public_key(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
        assert!(public_key("abc").is_err());
        assert!(public_key(&"zz".repeat(32)).is_err());
        assert_eq!(packet_hash("00112233AABBCCDD").unwrap(), "00112233aabbccdd");
        assert!(packet_hash("0011").is_err());
        assert!(packet_hash("0011223344556g77").is_err());
    }
}
