//! Crash safety: `meshscope serve` as a child process on a legacy file,
//! SIGKILLed mid-backfill several times while ingest flows, then SIGTERMed
//! (which must record `paused`), then run to completion. No work is lost or
//! redone, progress never exceeds its total, and every acknowledged ingest
//! request is stored. Also: SIGTERM stops a server whose event stream a
//! dashboard holds open.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;

use crate::engine::assert_last_seen_correct;
use crate::helpers::{packet, serve_child};

const BIN: &str = env!("CARGO_BIN_EXE_meshscope");
const LS: &str = meshscope::migrate::last_seen::NAME;

fn progress(db: &std::path::Path) -> Option<(String, i64, i64)> {
    let c = Connection::open(db).ok()?;
    c.busy_timeout(Duration::from_secs(5)).ok()?;
    c.query_row(
        "SELECT status, rows_processed, rows_total FROM _async_migrations WHERE name = ?1",
        [LS],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

/// Posts one new packet every 10 ms; remembers the hashes acknowledged with 200.
fn ingest_loop(
    base: String,
    acked: Arc<Mutex<Vec<String>>>,
    seq: Arc<Mutex<u64>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        loop {
            let n = {
                let mut s = seq.lock().unwrap();
                *s += 1;
                *s
            };
            let raw = packet(2, &[], format!("crash-probe-{n}").as_bytes());
            let r = client
                .post(format!("{base}/api/ingest"))
                .json(&json!({"observer": "c0ffee", "raw": raw}))
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().as_u16() == 200 => {
                    acked.lock().unwrap().push(crate::helpers::hash_of(&raw));
                }
                Ok(_) => {}
                Err(_) => return, // the server is gone
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_backfill_loses_and_redoes_nothing() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    crate::helpers::seed_legacy_20k(&db);

    let acked = Arc::new(Mutex::new(Vec::new()));
    let seq = Arc::new(Mutex::new(0u64));
    let mut last_processed = 0;
    let mut kills = 0;
    // At a duty of 0.002 a 100-id chunk of at least 50 µs is followed by a
    // 25 ms pause or more: a round of about a second covers at most a few
    // thousand of the 20,000 ids on the fastest machine, and at least one
    // chunk on the slowest (the first chunk after a start runs at once).
    for round in 0..4 {
        let mut c = serve_child(&db, "0.002");
        let feeder = ingest_loop(c.base.clone(), acked.clone(), seq.clone());
        let round_start = Instant::now();
        // Let the backfill make progress beyond where the last run stopped.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((status, done, total)) = progress(&db) {
                assert!(
                    done <= total || total == 0,
                    "processed {done} > total {total}"
                );
                let long_enough = round_start.elapsed() > Duration::from_millis(700);
                if status == "running" && done > last_processed && long_enough {
                    last_processed = done;
                    break;
                }
                assert_ne!(
                    status, "done",
                    "the backfill must still be running to be interrupted"
                );
            }
            assert!(Instant::now() < deadline, "no progress in round {round}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if round < 3 {
            c.child.kill().unwrap(); // SIGKILL
            kills += 1;
        } else {
            // SIGTERM: finish the chunk, record `paused`, exit 0.
            let pid = c.child.id().to_string();
            assert!(Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success());
        }
        let status = c.child.wait().unwrap();
        feeder.await.unwrap();
        if round == 3 {
            assert!(status.success(), "SIGTERM exits cleanly: {status:?}");
            let (st, done, total) = progress(&db).unwrap();
            assert_eq!(st, "paused", "SIGTERM records paused");
            assert!(done >= last_processed && done < total, "{done} / {total}");
        }
    }
    assert_eq!(kills, 3);

    // Final run, flat out, to completion.
    let mut c = serve_child(&db, "1.0");
    let deadline = Instant::now() + Duration::from_secs(120);
    while progress(&db).map(|p| p.0) != Some("done".into()) {
        assert!(Instant::now() < deadline, "backfill did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.child.kill().unwrap();
    c.child.wait().unwrap();

    let conn = Connection::open(&db).unwrap();
    assert_last_seen_correct(&conn);
    let (_, done, total) = progress(&db).unwrap();
    assert_eq!(done, total, "every eligible row visited exactly once");
    let orphans_touched: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM transmissions t WHERE last_seen != 0
             AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans_touched, 0);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "ingest flowed during the runs: {}",
        acked.len()
    );
    let mut stmt = conn
        .prepare("SELECT COUNT(*) FROM transmissions t JOIN observations o ON o.transmission_id = t.id WHERE t.hash = ?1")
        .unwrap();
    for h in &acked {
        let n: i64 = stmt.query_row([h], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "acknowledged packet {h} is stored once");
    }
}

/// An open dashboard (a client on `/api/events`) must not keep SIGTERM from
/// stopping the server: the stream ends and the process exits cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_open_event_streams_and_exits() {
    use futures_util::StreamExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let mut c = serve_child(&db, "1.0");
    let resp = reqwest::get(format!("{}/api/events", c.base))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next()).await;
    assert!(matches!(first, Ok(Some(Ok(_)))), "the first event arrives");

    let pid = c.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream ends on SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = c.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "serve still runs 10 s after SIGTERM with an event stream open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "SIGTERM exits cleanly: {status:?}");
}

/// A writer that dies anyway (a test-only fault makes its loop panic outside
/// every per-command guard): healthz says `ready: false` with 503, the panic
/// message is logged, and the process exits non-zero for its supervisor,
/// never living on unable to write.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_writer_reports_not_ready_logs_why_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dead.db");
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(&db)
        .env("RUST_LOG", "warn")
        .env("MESHSCOPE_TEST_FAULT", "writer-panic")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start meshscope serve");
    let base = crate::helpers::listening_base(&mut child);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/api/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "ready before the fault");

    let r = client
        .post(format!("{base}/api/ingest"))
        .header("content-type", "application/json")
        .body(json!({"observer": "dead01", "raw": packet(2, &[], b"the fatal one")}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("writer"), "{body}");

    let h = client
        .get(format!("{base}/api/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.status().as_u16(),
        503,
        "not ready once the writer is gone"
    );
    let h: serde_json::Value = h.json().await.unwrap();
    assert_eq!(h["ready"], false, "{h}");

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "still running 15 s after its writer died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "exits non-zero: {status:?}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("injected writer fault") && logged.contains("writer thread panicked"),
        "{logged}"
    );
}
