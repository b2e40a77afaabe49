//! Online index builds (`migrate::index_build`) on a file over the boot
//! limit whose indexes were dropped: built while ingest flows, the result
//! equals `CREATE INDEX`'s (same entries, same schema text, integrity
//! check, the planner uses it), no query ever sees a half-built index, a
//! SIGKILL at random points three times still ends in a whole index, and a
//! cancel leaves no shadow behind.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshscope::db::schema::INDEXES;
use meshscope::migrate::index_build::SHADOW_PREFIX;
use meshscope::migrate::EngineConfig;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use crate::helpers::{packet, run_cli, serve_child, spawn_with, Options, TestApp, HEAVY};

const OBS_TS: &str = "idx_observations_observer_idx_timestamp";
const DEDUP: &str = "idx_observations_dedup";

fn spec(name: &str) -> &'static meshscope::db::schema::IndexSpec {
    INDEXES.iter().find(|s| s.name == name).unwrap()
}

/// 26,000 packets × 8 sightings: over the boot limit, so boot leaves the
/// dropped indexes to the online build.
fn seed_without(db: &std::path::Path, dropped: &[&str]) {
    run_cli(
        db,
        &["seed", "--transmissions", "26000", "--obs-per-tx", "8"],
    );
    let c = Connection::open(db).unwrap();
    for name in dropped {
        c.execute_batch(&format!("DROP INDEX {name}")).unwrap();
    }
}

