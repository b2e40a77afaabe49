//! Faults injected for real: the disk holding the database fills up during
//! a backfill while ingest flows, then space comes back.
//!
//! The database lives on a small tmpfs mounted for the test (the tests run
//! as root in CI, as `cargo xtask test` documents); the filesystem really
//! fills, so SQLite's own writes (WAL appends, checkpoints) hit `ENOSPC`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::engine::assert_last_seen_correct;
use crate::helpers::{hash_of, packet, spawn_with, Options, TestApp};

const LS: &str = meshscope::migrate::last_seen::NAME;

/// A tmpfs of `size` bytes mounted on a temp folder, unmounted on drop.
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub(crate) fn mount(size: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "the disk-full test mounts a small tmpfs, which needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem holding `dir` with a file, up to ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 256 * 1024];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.flush();
    path
}

/// Posts one new packet every 20 ms; records each answer's status by hash.
fn ingest_loop(
    app: &TestApp,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, u16, Value)>> {
    let (client, url) = (app.client.clone(), app.url("/api/ingest"));
    tokio::spawn(async move {
        let mut out = Vec::new();
        let mut i = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let raw = packet(2, &[], format!("during the full disk {i}").as_bytes());
            i += 1;
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .json(&json!({"observer": "d15c", "raw": raw}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            out.push((hash_of(&raw), status, body));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out
    })
}

async fn migration(app: &TestApp) -> Value {
    let (s, list) = app.get("/api/perf/async-migrations").await;
    assert_eq!(s, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == LS)
        .cloned()
        .unwrap()
}

async fn wait_for(app: &TestApp, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let m = migration(app).await;
        if pred(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {m}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_ingest_pauses_the_backfill_and_everything_resumes_when_space_returns()
{
    let _heavy = crate::helpers::HEAVY.lock().await;
    let fs = Tmpfs::mount(96 * 1024 * 1024);
    let db = fs.path().join("full.db");
    let seeded = db.clone();
    let app = spawn_with(Options {
        db_path: Some(db.clone()),
        prepare: Some(Box::new(move |_| {
            let dir = tempfile::tempdir().unwrap();
            let built = crate::engine::legacy_file(dir.path(), 20_000, 4);
            std::fs::copy(&built, &seeded).unwrap();
        })),
        // Slow on purpose, so the disk fills in the middle of the backfill;
        // no free-space floor, so the disk really fills under the chunks
        // (the floor's own test is in throttle.rs).
        engine: Some(meshscope::migrate::EngineConfig {
            health: meshscope::health::HealthConfig {
                min_free_bytes: 0,
                ..Default::default()
            },
            ..crate::engine::engine_cfg(200, 200, 0.02)
        }),
        ..Default::default()
    })
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = ingest_loop(&app, stop.clone());
    wait_for(&app, "backfill progress", 60, |m| {
        (m["status"] == "running" || m["status"] == "throttled")
            && m["rowsProcessed"].as_i64().unwrap() > 0
    })
    .await;

    // Empty the WAL (so the next write must allocate), then fill the disk.
    app.sql()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let filler = fill(fs.path());
    let full_at = Instant::now();

    // Ingest: refused with 507 and a body naming the full disk.
    let refused: Value = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, body) = app
                .post_raw(
                    "/api/ingest",
                    json!({"observer": "d15d", "raw": packet(2, &[], b"probe while full")})
                        .to_string(),
                    &[("content-type", "application/json")],
                )
                .await;
            if s == 507 {
                break body;
            }
            assert!(
                Instant::now() < deadline,
                "ingest never refused: {s} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(
        refused["error"].as_str().unwrap().contains("disk is full"),
        "{refused}"
    );
    // The backfill pauses, saying why, and counts as still in progress.
    let paused = wait_for(&app, "the backfill to pause", 30, |m| {
        m["status"] == "paused"
    })
    .await;
    assert!(
        paused["error"].as_str().unwrap().contains("disk is full"),
        "{paused}"
    );
    let (s, h) = app.get("/api/healthz").await;
    assert_eq!(
        (s, &h["ready"], &h["async_migrations_running"]),
        (200, &Value::Bool(true), &Value::Bool(true)),
        "{h}"
    );
    // Reads keep answering.
    let (s, page) = app.get("/api/packets?limit=5").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["packets"].as_array().unwrap().len(), 5);
    // Stay full a little longer: retries must not give up or spin.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(full_at.elapsed())).await;

    // Space returns: the backfill resumes by itself and finishes.
    std::fs::remove_file(&filler).unwrap();
    let done = wait_for(&app, "the backfill to finish", 120, |m| {
        m["status"] == "done"
    })
    .await;
    assert_eq!(done["rowsProcessed"], done["rowsTotal"], "{done}");
    assert_eq!(
        done["attempts"], 1,
        "a pause is not a failed attempt: {done}"
    );
    // Writes are served again.
    let (s, body) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "d15d", "raw": packet(2, &[], b"after")}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = feeder.await.unwrap();

    let c = app.sql();
    assert_last_seen_correct(&c);
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut stmt = c
        .prepare("SELECT COUNT(*) FROM transmissions WHERE hash = ?1")
        .unwrap();
    let (mut stored, mut full, mut other) = (0, 0, Vec::new());
    for (hash, status, body) in &answers {
        let n: i64 = stmt.query_row([hash], |r| r.get(0)).unwrap();
        match status {
            200 => {
                assert_eq!(n, 1, "acknowledged {hash} is stored");
                stored += 1;
            }
            507 => {
                assert_eq!(n, 0, "refused {hash} left nothing half-written");
                full += 1;
            }
            _ => other.push((status, body.clone())),
        }
    }
    assert!(other.is_empty(), "only 200 and 507: {other:?}");
    assert!(stored > 10 && full > 0, "{stored} stored, {full} refused");
    let last = answers.last().unwrap();
    assert_eq!(last.1, 200, "the last answers are served again: {last:?}");
}

/// The names of the threads of process `pid` (Linux `/proc`), as the
/// kernel keeps them (15 bytes).
fn threads_of(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

fn assert_writer_threads_alive(pid: u32, when: &str) {
    let names = threads_of(pid);
    for want in ["meshscope-write", "meshscope-check"] {
        assert!(
            names.iter().any(|n| n == want),
            "{when}: thread {want} is gone ({names:?})"
        );
    }
}

/// The whole disk fills, the server's own log file on it too (so every log
/// line fails to be written), with no free-space floor and ingest flowing.
/// The writer and the checkpointer must live through it: ingest is refused
/// with 507 while full and accepted again within seconds of space
/// returning, and the backfill resumes by itself to an exact result.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_holding_the_log_too_never_stops_the_writer() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let fs = Tmpfs::mount(48 * 1024 * 1024);
    let db = fs.path().join("full.db");
    {
        let dir = tempfile::tempdir().unwrap();
        let built = crate::engine::legacy_file(dir.path(), 20_000, 4);
        std::fs::copy(&built, &db).unwrap();
    }
    let log = std::fs::File::create(fs.path().join("meshscope.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshscope"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--migration-duty",
            "0.2",
            "--throttle-min-free-mb",
            "0",
            "--durability",
            "full",
        ])
        .arg("--db")
        .arg(&db)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = crate::helpers::listening_base(&mut child);
    let pid = child.id();
    let client = reqwest::Client::new();
    let backfill = |client: reqwest::Client, base: String| async move {
        let list: Value = client
            .get(format!("{base}/api/perf/async-migrations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == LS)
            .cloned()
            .unwrap()
    };
    let post = |client: reqwest::Client, base: String, raw: String| async move {
        let r = client
            .post(format!("{base}/api/ingest"))
            .json(&json!({"observer": "f011", "raw": raw}))
            .send()
            .await;
        match r {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!(e.to_string())),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = backfill(client.clone(), base.clone()).await;
        if m["rowsProcessed"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the backfill never started: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Fill the disk while ingest flows, one new packet every 20 ms.
    let filler = fill(fs.path());
    let mut answers: Vec<(String, u16)> = Vec::new();
    let full_until = Instant::now() + Duration::from_secs(4);
    let mut i = 0u64;
    let mut refused = 0;
    while Instant::now() < full_until {
        let raw = packet(2, &[], format!("full disk, log too {i}").as_bytes());
        i += 1;
        let (s, body) = post(client.clone(), base.clone(), raw.clone()).await;
        assert!(matches!(s, 200 | 507), "while full: {s} {body}");
        if s == 507 {
            refused += 1;
            assert!(
                body["error"].as_str().unwrap().contains("disk is full"),
                "{body}"
            );
        }
        answers.push((hash_of(&raw), s));
        assert_writer_threads_alive(pid, "while the disk is full");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused > 0, "the disk never filled under ingest");
    let h: Value = client
        .get(format!("{base}/api/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["ready"], true, "{h}");

    // Space comes back: writes are accepted within seconds.
    std::fs::remove_file(&filler).unwrap();
    let back_by = Instant::now() + Duration::from_secs(10);
    loop {
        let raw = packet(2, &[], format!("space again {i}").as_bytes());
        i += 1;
        let (s, body) = post(client.clone(), base.clone(), raw.clone()).await;
        answers.push((hash_of(&raw), s));
        if s == 200 {
            break;
        }
        assert_eq!(s, 507, "{body}");
        assert!(Instant::now() < back_by, "writes still refused: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The backfill resumes by itself and ends exact.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = backfill(client.clone(), base.clone()).await;
        if m["status"] == "done" {
            assert_eq!(m["rowsProcessed"], m["rowsTotal"], "{m}");
            break;
        }
        assert_ne!(m["status"], "failed", "{m}");
        assert!(
            Instant::now() < deadline,
            "the backfill never finished: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_writer_threads_alive(pid, "after the disk was full");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "meshscope exits cleanly: {status}");

    let c = rusqlite::Connection::open(&db).unwrap();
    assert_last_seen_correct(&c);
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut stmt = c
        .prepare("SELECT COUNT(*) FROM transmissions WHERE hash = ?1")
        .unwrap();
    for (hash, status) in &answers {
        let n: i64 = stmt.query_row([hash], |r| r.get(0)).unwrap();
        assert_eq!(n, i64::from(*status == 200), "{hash} answered {status}");
    }
    // The log says lines were lost while it could not be written.
    let text = std::fs::read_to_string(fs.path().join("meshscope.log")).unwrap();
    assert!(text.contains("could not be written"), "{text}");
}
