//! Read-only endpoints: stats, packets, timestamps, observers, healthz, perf.
//! All database work runs on the read-only pool via `AppState::read`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::types::Value as SqlValue;
use shared::api::{ErrorBody, Healthz, ObserverRow, PacketRow, PacketsPage, Perf, Stats};
use shared::packet::{parse_payload_type, payload_label};
use shared::timefmt::{format_unix_secs, parse_time_param};

use super::error::ApiError;
use super::AppState;
use crate::clock::{now_ms, now_secs};
use crate::store::counts::counter;

/// `GET /api/healthz`: 200 while the process serves; the body tells the
/// truth about migrations (fail closed when their status cannot be read).
#[utoipa::path(get, path = "/api/healthz", tag = "status",
    responses((status = 200, description = "Readiness, version, uptime and migration status", body = Healthz),
        (status = 503, description = "not ready: the database writer has stopped (same body, `ready: false`)", body = Healthz)))]
pub(super) async fn healthz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let key = super::rendered::key_of(&[
        state.status_key(),
        state.ingest_liveness.version(),
        state.uptime_sec(),
    ]);
    let rendered = state
        .healthz
        .get(key, || async {
            let h = super::migrations::migration_health(&state).await;
            // Not ready (the writer is gone): 503, so load balancers and
            // supervisors see it without reading the body.
            let status = if h.ready {
                axum::http::StatusCode::OK
            } else {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            };
            let failed = h.async_migrations_error.is_some();
            let r = super::rendered::Rendered::json(status, &h);
            if failed {
                r.once()
            } else {
                r
            }
        })
        .await;
    rendered.respond(&headers, state.healthz.ttl())
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
        stats_full_scans: state
            .stats_full_scans
            .load(std::sync::atomic::Ordering::Relaxed),
        chunk_hold_ms: state.status.live().chunk_holds(),
        retention: state.status.live().retention(),
        wal: Some(state.db_health.wal()),
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
    params(("iata" = Option<String>, Query, description = "narrowed to these regions: codes, comma-separated")),
    responses((status = 200, body = Stats), (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub(super) async fn stats(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Stats>, ApiError> {
    let regions = regions_param(&q)?;
    if !regions.is_empty() {
        let mut key = regions.clone();
        key.sort();
        let cache = {
            let mut all = state
                .region_stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if all.len() >= super::REGION_STATS_KEPT && !all.contains_key(&key) {
                all.clear();
            }
            all.entry(key)
                .or_insert_with(|| {
                    std::sync::Arc::new(crate::cache::SingleFlight::new(
                        super::REGION_STATS_TTL,
                        false,
                    ))
                })
                .clone()
        };
        let reader = state.clone();
        return cache
            .get(move || async move {
                region_stats(&reader, regions)
                    .await
                    .map_err(|e| super::SharedError(std::sync::Arc::new(e)))
            })
            .await
            .map(Json)
            .map_err(ApiError::from);
    }
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
        .map_err(ApiError::from)
}

/// Whether the maintained counts are exact ([`crate::store::Upkeep::counts_ready`]).
pub(super) fn counts_ready(state: &AppState) -> bool {
    state.status.live().upkeep().counts_ready()
}

const COUNTER_SQL: &str = "SELECT COALESCE((SELECT n FROM _meshscope_counters WHERE name = ?1), 0)";

/// A counter of `_meshscope_counters` (a primary-key lookup).
fn counter(c: &rusqlite::Connection, name: &str) -> rusqlite::Result<i64> {
    c.prepare_cached(COUNTER_SQL)?
        .query_row([name], |r| r.get(0))
}

/// Runs `f` with the statement `sql` and adds 1 to `scans` when it walked a
/// whole table: its query plan says `SCAN <table>` (which also catches a bare
/// `COUNT(*)`, whose page walk SQLite's step counter does not see) or SQLite
/// counted full-scan steps (`SQLITE_STMTSTATUS_FULLSCAN_STEP`).
fn counting_scans<T>(
    c: &rusqlite::Connection,
    sql: &str,
    scans: &mut u64,
    f: impl FnOnce(&mut rusqlite::Statement<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let mut plan = c.prepare_cached(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    // Parameters left unbound (NULL): the plan does not depend on them.
    let mut rows = plan.raw_query();
    let mut plan_scans = false;
    while let Some(row) = rows.next()? {
        let detail: String = row.get(3)?;
        plan_scans |= detail.starts_with("SCAN ") && detail != "SCAN CONSTANT ROW";
    }
    drop(rows);
    let mut stmt = c.prepare_cached(sql)?;
    stmt.reset_status(rusqlite::StatementStatus::FullscanStep);
    let out = f(&mut stmt)?;
    let steps = stmt.get_status(rusqlite::StatementStatus::FullscanStep);
    if plan_scans || steps > 0 {
        *scans += 1;
    }
    Ok(out)
}

/// `/api/stats` from maintained counts and index ranges: no table is
/// scanned. Until the counts are first computed (on a file from before
/// them), the totals are `null` and `countsReady` is false.
async fn compute_stats(state: &AppState) -> Result<Stats, ApiError> {
    let now = now_secs();
    let ready = counts_ready(state);
    let scans_total = state.stats_full_scans.clone();
    state
        .read(move |c| {
            let mut scans = 0u64;
            let mut since = |secs: i64| -> rusqlite::Result<i64> {
                counting_scans(
                    c,
                    "SELECT COUNT(*) FROM transmissions WHERE first_seen >= ?1",
                    &mut scans,
                    |s| s.query_row([format_unix_secs(now - secs)], |r| r.get(0)),
                )
            };
            let (last_hour, last24h) = (since(3600)?, since(86_400)?);
            let count_of = |name: &str, scans: &mut u64| -> rusqlite::Result<i64> {
                counting_scans(c, COUNTER_SQL, scans, |s| s.query_row([name], |r| r.get(0)))
            };
            let total_observers = if ready {
                count_of(counter::OBSERVERS, &mut scans)?
            } else {
                // Until the counts are ready: the observers table is small.
                counting_scans(c, "SELECT COUNT(*) FROM observers", &mut scans, |s| {
                    s.query_row([], |r| r.get(0))
                })?
            };
            let (totals, by_type) = if ready {
                let mut by_type = BTreeMap::new();
                let rows: Vec<(String, i64)> = counting_scans(
                    c,
                    "SELECT name, n FROM _meshscope_counters WHERE name >= 'type:' AND name < 'type;'",
                    &mut scans,
                    |s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect(),
                )?;
                for (name, n) in rows {
                    let code = name
                        .strip_prefix("type:")
                        .and_then(|t| t.parse::<i64>().ok());
                    if n > 0 {
                        *by_type.entry(payload_label(code)).or_insert(0) += n;
                    }
                }
                let t = count_of(counter::TRANSMISSIONS, &mut scans)?;
                let o = count_of(counter::OBSERVATIONS, &mut scans)?;
                (Some((t, o)), Some(by_type))
            } else {
                (None, None)
            };
            scans_total.fetch_add(scans, std::sync::atomic::Ordering::Relaxed);
            Ok(Stats {
                total_transmissions: totals.map(|t| t.0),
                total_observations: totals.map(|t| t.1),
                total_observers,
                packets_last_hour: last_hour,
                packets_last24h: last24h,
                by_payload_type: by_type,
                counts_ready: ready,
                iata: Vec::new(),
            })
        })
        .await
}

/// `/api/stats` for some regions: their observers, and the packets any of
/// them heard in the last hour and day (from the observers' sightings by
/// time, an index range each). Totals are not kept per region.
async fn region_stats(state: &AppState, regions: Vec<String>) -> Result<Stats, ApiError> {
    let now = now_secs();
    let ready = counts_ready(state);
    state
        .read(move |c| {
            let idxs = heard_by(c, None, &regions)?.unwrap_or_default();
            let marks = placeholders(idxs.len().max(1));
            let since = |secs: i64| -> Result<i64, ApiError> {
                if idxs.is_empty() {
                    return Ok(0);
                }
                let mut args: Vec<SqlValue> = idxs.iter().map(|i| SqlValue::Integer(*i)).collect();
                args.push(SqlValue::Integer(now - secs));
                Ok(c.prepare_cached(&format!(
                    "SELECT COUNT(DISTINCT transmission_id) FROM observations
                     WHERE observer_idx IN ({marks}) AND timestamp >= ?"
                ))?
                .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?)
            };
            Ok(Stats {
                total_transmissions: None,
                total_observations: None,
                total_observers: idxs.len() as i64,
                packets_last_hour: since(3600)?,
                packets_last24h: since(86_400)?,
                by_payload_type: None,
                counts_ready: ready,
                iata: regions,
            })
        })
        .await
}

pub(super) fn bad(param: &str, msg: &str) -> ApiError {
    ApiError::BadRequest(format!("{param}: {msg}"))
}

pub(super) fn nonempty<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The latest time the API takes: the last second of year 9999 (the last
/// one RFC3339 can write).
const MAX_UNIX_SECS: i64 = 253_402_300_799;

fn time_param(q: &HashMap<String, String>, k: &str) -> Result<Option<String>, ApiError> {
    nonempty(q, k)
        .map(|v| match parse_time_param(v) {
            Some(secs) if (0..=MAX_UNIX_SECS).contains(&secs) => Ok(format_unix_secs(secs)),
            Some(_) => Err(bad(
                k,
                "must be a time from 1970 to 9999 (unix seconds or an RFC3339 timestamp)",
            )),
            None => Err(bad(k, "must be unix seconds or an RFC3339 timestamp")),
        })
        .transpose()
}

pub(super) fn int_param(
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

/// Opaque page cursors: a kind tag and the hex of the sort key of the last
/// row sent. A client passes them back unchanged; anything else is a 400.
pub(super) mod cursor {
    pub(in crate::api) fn encode(kind: &str, parts: &[&str]) -> String {
        let hexed: Vec<String> = parts.iter().map(hex::encode).collect();
        format!("{kind}1.{}", hexed.join("."))
    }

    pub(in crate::api) fn decode(kind: &str, s: &str, n: usize) -> Option<Vec<String>> {
        let rest = s.strip_prefix(kind)?.strip_prefix("1.")?;
        let parts: Vec<String> = rest
            .split('.')
            .map(|p| hex::decode(p).ok().and_then(|b| String::from_utf8(b).ok()))
            .collect::<Option<_>>()?;
        (parts.len() == n).then_some(parts)
    }
}

/// A `cursor` parameter of `kind` with `n` parts, or a 400 naming it.
pub(super) fn cursor_param(
    q: &HashMap<String, String>,
    kind: &str,
    n: usize,
) -> Result<Option<Vec<String>>, ApiError> {
    nonempty(q, "cursor")
        .map(|c| {
            cursor::decode(kind, c, n).ok_or_else(|| {
                bad(
                    "cursor",
                    "is not a cursor this endpoint gave out; pass `nextCursor` back unchanged",
                )
            })
        })
        .transpose()
}

/// `offset` works for shallow pages only; deeper, a `cursor` reads from
/// where the last page ended instead of counting rows from the start.
const MAX_OFFSET: i64 = 10_000;

/// Filters of `GET /api/packets`, validated.
struct PacketQuery {
    limit: i64,
    offset: i64,
    /// Continue after this transmission id (in the page's order).
    after_id: Option<i64>,
    observer: Option<String>,
    /// `?iata=`: heard by an observer of one of these regions.
    regions: Vec<String>,
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
        let offset = match nonempty(q, "offset").map(str::parse::<i64>) {
            None => 0,
            Some(Ok(n)) if (0..=MAX_OFFSET).contains(&n) => n,
            Some(Ok(n)) if n > MAX_OFFSET => {
                return Err(bad(
                    "offset",
                    &format!(
                        "at most {MAX_OFFSET}; for deeper pages pass the `nextCursor` of \
                         the page before as `cursor`"
                    ),
                ))
            }
            Some(_) => {
                return Err(bad(
                    "offset",
                    &format!("must be an integer from 0 to {MAX_OFFSET}"),
                ))
            }
        };
        let after_id = cursor_param(q, "p", 1)?
            .map(|p| {
                p[0].parse::<i64>()
                    .map_err(|_| bad("cursor", "is not a cursor this endpoint gave out"))
            })
            .transpose()?;
        if after_id.is_some() && offset > 0 {
            return Err(bad("offset", "cannot be combined with `cursor`"));
        }
        Ok(PacketQuery {
            limit: int_param(q, "limit", 50, 1, 500)?,
            offset,
            after_id,
            observer: nonempty(q, "observer").map(str::to_string),
            regions: regions_param(q)?,
            hash,
            payload_type,
            since: time_param(q, "since")?,
            until: time_param(q, "until")?,
            ascending,
        })
    }
}

/// A string above every hex string that starts with `prefix` and below
/// the next prefix of its length, for an index range on `hash`: the last
/// character moved up by one (`9` to `:`, `f` to `g`, `F` to `G`, none of
/// which a hash holds). `None` for an empty prefix.
fn hex_prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<u8> = prefix.bytes().collect();
    let last = chars.pop()?;
    chars.push(last + 1);
    String::from_utf8(chars).ok()
}

#[utoipa::path(get, path = "/api/packets", tag = "packets",
    params(
        ("limit" = Option<i64>, Query, description = "1-500, default 50"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the page before"),
        ("offset" = Option<i64>, Query, description = "0-10000, default 0; deeper pages use `cursor`"),
        ("observer" = Option<String>, Query, description = "observer id"),
        ("iata" = Option<String>, Query, description = "heard in these regions: codes, comma-separated (e.g. SJC,OAK)"),
        ("hash" = Option<String>, Query, description = "hash prefix (hex)"),
        ("type" = Option<String>, Query, description = "payload type name or code"),
        ("since" = Option<String>, Query, description = "unix seconds or RFC3339, 1970-9999"),
        ("until" = Option<String>, Query, description = "unix seconds or RFC3339, 1970-9999"),
        ("order" = Option<String>, Query, description = "asc or desc (default)"),
    ),
    responses((status = 200, body = PacketsPage), (status = 400, body = ErrorBody),
        (status = 503, description = "the query ran past its time limit", body = ErrorBody)))]
pub(super) async fn packets(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PacketsPage>, ApiError> {
    let pq = PacketQuery::parse(&q)?;
    let ready = counts_ready(&state);
    let page = state.read(move |c| query_packets(c, &pq, ready)).await?;
    Ok(Json(page))
}

/// At most this many regions in one `?iata=`.
const MAX_REGIONS: usize = 16;

/// `?iata=`: region codes (as observers report them: 2-8 letters or
/// digits, any case), comma-separated; none when absent.
pub(super) fn regions_param(q: &HashMap<String, String>) -> Result<Vec<String>, ApiError> {
    let Some(raw) = nonempty(q, "iata") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let code = crate::ingest::normalize_iata(part).map_err(|_| {
            bad(
                "iata",
                &format!("{part:?} is not a region code: each must be 2-8 letters or digits (e.g. SJC), several separated by commas"),
            )
        })?;
        if !out.contains(&code) {
            out.push(code);
        }
    }
    if out.len() > MAX_REGIONS {
        return Err(bad("iata", &format!("at most {MAX_REGIONS} regions")));
    }
    Ok(out)
}

/// `n` SQL placeholders, comma-separated.
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The observers' rowids a filter on `observer` and `regions` allows:
/// `None` for no such filter; an empty list when nothing can match.
pub(super) fn heard_by(
    c: &rusqlite::Connection,
    observer: Option<&str>,
    regions: &[String],
) -> Result<Option<Vec<i64>>, ApiError> {
    if observer.is_none() && regions.is_empty() {
        return Ok(None);
    }
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(o) = observer {
        clauses.push("id = ?".into());
        args.push(SqlValue::Text(o.to_string()));
    }
    if !regions.is_empty() {
        clauses.push(format!("upper(iata) IN ({})", placeholders(regions.len())));
        args.extend(regions.iter().cloned().map(SqlValue::Text));
    }
    let idxs = c
        .prepare_cached(&format!(
            "SELECT rowid FROM observers WHERE {} ORDER BY rowid",
            clauses.join(" AND ")
        ))?
        .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(Some(idxs))
}

/// Filtered views counted exactly up to this many rows; beyond, `total` is
/// an estimate (`totalEstimated`).
const EXACT_COUNT_MAX: i64 = 10_000;
/// The newest transmissions sampled for an estimate.
const ESTIMATE_SAMPLE: i64 = 1_000;
/// Fewer when each sampled row costs an index probe (an observer filter):
/// a share of 35% is still known within about 6% (two standard deviations).
const PROBE_SAMPLE: i64 = 250;
/// An observer with at most this many sightings is "rare": its pages are
/// read from its sightings (an index range), not by probing every
/// transmission for one of them.
const RARE_OBSERVER: i64 = 5_000;

/// How a page finds the transmissions an observer heard.
enum ObserverFilter {
    /// Few sightings: from the observer's index range, counted exactly.
    Rare,
    /// Many: probe each transmission (newest first); the total is estimated.
    Frequent,
}

/// A page of `/api/packets`. `ready`: the maintained counts are exact, so
/// totals and per-row sighting counts are read, not counted.
fn query_packets(
    c: &rusqlite::Connection,
    q: &PacketQuery,
    ready: bool,
) -> Result<PacketsPage, ApiError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    let empty = || PacketsPage {
        packets: vec![],
        total: 0,
        limit: q.limit,
        offset: q.offset,
        next_cursor: None,
        total_estimated: false,
    };
    let mut observer = None;
    if let Some(idxs) = heard_by(c, q.observer.as_deref(), &q.regions)? {
        // An unknown observer, or a region without observers, heard
        // nothing: an empty page, not an error.
        if idxs.is_empty() {
            return Ok(empty());
        }
        let marks = placeholders(idxs.len());
        let mut probe_args: Vec<SqlValue> = idxs.iter().map(|i| SqlValue::Integer(*i)).collect();
        probe_args.push(SqlValue::Integer(RARE_OBSERVER + 1));
        let sightings: i64 = c
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM observations WHERE observer_idx IN ({marks}) LIMIT ?)"
            ))?
            .query_row(rusqlite::params_from_iter(probe_args.iter()), |r| r.get(0))?;
        let filter = if sightings <= RARE_OBSERVER {
            clauses.push(format!(
                "t.id IN (SELECT transmission_id FROM observations WHERE observer_idx IN ({marks}))"
            ));
            ObserverFilter::Rare
        } else {
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id AND o.observer_idx IN ({marks}))"
            ));
            ObserverFilter::Frequent
        };
        args.extend(idxs.into_iter().map(SqlValue::Integer));
        observer = Some(filter);
    }
    if let Some(h) = &q.hash {
        // Ranges on the hash index, not a LIKE that cannot use it: one for
        // the lowercase hashes of the current rule, one for the uppercase
        // ones older CoreScope versions stored.
        for prefix in [h.to_ascii_lowercase(), h.to_ascii_uppercase()] {
            let end = hex_prefix_end(&prefix).unwrap_or_default();
            args.push(SqlValue::Text(prefix));
            args.push(SqlValue::Text(end));
        }
        clauses.push("((t.hash >= ? AND t.hash < ?) OR (t.hash >= ? AND t.hash < ?))".into());
    }
    if let Some(pt) = q.payload_type {
        clauses.push("t.payload_type = ?".into());
        args.push(SqlValue::Integer(i64::from(pt)));
    }
    let mut window: Vec<&str> = Vec::new();
    let mut window_args: Vec<SqlValue> = Vec::new();
    if let Some(s) = &q.since {
        window.push("t.first_seen >= ?");
        window_args.push(SqlValue::Text(s.clone()));
    }
    if let Some(u) = &q.until {
        window.push("t.first_seen <= ?");
        window_args.push(SqlValue::Text(u.clone()));
    }
    clauses.extend(window.iter().map(|w| (*w).to_string()));
    args.extend(window_args.iter().cloned());
    let where_sql = |extra: Option<&str>| {
        let all: Vec<&str> = clauses.iter().map(String::as_str).chain(extra).collect();
        if all.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", all.join(" AND "))
        }
    };
    let only_type = observer.is_none() && q.hash.is_none() && window.is_empty();
    // About: the share of matches among the newest transmissions (of the
    // time window, when there is one), scaled to all of them.
    let sample = if matches!(observer, Some(ObserverFilter::Frequent)) {
        PROBE_SAMPLE
    } else {
        ESTIMATE_SAMPLE
    };
    let estimate = |at_least: i64| -> Result<(i64, bool), ApiError> {
        let max_id: i64 =
            c.query_row("SELECT COALESCE(MAX(id), 0) FROM transmissions", [], |r| {
                r.get(0)
            })?;
        let floor = max_id - sample;
        if floor <= 0 {
            // The sample would be the whole table: count it exactly.
            let n: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM transmissions t {}", where_sql(None)),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            return Ok((n, false));
        }
        let sample_where = |all: &[&str]| {
            let mut parts: Vec<&str> = all.to_vec();
            parts.push("t.id > ?");
            format!("WHERE {}", parts.join(" AND "))
        };
        let sampled: i64 = c.query_row(
            &format!(
                "SELECT COUNT(*) FROM transmissions t {}",
                sample_where(&clauses.iter().map(String::as_str).collect::<Vec<_>>())
            ),
            rusqlite::params_from_iter(args.iter().chain([&SqlValue::Integer(floor)])),
            |r| r.get(0),
        )?;
        let (universe, in_sample) = if window.is_empty() {
            let all = if ready {
                counter(c, counter::TRANSMISSIONS)?
            } else {
                max_id
            };
            (all, sample)
        } else {
            // The window is an index range on first_seen.
            let universe: i64 = c.query_row(
                &format!(
                    "SELECT COUNT(*) FROM transmissions t WHERE {}",
                    window.join(" AND ")
                ),
                rusqlite::params_from_iter(window_args.iter()),
                |r| r.get(0),
            )?;
            let in_sample: i64 = c.query_row(
                &format!(
                    "SELECT COUNT(*) FROM transmissions t {}",
                    sample_where(&window)
                ),
                rusqlite::params_from_iter(window_args.iter().chain([&SqlValue::Integer(floor)])),
                |r| r.get(0),
            )?;
            (universe, in_sample)
        };
        let scaled = if in_sample > 0 {
            sampled as f64 / in_sample as f64 * universe as f64
        } else {
            // None of the window is among the newest rows: nothing to scale.
            at_least as f64
        };
        Ok(((scaled.round() as i64).max(at_least), true))
    };
    let (total, total_estimated) = match (ready && only_type, q.payload_type, &observer) {
        (true, None, _) => (counter(c, counter::TRANSMISSIONS)?, false),
        (true, Some(t), _) => (counter(c, &counter::of_type(Some(i64::from(t))))?, false),
        // Counting exactly would probe transmissions until enough match,
        // however many that takes.
        (_, _, Some(ObserverFilter::Frequent)) => estimate(0)?,
        _ => {
            // Exact while cheap: count at most EXACT_COUNT_MAX + 1 matches.
            let bounded: i64 = c.query_row(
                &format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM transmissions t {} LIMIT {})",
                    where_sql(None),
                    EXACT_COUNT_MAX + 1
                ),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            if bounded <= EXACT_COUNT_MAX {
                (bounded, false)
            } else {
                estimate(bounded)?
            }
        }
    };
    let (order, keyset) = if q.ascending {
        ("ASC", "t.id > ?")
    } else {
        ("DESC", "t.id < ?")
    };
    let mut page_args = args.clone();
    let where_page = match q.after_id {
        Some(id) => {
            page_args.push(SqlValue::Integer(id));
            where_sql(Some(keyset))
        }
        None => where_sql(None),
    };
    let sql = format!(
        "SELECT {} FROM transmissions t {where_page} ORDER BY t.id {order} LIMIT ? OFFSET ?",
        packet_row_sql(ready)
    );
    // One row more than the page, to know whether another page follows.
    page_args.push(SqlValue::Integer(q.limit + 1));
    page_args.push(SqlValue::Integer(q.offset));
    let mut stmt = c.prepare(&sql)?;
    let mut packets = stmt
        .query_map(rusqlite::params_from_iter(page_args.iter()), packet_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let more = packets.len() as i64 > q.limit;
    packets.truncate(q.limit as usize);
    let next_cursor = more
        .then(|| {
            packets
                .last()
                .map(|p| cursor::encode("p", &[&p.id.to_string()]))
        })
        .flatten();
    Ok(PacketsPage {
        packets,
        total,
        limit: q.limit,
        offset: q.offset,
        next_cursor,
        total_estimated,
    })
}

