//! Real CoreScope files: a fixture built from CoreScope's own DDL and row
//! formats, and meshscope's boot, backfills, controls and ingest run on it.
//!
//! The DDL is CoreScope's (Kpa-clawbot/CoreScope): the base tables and
//! indexes of `cmd/ingestor/db.go` (`applySchema`), the columns and indexes
//! `internal/dbschema` adds (`transmissions.last_seen INTEGER NOT NULL
//! DEFAULT 0` with its partial index, `channel_hash`, `scope_name`,
//! `observations.raw_hex`, `resolved_path`), the `packets_v` view, and
//! `_async_migrations` as `cmd/ingestor/async_migration.go` creates it
//! (`started_at TEXT NOT NULL DEFAULT (datetime('now'))`) with the progress
//! columns `async_migration_progress.go` adds. Rows are in CoreScope's
//! formats: `first_seen`/`last_seen` text as Go's `time.RFC3339`
//! (`2026-11-20T10:00:00Z`), `observations.timestamp` in unix seconds,
//! bookkeeping times from SQLite's `datetime('now')` (`2026-11-27 07:33:12`).
//!
//! After meshscope ran, the file must still be one CoreScope can use: no
//! declared constraint broken, CoreScope's own reads and writes still work.

use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::helpers::{advert_payload, packet, spawn_with, Options, TestApp};

pub mod fixture;
mod statements;

const LS: &str = meshscope::migrate::last_seen::NAME;
const FP: &str = meshscope::migrate::from_pubkey::NAME;
/// A migration only CoreScope knows, left `pending_async` by it.
pub const FOREIGN: &str = "resolved_path_backfill_v1";

/// CoreScope's base schema (`applySchema` in `cmd/ingestor/db.go`) and its
/// bookkeeping table as `async_migration.go` creates it: a file from before
/// `transmissions.last_seen` existed.
pub const DDL_BASE: &str = "
CREATE TABLE nodes (
    public_key TEXT PRIMARY KEY, name TEXT, role TEXT, lat REAL, lon REAL,
    last_seen TEXT, first_seen TEXT, advert_count INTEGER DEFAULT 0,
    battery_mv INTEGER, temperature_c REAL, foreign_advert INTEGER DEFAULT 0,
    default_scope TEXT DEFAULT NULL);
CREATE TABLE observers (
    id TEXT PRIMARY KEY, name TEXT, iata TEXT, last_seen TEXT, first_seen TEXT,
    packet_count INTEGER DEFAULT 0, model TEXT, firmware TEXT, client_version TEXT,
    radio TEXT, battery_mv INTEGER, uptime_secs INTEGER, noise_floor REAL,
    inactive INTEGER DEFAULT 0, last_packet_at TEXT DEFAULT NULL, repeat TEXT DEFAULT NULL);
CREATE INDEX idx_nodes_last_seen ON nodes(last_seen);
CREATE INDEX idx_observers_last_seen ON observers(last_seen);
CREATE TABLE inactive_nodes (
    public_key TEXT PRIMARY KEY, name TEXT, role TEXT, lat REAL, lon REAL,
    last_seen TEXT, first_seen TEXT, advert_count INTEGER DEFAULT 0,
    battery_mv INTEGER, temperature_c REAL, foreign_advert INTEGER DEFAULT 0,
    default_scope TEXT DEFAULT NULL);
CREATE INDEX idx_inactive_nodes_last_seen ON inactive_nodes(last_seen);
CREATE TABLE transmissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    raw_hex TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    first_seen TEXT NOT NULL,
    route_type INTEGER,
    payload_type INTEGER,
    payload_version INTEGER,
    decoded_json TEXT,
    from_pubkey TEXT,
    created_at TEXT DEFAULT (datetime('now')));
CREATE INDEX idx_transmissions_hash ON transmissions(hash);
CREATE INDEX idx_transmissions_first_seen ON transmissions(first_seen);
CREATE INDEX idx_transmissions_payload_type ON transmissions(payload_type);
CREATE TABLE observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transmission_id INTEGER NOT NULL REFERENCES transmissions(id),
    observer_idx INTEGER,
    direction TEXT,
    snr REAL,
    rssi REAL,
    score INTEGER,
    path_json TEXT,
    timestamp INTEGER NOT NULL);
CREATE INDEX idx_observations_transmission_id ON observations(transmission_id);
CREATE INDEX idx_observations_observer_idx ON observations(observer_idx);
CREATE INDEX idx_observations_timestamp ON observations(timestamp);
CREATE UNIQUE INDEX idx_observations_dedup ON observations(transmission_id, observer_idx, COALESCE(path_json, ''));
CREATE TABLE _migrations (name TEXT PRIMARY KEY);
CREATE TABLE _async_migrations (
    name       TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT (datetime('now')),
    ended_at   TEXT,
    error      TEXT);
