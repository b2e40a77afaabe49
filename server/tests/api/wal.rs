//! The WAL stays bounded while background jobs write (`db::bound_wal`): the
//! backfills of a legacy file and then a retention run that deletes most of
//! its sightings, with ingest and readers going on throughout. Without the
//! bound the same run grows the WAL past it (so the file is big enough to
//! show anything); with it the file never passes the bound, and
//! `/api/perf` reports the peak and the restarts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshscope::migrate::{EngineConfig, RetentionConfig};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use crate::helpers::{packet, seed_legacy_20k, spawn_with, Options, HEAVY};

const LIMIT: u64 = 8 * 1024 * 1024;

/// Runs every backfill and one retention run with the WAL bound at
/// `limit` (0: unbounded); returns the largest WAL file size sampled every
/// 5 ms and `/api/perf`'s `wal`.
async fn run(limit: u64) -> (u64, Value) {
    let app = spawn_with(Options {
        prepare: Some(Box::new(seed_legacy_20k)),
        engine: Some(EngineConfig {
            wal_limit_bytes: limit,
            ..EngineConfig::default()
        }),
        retention: Some(RetentionConfig {
            packet_days: Some(2),
            observer_days: None,
        }),
        ..Default::default()
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let wal = app.db.with_file_name(format!(
        "{}-wal",
        app.db.file_name().unwrap().to_string_lossy()
    ));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let n = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                peak.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Readers on short snapshots, as the dashboard's are.
    let reader = {
        let (stop, db) = (stop.clone(), app.db.clone());
        std::thread::spawn(move || {
            let c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let _: i64 = c
                    .query_row(
                        "SELECT COUNT(*) FROM observations WHERE observer_idx = ?1",
                        [n % 50],
                        |r| r.get(0),
                    )
                    .unwrap();
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let ingest = {
        let (stop, base) = (stop.clone(), app.base.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let raw = packet(2, &[], format!("wal-{n}").as_bytes());
                let _ = client
                    .post(format!("{base}/api/ingest"))
                    .json(&json!({"observer": "ab01", "raw": raw}))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let perf = loop {
        let (_, perf) = app.get("/api/perf").await;
        if perf["retention"]["endedAt"].is_string() {
            assert!(perf["retention"]["error"].is_null(), "{perf}");
            assert!(
                perf["retention"]["deleted"]["observations"]
                    .as_i64()
                    .unwrap()
                    > 50_000,
                "{perf}"
            );
            break perf;
        }
        assert!(Instant::now() < deadline, "retention never ran: {perf}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    reader.join().unwrap();
    ingest.await.unwrap();
    (peak.load(Ordering::Relaxed), perf["wal"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wal_stays_under_its_bound_through_backfills_and_retention() {
    let _heavy = HEAVY.lock().await;
    let (unbounded, _) = run(0).await;
    assert!(
        unbounded > LIMIT,
        "the run never grew the WAL past {LIMIT} B unbounded ({unbounded} B): the file is too small to show anything"
    );
    let (bounded, wal) = run(LIMIT).await;
    assert!(
        bounded < LIMIT,
        "WAL peaked at {bounded} B with a bound of {LIMIT} B (unbounded: {unbounded} B); {wal}"
    );
    assert!(wal["restarts"].as_u64().unwrap() > 0, "{wal}");
    assert!(
        wal["peakBytes"].as_u64().unwrap() <= bounded.max(LIMIT),
        "{wal}"
    );
    eprintln!("WAL peak: unbounded {unbounded} B, bounded {bounded} B; {wal}");
}