/// The columns of `transmissions t` a [`PacketRow`] is read from; the
/// sighting count is read from the row once the counts are ready
/// (`ready`), counted otherwise.
pub(super) fn packet_row_sql(ready: bool) -> String {
    let sightings = if ready {
        "t.observation_count"
    } else {
        "(SELECT COUNT(*) FROM observations o WHERE o.transmission_id = t.id)"
    };
    format!(
        "t.id, t.hash, t.raw_hex, t.first_seen, t.last_seen, t.route_type, t.payload_type,
         {sightings}, t.from_pubkey"
    )
}

/// A [`PacketRow`] from the columns of [`packet_row_sql`].
pub(super) fn packet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PacketRow> {
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
}

/// A list answer whose next page is named in the `X-Next-Cursor` header
/// (the body stays the plain array it always was).
fn with_next(list: Response, next: Option<String>) -> Response {
    let mut resp = list;
    if let Some(c) = next.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert("x-next-cursor", c);
    }
    resp
}

#[utoipa::path(get, path = "/api/packets/timestamps", tag = "packets",
    params(("since" = String, Query, description = "unix seconds or RFC3339, 1970-9999 (required)"),
        ("limit" = Option<i64>, Query, description = "1-10000, default 1000"),
        ("cursor" = Option<String>, Query, description = "the X-Next-Cursor header of the page before")),
    responses((status = 200, body = Vec<String>, description = "ascending; X-Next-Cursor names the next page when there is one"),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn timestamps(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let since = time_param(&q, "since")?.ok_or_else(|| bad("since", "is required"))?;
    let limit = int_param(&q, "limit", 1_000, 1, 10_000)?;
    let after = cursor_param(&q, "t", 2)?
        .map(|p| {
            Ok::<_, ApiError>((
                p[0].clone(),
                p[1].parse::<i64>()
                    .map_err(|_| bad("cursor", "is not a cursor this endpoint gave out"))?,
            ))
        })
        .transpose()?;
    let (list, next) = state
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT first_seen, id FROM transmissions
                 WHERE first_seen >= ?1 AND (?2 IS NULL OR first_seen > ?2 OR (first_seen = ?2 AND id > ?3))
                 ORDER BY first_seen ASC, id ASC LIMIT ?4",
            )?;
            let (after_seen, after_id) = match &after {
                Some((s, id)) => (Some(s.as_str()), *id),
                None => (None, 0),
            };
            let mut rows = stmt
                .query_map(rusqlite::params![since, after_seen, after_id, limit + 1], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let next = more
                .then(|| rows.last().map(|(s, id)| cursor::encode("t", &[s, &id.to_string()])))
                .flatten();
            Ok((rows.into_iter().map(|(s, _)| s).collect::<Vec<_>>(), next))
        })
        .await?;
    Ok(with_next(Json(list).into_response(), next))
}

