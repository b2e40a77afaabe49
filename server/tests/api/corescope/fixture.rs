//! CoreScope's own end-to-end test database (`../shared/corescope/
//! e2e-fixture.db`: 499 real packets from the Bay Area network, 31
//! observers, 200 nodes whose counts cover a longer history than the file
//! keeps, a repeated sighting, and hashes from older CoreScope rules),
//! served by the real binary on a copy. The oracle is the file itself:
//! what CoreScope wrote before meshscope ran is compared value by value
//! with what is there after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::{json, Value};

use crate::helpers::{serve_child, ChildServer};

/// The fixture, as the project finds it (CI has `../shared/`).
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corescope/e2e-fixture.db")
}

/// A writable copy of the fixture in `dir`.
pub fn fixture_copy(dir: &Path) -> PathBuf {
    let to = dir.join("corescope.db");
    std::fs::copy(fixture(), &to).expect("copy CoreScope's fixture (../shared/corescope/)");
    // The shared original is read-only; the copy must not be.
    let mut perms = std::fs::metadata(&to).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&to, perms).unwrap();
    to
}

/// Every row of `table` by its key, each column by name.
type Rows = BTreeMap<String, BTreeMap<String, Sql>>;

fn rows(c: &Connection, table: &str, key: &str) -> Rows {
    let cols: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut stmt = c.prepare(&format!("SELECT {key}, * FROM {table}")).unwrap();
    let out = stmt
        .query_map([], |r| {
            let k: Sql = r.get(0)?;
            let k = match k {
                Sql::Integer(i) => format!("{i:012}"),
                Sql::Text(t) => t,
                other => format!("{other:?}"),
            };
            let mut row = BTreeMap::new();
            for (i, col) in cols.iter().enumerate() {
                row.insert(col.clone(), r.get::<_, Sql>(i + 1)?);
            }
            Ok((k, row))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    out
}

/// The tables CoreScope wrote, with their keys.
const TABLES: &[(&str, &str)] = &[
    ("transmissions", "id"),
    ("observations", "id"),
    ("observers", "id"),
    ("nodes", "public_key"),
    ("neighbor_edges", "node_a || '|' || node_b"),
];

/// One value CoreScope wrote that is not there any more as it was.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    table: &'static str,
    key: String,
    column: String,
    why: &'static str,
}

/// Compares every value of `before` (CoreScope's columns only: meshscope
/// adds columns) with `after`, and says why each difference is allowed;
/// panics on one that is not.
fn changes(before: &Connection, after: &Connection) -> Vec<Change> {
    let mut out = Vec::new();
    for (table, key) in TABLES {
        let old = rows(before, table, key);
        let new = rows(after, table, key);
        for (k, row) in &old {
            let Some(now) = new.get(k) else {
                // A repeated sighting merged into the first of its group:
                // archived whole, value for value.
                assert_eq!(*table, "observations", "{table} {k} is gone");
                let archived: String = after
                    .query_row(
                        "SELECT row_json FROM _meshscope_merged WHERE tbl = 'observations' AND row_id = ?1",
                        [row["id"].clone()],
                        |r| r.get(0),
                    )
                    .unwrap_or_else(|e| panic!("observation {k} removed without an archive: {e}"));
                let archived: Value = serde_json::from_str(&archived).unwrap();
                for (col, v) in row {
                    let want = match v {
                        Sql::Null => Value::Null,
                        Sql::Integer(i) => json!(i),
                        Sql::Real(f) => json!(f),
                        Sql::Text(t) => json!(t),
                        Sql::Blob(b) => json!(hex::encode_upper(b)),
                    };
                    assert_eq!(archived[col], want, "archived {col} of observation {k}");
                }
                out.push(Change {
                    table,
                    key: k.clone(),
                    column: "*".into(),
                    why: "repeated sighting merged (archived)",
                });
                continue;
            };
            for (col, v) in row {
                let after_v = &now[col];
                if after_v == v {
                    continue;
                }
                let why = match (*table, col.as_str()) {
                    ("transmissions", "hash") => {
                        let Sql::Text(raw) = &row["raw_hex"] else {
                            panic!("raw_hex")
                        };
                        assert_eq!(
                            after_v,
                            &Sql::Text(meshscope::decoder::content_hash(raw)),
                            "transmission {k} re-hashed to CoreScope's current rule"
                        );
                        "re-hashed"
                    }
                    _ => panic!("{table} {k}: {col} changed from {v:?} to {after_v:?}"),
                };
                out.push(Change {
                    table,
                    key: k.clone(),
                    column: col.clone(),
                    why,
                });
            }
        }
        assert!(
            new.len()
                >= old.len()
                    - out
                        .iter()
                        .filter(|c| c.table == *table && c.column == "*")
                        .count(),
            "{table}: rows lost"
        );
    }
    out
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = client.get(format!("{base}{path}")).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Waits until every migration meshscope runs is `done`; panics on a
/// failure or after `secs`.
pub async fn wait_all_done(client: &reqwest::Client, base: &str, secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (s, list) = get(client, base, "/api/perf/async-migrations").await;
        assert_eq!(s, 200, "{list}");
        let list = list.as_array().unwrap().clone();
        for m in &list {
            assert_ne!(m["status"], "failed", "{m}");
        }
        let ours: Vec<&Value> = list
            .iter()
            .filter(|m| meshscope::migrate::is_registered(m["name"].as_str().unwrap()))
            .collect();
        if !ours.is_empty() && ours.iter().all(|m| m["status"] == "done") {
            return list;
        }
        assert!(Instant::now() < deadline, "migrations not done: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn stop(mut s: ChildServer) {
    #[cfg(unix)]
    {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &s.child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if s.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = s.child.kill();
    let _ = s.child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn corescopes_own_database_starts_migrates_and_keeps_what_corescope_wrote() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_copy(dir.path());
    let before =
        Connection::open_with_flags(fixture(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let client = reqwest::Client::new();

    // Answers within a second of starting.
    let started = Instant::now();
    let server = serve_child(&db, "1");
    let (s, h) = get(&client, &server.base, "/api/healthz").await;
    let up = started.elapsed();
    assert_eq!(s, 200, "{h}");
    assert!(up < Duration::from_secs(1), "healthz after {up:?}");

    let list = wait_all_done(&client, &server.base, 60).await;
    for m in &list {
        assert!(m["error"].is_null(), "{m}");
    }

    // What changed of CoreScope's values, and why.
    let after = Connection::open(&db).unwrap();
    let changed = changes(&before, &after);
    let mut by_why: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &changed {
        *by_why.entry(c.why).or_default() += 1;
    }
    eprintln!("changes to CoreScope's values: {by_why:?}");
    let stale: usize = before
        .prepare("SELECT hash, raw_hex FROM transmissions")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .filter(|(h, raw)| *h != meshscope::decoder::content_hash(raw))
        .count();
    assert_eq!(stale, 145, "the fixture's stale hashes");
    assert_eq!(by_why.get("re-hashed"), Some(&stale));
    assert_eq!(
        changed
            .iter()
            .filter(|c| c.why.starts_with("repeated"))
            .map(|c| c.key.as_str())
            .collect::<Vec<_>>(),
        ["000000000294"],
        "observation 294 repeats 85"
    );
    assert_eq!(changed.len(), stale + 1, "{changed:?}");
    // Not one node column CoreScope computed changed (the comparison
    // above covers them all); their counts are CoreScope's.
    let adverts: i64 = after
        .query_row("SELECT SUM(advert_count) FROM nodes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(adverts, 8_396);
    let ok: String = after
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // The unique sightings index both programs' ingest needs is there now.
    let dedup: i64 = after
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_observations_dedup'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dedup, 1);

    // Every listed packet opens by the hash the list gives.
    let (s, page) = get(&client, &server.base, "/api/packets?limit=500").await;
    assert_eq!(s, 200, "{page}");
    let listed: Vec<String> = page["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed.len(), 499);
    for h in &listed {
        let (s, detail) = get(&client, &server.base, &format!("/api/packets/{h}")).await;
        assert_eq!(s, 200, "{h}: {detail}");
        assert_eq!(detail["packet"]["hash"], h.as_str());
    }
    // An old hash still finds its packet (a link from CoreScope's UI).
    let (old_hash, raw): (String, String) = before
        .query_row(
            "SELECT hash, raw_hex FROM transmissions WHERE hash GLOB '*[A-F]*' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (s, detail) = get(&client, &server.base, &format!("/api/packets/{old_hash}")).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(
        detail["packet"]["hash"],
        meshscope::decoder::content_hash(&raw).as_str()
    );
    // Counts are exact.
    let (_, stats) = get(&client, &server.base, "/api/stats").await;
    assert_eq!(stats["countsReady"], true, "{stats}");
    assert_eq!(stats["totalTransmissions"], 499, "{stats}");
    assert_eq!(stats["totalObservations"], 499, "{stats}");

    // A packet of each hash kind, heard again, lands on its row.
    let kind_of = |hash: &str, raw: &str| {
        if hash == meshscope::decoder::content_hash(raw) {
            "current"
        } else if raw.to_ascii_uppercase().starts_with(hash)
            && hash.bytes().any(|b| b.is_ascii_uppercase())
        {
            "uppercase raw prefix"
        } else if !raw.starts_with(hash) && !raw.to_ascii_lowercase().starts_with(hash) {
            "older formula"
        } else {
            "lowercase raw prefix"
        }
    };
    let mut picked: BTreeMap<&str, (i64, String)> = BTreeMap::new();
    let all: Vec<(i64, String, String, i64)> = before
        .prepare("SELECT id, hash, raw_hex, payload_type FROM transmissions ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, hash, raw, ptype) in &all {
        // A packet meshscope's decoder takes (and not an advert, whose node
        // would move with a new sighting).
        let decodes = meshscope::decoder::parse_hex(raw)
            .ok()
            .is_some_and(|b| meshscope::decoder::decode(&b).is_ok());
        if decodes && *ptype != 4 {
            picked
                .entry(kind_of(hash, raw))
                .or_insert((*id, raw.clone()));
        }
    }
    for kind in ["current", "uppercase raw prefix", "older formula"] {
        let (id, raw) = picked.get(kind).unwrap_or_else(|| panic!("a {kind} row"));
        let before_n: i64 = after
            .query_row(
                "SELECT COUNT(*) FROM observations WHERE transmission_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        let r = client
            .post(format!("{}/api/ingest", server.base))
            .json(&json!({"observer": "c0ffee", "raw": raw}))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(s, 200, "{kind}: {body}");
        assert_eq!(
            body["newTransmissions"], 0,
            "{kind} (transmission {id}): {body}"
        );
        let now_n: i64 = after
            .query_row(
                "SELECT COUNT(*) FROM observations WHERE transmission_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            now_n,
            before_n + 1,
            "{kind}: the sighting joined transmission {id}"
        );
    }
    let total: i64 = after
        .query_row("SELECT COUNT(*) FROM transmissions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, 499);
    stop(server);
}

/// A start that fails changes nothing in the file, its journal mode
/// included (CoreScope's fixture is in rollback-journal mode).
#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_fails_leaves_corescopes_file_as_it_was() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_copy(dir.path());
    let bytes = std::fs::read(&db).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshscope"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(&db)
        .env("MESHSCOPE_TEST_FAULT", "schema-last-step")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema upgrade"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the file is unchanged");
    let mode: String = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
}

/// meshscope writes `decoded_json` as CoreScope's current ingestor does;
/// the fixture's column, written by CoreScope itself (an older version for
/// some types), is the reference. Every type CoreScope still writes the
/// same way matches byte for byte; adverts match but for the three keys
/// the fixture's older writer did not have; group texts match where the
/// same key opens them (meshscope holds the public channel's key, the
/// fixture's writer also had hashtag channels').
#[test]
fn decoded_json_is_what_corescope_stored() {
    use meshscope::decoder::{self, corescope};
    let c =
        Connection::open_with_flags(fixture(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let rows: Vec<(i64, String, i64, String, Option<String>)> = c
        .prepare("SELECT id, raw_hex, payload_type, decoded_json, channel_hash FROM transmissions")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut same: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    let (mut public_opened, mut others_closed) = (0, 0);
    for (id, raw, ptype, stored, channel) in &rows {
        let p = decoder::parse_hex(raw).unwrap();
        let Ok(packet) = decoder::decode(&p) else {
            continue; // tx 465: a 74-byte path CoreScope now refuses too
        };
        let ours = corescope::stored(&packet, corescope::default_keys());
        let entry = same.entry(*ptype).or_default();
        entry.1 += 1;
        let theirs: Value = serde_json::from_str(stored).unwrap();
        let mine: Value = serde_json::from_str(&ours.decoded_json).unwrap();
        let equal = match ptype {
            0 | 1 | 2 | 7 | 8 => {
                assert_eq!(&ours.decoded_json, stored, "transmission {id}");
                true
            }
            4 => {
                // The older writer had no signatureValid, hasFeat1, hasFeat2.
                assert_eq!(mine["signatureValid"], true, "transmission {id}: signed");
                let mut m = mine.clone();
                m.as_object_mut().unwrap().remove("signatureValid");
                if let Some(f) = m["flags"].as_object_mut() {
                    f.remove("hasFeat1");
                    f.remove("hasFeat2");
                }
                assert_eq!(m, theirs, "transmission {id}");
                true
            }
            5 => {
                if theirs["type"] == "CHAN"
                    && theirs["channel"]
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case("public"))
                {
                    // Opened by both with the public key ("public" is the
                    // older writer's spelling of the name).
                    assert_eq!(mine["text"], theirs["text"], "transmission {id}");
                    assert_eq!(mine["sender"], theirs["sender"], "transmission {id}");
                    assert_eq!(mine["sender_timestamp"], theirs["sender_timestamp"]);
                    assert_eq!(ours.channel_hash.as_deref(), Some("Public"));
                    public_opened += 1;
                    false
                } else if theirs["type"] == "CHAN" {
                    // A hashtag channel meshscope has no key for: shown
                    // as CoreScope shows a channel it cannot open.
                    assert_eq!(mine["decryptionStatus"], "decryption_failed", "{id}");
                    assert_eq!(mine["channelHashHex"], theirs["channelHashHex"], "{id}");
                    others_closed += 1;
                    false
                } else {
                    assert_eq!(&ours.decoded_json, stored, "transmission {id}");
                    assert_eq!(ours.channel_hash, *channel, "transmission {id}");
                    true
                }
            }
            _ => false,
        };
        if equal {
            entry.0 += 1;
        }
    }
    eprintln!("decoded_json equal to CoreScope's, by type (equal, rows): {same:?}; public texts opened: {public_opened}; hashtag texts without a key: {others_closed}");
    assert_eq!(public_opened, 13);
    assert_eq!(others_closed, 68);
    assert_eq!(same[&5], (84, 165));
    assert_eq!(same[&4], (102, 102));
}

/// Before any migration runs, the fixture's uppercase hashes (CoreScope's
/// old raw-prefix fallback; all its TRACE packets among them) open by their
/// page and by a `?hash=` prefix, in either case.
#[tokio::test(flavor = "multi_thread")]
async fn uppercase_hashes_open_before_they_are_rehashed() {
    let app = crate::helpers::spawn_with(crate::helpers::Options {
        prepare: Some(Box::new(|db| {
            let dir = db.parent().unwrap();
            std::fs::rename(fixture_copy(dir), db).unwrap();
        })),
        hold_migrations: true,
        ..Default::default()
    })
    .await;
    let upper: Vec<(String, i64)> = crate::helpers::strings(
        &app.sql(),
        "SELECT hash || ' ' || payload_type FROM transmissions WHERE hash GLOB '*[A-F]*'",
    )
    .iter()
    .map(|s| {
        let (h, t) = s.split_once(' ').unwrap();
        (h.to_string(), t.parse().unwrap())
    })
    .collect();
    assert_eq!(upper.len(), 24);
    assert_eq!(
        upper.iter().filter(|(_, t)| *t == 9).count(),
        8,
        "every TRACE"
    );
    for (hash, _) in &upper {
        for asked in [hash.clone(), hash.to_lowercase()] {
            let (s, d) = app.get(&format!("/api/packets/{asked}")).await;
            assert_eq!(s, 200, "{asked}: {d}");
            assert_eq!(d["packet"]["hash"], hash.as_str());
        }
        let (s, page) = app
            .get(&format!("/api/packets?hash={}", hash[..6].to_lowercase()))
            .await;
        assert_eq!(s, 200, "{page}");
        let found: Vec<&str> = page["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["hash"].as_str().unwrap())
            .collect();
        assert!(found.contains(&hash.as_str()), "{hash}: {found:?}");
    }
}

/// A packet stored twice, under an older rule's hash (CoreScope) and the
/// current one (heard again before the re-hash ran), becomes one row; a
/// repeated sighting with other figures is merged as CoreScope merges it.
/// Nothing is lost: both removed rows are in the archive, the old hash
/// still finds the packet, and the counts equal the rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_packet_stored_twice_and_a_repeated_sighting_are_merged_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_copy(dir.path());
    let (stale_id, stale_hash, raw, current, sightings): (i64, String, String, String, i64) = {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        // An older formula's digest (not a raw prefix) on a decodable packet.
        let rows: Vec<(i64, String, String)> = c
            .prepare(
                "SELECT id, hash, raw_hex FROM transmissions WHERE payload_type != 4 ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let (id, hash, raw) = rows
            .into_iter()
            .find(|(_, h, raw)| {
                *h != meshscope::decoder::content_hash(raw)
                    && !raw
                        .to_ascii_lowercase()
                        .starts_with(&h.to_ascii_lowercase())
            })
            .unwrap();
        let current = meshscope::decoder::content_hash(&raw);
        // The same packet again under its current hash, with a sighting of
        // its own, as a re-hearing stored it.
        c.execute(
            "INSERT INTO transmissions (raw_hex, hash, first_seen, route_type, payload_type,
                payload_version, decoded_json)
             SELECT raw_hex, ?2, '2026-05-18T00:00:00Z', route_type, payload_type, payload_version,
                decoded_json FROM transmissions WHERE id = ?1",
            rusqlite::params![id, current],
        )
        .unwrap();
        let again = c.last_insert_rowid();
        c.execute(
            "INSERT INTO observations (transmission_id, observer_idx, path_json, timestamp, snr)
             VALUES (?1, 7, '[]', 1779100000, 9.25)",
            [again],
        )
        .unwrap();
        // A repeated sighting of another packet, with a figure the first lacks.
        c.execute_batch(
            "INSERT INTO observations (transmission_id, observer_idx, direction, snr, rssi, score,
                path_json, timestamp)
             SELECT transmission_id, observer_idx, direction, 6.5, -88, score, path_json, timestamp + 5
             FROM observations WHERE id = 10",
        )
        .unwrap();
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM observations WHERE transmission_id IN (?1, ?2)",
                [id, again],
                |r| r.get(0),
            )
            .unwrap();
        (id, hash, raw, current, n)
    };
    let server = serve_child(&db, "1");
    let client = reqwest::Client::new();
    wait_all_done(&client, &server.base, 60).await;
    let c = Connection::open(&db).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    // One row for the packet: the one that held the current hash.
    let ids: Vec<i64> = c
        .prepare("SELECT id FROM transmissions WHERE raw_hex = ?1")
        .unwrap()
        .query_map([&raw], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids.len(), 1);
    let survivor = ids[0];
    assert_ne!(survivor, stale_id);
    let (hash, first_seen): (String, String) = c
        .query_row(
            "SELECT hash, first_seen FROM transmissions WHERE id = ?1",
            [survivor],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(hash, current);
    assert!(
        first_seen.starts_with("2026-05-17"),
        "the earlier first_seen: {first_seen}"
    );
    let moved: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM observations WHERE transmission_id = ?1",
            [survivor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(moved, sightings, "every sighting moved");
    // The stale row and the repeated sighting are archived whole.
    let archived: Vec<String> = crate::helpers::strings(
        &c,
        "SELECT tbl || ':' || reason FROM _meshscope_merged ORDER BY id",
    );
    assert!(
        archived.contains(&"transmissions:same packet under an older hash".to_string()),
        "{archived:?}"
    );
    assert_eq!(
        archived
            .iter()
            .filter(|a| a.starts_with("observations:repeated"))
            .count(),
        2,
        "the fixture's pair and the planted one: {archived:?}"
    );
    let (snr, rssi): (f64, f64) = c
        .query_row(
            "SELECT snr, rssi FROM observations WHERE id = 10",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (snr, rssi),
        (6.5, -88.0),
        "the first row takes the newer figures"
    );
    // The old hash still opens the packet.
    let (s, d) = get(&client, &server.base, &format!("/api/packets/{stale_hash}")).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["packet"]["hash"], current.as_str());
    assert_eq!(
        d["observations"].as_array().unwrap().len() as i64,
        sightings
    );
    // Counts equal the rows.
    let (_, stats) = get(&client, &server.base, "/api/stats").await;
    assert_eq!(
        stats["totalTransmissions"],
        count("SELECT COUNT(*) FROM transmissions"),
        "{stats}"
    );
    assert_eq!(
        stats["totalObservations"],
        count("SELECT COUNT(*) FROM observations"),
        "{stats}"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM transmissions t WHERE observation_count !=
               (SELECT COUNT(*) FROM observations o WHERE o.transmission_id = t.id)"
        ),
        0
    );
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    stop(server);
}