";

/// What later CoreScope versions add (`internal/dbschema`, the
/// `_migrations`-gated steps of `applySchema`, and the progress columns of
/// `async_migration_progress.go`): the schema of a current CoreScope file.
pub const DDL_CURRENT: &str = "
ALTER TABLE observations ADD COLUMN raw_hex TEXT;
ALTER TABLE transmissions ADD COLUMN channel_hash TEXT DEFAULT NULL;
CREATE INDEX idx_tx_channel_hash ON transmissions(channel_hash) WHERE payload_type = 5;
CREATE INDEX idx_transmissions_from_pubkey ON transmissions(from_pubkey);
ALTER TABLE transmissions ADD COLUMN scope_name TEXT DEFAULT NULL;
CREATE INDEX idx_tx_scope_name ON transmissions(scope_name) WHERE scope_name IS NOT NULL;
ALTER TABLE observations ADD COLUMN resolved_path TEXT;
CREATE INDEX idx_obs_tx_resolved_path ON observations(transmission_id)
    WHERE resolved_path IS NOT NULL AND resolved_path != '' AND resolved_path != '[]';
CREATE INDEX idx_observations_observer_timestamp ON observations(observer_idx, timestamp);
ALTER TABLE transmissions ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
CREATE INDEX idx_tx_last_seen_zero ON transmissions(id) WHERE last_seen=0;
ALTER TABLE _async_migrations ADD COLUMN rows_processed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE _async_migrations ADD COLUMN rows_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE _async_migrations ADD COLUMN last_update_at TEXT;
CREATE VIEW packets_v AS
    SELECT o.id, COALESCE(o.raw_hex, t.raw_hex) AS raw_hex,
           datetime(o.timestamp, 'unixepoch') AS timestamp,
           obs.id AS observer_id, obs.name AS observer_name,
           o.direction, o.snr, o.rssi, o.score, t.hash, t.route_type,
           t.payload_type, t.payload_version, o.path_json, t.decoded_json,
           t.created_at
    FROM observations o
    JOIN transmissions t ON t.id = o.transmission_id
    LEFT JOIN observers obs ON obs.rowid = o.observer_idx AND (obs.inactive IS NULL OR obs.inactive = 0);
INSERT INTO _migrations (name) VALUES ('advert_count_unique_v1'), ('from_pubkey_v1'),
    ('channel_hash_v1'), ('observations_raw_hex_v1'), ('scope_name_v1');
";

/// Go's `time.RFC3339` of unix seconds, as CoreScope writes text times.
pub fn rfc3339(secs: i64) -> String {
    let ms = shared::timefmt::format_unix_secs(secs);
    format!("{}Z", &ms[..19])
}

/// Newest sighting in the fixture (unix seconds).
pub const END: i64 = 1_795_000_000;

