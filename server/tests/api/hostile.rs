//! Safe on a hostile network: slow clients, too many connections and event
//! streams, cross-site posts, scoped keys and guessing, floods, and reads
//! that would scan too much or run too long. Real sockets, real child
//! processes where a signal or the process's memory is what is measured.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{listening_base, packet, spawn_with, Options};

const BIN: &str = env!("CARGO_BIN_EXE_meshscope");

/// `meshscope serve` as a child on a fresh file, with `args` and `env`.
fn serve(args: &[&str], env: &[(&str, &str)]) -> (Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("h.db"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start meshscope serve");
    let base = listening_base(&mut child);
    (child, base, dir)
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// A connection that sends a request line and one header, then nothing.
fn stalled_head(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /api/healthz HTTP/1.1\r\nHost: meshscope\r\n")
        .unwrap();
    s
}

/// Whether the server has closed `s` (reads EOF or an error), waiting at most `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // hyper may answer 408 before closing
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_stop_mid_header_are_closed_while_real_requests_answer() {
    let (mut child, base, _dir) = serve(&["--header-timeout-secs", "2"], &[]);
    let a = addr(&base);
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..300).map(|_| stalled_head(&a)).collect();
    // Real requests keep answering meanwhile.
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let r = client
            .get(format!("{base}/api/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = tokio::task::spawn_blocking(move || {
        let mut closed = 0;
        for s in slow.iter_mut() {
            let left = Duration::from_secs(6).saturating_sub(opened.elapsed());
            if closed_within(s, left.max(Duration::from_millis(10))) {
                closed += 1;
            }
        }
        closed
    })
    .await
    .unwrap();
    assert_eq!(
        closed, 300,
        "closed within the 2 s header timeout (+4 s of margin)"
    );
    let r = client
        .get(format!("{base}/api/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_half_sent_bodies_exits_cleanly_within_ten_seconds() {
    let (mut child, base, _dir) = serve(&[], &[]);
    let a = addr(&base);
    let mut half: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&a).unwrap();
            s.write_all(
                b"POST /api/ingest HTTP/1.1\r\nHost: m\r\nContent-Type: application/json\r\n\
                  Content-Length: 1000\r\n\r\n[{\"observer\"",
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let took = t.elapsed();
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("still running 10 s after SIGTERM with half-sent bodies")
    });
    assert!(status.success(), "exits 0: {status:?} after {took:?}");
    half.clear();
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_and_event_streams_over_their_caps_get_503_not_a_hang() {
    let (mut child, base, _dir) =
        serve(&["--max-connections", "8", "--max-event-streams", "2"], &[]);
    let a = addr(&base);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // Two streams are allowed, the third is refused at once.
    let s1 = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .unwrap();
    let s2 = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!((s1.status().as_u16(), s2.status().as_u16()), (200, 200));
    let s3 = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(s3.status().as_u16(), 503);
    let body: Value = s3.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("event streams"),
        "{body}"
    );
    drop((s1, s2, client));
    // Fill the connection slots with stalled clients until the server
    // refuses one: it is answered 503 at once, not left hanging.
    std::thread::sleep(Duration::from_millis(500));
    let mut stalled = Vec::new();
    let refused = loop {
        assert!(
            stalled.len() <= 12,
            "no refusal after {} connections (cap 8)",
            stalled.len()
        );
        let t = Instant::now();
        let mut s = stalled_head(&a);
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        if answer.is_empty() {
            stalled.push(s); // holds a slot, as a slow client does
        } else {
            break (String::from_utf8_lossy(&answer).to_string(), t.elapsed());
        }
    };
    assert!(
        stalled.len() >= 5,
        "the cap was reached by stalled clients: {}",
        stalled.len()
    );
    assert!(refused.0.starts_with("HTTP/1.1 503"), "{refused:?}");
    assert!(
        refused.0.contains("maximum of 8 connections"),
        "{refused:?}"
    );
    assert!(
        refused.1 < Duration::from_secs(1),
        "refused at once: {:?}",
        refused.1
    );
    drop(stalled);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn cross_site_simple_posts_are_refused_and_store_nothing() {
    let app = crate::helpers::spawn_app().await;
    let raw = packet(2, &[], b"cross site");
    let body = json!({"observer": "aa01", "raw": raw}).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (s, resp) = app
            .post_raw("/api/ingest", body.clone(), &[("content-type", ct)])
            .await;
        assert_eq!(s, 415, "{ct}: {resp}");
        assert!(
            resp["error"].as_str().unwrap().contains("application/json"),
            "{resp}"
        );
    }
    let r = app
        .client
        .post(app.url("/api/ingest"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415, "no content type at all");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM transmissions"),
        0,
        "nothing stored"
    );
    let (s, _) = app
        .post_raw(
            "/api/ingest",
            body,
            &[("content-type", "application/json; charset=utf-8")],
        )
        .await;
    assert_eq!(s, 200);
}

#[test]
fn a_public_listen_without_an_ingest_key_refuses_to_start_unless_opted_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("p.db"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MESHSCOPE_INGEST_KEY") && err.contains("--allow-open-ingest"),
        "{err}"
    );
    // With the opt-in, it serves.
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--allow-open-ingest",
            "--db",
        ])
        .arg(dir.path().join("p.db"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = listening_base(&mut child);
    assert!(base.starts_with("http://0.0.0.0:"), "{base}");
    child.kill().unwrap();
    child.wait().unwrap();
    // And with a key (from a file), it serves without the opt-in.
    let key = dir.path().join("ingest.key");
    std::fs::write(&key, "a-long-ingest-key\n").unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--ingest-key-file"])
        .arg(&key)
        .arg("--db")
        .arg(dir.path().join("p.db"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    listening_base(&mut child);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn the_ingest_key_cannot_run_controls_the_operator_key_can_and_guessing_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let ingest_file = dir.path().join("ingest");
    std::fs::write(&ingest_file, "ingest-key-1\n").unwrap();
    let app = spawn_with(Options {
        ingest_key_file: Some(ingest_file),
        operator_key: Some("operator-key-1".into()),
        hold_migrations: true,
        ..Default::default()
    })
    .await;
    let control = |key: &'static str| {
        let (c, u) = (
            app.client.clone(),
            app.url("/api/migrations/tx_last_seen_backfill_v1/pause"),
        );
        async move {
            let r = c.post(u).bearer_auth(key).send().await.unwrap();
            r.status().as_u16()
        }
    };
    assert_eq!(
        control("ingest-key-1").await,
        401,
        "the ingest key runs no control"
    );
    assert_eq!(
        control("operator-key-1").await,
        200,
        "the operator key does"
    );
    let raw = packet(2, &[], b"scoped");
    let ingest = |key: &'static str| {
        let (c, u) = (app.client.clone(), app.url("/api/ingest"));
        let body = json!({"observer": "aa01", "raw": raw}).to_string();
        async move {
            let r = c
                .post(u)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").cloned())
        }
    };
    assert_eq!(ingest("ingest-key-1").await.0, 200);
    // Wrong keys: refused, then throttled (even a right key, for a while).
    // The ingest key tried on a control above was the first wrong one.
    for i in 1..meshscope::api::auth::THROTTLE_FAILURES {
        assert_eq!(ingest("wrong-key-00").await.0, 401, "guess {i}");
    }
    let (s, retry) = ingest("wrong-key-00").await;
    assert_eq!(s, 429);
    assert!(retry.is_some(), "429 says when to come back");
    assert_eq!(
        ingest("ingest-key-1").await.0,
        429,
        "throttled whatever the key"
    );
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The bound on the server's memory growth under the flood: the writer's
/// queue (20,000 sightings), 16 ingest slots of 1 MiB bodies parsed, and the
/// HTTP buffers of the flood's connections, with room to spare.
const FLOOD_RSS_GROWTH_MAX_MB: u64 = 120;

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_gets_only_200_or_503_memory_stays_bounded_and_a_small_request_gets_through_or_a_fast_no(
) {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (mut child, base, _dir) = serve(&[], &[]);
    let pid = child.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Warm up, then take the baseline.
    let r = client
        .get(format!("{base}/api/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let before = peak_rss_kb(pid);
    let body = |n: usize, seed: usize| {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"observer": format!("f{:03x}", seed % 4096), "raw": packet(2, &[], format!("flood {seed} {i}").as_bytes())}))
            .collect();
        Value::Array(items).to_string()
    };
    // Size the flood to this machine: time a 1000-sighting request alone
    // (best of three), then send more at once than the ingest slots plus
    // what the writer can take in within the admission window three times
    // over, so some must be refused however fast the machine is.
    let mut alone = Duration::MAX;
    for k in 0..3 {
        let t = Instant::now();
        let r = client
            .post(format!("{base}/api/ingest"))
            .header("content-type", "application/json")
            .body(body(1000, 100_000 + k))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        alone = alone.min(t.elapsed());
    }
    let admitted_in_window = (3.0 * meshscope::api::INGEST_ADMISSION.as_secs_f64()
        / alone.as_secs_f64())
    .ceil() as usize;
    let clients = (meshscope::api::INGEST_SLOTS + admitted_in_window + 8).min(400);
    eprintln!("flood: a 1000-sighting request takes {alone:?} alone; {clients} clients");
    let stop = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    for c in 0..clients {
        let (client, url, stop) = (client.clone(), format!("{base}/api/ingest"), stop.clone());
        let bodies: Vec<String> = (0..2).map(|k| body(1000, c * 10 + k)).collect();
        flood.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(bodies[k % bodies.len()].clone())
                    .send()
                    .await;
                statuses.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
                k += 1;
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A one-sighting request in the middle of the flood.
    let small_raw = packet(2, &[], b"one small sighting in a flood");
    let t = Instant::now();
    let r = client
        .post(format!("{base}/api/ingest"))
        .header("content-type", "application/json")
        .body(json!({"observer": "5a11", "raw": small_raw}).to_string())
        .send()
        .await
        .unwrap();
    let (small, took) = (r.status().as_u16(), t.elapsed());
    match small {
        200 => assert!(took < Duration::from_secs(2), "stored, but after {took:?}"),
        503 => assert!(
            took < Duration::from_millis(500),
            "refused, but after {took:?}"
        ),
        other => panic!("the small request got {other}"),
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut counts = std::collections::BTreeMap::new();
    for f in flood {
        for s in f.await.unwrap() {
            *counts.entry(s).or_insert(0u64) += 1;
        }
    }
    let peak = peak_rss_kb(pid);
    let grew_mb = peak.saturating_sub(before) / 1024;
    eprintln!("flood: answers {counts:?}; small request {small} in {took:?}; peak RSS {} MB (+{grew_mb} MB)", peak / 1024);
    assert!(counts.keys().all(|s| *s == 200 || *s == 503), "{counts:?}");
    assert!(
        counts.get(&200).copied().unwrap_or(0) > 0,
        "some were stored: {counts:?}"
    );
    assert!(
        counts.get(&503).copied().unwrap_or(0) > 0,
        "a flood over what fits in the admission window was pushed back: {counts:?}"
    );
    assert!(grew_mb < FLOOD_RSS_GROWTH_MAX_MB, "RSS grew {grew_mb} MB");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_are_bounded_named_and_time_limited_and_healthz_does_not_wait_for_them() {
    let app = crate::helpers::spawn_app().await;
    for (path, param) in [
        ("/api/packets?since=99999999999999", "since"),
        ("/api/packets?until=-5", "until"),
        ("/api/packets/timestamps?since=99999999999999", "since"),
        ("/api/packets?offset=10001", "offset"),
        ("/api/packets?cursor=garbage", "cursor"),
        ("/api/observers?limit=0", "limit"),
    ] {
        let (s, body) = app.get(path).await;
        assert_eq!(s, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().starts_with(param),
            "{path}: {body}"
        );
    }
    // Lists have a default limit and a cursor that continues where a page ended.
    let items: Vec<Value> = (0..1_200)
        .map(|i| json!({"observer": "aa01", "raw": packet(2, &[], format!("ts {i}").as_bytes())}))
        .collect();
    for chunk in items.chunks(600) {
        let (s, b) = app
            .post_json("/api/ingest", &Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let r = app
        .client
        .get(app.url("/api/packets/timestamps?since=0"))
        .send()
        .await
        .unwrap();
    let next = r
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_string());
    let first: Vec<String> = r.json().await.unwrap();
    assert_eq!(first.len(), 1_000, "the default limit");
    let next = next.expect("a next page");
    let (s, rest) = app
        .get(&format!("/api/packets/timestamps?since=0&cursor={next}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        rest.as_array().unwrap().len(),
        200,
        "the rest, none repeated"
    );
    // Packets page by cursor too: pages never repeat or skip, while new
    // packets arrive between page fetches. Newest first, the new ones are
    // above the first page and never show; oldest first, every one shows.
    let mut fresh = 0;
    for order in ["desc", "asc"] {
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/packets?order={order}&limit=100&cursor={c}"),
                None => format!("/api/packets?order={order}&limit=100"),
            };
            let (s, page) = app.get(&path).await;
            assert_eq!(s, 200, "{page}");
            for p in page["packets"].as_array().unwrap() {
                assert!(seen.insert(p["id"].as_i64().unwrap()), "repeated {p}");
            }
            let more: Vec<Value> = (0..3)
                .map(|_| {
                    fresh += 1;
                    json!({"observer": "aa01", "raw": packet(2, &[], format!("fresh {fresh}").as_bytes())})
                })
                .collect();
            let (s, b) = app.post_json("/api/ingest", &Value::Array(more)).await;
            assert_eq!(s, 200, "{b}");
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let stored = app.count("SELECT COUNT(*) FROM transmissions");
        let ids: Vec<i64> = seen.iter().copied().collect();
        if order == "desc" {
            // Every packet stored before the first page, none after.
            assert_eq!(ids.len(), 1_200);
            assert_eq!(ids, (1..=1_200).collect::<Vec<i64>>());
        } else {
            // All of them, the ones that arrived during the walk included
            // (all but the 3 sent after the last page).
            assert_eq!(ids.len() as i64, stored - 3);
        }
    }
    // A hash prefix filter finds what LIKE found.
    let (_, page) = app.get("/api/packets?limit=1").await;
    let hash = page["packets"][0]["hash"].as_str().unwrap().to_string();
    let (_, found) = app.get(&format!("/api/packets?hash={}", &hash[..6])).await;
    assert!(found["packets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["hash"] == hash.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_over_the_time_limit_is_stopped_with_503_and_healthz_stays_correct() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let src = crate::fairness::legacy_of(80_000);
    let (_keep, db) = crate::fairness::copy_of(&src);
    // A slow read that is legitimate: an observer with many sightings, all
    // of the oldest packets, so a page probes all 80K transmissions (newest
    // first) before it finds one.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "INSERT INTO observers (id, name) VALUES ('old-only', 'old-only');
             INSERT INTO observations (transmission_id, observer_idx, timestamp)
               SELECT id, (SELECT rowid FROM observers WHERE id = 'old-only'), 1700000000
               FROM transmissions ORDER BY id LIMIT 6000;",
        )
        .unwrap();
    }
    let app = spawn_with(Options {
        db_path: Some(db),
        query_timeout_ms: Some(10),
        readers: Some(1),
        hold_migrations: true,
        ..Default::default()
    })
    .await;
    let slow = "/api/packets?observer=old-only";
    let (s, body) = app.get(slow).await;
    assert_eq!(s, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    // The one reader busy with slow reads: healthz answers, with the truth.
    let busy: Vec<_> = (0..8)
        .map(|_| {
            let (c, u) = (app.client.clone(), app.url(slow));
            tokio::spawn(async move { c.get(u).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let t = Instant::now();
    let (s, h) = app.get("/api/healthz").await;
    assert_eq!(s, 200);
    assert!(h.get("async_migrations_error").is_none(), "{h}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "healthz waited {:?}",
        t.elapsed()
    );
    for b in busy {
        let s = b.await.unwrap().unwrap();
        assert!(s == 503 || s == 200, "{s}");
    }
}

#[tokio::test]
async fn the_dashboard_is_served_with_security_headers_and_no_dotfiles_or_escaping_links() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><script type=\"module\">import init from '/app.js';</script><body></body>",
    )
    .unwrap();
    std::fs::write(dist.join(".env"), "SECRET=1").unwrap();
    std::fs::create_dir(dist.join(".git")).unwrap();
    std::fs::write(dist.join(".git").join("config"), "x").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), dist.join("escape.txt")).unwrap();
    let app = spawn_with(Options {
        dist: Some(dist.clone()),
        ..Default::default()
    })
    .await;
    for path in ["/.env", "/.git/config", "/%2eenv", "/escape.txt"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 404, "{path}");
        assert!(
            !text.contains("SECRET") && !text.contains("outside"),
            "{path}: {text}"
        );
    }
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"),
        "{csp}"
    );
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    // The hash is that of the inline loader, exactly.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(b"import init from '/app.js';");
    let b64 = base64_std(&digest);
    assert!(csp.contains(&format!("'sha256-{b64}'")), "{csp}");
}

fn base64_std(bytes: &[u8]) -> String {
    // An independent encoder for the check (the server has its own).
    let table: Vec<char> = ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(['+', '/'])
        .collect();
    let mut bits = String::new();
    for b in bytes {
        bits.push_str(&format!("{b:08b}"));
    }
    while !bits.len().is_multiple_of(6) {
        bits.push('0');
    }
    let mut out: String = bits
        .as_bytes()
        .chunks(6)
        .map(|c| table[usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()])
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}
