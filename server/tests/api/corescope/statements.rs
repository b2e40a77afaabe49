//! CoreScope's own SQL (`statements.sql`: its ingestor's inserts and
//! upserts, its maintenance, neighbour builder and hash migration, its
//! server's reads, each with its source file:line at a06ac8ac) run against
//! files meshscope wrote or upgraded. Each statement must prepare and run
//! (in a savepoint rolled back after it), and no row a read returns may hold
//! NULL where CoreScope's Go code scans into a plain value (`@nonnull`):
//! such a row fails `rows.Scan`, which CoreScope mostly skips silently.

use std::path::Path;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension};

/// One entry of `statements.sql`.
#[derive(Debug, Clone)]
pub struct Statement {
    pub name: String,
    pub source: String,
    pub read: bool,
    /// Result columns by name, or `#n` (1-based) for unnamed ones.
    pub nonnull: Vec<String>,
    pub sql: String,
}

/// The list, parsed (a test fails when the file does not parse).
pub fn statements() -> Vec<Statement> {
    let text = include_str!("statements.sql");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut source = String::new();
        let mut read = false;
        let mut nonnull = Vec::new();
        let mut sql = Vec::new();
        for line in block.lines() {
            if let Some(tag) = line.strip_prefix("-- @") {
                let (key, value) = tag.split_once(' ').unwrap_or((tag, ""));
                match key {
                    "name" => name = Some(value.trim().to_string()),
                    "source" => source = value.trim().to_string(),
                    "kind" => read = value.trim() == "read",
                    "nonnull" => {
                        nonnull = value
                            .split(',')
                            .map(|c| c.trim().trim_end_matches('?').to_string())
                            .filter(|c| !c.is_empty())
                            .collect();
                    }
                    _ => {}
                }
            } else if !line.starts_with("--") && !line.trim().is_empty() {
                sql.push(line);
            }
        }
        if let Some(name) = name {
            let sql = sql.join("\n");
            assert!(
                sql.trim_end().ends_with(';'),
                "{name}: the statement must end with ';'"
            );
            assert!(!source.is_empty(), "{name}: no @source");
            out.push(Statement {
                name,
                source,
                read,
                nonnull,
                sql: sql.trim_end().trim_end_matches(';').to_string(),
            });
        }
    }
    out
}

