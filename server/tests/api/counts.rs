//! Maintained counts (`transmissions.observation_count`, the totals in
//! `_meshscope_counters`): equal to `COUNT(*)` computed independently after
//! ingest with duplicates, after SIGKILLs during ingest and during their
//! online backfill, and on a CoreScope file backfilled while ingest flows;
//! `/api/stats` walks no table once they are ready.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::helpers::{
    advert_payload, packet, serve_child, spawn_app, spawn_with, strings, Options, TestApp,
};

const COUNTS: &str = meshscope::migrate::counts::NAME;
/// Every stored packet, oldest first (to post sightings of old packets).
const RAWS: &str = "SELECT raw_hex FROM transmissions ORDER BY id";

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// The maintained counts equal what `COUNT(*)` finds, row by row and in total.
pub fn assert_counts_exact(c: &Connection) {
    let wrong = count(
        c,
        "SELECT COUNT(*) FROM transmissions t WHERE observation_count !=
            (SELECT COUNT(*) FROM observations o WHERE o.transmission_id = t.id)",
    );
    assert_eq!(wrong, 0, "transmissions whose observation_count is wrong");
    let counter = |name: &str| -> i64 {
        c.query_row(
            "SELECT COALESCE((SELECT n FROM _meshscope_counters WHERE name = ?1), 0)",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    for (name, table) in [
        ("transmissions", "transmissions"),
        ("observations", "observations"),
        ("observers", "observers"),
    ] {
        let want = count(c, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(counter(name), want, "counter {name}");
    }
    let by_type: BTreeMap<String, i64> = c
        .prepare("SELECT payload_type, COUNT(*) FROM transmissions GROUP BY payload_type")
        .unwrap()
        .query_map([], |r| {
            let t: Option<i64> = r.get(0)?;
            Ok((
                t.map_or("type:null".to_string(), |t| format!("type:{t}")),
                r.get(1)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let kept: BTreeMap<String, i64> = c
        .prepare("SELECT name, n FROM _meshscope_counters WHERE name LIKE 'type:%' AND n != 0")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kept, by_type, "transmissions per payload type");
}

/// `/api/stats` equals the independent counts of the file.
async fn assert_stats_match(app: &TestApp) {
    app.wait_counts_ready().await;
    let (s, st) = app.get("/api/stats").await;
    assert_eq!(s, 200, "{st}");
    let c = app.sql();
    assert_eq!(
        st["totalTransmissions"],
        count(&c, "SELECT COUNT(*) FROM transmissions")
    );
    assert_eq!(
        st["totalObservations"],
        count(&c, "SELECT COUNT(*) FROM observations")
    );
    assert_eq!(
        st["totalObservers"],
        count(&c, "SELECT COUNT(*) FROM observers")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_and_duplicates_keep_the_counts_exact() {
    let app = spawn_app().await;
    // The empty file's counts are ready first, so everything below is
    // counted by ingest alone (not recounted by the backfill).
    app.wait_counts_ready().await;
    let mut items = Vec::new();
    for i in 0..120u32 {
        let raw = if i % 3 == 0 {
            packet(4, &[(i % 5) as u8], &advert_payload((i % 200) as u8 + 1))
        } else {
            packet(
                [2, 5, 1][(i % 3) as usize],
                &[(i % 4) as u8],
                format!("m{i}").as_bytes(),
            )
        };
        // Heard by one to three observers; every fourth sighting repeated
        // (a duplicate: same packet, observer and path).
        for k in 0..=(i % 3) {
            let item = json!({"observer": format!("0b{k:02}"), "raw": raw});
            if (i + k) % 4 == 0 {
                items.push(item.clone());
            }
            items.push(item);
        }
    }
    for chunk in items.chunks(97) {
        let (s, b) = app
            .post_json("/api/ingest", &Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    // The same requests again: all duplicates, nothing counted twice.
    let (s, b) = app
        .post_json("/api/ingest", &Value::Array(items[..50].to_vec()))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["duplicates"], 50, "{b}");

    let c = app.sql();
    assert!(count(&c, "SELECT COUNT(*) FROM observations") > 200);
    assert_counts_exact(&c);
    assert_stats_match(&app).await;
    // The page shows the stored sighting count of each row.
    let (_, page) = app.get("/api/packets?limit=500").await;
    for p in page["packets"].as_array().unwrap() {
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM observations WHERE transmission_id = ?1",
                [p["id"].as_i64().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(p["observationCount"], n, "{p}");
    }
    assert_eq!(page["totalEstimated"], false);
    assert_eq!(page["total"], 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_walk_no_table_once_the_counts_are_ready() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(|p| crate::corescope::write_file(p, 3_000))),
        ..Default::default()
    })
    .await;
    app.wait_counts_ready().await;
    let steps = |p: &Value| p["statsFullScans"].as_u64().expect("statsFullScans");
    let (_, before) = app.get("/api/perf").await;
    for _ in 0..4 {
        let (s, st) = app.get("/api/stats").await;
        assert_eq!(s, 200);
        assert_eq!(st["totalTransmissions"], 3_000);
        // Past the stats cache, so every round computes again.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let (_, after) = app.get("/api/perf").await;
    assert_eq!(steps(&after), steps(&before), "{after}");

    // The counter is real: before the counts exist, stats count the
    // observers by walking their table, and it shows.
    let held = spawn_with(Options {
        prepare: Some(Box::new(|p| crate::corescope::write_file(p, 100))),
        hold_migrations: true,
        ..Default::default()
    })
    .await;
    let (_, st) = held.get("/api/stats").await;
    assert_eq!(st["countsReady"], false, "{st}");
    assert_eq!(st["totalTransmissions"], Value::Null, "{st}");
    let (_, p) = held.get("/api/perf").await;
    assert!(steps(&p) > 0, "{p}");
}

/// Sightings of old and new packets, with duplicates, until `stop`.
async fn feed(
    app: Arc<TestApp>,
    old: Vec<String>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let fresh = packet(2, &[], format!("during {n}").as_bytes());
        let old = &old[(n as usize * 37) % old.len()];
        let items = json!([
            {"observer": "fe01", "raw": fresh},
            {"observer": "fe01", "raw": old},
            {"observer": format!("fe{:02}", 2 + n % 3), "raw": old},
            {"observer": "fe01", "raw": fresh},
        ]);
        let (s, b) = app.post_json("/api/ingest", &items).await;
        assert_eq!(s, 200, "{b}");
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corescope_file_gets_its_counts_backfilled_online_and_exact() {
    // Ingest flat out for seconds: not beside the tests that time ingest.
    let _heavy = crate::helpers::HEAVY.lock().await;
    let app = Arc::new(
        spawn_with(Options {
            prepare: Some(Box::new(|p| crate::corescope::write_file(p, 6_000))),
            migrations: Some(vec![Arc::new(meshscope::migrate::counts::CountsBackfill)]),
            // Slow on purpose: ingest meets the backfill mid-range.
            engine: Some(crate::engine::engine_cfg(10, 60, 0.05)),
            ..Default::default()
        })
        .await,
    );
    let old = strings(&app.sql(), RAWS);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = tokio::spawn(feed(app.clone(), old, stop.clone()));
    let mut fed_while_running = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = app.migration(COUNTS).await;
        if m["status"] == "running" || m["status"] == "throttled" {
            let (_, st) = app.get("/api/stats").await;
            assert_eq!(st["countsReady"], false, "{st}");
            assert_eq!(
                st["totalObservations"],
                Value::Null,
                "counting, not zero: {st}"
            );
            fed_while_running |= m["rowsProcessed"].as_i64().unwrap_or(0) > 0;
        }
        if m["status"] == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill never finished: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let requests = feeder.await.unwrap();
    assert!(fed_while_running && requests > 20, "{requests} requests");
    let c = app.sql();
    assert_counts_exact(&c);
    crate::corescope::assert_constraints_hold(&c);
    assert_stats_match(&app).await;
}

fn counts_progress(db: &std::path::Path) -> Option<(String, i64)> {
    let c = Connection::open(db).ok()?;
    c.busy_timeout(Duration::from_secs(5)).ok()?;
    c.query_row(
        "SELECT status, rows_processed FROM _async_migrations WHERE name = ?1",
        [COUNTS],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

/// Posts sightings (new packets, old ones, duplicates) until the server dies.
fn feed_child(base: String, old: Vec<String>, round: u32) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut acked = 0;
        for n in 0u64.. {
            let fresh = packet(5, &[1], format!("kill {round} {n}").as_bytes());
            let old = &old[(n as usize * 131) % old.len()];
            let items = json!([
                {"observer": "c1", "raw": fresh},
                {"observer": format!("c{round}"), "raw": old},
                {"observer": "c1", "raw": fresh},
            ]);
            match client
                .post(format!("{base}/api/ingest"))
                .json(&items)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => acked += 1,
                Ok(_) => {}
                Err(_) => return acked,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        acked
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkills_during_the_counts_backfill_and_during_ingest_keep_the_counts_exact() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("counts.db");
    crate::helpers::seed_legacy_20k(&db);
    // The other backfills done, the counts not yet computed: a file of a
    // meshscope from before them.
    crate::helpers::run_cli(
        &db,
        &[
            "migrate",
            meshscope::migrate::last_seen::NAME,
            meshscope::migrate::from_pubkey::NAME,
        ],
    );
    assert_eq!(
        count(
            &Connection::open(&db).unwrap(),
            "SELECT COUNT(*) FROM transmissions WHERE observation_count != 0"
        ),
        0
    );
    let old = strings(&Connection::open(&db).unwrap(), RAWS);

    // Three SIGKILLs mid-backfill, with ingest flowing.
    let mut last = 0;
    for round in 0..3 {
        let mut s = serve_child(&db, "0.002");
        let feeder = feed_child(s.base.clone(), old.clone(), round);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some((status, done)) = counts_progress(&db) {
                assert_ne!(status, "done", "the backfill must still be running");
                if status == "running"
                    && done > last
                    && started.elapsed() > Duration::from_millis(700)
                {
                    last = done;
                    break;
                }
            }
            assert!(Instant::now() < deadline, "no progress in round {round}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s.child.kill().unwrap(); // SIGKILL
        s.child.wait().unwrap();
        assert!(feeder.await.unwrap() > 0, "ingest flowed in round {round}");
    }
    // To completion, then a SIGKILL while ingest keeps the counts itself.
    let mut s = serve_child(&db, "1.0");
    let deadline = Instant::now() + Duration::from_secs(120);
    while counts_progress(&db).map(|p| p.0) != Some("done".into()) {
        assert!(Instant::now() < deadline, "backfill did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let feeder = feed_child(s.base.clone(), old.clone(), 9);
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    assert!(feeder.await.unwrap() > 0);

    // Restarted, the counts are still exact, and stats say so.
    let mut s = serve_child(&db, "1.0");
    let st: Value = reqwest::get(format!("{}/api/stats", s.base))
        .await
        .and_then(|r| r.error_for_status())
        .unwrap()
        .json()
        .await
        .unwrap();
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let c = Connection::open(&db).unwrap();
    assert_counts_exact(&c);
    assert_eq!(st["countsReady"], true, "{st}");
    assert_eq!(
        st["totalObservations"],
        count(&c, "SELECT COUNT(*) FROM observations")
    );
}