fn has_index(c: &Connection, name: &str) -> bool {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

fn shadows(c: &Connection) -> i64 {
    c.query_row(
        "SELECT COUNT(*) FROM sqlite_schema WHERE substr(name, 1, length(?1)) = ?1",
        [SHADOW_PREFIX],
        |r| r.get(0),
    )
    .unwrap()
}

/// The index's entries in its own order.
fn entries(c: &Connection, name: &str, cols: &str) -> Vec<String> {
    c.prepare(&format!(
        "SELECT {cols}, id FROM observations INDEXED BY {name} WHERE 1 ORDER BY {cols}, id"
    ))
    .unwrap()
    .query_map([], |r| {
        let mut s = String::new();
        for i in 0..r.as_ref().column_count() {
            s.push_str(&format!("{:?}|", r.get_ref(i).unwrap()));
        }
        Ok(s)
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn plan(c: &Connection, sql: &str) -> String {
    c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .join("; ")
}

fn integrity(c: &Connection) -> String {
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Posts new packets and repeated sightings of them until `stop`; counts
/// the acknowledged ones.
fn ingest(
    base: String,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let raw = packet(2, &[n as u8], format!("index-build-{n}").as_bytes());
            let body = json!([
                {"observer": "ab01", "raw": raw, "snr": 5.0},
                {"observer": format!("ab{:02x}", n % 7 + 2), "raw": raw, "snr": 3.0},
            ]);
            if let Ok(r) = client
                .post(format!("{base}/api/ingest"))
                .json(&body)
                .send()
                .await
            {
                if r.status().is_success() {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

async fn wait_done(app: &TestApp, job: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let m = app.migration(job).await;
        if m["status"] == "done" {
            return m;
        }
        assert_ne!(m["status"], "failed", "{m}");
        assert!(Instant::now() < deadline, "{job} not done: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn online_builds_equal_create_index_while_ingest_flows_and_never_show_half_built() {
    let _heavy = HEAVY.lock().await;
    let app = spawn_with(Options {
        // `idx_observations_observer_idx` begins `OBS_TS`'s name: each
        // build must keep to its own shadow.
        prepare: Some(Box::new(|db| {
            seed_without(db, &["idx_observations_observer_idx", OBS_TS, DEDUP]);
        })),
        ..Default::default()
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = ingest(app.base.clone(), stop.clone(), acked.clone());

    // A reader that looks all along: an index on `observations` is there
    // only in a snapshot where its build is recorded done, and no query
    // plan uses a shadow's index.
    let db = app.db.clone();
    let looking = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut looks = 0u64;
        let mut seen_building = false;
        while !looking.load(Ordering::Relaxed) {
            let tx = c.transaction().unwrap();
            for (name, job) in [(OBS_TS, spec(OBS_TS).job), (DEDUP, spec(DEDUP).job)] {
                let present = has_index(&tx, name);
                let status: Option<String> = tx
                    .query_row(
                        "SELECT status FROM _async_migrations WHERE name = ?1",
                        [job],
                        |r| r.get(0),
                    )
                    .ok();
                if status.as_deref() == Some("running") {
                    seen_building = true;
                }
                assert!(
                    !present || status.as_deref() == Some("done"),
                    "{name} visible while its build is {status:?}"
                );
            }
            let p = plan(
                &tx,
                "SELECT id FROM observations WHERE observer_idx = 1 ORDER BY timestamp DESC LIMIT 5",
            );
            assert!(!p.contains(SHADOW_PREFIX), "{p}");
            drop(tx);
            looks += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        (looks, seen_building)
    });

    wait_done(
        &app,
        spec("idx_observations_observer_idx").job,
        Duration::from_secs(300),
    )
    .await;
    let m = wait_done(&app, spec(OBS_TS).job, Duration::from_secs(300)).await;
    assert!(m["rowsTotal"].as_i64().unwrap() > 200_000, "{m}");
    wait_done(&app, spec(DEDUP).job, Duration::from_secs(300)).await;
    // Ingest goes on for a while after the swap: the index is maintained.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let (looks, seen_building) = reader.join().unwrap();
    assert!(
        seen_building && looks > 10,
        "looks {looks}, saw a build {seen_building}"
    );
    assert!(acked.load(Ordering::Relaxed) > 20);

    let c = app.sql();
    assert_eq!(integrity(&c), "ok");
    let p = plan(
        &c,
        "SELECT id FROM observations WHERE observer_idx = 1 ORDER BY timestamp DESC LIMIT 5",
    );
    assert!(p.contains(OBS_TS), "{p}");
    // What CREATE INDEX builds on the same rows.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    c.execute("VACUUM INTO ?1", [copy.display().to_string()])
        .unwrap();
    let plain = Connection::open(&copy).unwrap();
    for name in [OBS_TS, DEDUP] {
        plain
            .execute_batch(&format!("DROP INDEX {name}; {}", spec(name).create_sql))
            .unwrap();
        let sql = |c: &Connection| -> String {
            c.query_row(
                "SELECT sql FROM sqlite_schema WHERE name = ?1 AND tbl_name = 'observations'",
                [name],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(sql(&c), sql(&plain), "{name}");
    }
    let online = entries(&c, OBS_TS, "observer_idx, timestamp");
    assert_eq!(
        online.len() as i64,
        app.count("SELECT COUNT(*) FROM observations")
    );
    assert_eq!(online, entries(&plain, OBS_TS, "observer_idx, timestamp"));
    let dedup_cols = "transmission_id, observer_idx, COALESCE(path_json, '')";
    assert_eq!(
        entries(&c, DEDUP, dedup_cols),
        entries(&plain, DEDUP, dedup_cols)
    );
    // The unique index refuses a repeated sighting.
    let dup = c.execute(
        "INSERT INTO observations (transmission_id, observer_idx, path_json, timestamp)
         SELECT transmission_id, observer_idx, path_json, timestamp FROM observations LIMIT 1",
        [],
    );
    assert!(
        dup.as_ref()
            .is_err_and(|e| e.to_string().contains("UNIQUE")),
        "{dup:?}"
    );

    // The shadows are cleaned up in chunks, then dropped.
    let deadline = Instant::now() + Duration::from_secs(120);
    while shadows(&c) > 0 {
        assert!(Instant::now() < deadline, "shadow tables left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(integrity(&c), "ok");
}

/// A pseudo-random wait between `lo` and `hi` milliseconds.
fn random_ms(lo: u64, hi: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(lo + nanos % (hi - lo))
}

fn status_of(db: &std::path::Path, job: &str) -> (String, i64) {
    let c = Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row(
        "SELECT status, rows_processed FROM _async_migrations WHERE name = ?1",
        [job],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or_else(|_| ("absent".into(), 0))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_three_times_then_the_index_is_whole() {
    let _heavy = HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    seed_without(&db, &[OBS_TS]);
    let job = spec(OBS_TS).job;
    let mut kills = 0;
    let mut last = 0;
    while kills < 3 {
        let mut child = serve_child(&db, "0.2");
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let writer = ingest(child.base.clone(), stop.clone(), acked.clone());
        tokio::time::sleep(random_ms(1_000, 3_000)).await;
        child.child.kill().unwrap();
        child.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        let (status, processed) = status_of(&db, job);
        assert_ne!(
            status, "done",
            "the build ended before the third kill; slow it down"
        );
        assert_ne!(status, "failed");
        assert!(
            processed >= last,
            "progress went back: {last} → {processed}"
        );
        last = processed;
        kills += 1;
        let c = Connection::open(&db).unwrap();
        assert!(
            !has_index(&c, OBS_TS),
            "half-built index visible after a kill"
        );
    }
    assert!(last > 0, "no chunk committed between the kills");
    // Now run to the end, with ingest.
    let mut child = serve_child(&db, "1");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = ingest(child.base.clone(), stop.clone(), acked.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (status, _) = status_of(&db, job);
        if status == "done" {
            break;
        }
        assert_ne!(status, "failed");
        assert!(Instant::now() < deadline, "never done: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let c = Connection::open(&db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while shadows(&c) > 0 {
        assert!(Instant::now() < deadline, "shadow tables left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    child.child.kill().unwrap();
    child.child.wait().unwrap();
    let c = Connection::open(&db).unwrap();
    assert_eq!(integrity(&c), "ok");
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM observations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        entries(&c, OBS_TS, "observer_idx, timestamp").len() as i64,
        n
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_mirroring_at_once_and_leaves_no_shadow() {
    let _heavy = HEAVY.lock().await;
    let key = "operator-key-1";
    let app = spawn_with(Options {
        prepare: Some(Box::new(|db| seed_without(db, &[OBS_TS]))),
        engine: Some(EngineConfig {
            duty: 0.05,
            min_batch: 200,
            max_batch: 200,
            ..EngineConfig::default()
        }),
        api_key: Some(key.into()),
        ..Default::default()
    })
    .await;
    let job = spec(OBS_TS).job;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = app.migration(job).await;
        if m["status"] == "running" && m["rowsProcessed"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shadows(&app.sql()), 5, "table, index, three triggers");
    let r = app
        .client
        .post(app.url(&format!("/api/migrations/{job}/cancel")))
        .header("Authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let c = app.sql();
    let triggers: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        triggers, 0,
        "the build still mirrors writes after its cancel"
    );
    let r = app
        .client
        .post(app.url("/api/ingest"))
        .header("Authorization", format!("Bearer {key}"))
        .json(&json!({"observer": "ab01", "raw": packet(2, &[], b"after-cancel")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "a write after the cancel");
    let deadline = Instant::now() + Duration::from_secs(120);
    while shadows(&c) > 0 {
        assert!(
            Instant::now() < deadline,
            "shadow left behind after a cancel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!has_index(&c, OBS_TS));
    assert_eq!(app.migration(job).await["status"], "cancelled");
    assert_eq!(integrity(&c), "ok");
}