/// Writes a CoreScope file at `path`: `n` transmissions (every 4th an
/// ADVERT, about 1% without any sighting), 1-6 sightings each by 8
/// observers, all pre-backfill (`last_seen = 0`, `from_pubkey` NULL), and the
/// bookkeeping rows an operator of CoreScope v3.9.2 has: the
/// `tx_last_seen_backfill_v1` it failed, a `done` row, and a `pending_async`
/// row of a migration only CoreScope runs.
pub fn write_file(path: &std::path::Path, n: u64) {
    let mut c = Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
        .unwrap();
    c.execute_batch(DDL_BASE).unwrap();
    c.execute_batch(DDL_CURRENT).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut obs = tx
            .prepare(
                "INSERT INTO observers (id, name, iata, last_seen, first_seen, packet_count, model, firmware, radio)
                 VALUES (?1, ?2, 'SEA', ?3, ?4, 0, 'Heltec V3', '1.9.1', '915MHz')",
            )
            .unwrap();
        for o in 0..8 {
            obs.execute(params![
                format!("{:064x}", 0xab00 + o),
                format!("Observer {o}"),
                rfc3339(END),
                rfc3339(END - 7 * 86_400)
            ])
            .unwrap();
        }
        let mut ins_tx = tx
            .prepare(
                "INSERT INTO transmissions (raw_hex, hash, first_seen, route_type, payload_type,
                    payload_version, decoded_json, channel_hash)
                 VALUES (?1, ?2, ?3, 1, ?4, 0, ?5, NULL)",
            )
            .unwrap();
        let mut ins_obs = tx
            .prepare(
                "INSERT INTO observations (transmission_id, observer_idx, direction, snr, rssi, score,
                    path_json, timestamp, raw_hex)
                 VALUES (?1, ?2, 'rx', ?3, ?4, 1000, ?5, ?6, NULL)",
            )
            .unwrap();
        let mut count = tx
            .prepare("UPDATE observers SET packet_count = packet_count + 1 WHERE rowid = ?1")
            .unwrap();
        for i in 0..n {
            let first = END - 6 * 86_400 + (i as i64 * 5_000) % (6 * 86_400);
            let (ptype, payload) = if i % 4 == 0 {
                let mut p = advert_payload((i % 200) as u8 + 1);
                p.extend_from_slice(format!("node-{i}").as_bytes());
                (4u8, p)
            } else {
                (2u8, format!("corescope text {i}").into_bytes())
            };
            let raw = packet(ptype, &[(i % 7) as u8], &payload).to_uppercase();
            let hash = crate::helpers::hash_of(&raw);
            let decoded =
                json!({"type": if ptype == 4 { "ADVERT" } else { "TXT_MSG" }}).to_string();
            ins_tx
                .execute(params![raw, hash, rfc3339(first), ptype, decoded])
                .unwrap();
            let id = tx.last_insert_rowid();
            let sightings = if i % 97 == 13 { 0 } else { 1 + i % 6 };
            for k in 0..sightings {
                let observer = 1 + ((i + k) % 8) as i64;
                ins_obs
                    .execute(params![
                        id,
                        observer,
                        -5.0 + k as f64,
                        -100.0 + k as f64,
                        format!("[\"{:02X}\"]", k),
                        first + 30 * k as i64
                    ])
                    .unwrap();
                count.execute([observer]).unwrap();
            }
        }
        // The operator's bookkeeping, as CoreScope wrote it.
        tx.execute_batch(&format!(
            "INSERT INTO _async_migrations (name, status, started_at, ended_at, error)
                VALUES ('{LS}', 'failed', datetime('now', '-2 hours'), datetime('now', '-2 hours', '+14 minutes'),
                        'context deadline exceeded: database is locked');
             INSERT INTO _async_migrations (name, status, started_at, ended_at, rows_processed, rows_total, last_update_at)
                VALUES ('obs_observer_ts_idx_v1', 'done', datetime('now', '-3 days'), datetime('now', '-3 days', '+40 seconds'),
                        0, 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-3 days'));
             INSERT INTO _async_migrations (name, status) VALUES ('{FOREIGN}', 'pending_async');"
        ))
        .unwrap();
    }
    tx.commit().unwrap();
}