/// Values for the statements' named parameters, taken from the file under
/// test (an existing packet, sighting, observer and node) or made up.
fn params(c: &Connection) -> Vec<(&'static str, Sql)> {
    let tx: Option<(i64, String, String)> = c
        .query_row(
            "SELECT t.id, t.hash, t.raw_hex FROM transmissions t
             WHERE EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id)
             ORDER BY t.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .unwrap();
    let (tx_id, hash, raw_hex) = tx.unwrap_or((1, "0011223344556677".into(), "1500".into()));
    let tx_id2: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(id), ?1) FROM transmissions",
            [tx_id],
            |r| r.get(0),
        )
        .unwrap();
    let obs_id: i64 = c
        .query_row(
            "SELECT COALESCE(MIN(id), 1) FROM observations WHERE transmission_id = ?1",
            [tx_id],
            |r| r.get(0),
        )
        .unwrap();
    let (observer_id, observer_rowid): (String, i64) = c
        .query_row(
            "SELECT id, rowid FROM observers ORDER BY rowid LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .unwrap()
        .unwrap_or(("AB12".into(), 1));
    let keys: Vec<String> = c
        .prepare("SELECT public_key FROM nodes ORDER BY public_key LIMIT 2")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let pubkey = keys.first().cloned().unwrap_or_else(|| "ab".repeat(32));
    let node_b = keys.get(1).cloned().unwrap_or_else(|| "cd".repeat(32));
    let now: i64 = 1_795_000_000;
    let text = |secs: i64| {
        let ms = shared::timefmt::format_unix_secs(secs);
        format!("{}Z", &ms[..19])
    };
    let s = |v: &str| Sql::Text(v.to_string());
    vec![
        (":tx_id", Sql::Integer(tx_id)),
        (":tx_id2", Sql::Integer(tx_id2)),
        (":hash", s(&hash)),
        (":raw_hex", s(&raw_hex)),
        (":new_hash", s("fedcba9876543210")),
        (":new_raw_hex", s("15001122334455")),
        (":obs_id", Sql::Integer(obs_id)),
        (":after_id", Sql::Integer(0)),
        (":observer_id", s(&observer_id)),
        (":observer_rowid", Sql::Integer(observer_rowid)),
        (":new_observer_id", s(&"EF".repeat(32))),
        (":pubkey", s(&pubkey)),
        (":node_a", s(&pubkey)),
        (":node_b", s(&node_b)),
        (":pubkey_like", s(&format!("{}%", &pubkey[..8]))),
        (":name", s("Test Node")),
        (":name_like", s("%Node%")),
        (":role", s("repeater")),
        (":iata", s("SJC")),
        (":lat", Sql::Real(37.5)),
        (":lon", Sql::Real(-122.25)),
        (":lat_min", Sql::Real(30.0)),
        (":lat_max", Sql::Real(40.0)),
        (":lon_min", Sql::Real(-130.0)),
        (":lon_max", Sql::Real(-120.0)),
        (":now_text", s(&text(now))),
        (":now_unix", Sql::Integer(now)),
        (":seen_text", s(&text(now - 60))),
        (":cutoff_text", s(&text(now - 7 * 86_400))),
        (":cutoff_unix", Sql::Integer(0)),
        (":cutoff_date", s("2026-01-01")),
        (":limit", Sql::Integer(1_000)),
        (":offset", Sql::Integer(0)),
        (":channel_hash", s("Public")),
        (":payload_type", Sql::Integer(4)),
        (":route_type", Sql::Integer(1)),
        (":payload_version", Sql::Integer(0)),
        (
            ":decoded_json",
            s(r#"{"type":"REQ","destHash":"11","srcHash":"22","mac":"3344","encryptedData":"55"}"#),
        ),
        (":path_json", s(r#"["A1","B2"]"#)),
        (":path_like", s(r#"%"A1"%"#)),
        (":resolved_path", Sql::Null),
        (":quoted_pubkey", s(&format!("\"{pubkey}\""))),
        (":direction", s("rx")),
        (":snr", Sql::Real(7.5)),
        (":rssi", Sql::Real(-90.0)),
        (":score", Sql::Integer(3)),
        (":scope_name", Sql::Null),
        (":battery_mv", Sql::Integer(4_100)),
        (":temperature_c", Sql::Real(21.5)),
        (":noise_floor", Sql::Real(-110.5)),
        (":uptime_secs", Sql::Integer(3_600)),
        (":model", s("Heltec V3")),
        (":firmware", s("1.8.2")),
        (":client_version", s("meshcoretomqtt/1.0.6")),
        (":radio", s("910.525,62.5,7,5")),
        (":can_relay", Sql::Null),
        (":counter", Sql::Integer(12)),
        (":skew_seconds", Sql::Integer(-3_600)),
        (":migration_name", s("corescope_probe_v1")),
        (":error_text", s("probe")),
        (":multibyte_sup", Sql::Integer(1)),
        (":evidence", s("probe")),
        (":reason", s("bad signature")),
        (":heard_key", s(&pubkey[..4])),
        (":heard_keylen", Sql::Integer(2)),
        (":accuracy_m", Sql::Real(5.0)),
        (":src", s("app")),
    ]
}

/// What went wrong with one statement on one file.
#[derive(Debug)]
pub struct Failure {
    pub name: String,
    pub source: String,
    pub problem: String,
}

/// Runs `st` (every statement before it undone) and checks its rows.
fn run_one(c: &Connection, st: &Statement, values: &[(&str, Sql)]) -> Result<usize, String> {
    let mut stmt = c.prepare(&st.sql).map_err(|e| format!("prepare: {e}"))?;
    for (name, v) in values {
        if let Ok(Some(i)) = stmt.parameter_index(name) {
            stmt.raw_bind_parameter(i, v)
                .map_err(|e| format!("bind {name}: {e}"))?;
        }
    }
    for i in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(i).unwrap_or("?");
        if !values.iter().any(|(n, _)| *n == name) {
            return Err(format!("parameter {name} has no value in the test"));
        }
    }
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let watched: Vec<(usize, String)> = st
        .nonnull
        .iter()
        .map(|col| {
            let at = match col.strip_prefix('#') {
                Some(n) => n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)),
                None => names.iter().position(|c| c == col),
            };
            at.map(|i| (i, col.clone()))
                .ok_or_else(|| format!("@nonnull {col} is not a result column ({names:?})"))
        })
        .collect::<Result<_, _>>()?;
    let mut rows = stmt.raw_query();
    let mut n = 0;
    while let Some(row) = rows.next().map_err(|e| format!("run: {e}"))? {
        n += 1;
        for (i, col) in &watched {
            let v: Sql = row.get(*i).map_err(|e| e.to_string())?;
            if v == Sql::Null {
                return Err(format!(
                    "row {n}: {col} is NULL, which CoreScope scans into a Go value"
                ));
            }
        }
    }
    Ok(n)
}

/// Runs the whole list on `path`; every failure, and how many rows the
/// reads returned in all (so a test can see that the checks saw data).
pub fn run_all(path: &Path) -> (Vec<Failure>, usize) {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let values = params(&c);
    let list = statements();
    let mut failures = Vec::new();
    let mut rows = 0;
    for st in &list {
        // CoreScope's one-shot steps run only when their `_migrations` mark
        // is missing (the gate reads it first).
        if st.name == "schema.RecordMigration" || st.name == "schema.AdvertCountUniqueV1" {
            let gated: bool = c
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM _migrations WHERE name = 'advert_count_unique_v1')",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(false);
            if gated {
                continue;
            }
        }
        // The ingestor's connection enforces foreign keys; the server's
        // (read-only in production, hash migration included) does not.
        let server = st.name.starts_with("server.") || st.name.starts_with("hashmigrate.");
        c.pragma_update(None, "foreign_keys", !server).unwrap();
        c.execute_batch("SAVEPOINT probe").unwrap();
        // Statements CoreScope runs right after another one run after it.
        let before = match st.name.as_str() {
            "schema.CreatePacketsView" => Some("schema.DropPacketsView"),
            "hashmigrate.DeleteDuplicate" => Some("hashmigrate.MergeObservations"),
            "maintenance.PruneOldTransmissions" => Some("maintenance.PruneOldObservations"),
            "maintenance.MoveStaleNodesDelete" => Some("maintenance.MoveStaleNodesCopy"),
            _ => None,
        };
        if let Some(first) = before.and_then(|n| list.iter().find(|s| s.name == n)) {
            if let Err(problem) = run_one(&c, first, &values) {
                failures.push(Failure {
                    name: st.name.clone(),
                    source: st.source.clone(),
                    problem: format!("{}, which runs first, failed: {problem}", first.name),
                });
                c.execute_batch("ROLLBACK TO probe; RELEASE probe").unwrap();
                continue;
            }
        }
        match run_one(&c, st, &values) {
            Ok(n) => rows += if st.read { n } else { 0 },
            Err(problem) => failures.push(Failure {
                name: st.name.clone(),
                source: st.source.clone(),
                problem,
            }),
        }
        c.execute_batch("ROLLBACK TO probe; RELEASE probe").unwrap();
    }
    (failures, rows)
}

#[test]
fn the_statement_list_parses_and_names_its_sources() {
    let list = statements();
    assert!(list.len() > 150, "{} statements", list.len());
    let mut names: Vec<_> = list.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "every @name once");
    for st in &list {
        let (file, line) = st.source.rsplit_once(':').expect("file:line");
        assert!(file.ends_with(".go"), "{}: {}", st.name, st.source);
        assert!(line.parse::<u32>().is_ok(), "{}: {}", st.name, st.source);
    }
    for want in [
        "ingestor.InsertTransmission",
        "ingestor.InsertObservation",
        "ingestor.UpsertObserver",
        "ingestor.UpsertNode",
        "maintenance.MoveStaleNodesCopy",
        "neighbor.ScanObservations",
        "server.GetObservers",
        "server.GetChannels",
        "hashmigrate.MergeObservations",
    ] {
        assert!(list.iter().any(|s| s.name == want), "{want} is listed");
    }
}

