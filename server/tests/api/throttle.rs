//! Engine v2 on real files: the health throttle (each signal forced for
//! real, then cleared), chunks stopped past their budget while ingest waits
//! (rolled back, result exact), the pre-flight estimate, and
//! `meshscope migrate --dry-run`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshscope::health::HealthConfig;
use meshscope::migrate::{
    from_pubkey::FromPubkeyBackfill, last_seen, EngineConfig, Migration, MigrationError,
};
use rusqlite::Connection;
use serde_json::{json, Value};

use crate::engine::{assert_last_seen_correct, legacy_file};
use crate::faults::Tmpfs;
use crate::helpers::{packet, spawn_with, Options, TestApp, HEAVY};

const LS: &str = last_seen::NAME;

/// Every signal off: each test turns on the one it forces.
fn quiet() -> HealthConfig {
    HealthConfig {
        wal_max_bytes: 0,
        checkpoint_stuck: Duration::ZERO,
        ingest_wait_p99: Duration::ZERO,
        min_free_bytes: 0,
    }
}

/// The last_seen backfill with extra SQLite work per id (a counting CTE:
/// VM steps, so a progress handler can stop it), `heavy_ops` per id above
/// id `heavy_from`, plus a fixed `hold` per chunk (a sleep: the same on any
/// machine): chunks that cost what the test needs. Every call is logged.
struct Weighted {
    ops: i64,
    heavy_from: i64,
    heavy_ops: i64,
    hold: Duration,
    log: Arc<Mutex<Vec<Ran>>>,
}

/// One chunk call: the SQLite work it asked for, how long it held the
/// writer, whether it was stopped.
#[derive(Debug, Clone, Copy)]
struct Ran {
    ops: i64,
    took: Duration,
    stopped: bool,
}

/// Runs `ops` steps of the counting CTE on `conn`.
fn count_to(conn: &Connection, ops: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1)
         SELECT COUNT(*) FROM c",
        [ops],
        |r| r.get::<_, i64>(0),
    )
}

impl Migration for Weighted {
    fn name(&self) -> &'static str {
        LS
    }

    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        last_seen::TxLastSeenBackfill.count(conn, max_id)
    }

    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        upkeep: meshscope::migrate::Upkeep,
    ) -> Result<i64, MigrationError> {
        let light = (upto.min(self.heavy_from) - after).max(0);
        let heavy = (upto - after - light).max(0);
        let ops = light * self.ops + heavy * self.heavy_ops;
        let start = Instant::now();
        std::thread::sleep(self.hold);
        let counted = count_to(conn, ops);
        self.log.lock().unwrap().push(Ran {
            ops,
            took: start.elapsed(),
            stopped: counted.is_err(),
        });
        counted?;
        last_seen::TxLastSeenBackfill.chunk(conn, after, upto, upkeep)
    }
}

/// Fixed 100-id chunks that hold the writer 12 ms each (a sleep, so on any
/// machine), at 30% of the writer.
const STEADY_HOLD: Duration = Duration::from_millis(12);

fn steady() -> Arc<dyn Migration> {
    Arc::new(Weighted {
        ops: 0,
        heavy_from: i64::MAX,
        heavy_ops: 0,
        hold: STEADY_HOLD,
        log: Arc::default(),
    })
}

fn engine(health: HealthConfig) -> EngineConfig {
    EngineConfig {
        duty: 0.3,
        min_batch: 100,
        max_batch: 100,
        health,
        ..EngineConfig::default()
    }
}

/// A server on a 20,000-packet legacy file at `db` (default: a temp file).
async fn app_on(
    db: Option<PathBuf>,
    engine: EngineConfig,
    migrations: Vec<Arc<dyn Migration>>,
) -> TestApp {
    spawn_with(Options {
        prepare: Some(Box::new(move |p| {
            let dir = tempfile::tempdir().unwrap();
            let made = legacy_file(dir.path(), 20_000, 2);
            std::fs::copy(made, p).unwrap();
        })),
        db_path: db,
        migrations: Some(migrations),
        engine: Some(engine),
        ..Default::default()
    })
    .await
}