#[utoipa::path(get, path = "/api/observers", tag = "packets",
    params(("limit" = Option<i64>, Query, description = "1-5000, default 1000"),
        ("iata" = Option<String>, Query, description = "only these regions: codes, comma-separated"),
        ("cursor" = Option<String>, Query, description = "the X-Next-Cursor header of the page before")),
    responses((status = 200, body = Vec<ObserverRow>, description = "by last seen, newest first; X-Next-Cursor names the next page when there is one"),
        (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub(super) async fn observers(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = int_param(&q, "limit", 1_000, 1, 5_000)?;
    let after = cursor_param(&q, "o", 2)?;
    let regions = regions_param(&q)?;
    let times = state.ingest_liveness.observer_times();
    let (list, next) = state
        .read(move |c| {
            let region_sql = if regions.is_empty() {
                String::new()
            } else {
                // Numbered after the three fixed parameters.
                let marks: Vec<String> = (4..4 + regions.len()).map(|i| format!("?{i}")).collect();
                format!("AND upper(iata) IN ({})", marks.join(", "))
            };
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, NULLIF(name, ''), iata, last_seen, COALESCE(packet_count, 0),
                        COALESCE(last_seen, '') AS seen
                 FROM observers
                 WHERE (?1 IS NULL OR COALESCE(last_seen, '') < ?1
                    OR (COALESCE(last_seen, '') = ?1 AND id > ?2)) {region_sql}
                 ORDER BY seen DESC, id LIMIT ?3"
            ))?;
            let (after_seen, after_id) = match &after {
                Some(p) => (Some(p[0].as_str()), p[1].as_str()),
                None => (None, ""),
            };
            let mut args: Vec<SqlValue> = vec![
                after_seen.map_or(SqlValue::Null, |s| SqlValue::Text(s.to_string())),
                SqlValue::Text(after_id.to_string()),
                SqlValue::Integer(limit + 1),
            ];
            args.extend(regions.iter().cloned().map(SqlValue::Text));
            let mut rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((
                        ObserverRow {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            iata: r.get(2)?,
                            last_seen: r.get(3)?,
                            packet_count: r.get(4)?,
                            dated_at_receipt: Default::default(),
                        },
                        r.get::<_, String>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let next = more
                .then(|| {
                    rows.last()
                        .map(|(o, seen)| cursor::encode("o", &[seen, &o.id]))
                })
                .flatten();
            let list = rows
                .into_iter()
                .map(|(mut o, _)| {
                    if let Some(t) = times.get(&o.id) {
                        o.dated_at_receipt =
                            t.iter().map(|(k, v)| ((*k).to_string(), *v)).collect();
                    }
                    o
                })
                .collect::<Vec<_>>();
            Ok((list, next))
        })
        .await?;
    Ok(with_next(Json(list).into_response(), next))
}

#[cfg(test)]
mod tests {
    use super::hex_prefix_end;

    #[test]
    fn hash_prefix_ranges_hold_exactly_the_prefix_in_its_case() {
        for (prefix, inside, outside) in [
            ("ab", "abff00", "ac0000"),
            ("a9", "a9ffff", "aa0000"),
            ("ff", "ffffff", "g"),
            ("FF", "FFFFFF", "ff0000"),
            ("12AB", "12ABFF", "12ac00"),
        ] {
            let end = hex_prefix_end(prefix).unwrap();
            assert!(
                inside >= prefix && inside < end.as_str(),
                "{prefix} {inside}"
            );
            assert!(
                !(outside >= prefix && outside < end.as_str()),
                "{prefix} {outside}"
            );
        }
        assert_eq!(hex_prefix_end(""), None);
    }
}
