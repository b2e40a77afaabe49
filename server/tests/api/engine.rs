//! The online-migration engine on real files: progress, cancel, retry,
//! failures, boot rules, and both backfills' results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshscope::config::ServeConfig;
use meshscope::migrate::{
    from_pubkey::FromPubkeyBackfill, last_seen::TxLastSeenBackfill, EngineConfig, Migration,
    MigrationError, Progress,
};
use meshscope::serve::{self, Parts};
use meshscope::settings::{CommandLine, ServeArgs};
use rusqlite::Connection;
use shared::migration::{Control as ControlOp, MigrationRecord, MigrationStatus};

pub struct Harness {
    pub parts: Parts,
    pub db: std::path::PathBuf,
    pub _dir: tempfile::TempDir,
}

/// A legacy (pre-backfill) file with `n` transmissions, written by
/// `meshscope seed --legacy` (the same every time for the same arguments).
pub fn legacy_file(dir: &std::path::Path, n: u64, obs_per_tx: u32) -> std::path::PathBuf {
    let db = dir.join("legacy.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshscope"))
        .args([
            "seed",
            "--legacy",
            "--observers",
            "20",
            "--rng-seed",
            "3",
            "--end",
            "1800000000",
        ])
        .args([
            "--transmissions",
            &n.to_string(),
            "--obs-per-tx",
            &obs_per_tx.to_string(),
        ])
        .arg("--db")
        .arg(&db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run meshscope seed");
    assert!(
        out.status.success(),
        "meshscope seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

pub fn engine_cfg(min: i64, max: i64, duty: f64) -> EngineConfig {
    EngineConfig {
        budget: Duration::from_secs(1),
        duty,
        max_attempts: 3,
        min_batch: min,
        max_batch: max,
        wal_limit_bytes: 0,
        health: Default::default(),
    }
}

pub fn build(
    dir: tempfile::TempDir,
    db: std::path::PathBuf,
    engine: EngineConfig,
    migrations: Vec<Arc<dyn Migration>>,
) -> Harness {
    crate::helpers::init_log();
    let mut cfg = ServeConfig::resolve(&ServeArgs(
        CommandLine::default().with("db", db.display().to_string()),
    ))
    .unwrap();
    cfg.engine = engine;
    let parts = serve::build_with(&cfg, migrations).unwrap();
    Harness {
        parts,
        db,
        _dir: dir,
    }
}

impl Harness {
    pub fn record(&self, name: &str) -> MigrationRecord {
        self.parts
            .live
            .snapshot()
            .get(name)
            .cloned()
            .expect("registered")
    }

    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&MigrationRecord) -> bool,
    ) -> MigrationRecord {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.record(name);
            if pred(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn wait_status(&self, name: &str, st: &str) -> MigrationRecord {
        let want = MigrationStatus::from_stored(st);
        assert_ne!(want, MigrationStatus::Unknown, "{st} is a stored status");
        self.wait_for(name, st, |r| r.status == want).await
    }

    pub async fn control(
        &self,
        name: &str,
        op: ControlOp,
    ) -> Result<shared::migration::MigrationInfo, String> {
        let name = name.to_string();
        self.parts
            .writer
            .with_engine(move |c, e| e.control(c, &name, op).map_err(|e| e.to_string()))
            .await
            .unwrap()
    }

    /// Waits until the engine has no work left to do: the positive
    /// condition after which "nothing else happened" can be checked
    /// (instead of sleeping and hoping long enough).
    pub async fn idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let idle = self
                .parts
                .writer
                .with_engine(|_, e| e.next_due().is_none())
                .await
                .unwrap();
            if idle {
                return;
            }
            assert!(Instant::now() < deadline, "the engine never went idle");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn sql(&self) -> Connection {
        let c = Connection::open(&self.db).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.sql().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// Every observed transmission's last_seen equals its newest sighting
/// (computed independently here), and orphans stayed 0.
pub fn assert_last_seen_correct(c: &Connection) {
    let wrong: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM transmissions t
             WHERE t.last_seen != COALESCE((SELECT MAX(timestamp) FROM observations o WHERE o.transmission_id = t.id), 0)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        wrong, 0,
        "rows whose last_seen is not MAX(observations.timestamp)"
    );
}

fn collector() -> (Arc<Mutex<Vec<Progress>>>, meshscope::migrate::Observer) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (
        events,
        Box::new(move |p: &Progress| sink.lock().unwrap().push(p.clone())),
    )
}

async fn with_observer(h: &Harness, o: meshscope::migrate::Observer) {
    h.parts
        .writer
        .with_engine(move |_, e| e.add_observer(o))
        .await
        .unwrap();
}

const LS: &str = meshscope::migrate::last_seen::NAME;

#[tokio::test(flavor = "multi_thread")]
async fn progress_fires_per_chunk_of_a_capped_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 12_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(5_000, 5_000, 1.0),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    let (events, obs) = collector();
    with_observer(&h, obs).await;
    h.parts.start_migrations().await.unwrap();
    let done = h.wait_status(LS, "done").await;
    let ev = events.lock().unwrap().clone();
    let chunks: Vec<_> = ev.iter().filter(|p| p.rows_processed > 0).collect();
    assert!(chunks.len() >= 3, "12,000 rows at 5,000 per chunk: {ev:?}");
    assert!(chunks
        .windows(2)
        .all(|w| w[0].rows_processed < w[1].rows_processed));
    assert_eq!(done.rows_processed, done.rows_total);
    assert_eq!(done.rows_total, 12_000);
    assert_last_seen_correct(&h.sql());
    assert_eq!(h.count("SELECT COUNT(*) FROM transmissions WHERE last_seen = 0 AND id IN (SELECT transmission_id FROM observations)"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn last_chunk_filling_the_batch_reports_completion_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 10_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(5_000, 5_000, 1.0),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    let (events, obs) = collector();
    with_observer(&h, obs).await;
    h.parts.start_migrations().await.unwrap();
    h.wait_status(LS, "done").await;
    h.idle().await;
    let ev = events.lock().unwrap().clone();
    let complete: Vec<_> = ev
        .iter()
        .filter(|p| p.rows_total > 0 && p.rows_processed == p.rows_total)
        .collect();
    assert_eq!(complete.len(), 1, "terminal progress reported once: {ev:?}");
    assert_eq!(complete[0].status, MigrationStatus::Done);
    assert_eq!(ev.last().unwrap().status, MigrationStatus::Done);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_mid_run_keeps_committed_chunks_and_is_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 12_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(500, 500, 0.05),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    h.parts.start_migrations().await.unwrap();
    h.wait_for(LS, "some progress", |r| r.rows_processed >= 1_000)
        .await;
    let info = h.control(LS, ControlOp::Cancel).await.unwrap();
    assert_eq!(info.status, MigrationStatus::Cancelled);
    assert!(info.ended_at.is_some());
    h.idle().await;
    let r = h.record(LS);
    assert_eq!(r.status, MigrationStatus::Cancelled);
    let stored: (String, i64) = h
        .sql()
        .query_row(
            "SELECT status, rows_processed FROM _async_migrations WHERE name = ?1",
            [LS],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored, ("cancelled".to_string(), r.rows_processed));
    let filled = h.count("SELECT COUNT(*) FROM transmissions WHERE last_seen > 0");
    assert!(filled > 0, "committed chunks stay");
    assert!(r.rows_processed < 12_000, "cancelled before the end");
    assert!(
        filled <= r.rows_processed,
        "{filled} rows filled, {} processed",
        r.rows_processed
    );
    // Resume is not a thing for a cancelled migration; retry is.
    assert!(h
        .control(LS, ControlOp::Resume)
        .await
        .unwrap_err()
        .contains("cancelled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_resets_progress_and_counts_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 8_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(400, 400, 0.1),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    h.parts.start_migrations().await.unwrap();
    let before = h
        .wait_for(LS, "progress", |r| r.rows_processed >= 800)
        .await;
    assert_eq!(before.attempts, 1);
    h.control(LS, ControlOp::Cancel).await.unwrap();
    assert!(h
        .control(LS, ControlOp::Pause)
        .await
        .unwrap_err()
        .contains("cannot pause"));
    let info = h.control(LS, ControlOp::Retry).await.unwrap();
    assert_eq!(info.status, MigrationStatus::Pending);
    assert_eq!((info.rows_processed, info.rows_total), (0, 0));
    assert!(info.error.is_none() && info.last_update_at.is_none());
    // Registered again now (CoreScope's NOT NULL started_at), not started.
    assert!(info.started_at.is_some());
    assert_eq!(info.elapsed_sec, 0.0);
    let cursor: Option<i64> = h
        .sql()
        .query_row(
            "SELECT cursor FROM _async_migrations WHERE name = ?1",
            [LS],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cursor, None);
    let done = h.wait_status(LS, "done").await;
    assert_eq!(done.attempts, 2);
    // Recounted: only what was left after the first attempt.
    assert!(done.rows_total < 8_000 && done.rows_total > 0, "{done:?}");
    assert_eq!(done.rows_processed, done.rows_total);
    assert_last_seen_correct(&h.sql());
    assert!(h
        .control(LS, ControlOp::Retry)
        .await
        .unwrap_err()
        .contains("done"));
    assert!(h.control(LS, ControlOp::Resume).await.is_err());
    assert!(h
        .control("nope", ControlOp::Pause)
        .await
        .unwrap_err()
        .contains("no migration"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_and_resume_continue_from_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 8_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(400, 400, 0.1),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    h.parts.start_migrations().await.unwrap();
    let running = h
        .wait_for(LS, "progress", |r| r.rows_processed >= 800)
        .await;
    // Positive control: while running, the count moves.
    h.wait_for(LS, "more progress", |r| {
        r.rows_processed > running.rows_processed
    })
    .await;
    let paused = h.control(LS, ControlOp::Pause).await.unwrap();
    assert_eq!(paused.status, MigrationStatus::Paused);
    h.idle().await;
    let still = h.record(LS);
    assert_eq!(
        still.rows_processed, paused.rows_processed,
        "no work while paused"
    );
    assert!(still.rows_processed < 8_000, "paused before the end");
    assert!(h.control(LS, ControlOp::Pause).await.is_err());
    h.control(LS, ControlOp::Resume).await.unwrap();
    let done = h.wait_status(LS, "done").await;
    assert_eq!(done.rows_processed, 8_000);
    assert_eq!(done.attempts, 1, "resume is not a new attempt");
    assert_last_seen_correct(&h.sql());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_inserts_of_unbackfilled_rows_do_not_trap_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 6_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(300, 300, 0.2),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, db2) = (stop.clone(), h.db.clone());
    let inserter = std::thread::spawn(move || {
        let c = Connection::open(db2).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut n = 0;
        while !s2.load(Ordering::Relaxed) {
            c.execute(
                "INSERT INTO transmissions (raw_hex, hash, first_seen, last_seen) VALUES ('0500', ?1, '2030-01-01T00:00:00.000Z', 0)",
                [format!("late{n:012}")],
            )
            .unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    });
    h.parts.start_migrations().await.unwrap();
    let done = h.wait_status(LS, "done").await;
    stop.store(true, Ordering::Relaxed);
    let inserted = inserter.join().unwrap();
    assert!(
        inserted > 10,
        "rows were inserted during the run: {inserted}"
    );
    assert!(done.rows_processed <= done.rows_total);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM transmissions WHERE hash LIKE 'late%' AND last_seen != 0"),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_only_file_terminates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orphans.db");
    {
        let c = meshscope::db::open_writer(&db).unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..3_000 {
            tx.execute(
                "INSERT INTO transmissions (raw_hex, hash, first_seen, last_seen) VALUES ('0500', ?1, '2030-01-01T00:00:00.000Z', 0)",
                [format!("orphan{i:010}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let h = build(
        dir,
        db,
        engine_cfg(100, 1_000, 1.0),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    h.parts.start_migrations().await.unwrap();
    let done = h.wait_status(LS, "done").await;
    assert_eq!((done.rows_processed, done.rows_total), (3_000, 3_000));
    assert_eq!(
        h.count("SELECT COUNT(*) FROM transmissions WHERE last_seen != 0"),
        0,
        "orphans stay 0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_database_ends_as_failed_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 6_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(200, 200, 0.1),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    h.parts.start_migrations().await.unwrap();
    h.wait_for(LS, "progress", |r| r.rows_processed > 0).await;
    // Break the file for real under the running migration.
    h.sql()
        .execute_batch("ALTER TABLE observations RENAME TO observations_gone")
        .unwrap();
    let failed = h.wait_status(LS, "failed").await;
    let err = failed.error.unwrap();
    assert!(err.contains("no such table"), "{err}");
    let stored: String = h
        .sql()
        .query_row(
            "SELECT error FROM _async_migrations WHERE name = ?1",
            [LS],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, err);
    // The writer keeps serving.
    let alive = h
        .parts
        .writer
        .with_engine(|_, e| e.records().len())
        .await
        .unwrap();
    assert_eq!(alive, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_progress_observer_fails_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 4_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(500, 500, 1.0),
        vec![Arc::new(TxLastSeenBackfill)],
    );
    with_observer(
        &h,
        Box::new(|p: &Progress| {
            if p.rows_processed > 0 {
                panic!("observer exploded");
            }
        }),
    )
    .await;
    h.parts.start_migrations().await.unwrap();
    let failed = h.wait_status(LS, "failed").await;
    let err = failed.error.unwrap();
    assert!(
        err.contains("progress observer panicked") && err.contains("observer exploded"),
        "{err}"
    );
    // The writer survived the panic and serves other work.
    let n = h
        .parts
        .writer
        .with_engine(|_, e| e.records().len())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

struct Exploding;

impl Migration for Exploding {
    fn name(&self) -> &'static str {
        "exploding_v1"
    }
    fn count(&self, _: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        Ok(max_id)
    }
    fn chunk(
        &self,
        _: &Connection,
        _: i64,
        _: i64,
        _: meshscope::migrate::Upkeep,
    ) -> Result<i64, MigrationError> {
        panic!("chunk exploded");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_migration_fails_and_the_next_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 2_000, 2);
    let h = build(
        dir,
        db,
        engine_cfg(100, 1_000, 1.0),
        vec![Arc::new(Exploding), Arc::new(TxLastSeenBackfill)],
    );
    h.parts.start_migrations().await.unwrap();
    let failed = h.wait_status("exploding_v1", "failed").await;
    assert!(failed.error.unwrap().contains("chunk exploded"));
    h.wait_status(LS, "done").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn from_pubkey_backfill_decodes_in_rust_and_skips_undecodable_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 4_000, 1);
    {
        let c = Connection::open(&db).unwrap();
        // An ADVERT row whose packet is cut short: counted, left NULL.
        c.execute(
            "INSERT INTO transmissions (raw_hex, hash, first_seen, payload_type, last_seen) VALUES ('1100AABB', 'brokenadvert0001', '2030-01-01T00:00:00.000Z', 4, 0)",
            [],
        )
        .unwrap();
    }
    let m = Arc::new(FromPubkeyBackfill::default());
    let h = build(dir, db, engine_cfg(100, 5_000, 1.0), vec![m.clone()]);
    let adverts = h.count("SELECT COUNT(*) FROM transmissions WHERE payload_type = 4");
    assert!(adverts > 500);
    h.parts.start_migrations().await.unwrap();
    let done = h
        .wait_status(meshscope::migrate::from_pubkey::NAME, "done")
        .await;
    assert_eq!(done.rows_total, adverts);
    assert_eq!(done.rows_processed, adverts);
    assert_eq!(m.undecodable(), 1);
    assert_eq!(
        h.count(
            "SELECT COUNT(*) FROM transmissions WHERE payload_type = 4 AND from_pubkey IS NULL"
        ),
        1
    );
    // Every key equals the first 32 payload bytes, decoded independently.
    let c = h.sql();
    let mut stmt = c
        .prepare("SELECT raw_hex, from_pubkey FROM transmissions WHERE from_pubkey IS NOT NULL")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    for row in rows {
        let (raw, key) = row.unwrap();
        let bytes = meshscope::decoder::parse_hex(&raw).unwrap();
        assert_eq!(
            Some(key),
            meshscope::decoder::decode(&bytes).unwrap().advert_pubkey()
        );
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM transmissions WHERE payload_type != 4 AND from_pubkey IS NOT NULL"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn boot_rules_done_never_reruns_and_running_resumes_from_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let db = legacy_file(dir.path(), 3_000, 2);
    {
        let c = meshscope::db::open_writer(&db).unwrap();
        // A previous process died at cursor 1000 having processed 1000 rows
        // (left at 0 here, so a redo would be visible).
        c.execute(
            "INSERT INTO _async_migrations (name, status, started_at, rows_processed, rows_total, cursor, attempts)
             VALUES (?1, 'running', '2030-01-01T00:00:00.000Z', 1000, 3000, 1000, 1)",
            [LS],
        )
        .unwrap();
        c.execute(
            "INSERT INTO _async_migrations (name, status, attempts) VALUES (?1, 'done', 1)",
            [meshscope::migrate::from_pubkey::NAME],
        )
        .unwrap();
    }
    let h = build(
        dir,
        db,
        engine_cfg(100, 1_000, 1.0),
        vec![
            Arc::new(TxLastSeenBackfill),
            Arc::new(FromPubkeyBackfill::default()),
        ],
    );
    h.parts.start_migrations().await.unwrap();
    let done = h.wait_status(LS, "done").await;
    assert_eq!(done.rows_processed, 3_000, "1000 before + 2000 now");
    assert_eq!(done.attempts, 1);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM transmissions WHERE id <= 1000 AND last_seen != 0"),
        0,
        "no redo below the cursor"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM transmissions WHERE id > 1000 AND last_seen = 0 AND id IN (SELECT transmission_id FROM observations)"), 0);
    h.idle().await;
    assert_eq!(
        h.record(meshscope::migrate::from_pubkey::NAME).status,
        MigrationStatus::Done
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM transmissions WHERE from_pubkey IS NOT NULL"),
        0,
        "done never re-runs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn corescope_bookkeeping_is_upgraded_and_a_failed_backfill_retried() {
    for (attempts, expect) in [(0, "done"), (3, "failed")] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cs.db");
        crate::legacy::write_corescope_file(&db);
        {
            let c = Connection::open(&db).unwrap();
            c.execute(
                "INSERT INTO _async_migrations VALUES (?1, 'failed', '2025-01-01T00:00:00Z', '2025-01-01T00:10:00Z', 'database is locked')",
                [LS],
            )
            .unwrap();
        }
        if attempts > 0 {
            // Upgrade first so the attempts column exists, then record 3 attempts.
            drop(meshscope::db::open_writer(&db).unwrap());
            Connection::open(&db)
                .unwrap()
                .execute(
                    "UPDATE _async_migrations SET attempts = ?2 WHERE name = ?1",
                    rusqlite::params![LS, attempts],
                )
                .unwrap();
        }
        let h = build(
            dir,
            db,
            engine_cfg(100, 1_000, 1.0),
            vec![Arc::new(TxLastSeenBackfill)],
        );
        h.parts.start_migrations().await.unwrap();
        if expect == "done" {
            let r = h.wait_status(LS, "done").await;
            assert_eq!(r.attempts, 1);
            assert!(r.error.is_none());
            assert_eq!(h.count("SELECT last_seen FROM transmissions"), 1735689700);
        } else {
            h.idle().await;
            let r = h.record(LS);
            assert_eq!(
                r.status,
                MigrationStatus::Failed,
                "waits for an explicit retry after 3 attempts"
            );
            assert_eq!(r.error.as_deref(), Some("database is locked"));
            assert_eq!(h.count("SELECT last_seen FROM transmissions"), 0);
        }
        let other: String = h
            .sql()
            .query_row(
                "SELECT status FROM _async_migrations WHERE name = 'some_other_migration'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(other, "done");
    }
}