/// The migration as `/api/perf/async-migrations` shows it.
async fn info(app: &TestApp, name: &str) -> Value {
    let (s, list) = app.get("/api/perf/async-migrations").await;
    assert_eq!(s, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

async fn wait_info(app: &TestApp, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let m = info(app, LS).await;
        if pred(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn started(app: &TestApp) {
    wait_info(app, "the backfill running", 60, |m| {
        m["status"] == "running" && m["rowsProcessed"].as_i64().unwrap() > 0
    })
    .await;
}

/// Throttled with a reason containing `why`, and visible everywhere the
/// operator looks: healthz, the stored row, `/metrics`. A throttle that
/// clears and comes back while the places are read (ingest's signal does,
/// as its waits leave the window) is looked at again, a few times.
async fn throttled(app: &TestApp, why: &str, secs: u64) -> Value {
    let mut seen = Vec::new();
    for _ in 0..5 {
        let m = wait_info(app, "throttled", secs, |m| m["status"] == "throttled").await;
        let reason = m["throttleReason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{m}");
        assert!(m["throttledUntil"].is_string(), "{m}");
        let (_, h) = app.get("/api/healthz").await;
        assert_eq!(h["async_migrations_running"], true, "{h}");
        let row: (String, Option<String>) = app
            .sql()
            .query_row(
                "SELECT status, throttle_reason FROM _async_migrations WHERE name = ?1",
                [LS],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(row.0, "running", "stored in CoreScope's vocabulary");
        let metrics = app.get_text("/metrics").await;
        let line =
            format!("meshscope_migration_status{{migration=\"{LS}\",status=\"throttled\"}} 1");
        let still = info(app, LS).await["status"] == "throttled";
        if row.1.as_deref().is_some_and(|r| r.contains(why)) && metrics.contains(&line) {
            return m;
        }
        seen.push(format!(
            "row {row:?}, metric shown {}, still throttled {still}",
            metrics.contains(&line)
        ));
        assert!(!still, "throttled throughout, yet not everywhere: {seen:?}");
    }
    panic!("never throttled everywhere at once: {seen:?}");
}

/// While throttled, no chunk runs.
async fn holds_still(app: &TestApp, for_: Duration) {
    let before = info(app, LS).await;
    tokio::time::sleep(for_).await;
    let after = info(app, LS).await;
    assert_eq!(after["status"], "throttled", "{after}");
    assert_eq!(after["rowsProcessed"], before["rowsProcessed"], "{after}");
}

async fn finishes_exact(app: &TestApp) {
    let m = wait_info(app, "done", 120, |m| m["status"] == "done").await;
    assert!(m["throttleReason"].is_null(), "{m}");
    assert_last_seen_correct(&app.sql());
}

/// A read transaction that holds its snapshot until dropped.
fn pin_snapshot(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    c.execute_batch("BEGIN").unwrap();
    let _: i64 = c
        .query_row("SELECT COUNT(*) FROM transmissions", [], |r| r.get(0))
        .unwrap();
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_holding_the_checkpoint_back_throttles_until_it_lets_go() {
    let _heavy = HEAVY.lock().await;
    let health = HealthConfig {
        checkpoint_stuck: Duration::from_secs(1),
        ..quiet()
    };
    let app = app_on(None, engine(health), vec![steady()]).await;
    started(&app).await;
    let pin = pin_snapshot(&app.db);
    throttled(&app, "checkpoint has not moved", 30).await;
    holds_still(&app, Duration::from_millis(1500)).await;
    pin.execute_batch("COMMIT").unwrap();
    drop(pin);
    // The next checkpoint moves the mark: running again, by itself.
    wait_info(&app, "the resume", 30, |m| m["status"] != "throttled").await;
    finishes_exact(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_wal_throttles_until_the_checkpoint_catches_up() {
    let _heavy = HEAVY.lock().await;
    let health = HealthConfig {
        wal_max_bytes: 256 * 1024,
        ..quiet()
    };
    let app = app_on(None, engine(health), vec![steady()]).await;
    started(&app).await;
    // A pinned snapshot keeps every new frame in the WAL.
    let pin = pin_snapshot(&app.db);
    let m = throttled(&app, "not yet checkpointed", 30).await;
    assert!(
        m["throttleReason"]
            .as_str()
            .unwrap()
            .contains("limit 256 KB"),
        "{m}"
    );
    holds_still(&app, Duration::from_millis(2500)).await;
    drop(pin);
    wait_info(&app, "the resume", 30, |m| m["status"] != "throttled").await;
    finishes_exact(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_ingest_throttles_the_migration_until_ingest_calms_down() {
    let _heavy = HEAVY.lock().await;
    // Chunks hold the writer STEADY_HOLD (12 ms) at a 30% duty, so a
    // request arriving during one waits for its rest: ingest's p99 wait is
    // several ms on any machine, well over the 3 ms limit.
    let health = HealthConfig {
        ingest_wait_p99: Duration::from_millis(3),
        ..quiet()
    };
    let app = app_on(None, engine(health), vec![steady()]).await;
    started(&app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut posters = Vec::new();
    for w in 0..4u32 {
        let (client, url, stop) = (app.client.clone(), app.url("/api/ingest"), stop.clone());
        posters.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let raw = packet(5, &[1], format!("burst {w} {n}").as_bytes());
                let r = client
                    .post(&url)
                    .json(&json!([{"observer": "0b01", "raw": raw}]))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                n += 1;
            }
            n
        }));
    }
    throttled(&app, "ingest waited", 30).await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for p in posters {
        sent += p.await.unwrap();
    }
    assert!(sent > 20, "{sent}");
    // Ingest is quiet: once its waits leave the 5 s window, the migration resumes.
    wait_info(&app, "the resume", 30, |m| m["status"] != "throttled").await;
    finishes_exact(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_free_space_floor_throttles_until_space_comes_back() {
    let _heavy = HEAVY.lock().await;
    let fs = Tmpfs::mount(96 * 1024 * 1024);
    let db = fs.path().join("floor.db");
    let health = HealthConfig {
        min_free_bytes: 48 * 1024 * 1024,
        ..quiet()
    };
    let app = app_on(Some(db), engine(health), vec![steady()]).await;
    started(&app).await;
    // Take the free space down to about 30 MiB: under the floor, far from full.
    let free = rustix::fs::statvfs(fs.path()).unwrap();
    let take = (free.f_bavail * free.f_frsize).saturating_sub(30 * 1024 * 1024);
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; take as usize]).unwrap();
    throttled(&app, "free on the database's disk", 30).await;
    holds_still(&app, Duration::from_millis(1500)).await;
    std::fs::remove_file(&filler).unwrap();
    wait_info(&app, "the resume", 30, |m| m["status"] != "throttled").await;
    finishes_exact(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_past_its_budget_is_stopped_and_retried_and_the_result_is_exact() {
    let _heavy = HEAVY.lock().await;
    // Cheap ids first, so the chunk size grows to the budget; then ids ten
    // times dearer: the first chunk there runs far past its budget and is
    // stopped (rolled back, cursor untouched) and retried smaller.
    let log: Arc<Mutex<Vec<Ran>>> = Arc::default();
    let m: Arc<dyn Migration> = Arc::new(Weighted {
        ops: 50,
        heavy_from: 10_000,
        heavy_ops: 2_000,
        hold: Duration::ZERO,
        log: log.clone(),
    });
    let cfg = EngineConfig {
        budget: Duration::from_millis(5),
        min_batch: 16,
        max_batch: 100_000,
        health: quiet(),
        ..EngineConfig::default()
    };
    let app = app_on(None, cfg, vec![m]).await;
    let before = app.count("SELECT COUNT(*) FROM transmissions");
    // Ingest flows throughout: every request is answered and stored.
    let stop = Arc::new(AtomicBool::new(false));
    let (client, url, flag) = (app.client.clone(), app.url("/api/ingest"), stop.clone());
    let poster = tokio::spawn(async move {
        let mut n = 0u32;
        while !flag.load(Ordering::Relaxed) {
            let raw = packet(5, &[2], format!("flow {n}").as_bytes());
            let r = client
                .post(&url)
                .json(&json!([{"observer": "0b02", "raw": raw}]))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            n += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        n
    });
    let done = wait_info(&app, "done", 180, |m| m["status"] == "done").await;
    stop.store(true, Ordering::Relaxed);
    let posted = poster.await.unwrap();
    assert_last_seen_correct(&app.sql());
    assert_eq!(done["rowsProcessed"], done["rowsTotal"], "{done}");
    let after = app.count("SELECT COUNT(*) FROM transmissions");
    assert_eq!(
        after - before,
        i64::from(posted),
        "every ingest request stored"
    );
    let (_, perf) = app.get("/api/perf").await;
    let holds = &perf["chunkHoldMs"];
    assert!(holds["interrupted"].as_u64().unwrap() >= 1, "{holds}");
    // Stopped chunks cap the hold: each stopped chunk held the writer for
    // well under what its work costs uninterrupted on this machine, now
    // (measured here, best of three, on a connection of its own).
    let ran = log.lock().unwrap().clone();
    let stopped: Vec<Ran> = ran.iter().copied().filter(|r| r.stopped).collect();
    assert!(!stopped.is_empty(), "the log saw the stop too: {ran:?}");
    let biggest = stopped.iter().max_by_key(|r| r.ops).copied().unwrap();
    let c = Connection::open_in_memory().unwrap();
    let whole = (0..3)
        .map(|_| {
            let t = Instant::now();
            count_to(&c, biggest.ops).unwrap();
            t.elapsed()
        })
        .min()
        .unwrap();
    println!(
        "stopped chunk: held {:?} of the {:?} its {} steps take whole; holds {holds}",
        biggest.took, whole, biggest.ops
    );
    assert!(
        biggest.took < whole / 2,
        "a stopped chunk held {:?}, its whole work takes {whole:?}",
        biggest.took
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_and_just_started_migrations_show_an_estimate() {
    let _heavy = HEAVY.lock().await;
    let app = app_on(
        None,
        engine(quiet()),
        vec![steady(), Arc::new(FromPubkeyBackfill::default())],
    )
    .await;
    started(&app).await;
    let running = info(&app, LS).await;
    let pending = info(&app, "from_pubkey_backfill_v1").await;
    assert_eq!(pending["status"], "pending", "{pending}");
    for m in [&running, &pending] {
        let est = m["estimatedSec"].as_f64().unwrap_or(-1.0);
        assert!(est > 0.0, "no estimate: {m}");
    }
    // The running one: its rows in 100-id chunks of STEADY_HOLD each at a
    // 30% duty (the sample's chunks cost the same), not the sample's few ms.
    let est = running["estimatedSec"].as_f64().unwrap();
    let rows = running["rowsTotal"].as_f64().unwrap();
    let expected = rows / 100.0 * STEADY_HOLD.as_secs_f64() / 0.3;
    assert!(
        (expected * 0.5..expected * 4.0).contains(&est),
        "estimate {est} s, expected about {expected} s: {running}"
    );
}

fn file_bytes(db: &Path) -> Vec<u8> {
    std::fs::read(db).unwrap()
}

#[test]
fn migrate_dry_run_prints_estimates_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A legacy meshscope file and a CoreScope file (schema steps to apply,
    // in the rolled-back transaction).
    let legacy = legacy_file(dir.path(), 3_000, 3);
    let corescope = dir.path().join("corescope.db");
    crate::corescope::write_file(&corescope, 2_000);
    for db in [legacy, corescope] {
        // Nothing pending in the WAL, so the file's bytes are all of it.
        Connection::open(&db)
            .unwrap()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let before = file_bytes(&db);
        let out = Command::new(env!("CARGO_BIN_EXE_meshscope"))
            .args(["migrate", "--dry-run", "--db"])
            .arg(&db)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("dry run: nothing was written"), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with(LS))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(" s ("), "an estimate in seconds: {text}");
        assert_eq!(file_bytes(&db), before, "{} changed", db.display());
    }
}