/// The list must catch what it is there to catch: on a file shaped like the
/// ones meshscope wrote before (no `client_version`, extra `nodes`
/// columns, NULL `decoded_json`), CoreScope's statements fail.
#[test]
fn the_list_fails_on_a_file_corescope_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE transmissions (id INTEGER PRIMARY KEY AUTOINCREMENT, raw_hex TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE, first_seen TEXT NOT NULL, route_type INTEGER,
            payload_type INTEGER, payload_version INTEGER, decoded_json TEXT, from_pubkey TEXT,
            last_seen INTEGER NOT NULL DEFAULT 0, created_at TEXT);
         CREATE TABLE observers (id TEXT PRIMARY KEY, name TEXT, iata TEXT, last_seen TEXT,
            first_seen TEXT, packet_count INTEGER DEFAULT 0);
         CREATE TABLE observations (id INTEGER PRIMARY KEY AUTOINCREMENT,
            transmission_id INTEGER NOT NULL REFERENCES transmissions(id), observer_idx INTEGER,
            direction TEXT, snr REAL, rssi REAL, score INTEGER, path_json TEXT,
            timestamp INTEGER NOT NULL);
         CREATE TABLE nodes (public_key TEXT PRIMARY KEY, name TEXT, advert_tx_id INTEGER);
         INSERT INTO transmissions (raw_hex, hash, first_seen) VALUES ('1500', 'aa', 'x');
         INSERT INTO observers (id, name) VALUES ('AB', NULL);
         INSERT INTO observations (transmission_id, observer_idx, path_json, timestamp)
            VALUES (1, 1, '[]', 1);",
    )
    .unwrap();
    drop(c);
    let (failures, _) = run_all(&db);
    let failed = |name: &str| failures.iter().any(|f| f.name == name);
    assert!(failed("ingestor.UpsertObserver"), "no client_version");
    assert!(failed("neighbor.ScanObservations"), "NULL decoded_json");
    assert!(failed("server.ObserverIDNames"), "NULL observer name");
    assert!(
        failed("maintenance.MoveStaleNodesCopy"),
        "no inactive_nodes"
    );
}

