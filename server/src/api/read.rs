//! Read-only endpoints: stats, packets, timestamps, observers, healthz, perf.
//! All database work runs on the read-only pool via `AppState::read`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::Json;
use rusqlite::types::Value as SqlValue;
use rusqlite::OptionalExtension;
use shared::api::{Healthz, ObserverRow, PacketRow, PacketsPage, Perf, Stats};
use shared::packet::{parse_payload_type, payload_type_name};
use shared::timefmt::{format_unix_secs, parse_time_param};

use super::error::ApiError;
use super::{now_secs, AppState};

pub(super) async fn healthz(State(state): State<AppState>) -> Json<Healthz> {
    Json(Healthz {
        ready: true,
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_sec: state.uptime_sec(),
        async_migrations: None,
        async_migrations_running: None,
        async_migrations_error: None,
        // Absent (not `{}`) when no source is configured, like the other
        // optional fields: "no live ingest" differs from "sources, all idle".
        ingest_liveness: (!state.ingest_liveness.is_empty())
            .then(|| state.ingest_liveness.snapshot()),
    })
}

pub(super) async fn perf(State(state): State<AppState>) -> Json<Perf> {
    Json(Perf {
        uptime_sec: state.uptime_sec(),
        total_requests: state.perf.total(),
        endpoints: state.perf.snapshot(),
        async_migrations: None,
        async_migrations_error: None,
    })
}

pub(super) async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let now = now_secs();
    let stats = state
        .read(move |c| {
            let count = |sql: &str| -> rusqlite::Result<i64> { c.query_row(sql, [], |r| r.get(0)) };
            let since = |secs: i64| -> rusqlite::Result<i64> {
                c.prepare_cached("SELECT COUNT(*) FROM transmissions WHERE first_seen >= ?1")?
                    .query_row([format_unix_secs(now - secs)], |r| r.get(0))
            };
            let mut by_type = BTreeMap::new();
            let mut stmt = c.prepare_cached(
                "SELECT payload_type, COUNT(*) FROM transmissions GROUP BY payload_type",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (t, n) = row?;
                let name = match t.and_then(|t| u8::try_from(t).ok()) {
                    Some(code) => payload_type_name(code),
                    None => "UNKNOWN".to_string(),
                };
                *by_type.entry(name).or_insert(0) += n;
            }
            Ok(Stats {
                total_transmissions: count("SELECT COUNT(*) FROM transmissions")?,
                total_observations: count("SELECT COUNT(*) FROM observations")?,
                total_observers: count("SELECT COUNT(*) FROM observers")?,
                packets_last_hour: since(3600)?,
                packets_last24h: since(86_400)?,
                by_payload_type: by_type,
            })
        })
        .await?;
    Ok(Json(stats))
}

fn bad(param: &str, msg: &str) -> ApiError {
    ApiError::BadRequest(format!("{param}: {msg}"))
}

fn nonempty<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn time_param(q: &HashMap<String, String>, k: &str) -> Result<Option<String>, ApiError> {
    nonempty(q, k)
        .map(|v| {
            parse_time_param(v)
                .map(format_unix_secs)
                .ok_or_else(|| bad(k, "must be unix seconds or an RFC3339 timestamp"))
        })
        .transpose()
}

fn int_param(
    q: &HashMap<String, String>,
    k: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match nonempty(q, k) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(bad(k, &format!("must be an integer from {min} to {max}"))),
        },
    }
}

/// Filters of `GET /api/packets`, validated.
struct PacketQuery {
    limit: i64,
    offset: i64,
    observer: Option<String>,
    hash: Option<String>,
    payload_type: Option<u8>,
    since: Option<String>,
    until: Option<String>,
    ascending: bool,
}

