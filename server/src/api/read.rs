//! Read-only endpoints: stats, packets, timestamps, observers, healthz, perf.
//! All database work runs on the read-only pool via `AppState::read`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::types::Value as SqlValue;
use rusqlite::OptionalExtension;
use shared::api::{ErrorBody, Healthz, ObserverRow, PacketRow, PacketsPage, Perf, Stats};
use shared::packet::{parse_payload_type, payload_label};
use shared::timefmt::{format_unix_secs, parse_time_param};

use super::error::ApiError;
use super::AppState;
use crate::clock::{now_ms, now_secs};

/// `GET /api/healthz`: 200 while the process serves; the body tells the
/// truth about migrations (fail closed when their status cannot be read).
#[utoipa::path(get, path = "/api/healthz", tag = "status",
    responses((status = 200, description = "Readiness, version, uptime and migration status", body = Healthz),
        (status = 503, description = "not ready: the database writer has stopped (same body, `ready: false`)", body = Healthz)))]
pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    let h = super::migrations::migration_health(&state).await;
    // Not ready (the writer is gone): 503, so load balancers and
    // supervisors see it without reading the body.
    let status = if h.ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(h)).into_response()
}

/// `GET /api/perf`: request timings; a migration status failure does not
/// stop the rest of the payload, and is reported in a header and a field.
#[utoipa::path(get, path = "/api/perf", tag = "status",
    responses((status = 200, description = "Latency per route; X-Async-Migrations-Error header when migration status cannot be read", body = Perf)))]
pub(super) async fn perf(State(state): State<AppState>) -> Response {
    let (list, error) = match state.status.infos(now_ms()).await {
        Ok(list) => (Some(list), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let body = Json(Perf {
        uptime_sec: state.uptime_sec(),
        total_requests: state.perf.total(),
        endpoints: state.perf.snapshot(),
        async_migrations: list,
        async_migrations_error: error.clone(),
    });
    match error {
        Some(e) => {
            let header = HeaderValue::from_str(&e.replace(['\r', '\n'], " "))
                .unwrap_or_else(|_| HeaderValue::from_static("migration status unavailable"));
            ([("x-async-migrations-error", header)], body).into_response()
        }
        None => body.into_response(),
    }
}

#[utoipa::path(get, path = "/api/stats", tag = "packets",
    responses((status = 200, body = Stats), (status = 500, body = ErrorBody)))]
pub(super) async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let reader = state.clone();
    state
        .stats
        .get(move || async move {
            compute_stats(&reader)
                .await
                .map_err(|e| super::SharedError(std::sync::Arc::new(e)))
        })
        .await
        .map(Json)
        .map_err(|e| ApiError::internal("counting packets failed", e))
}

async fn compute_stats(state: &AppState) -> Result<Stats, ApiError> {
    let now = now_secs();
    state
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
                *by_type.entry(payload_label(t)).or_insert(0) += n;
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
        .await
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

#[utoipa::path(get, path = "/api/packets", tag = "packets",
    params(
        ("limit" = Option<i64>, Query, description = "1-500, default 50"),
        ("offset" = Option<i64>, Query, description = "default 0"),
        ("observer" = Option<String>, Query, description = "observer id"),
        ("hash" = Option<String>, Query, description = "hash prefix (hex)"),
        ("type" = Option<String>, Query, description = "payload type name or code"),
        ("since" = Option<String>, Query, description = "unix seconds or RFC3339"),
        ("until" = Option<String>, Query, description = "unix seconds or RFC3339"),
        ("order" = Option<String>, Query, description = "asc or desc (default)"),
    ),
    responses((status = 200, body = PacketsPage), (status = 400, body = ErrorBody)))]
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

#[utoipa::path(get, path = "/api/packets/timestamps", tag = "packets",
    params(("since" = String, Query, description = "unix seconds or RFC3339 (required)")),
    responses((status = 200, body = Vec<String>), (status = 400, body = ErrorBody)))]
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

#[utoipa::path(get, path = "/api/observers", tag = "packets",
    responses((status = 200, body = Vec<ObserverRow>), (status = 500, body = ErrorBody)))]
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