/// Waits until every migration meshscope runs on `app` is done.
async fn all_done(app: &crate::helpers::TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (s, list) = app.get("/api/perf/async-migrations").await;
        assert_eq!(s, 200, "{list}");
        let ours: Vec<&serde_json::Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| meshscope::migrate::is_registered(m["name"].as_str().unwrap()))
            .collect();
        for m in &ours {
            assert_ne!(m["status"], "failed", "{m}");
        }
        if !ours.is_empty() && ours.iter().all(|m| m["status"] == "done") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn assert_runs(db: &Path, what: &str) {
    let (failures, rows) = run_all(db);
    let lines: Vec<String> = failures
        .iter()
        .map(|f| format!("{} ({}): {}", f.name, f.source, f.problem))
        .collect();
    assert!(
        lines.is_empty(),
        "CoreScope's statements on {what}:\n{}",
        lines.join("\n")
    );
    assert!(rows > 100, "{what}: the reads saw {rows} rows");
}

/// Packets of every kind meshscope decodes, as an observer sends them.
fn mixed_packets() -> Vec<String> {
    use crate::helpers::{advert_payload, packet};
    let mut out = Vec::new();
    for k in 1..=6u8 {
        out.push(packet(4, &[k], &advert_payload(k)));
    }
    for i in 0..20u8 {
        out.push(packet(2, &[i, i + 1], &[i; 20]));
        out.push(packet(5, &[i], &[0x11, i, i, 1, 2, 3, 4, 5, 6, 7, 8]));
    }
    // A TRACE with its route, an ACK, a PATH.
    out.push(packet(9, &[0x10], &[1, 0, 0, 0, 2, 0, 0, 0, 0, 0xaa, 0xbb]));
    out.push(packet(3, &[], &[1, 2, 3, 4]));
    out.push(packet(8, &[7], &[1, 2, 3, 4, 5]));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn corescopes_sql_runs_on_a_file_meshscope_created() {
    let app = crate::helpers::spawn_app().await;
    for (i, raw) in mixed_packets().iter().enumerate() {
        let observer = format!("{:02x}", 0xa0 + i % 4);
        let (s, body) = app
            .post_json(
                "/api/ingest",
                &serde_json::json!({"observer": observer, "raw": raw, "snr": 5.5, "iata": "sjc"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
    }
    all_done(&app).await;
    // The marks CoreScope's ingestor checks before its one-shot steps are
    // there: none of them would run (and recount nodes) on this file.
    let marks = app.count("SELECT COUNT(*) FROM _migrations");
    assert_eq!(marks, meshscope_marks_len());
    let null_json = app.count("SELECT COUNT(*) FROM transmissions WHERE decoded_json IS NULL");
    assert_eq!(null_json, 0);
    assert_runs(&app.db, "a file meshscope created");
}

fn meshscope_marks_len() -> i64 {
    // CoreScope's fresh-file marks (see `db::schema`), counted once here.
    21
}

#[tokio::test(flavor = "multi_thread")]
async fn corescopes_sql_runs_on_its_fixture_after_meshscope_upgraded_it() {
    let app = crate::helpers::spawn_with(crate::helpers::Options {
        prepare: Some(Box::new(|db| {
            std::fs::copy(super::fixture::fixture(), db).unwrap();
            let mut p = std::fs::metadata(db).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            p.set_readonly(false);
            std::fs::set_permissions(db, p).unwrap();
        })),
        ..Default::default()
    })
    .await;
    all_done(&app).await;
    assert_runs(&app.db, "CoreScope's fixture after meshscope upgraded it");
}

#[tokio::test(flavor = "multi_thread")]
async fn corescopes_sql_runs_on_its_current_schema_after_meshscope_upgraded_it() {
    let app = crate::helpers::spawn_with(crate::helpers::Options {
        prepare: Some(Box::new(|db| super::write_file(db, 400))),
        ..Default::default()
    })
    .await;
    all_done(&app).await;
    assert_runs(
        &app.db,
        "a file of CoreScope's current DDL after meshscope upgraded it",
    );
}

/// What CoreScope's ingestor does for one packet message, with its own
/// statements: the observer upsert, the rowid lookup, the transmission
/// insert (a new packet) and the observation insert. `existing` adds the
/// sighting to a packet already stored instead.
fn corescope_ingests(c: &Connection, i: i64, existing: Option<i64>) {
    let list = statements();
    let sql = |name: &str| {
        list.iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .sql
            .clone()
    };
    let now = meshscope::clock::now_secs();
    let text = {
        let ms = shared::timefmt::format_unix_secs(now);
        format!("{}Z", &ms[..19])
    };
    let observer = format!("{:064X}", 0xc0_5c00 + i % 3);
    let named = |stmt: &mut rusqlite::Statement<'_>, values: &[(&str, Sql)]| {
        for (name, v) in values {
            if let Ok(Some(at)) = stmt.parameter_index(name) {
                stmt.raw_bind_parameter(at, v).unwrap();
            }
        }
    };
    let nulls = [
        ":model",
        ":firmware",
        ":client_version",
        ":radio",
        ":battery_mv",
        ":uptime_secs",
        ":noise_floor",
        ":can_relay",
        ":direction",
        ":rssi",
        ":score",
        ":resolved_path",
        ":scope_name",
        ":channel_hash",
        ":pubkey",
    ];
    let mut values: Vec<(&str, Sql)> = nulls.iter().map(|n| (*n, Sql::Null)).collect();
    values.extend([
        (":observer_id", Sql::Text(observer.clone())),
        (":name", Sql::Text(format!("CoreScope observer {}", i % 3))),
        (":iata", Sql::Text("SJC".into())),
        (":seen_text", Sql::Text(text.clone())),
        (":now_text", Sql::Text(text.clone())),
        (":now_unix", Sql::Integer(now)),
    ]);
    let mut up = c.prepare(&sql("ingestor.UpsertObserver")).unwrap();
    named(&mut up, &values);
    up.raw_execute().unwrap();
    let rowid: i64 = c
        .query_row(&sql("ingestor.GetObserverRowid"), [&observer], |r| r.get(0))
        .unwrap();
    let tx_id = match existing {
        Some(id) => id,
        None => {
            let raw =
                crate::helpers::packet(2, &[0x42], format!("corescope stored {i}").as_bytes());
            let hash = crate::helpers::hash_of(&raw);
            let mut ins = c.prepare(&sql("ingestor.InsertTransmission")).unwrap();
            let mut v = values.clone();
            v.extend([
                (":new_raw_hex", Sql::Text(raw)),
                (":new_hash", Sql::Text(hash)),
                (":route_type", Sql::Integer(1)),
                (":payload_type", Sql::Integer(2)),
                (":payload_version", Sql::Integer(0)),
                (
                    ":decoded_json",
                    Sql::Text(
                        r#"{"type":"TXT_MSG","destHash":"63","srcHash":"6f","mac":"7265"}"#.into(),
                    ),
                ),
            ]);
            named(&mut ins, &v);
            ins.raw_execute().unwrap();
            c.last_insert_rowid()
        }
    };
    let mut obs = c.prepare(&sql("ingestor.InsertObservation")).unwrap();
    let mut v = values.clone();
    v.extend([
        (":tx_id", Sql::Integer(tx_id)),
        (":observer_rowid", Sql::Integer(rowid)),
        (":snr", Sql::Real(3.5)),
        (":path_json", Sql::Text(r#"["42"]"#.into())),
        (":raw_hex", Sql::Null),
    ]);
    named(&mut obs, &v);
    obs.raw_execute().unwrap();
}

/// The API's totals and each listed packet's `observationCount` against
/// the file; `Ok(false)` while the API says the counts are not ready.
async fn counts_match(client: &reqwest::Client, base: &str, db: &Path) -> Result<bool, String> {
    let stats: serde_json::Value = client
        .get(format!("{base}/api/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page: serde_json::Value = client
        .get(format!("{base}/api/packets?limit=500"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = Connection::open(db).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    if stats["countsReady"] != true {
        assert!(stats["totalObservations"].is_null(), "{stats}");
        return Ok(false);
    }
    let want = (
        count("SELECT COUNT(*) FROM transmissions"),
        count("SELECT COUNT(*) FROM observations"),
        count("SELECT COUNT(*) FROM observers"),
    );
    let got = (
        stats["totalTransmissions"].as_i64().unwrap(),
        stats["totalObservations"].as_i64().unwrap(),
        stats["totalObservers"].as_i64().unwrap(),
    );
    if got != want {
        return Err(format!("stats {got:?} against the file's {want:?}"));
    }
    for p in page["packets"].as_array().unwrap() {
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM observations WHERE transmission_id = ?1",
                [p["id"].as_i64().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        if p["observationCount"] != n {
            return Err(format!(
                "packet {} shows {} sightings, the file has {n}",
                p["id"], p["observationCount"]
            ));
        }
    }
    Ok(true)
}

/// Waits until the counts are ready and exact; fails at once when the API
/// calls a wrong number exact.
async fn until_exact(client: &reqwest::Client, base: &str, db: &Path, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match counts_match(client, base, db).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => panic!("{what}: {e}"),
        }
        assert!(std::time::Instant::now() < deadline, "{what}: never ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_corescope_adds_are_counted_after_a_restart_and_while_serving() {
    use crate::helpers::serve_child;
    let _heavy = crate::helpers::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("both.db");
    let client = reqwest::Client::new();

    // meshscope writes.
    let server = serve_child(&db, "1");
    for (i, raw) in mixed_packets().iter().enumerate() {
        let r = client
            .post(format!("{}/api/ingest", server.base))
            .json(&serde_json::json!({"observer": format!("{:02x}", i % 3), "raw": raw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    until_exact(&client, &server.base, &db, "meshscope's own rows").await;
    super::fixture::stop(server);

    // CoreScope's ingestor adds packets, and sightings to meshscope's.
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for i in 0..8 {
            corescope_ingests(&c, i, None);
        }
        corescope_ingests(&c, 100, Some(1));
        corescope_ingests(&c, 101, Some(2));
    }

    // meshscope starts again: the counts are recounted, never shown wrong.
    let server = serve_child(&db, "1");
    until_exact(
        &client,
        &server.base,
        &db,
        "after CoreScope wrote while meshscope was away",
    )
    .await;

    // And while meshscope serves.
    {
        let c = Connection::open(&db).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for i in 200..204 {
            corescope_ingests(&c, i, None);
        }
        corescope_ingests(&c, 300, Some(3));
    }
    // The stats cache lives a second; past it the counts are right or
    // said not ready, then right.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    until_exact(
        &client,
        &server.base,
        &db,
        "after CoreScope wrote while meshscope served",
    )
    .await;
    super::fixture::stop(server);
}