impl PacketQuery {
    fn parse(q: &HashMap<String, String>) -> Result<PacketQuery, ApiError> {
        let payload_type = nonempty(q, "type")
            .map(|t| {
                parse_payload_type(t)
                    .ok_or_else(|| bad("type", "must be a payload type name (e.g. ADVERT) or 0-15"))
            })
            .transpose()?;
        let hash = nonempty(q, "hash")
            .map(|h| {
                if h.len() <= 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(h.to_ascii_lowercase())
                } else {
                    Err(bad("hash", "must be hex"))
                }
            })
            .transpose()?;
        let ascending = match nonempty(q, "order") {
            None => false,
            Some(o) if o.eq_ignore_ascii_case("desc") => false,
            Some(o) if o.eq_ignore_ascii_case("asc") => true,
            Some(_) => return Err(bad("order", "must be asc or desc")),
        };
        Ok(PacketQuery {
            limit: int_param(q, "limit", 50, 1, 500)?,
            offset: int_param(q, "offset", 0, 0, i64::MAX)?,
            observer: nonempty(q, "observer").map(str::to_string),
            hash,
            payload_type,
            since: time_param(q, "since")?,
            until: time_param(q, "until")?,
            ascending,
        })
    }
}

pub(super) async fn packets(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PacketsPage>, ApiError> {
    let pq = PacketQuery::parse(&q)?;
    let page = state.read(move |c| query_packets(c, &pq)).await?;
    Ok(Json(page))
}

fn query_packets(c: &rusqlite::Connection, q: &PacketQuery) -> Result<PacketsPage, ApiError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(obs) = &q.observer {
        let idx: Option<i64> = c
            .prepare_cached("SELECT rowid FROM observers WHERE id = ?1")?
            .query_row([obs], |r| r.get(0))
            .optional()?;
        match idx {
            Some(idx) => {
                clauses.push(
                    "EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id AND o.observer_idx = ?)",
                );
                args.push(SqlValue::Integer(idx));
            }
            // An unknown observer heard nothing: an empty page, not an error.
            None => {
                return Ok(PacketsPage {
                    packets: vec![],
                    total: 0,
                    limit: q.limit,
                    offset: q.offset,
                })
            }
        }
    }
    if let Some(h) = &q.hash {
        clauses.push("t.hash LIKE ? || '%'");
        args.push(SqlValue::Text(h.clone()));
    }
    if let Some(pt) = q.payload_type {
        clauses.push("t.payload_type = ?");
        args.push(SqlValue::Integer(i64::from(pt)));
    }
    if let Some(s) = &q.since {
        clauses.push("t.first_seen >= ?");
        args.push(SqlValue::Text(s.clone()));
    }
    if let Some(u) = &q.until {
        clauses.push("t.first_seen <= ?");
        args.push(SqlValue::Text(u.clone()));
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let total: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM transmissions t {where_sql}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = if q.ascending { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT t.id, t.hash, t.raw_hex, t.first_seen, t.last_seen, t.route_type, t.payload_type,
                (SELECT COUNT(*) FROM observations o WHERE o.transmission_id = t.id), t.from_pubkey
         FROM transmissions t {where_sql} ORDER BY t.id {order} LIMIT ? OFFSET ?"
    );
    let mut page_args = args.clone();
    page_args.push(SqlValue::Integer(q.limit));
    page_args.push(SqlValue::Integer(q.offset));
    let mut stmt = c.prepare(&sql)?;
    let packets = stmt
        .query_map(rusqlite::params_from_iter(page_args.iter()), |r| {
            let last_seen: i64 = r.get(4)?;
            Ok(PacketRow {
                id: r.get(0)?,
                hash: r.get(1)?,
                raw_hex: r.get(2)?,
                first_seen: r.get(3)?,
                last_seen: (last_seen > 0).then(|| format_unix_secs(last_seen)),
                route_type: r.get(5)?,
                payload_type: r.get(6)?,
                observation_count: r.get(7)?,
                from_pubkey: r.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PacketsPage {
        packets,
        total,
        limit: q.limit,
        offset: q.offset,
    })
}

pub(super) async fn timestamps(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<String>>, ApiError> {
    let since = time_param(&q, "since")?.ok_or_else(|| bad("since", "is required"))?;
    let list = state
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT first_seen FROM transmissions WHERE first_seen >= ?1 ORDER BY first_seen ASC",
            )?;
            let rows = stmt
                .query_map([since], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(list))
}

pub(super) async fn observers(
    State(state): State<AppState>,
) -> Result<Json<Vec<ObserverRow>>, ApiError> {
    let list = state
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, name, iata, last_seen, COALESCE(packet_count, 0) FROM observers
                 ORDER BY last_seen DESC, id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ObserverRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        iata: r.get(2)?,
                        last_seen: r.get(3)?,
                        packet_count: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Json(list))
}