/// Every declared constraint holds on the file: `integrity_check`, no
/// foreign key violation, and no NULL in a NOT NULL column of any table.
pub fn assert_constraints_hold(c: &Connection) {
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let fk: i64 = c
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0, "foreign key violations");
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in tables {
        let not_null: Vec<String> = c
            .prepare("SELECT name FROM pragma_table_info(?1) WHERE \"notnull\" = 1")
            .unwrap()
            .query_map([&t], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for col in not_null {
            let nulls: i64 = c
                .query_row(
                    &format!("SELECT COUNT(*) FROM \"{t}\" WHERE \"{col}\" IS NULL"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(nulls, 0, "{t}.{col} is declared NOT NULL");
        }
    }
}

/// A time as CoreScope's server reads `_async_migrations` times:
/// `2006-01-02 15:04:05`, or RFC3339 (with or without a fraction).
fn corescope_reads_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let date_time = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !date_time {
        return false;
    }
    match b[10] {
        b' ' => b.len() == 19,
        b'T' => {
            let rest = &s[19..];
            let rest = rest
                .strip_prefix('.')
                .map(|f| f.trim_start_matches(|ch: char| ch.is_ascii_digit()))
                .unwrap_or(rest);
            rest == "Z" || (rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')))
        }
        _ => false,
    }
}

/// CoreScope still reads and writes the file: its `_async_migrations`
/// reader (every `started_at` non-NULL and in a layout it parses), its
/// `packets_v` view, and its ingest statements (observer upsert with its
/// column list, observation insert with its dedup conflict target).
pub fn assert_corescope_still_works(c: &Connection) {
    let mut stmt = c
        .prepare(
            "SELECT name, status, COALESCE(rows_processed, 0), COALESCE(rows_total, 0), started_at,
                    COALESCE(ended_at, ''), COALESCE(error, '')
             FROM _async_migrations ORDER BY started_at",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (name, started, ended) = row.expect("CoreScope scans started_at into a string");
        assert!(
            corescope_reads_time(&started),
            "{name}: started_at {started:?}"
        );
        assert!(
            ended.is_empty() || corescope_reads_time(&ended),
            "{name}: ended_at {ended:?}"
        );
    }
    let viewed: i64 = c
        .query_row("SELECT COUNT(*) FROM packets_v", [], |r| r.get(0))
        .unwrap();
    assert!(viewed > 0);
    let tx = c.unchecked_transaction().unwrap();
    tx.execute(
        "INSERT INTO observers (id, name, iata, last_seen, first_seen, packet_count, model, firmware,
            client_version, radio, battery_mv, uptime_secs, noise_floor, repeat)
         VALUES ('cafe', 'CoreScope probe', 'SEA', ?1, ?1, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
         ON CONFLICT(id) DO UPDATE SET packet_count = packet_count + 1, inactive = 0",
        [rfc3339(END)],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO observations (transmission_id, observer_idx, direction, snr, rssi, score, path_json, timestamp, raw_hex)
         VALUES ((SELECT MIN(id) FROM transmissions), 1, 'rx', 1, -90, 1000, '[\"00\"]', ?1, NULL)
         ON CONFLICT(transmission_id, observer_idx, COALESCE(path_json, '')) DO UPDATE SET
            snr = COALESCE(excluded.snr, snr)",
        [END],
    )
    .unwrap();
    tx.rollback().unwrap();
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

async fn until_steady(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, h) = app.get("/api/healthz").await;
        assert_eq!(s, 200, "{h}");
        if h["async_migrations_running"] == false {
            return h;
        }
        assert!(Instant::now() < deadline, "never steady: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Independent checks of both backfills: `last_seen` is the newest
/// sighting (0 for orphans), `from_pubkey` the ADVERT's key.
fn assert_backfills_exact(c: &Connection) {
    crate::engine::assert_last_seen_correct(c);
    let mut stmt = c
        .prepare("SELECT raw_hex, from_pubkey FROM transmissions WHERE payload_type = 4")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .unwrap();
    let mut n = 0;
    for row in rows {
        let (raw, key) = row.unwrap();
        let bytes = meshscope::decoder::parse_hex(&raw).unwrap();
        assert_eq!(
            key,
            meshscope::decoder::decode(&bytes).unwrap().advert_pubkey()
        );
        n += 1;
    }
    assert!(n > 100, "{n} adverts");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corescope_file_with_a_failed_backfill_boots_retries_and_reaches_steady_state() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(|p| write_file(p, 4_000))),
        ..Default::default()
    })
    .await;
    let h = until_steady(&app).await;
    let list = &h["async_migrations"];
    let ls = find(list, LS);
    assert_eq!(ls["status"], "done", "retried automatically: {ls}");
    assert_eq!(ls["attempts"], 1);
    assert_eq!(ls["error"], Value::Null);
    assert_eq!(find(list, FP)["status"], "done");
    // CoreScope's done row, with datetime('now') times: read, not an error.
    let done = find(list, "obs_observer_ts_idx_v1");
    assert_eq!(done["status"], "done");
    assert_eq!(done["error"], Value::Null, "{done}");
    assert_eq!(done["elapsedSec"], 40.0);
    // CoreScope's own pending migration: not meshscope's, not running.
    let foreign = find(list, FOREIGN);
    assert_eq!(foreign["status"], "unowned", "{foreign}");
    let why = foreign["error"].as_str().unwrap();
    assert!(
        why.contains("does not run") && why.contains("pending_async"),
        "{why}"
    );
    assert_eq!(h["ready"], true);

    let c = app.sql();
    assert_backfills_exact(&c);
    assert_constraints_hold(&c);
    assert_corescope_still_works(&c);
    let stored: String = c
        .query_row(
            "SELECT status FROM _async_migrations WHERE name = ?1",
            [FOREIGN],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stored, "pending_async",
        "another program's row is left alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_cancel_and_retry_on_a_corescope_file_end_exact_and_valid() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(|p| write_file(p, 6_000))),
        api_key: Some("operator-key-1".into()),
        engine: Some(crate::engine::engine_cfg(100, 100, 0.05)),
        ..Default::default()
    })
    .await;
    let auth = [("authorization", "Bearer operator-key-1")];
    // Wait for the (retried) backfill to be under way, then cancel it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, list) = app.get("/api/perf/async-migrations").await;
        if find(&list, LS)["rowsProcessed"].as_i64().unwrap() > 300 {
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, body) = app
        .post_raw(
            &format!("/api/migrations/{LS}/cancel"),
            String::new(),
            &auth,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert_constraints_hold(&app.sql());
    assert_corescope_still_works(&app.sql());
    let (s, body) = app
        .post_raw(&format!("/api/migrations/{LS}/retry"), String::new(), &auth)
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "pending");
    // CoreScope's NOT NULL started_at holds right after the reset.
    assert_constraints_hold(&app.sql());
    // Controls do not apply to a row meshscope does not own.
    let (s, body) = app
        .post_raw(
            &format!("/api/migrations/{FOREIGN}/cancel"),
            String::new(),
            &auth,
        )
        .await;
    assert_eq!(s, 404, "{body}");
    until_steady(&app).await;
    let c = app.sql();
    assert_backfills_exact(&c);
    assert_constraints_hold(&c);
    assert_corescope_still_works(&c);
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_on_a_corescope_file_keeps_its_formats() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(|p| write_file(p, 500))),
        ..Default::default()
    })
    .await;
    let raw = packet(2, &[1, 2], b"new on an old file");
    let (s, body) = app
        .post_json(
            "/api/ingest",
            &json!([{"observer": format!("{:064x}", 0xab00), "raw": raw, "snr": 4.5},
                    {"observer": "beef01", "raw": raw, "iata": "pdx"}]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["newTransmissions"], 1);
    // A sighting of a packet CoreScope stored: merged with its row.
    let old_raw: String = app
        .sql()
        .query_row("SELECT raw_hex FROM transmissions WHERE id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    let (s, body) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "beef01", "raw": old_raw}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["newTransmissions"], 0, "{body}");
    let c = app.sql();
    let first_seen: String = c
        .query_row(
            "SELECT first_seen FROM transmissions ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(corescope_reads_time(&first_seen), "{first_seen}");
    let (seen, count): (String, i64) = c
        .query_row(
            "SELECT last_seen, packet_count FROM observers WHERE id = 'beef01'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(corescope_reads_time(&seen), "{seen}");
    assert_eq!(count, 2);
    assert_constraints_hold(&c);
    assert_corescope_still_works(&c);
}

#[test]
fn the_migrations_command_shows_another_programs_row_as_unowned() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cs.db");
    write_file(&db, 50);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshscope"))
        .args(["migrations", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(FOREIGN))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("unowned") && line.contains("does not run"),
        "{line}"
    );
    let done = text
        .lines()
        .find(|l| l.starts_with("obs_observer_ts_idx_v1"))
        .unwrap();
    assert!(
        done.contains("done") && !done.contains("could not be parsed"),
        "{done}"
    );
}

#[test]
fn corescope_time_layouts_are_told_apart() {
    for ok in [
        "2026-11-27 07:33:12",
        "2026-11-27T07:33:12Z",
        "2026-11-27T07:33:12.123Z",
        "2026-11-27T07:33:12+01:00",
    ] {
        assert!(corescope_reads_time(ok), "{ok}");
    }
    for bad in [
        "2026-11-27T07:33:12",
        "2026-11-27 07:33:12.5",
        "yesterday",
        "",
    ] {
        assert!(!corescope_reads_time(bad), "{bad}");
    }
}

/// A row left `done` with an error in it (another writer, a hand edit) is
/// shown without the error; a `failed` row keeps its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_done_row_with_a_leftover_error_is_shown_without_it() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(|db| {
            crate::helpers::run_cli(db, &["seed", "--transmissions", "300", "--legacy"]);
            Connection::open(db)
                .unwrap()
                .execute_batch(
                    "INSERT INTO _async_migrations (name, status, started_at, ended_at, error, attempts)
                        VALUES ('observations_dedup_v1', 'done', datetime('now'), datetime('now'),
                                'stale', 1);
                     INSERT INTO _async_migrations (name, status, started_at, ended_at, error, attempts)
                        VALUES ('hash_rehash_v1', 'failed', datetime('now'), datetime('now'),
                                'a real failure', 99);",
                )
                .unwrap();
        })),
        ..Default::default()
    })
    .await;
    let (_, list) = app.get("/api/perf/async-migrations").await;
    let (_, health) = app.get("/api/healthz").await;
    for l in [&list, &health["async_migrations"]] {
        let row = |name: &str| {
            l.as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == name)
                .cloned()
                .unwrap()
        };
        let done = row("observations_dedup_v1");
        assert_eq!(
            (&done["status"], &done["error"]),
            (&json!("done"), &Value::Null),
            "{done}"
        );
        let failed = row("hash_rehash_v1");
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error"], "a real failure", "{failed}");
    }
}
