//! Migration status surfaces through the real router on real files:
//! healthz / perf / perf/async-migrations, the singleflight cache, operator
//! controls with auth, Server-Sent Events, and /metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use meshscope::migrate::{last_seen::TxLastSeenBackfill, EngineConfig};
use serde_json::Value;

use crate::engine::legacy_file;
use crate::helpers::{spawn_with, Options, TestApp};

const LS: &str = "tx_last_seen_backfill_v1";

fn slow() -> EngineConfig {
    EngineConfig {
        duty: 0.05,
        min_batch: 200,
        max_batch: 200,
        ..EngineConfig::default()
    }
}

/// A server on a legacy file of `n` transmissions running only the last_seen backfill.
async fn legacy_app(n: u64, engine: EngineConfig, api_key: Option<&str>, hold: bool) -> TestApp {
    spawn_with(Options {
        prepare: Some(Box::new(move |p| {
            let dir = p.parent().unwrap();
            let made = legacy_file(dir, n, 2);
            std::fs::rename(made, p).unwrap();
        })),
        migrations: Some(vec![Arc::new(TxLastSeenBackfill)]),
        engine: Some(engine),
        api_key: api_key.map(str::to_string),
        hold_migrations: hold,
        ..Default::default()
    })
    .await
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

async fn wait_status(app: &TestApp, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, h) = app.get("/api/healthz").await;
        if find(&h["async_migrations"], LS)["status"] == status {
            return h;
        }
        assert!(Instant::now() < deadline, "never reached {status}: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_migrations_means_empty_arrays_not_null() {
    let app = spawn_with(Options {
        migrations: Some(vec![]),
        ..Default::default()
    })
    .await;
    let (s, h) = app.get("/api/healthz").await;
    assert_eq!(s, 200);
    assert_eq!(h["async_migrations"], serde_json::json!([]));
    assert_eq!(h["async_migrations_running"], false);
    assert!(h.get("async_migrations_error").is_none());
    let (s, list) = app.get("/api/perf/async-migrations").await;
    assert_eq!((s, list), (200, serde_json::json!([])));
    let (_, perf) = app.get("/api/perf").await;
    assert_eq!(perf["async_migrations"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn running_numbers_move_then_done_clears_the_running_flag() {
    let app = legacy_app(6_000, slow(), None, false).await;
    let first = wait_status(&app, "running").await;
    assert_eq!(first["async_migrations_running"], true);
    let a = find(&first["async_migrations"], LS).clone();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, second) = app.get("/api/healthz").await;
    let b = find(&second["async_migrations"], LS).clone();
    assert!(
        b["rowsProcessed"].as_i64() > a["rowsProcessed"].as_i64(),
        "progress must move between reads: {a} then {b}"
    );
    assert_eq!(b["rowsTotal"], 6_000);
    assert!(b["percent"].as_f64().unwrap() > 0.0);
    assert!(b["startedAt"].is_string());
    let (s, list) = app.get("/api/perf/async-migrations").await;
    assert_eq!(s, 200);
    assert!(find(&list, LS)["rowsProcessed"].as_i64().unwrap() > 0);
    let (_, perf) = app.get("/api/perf").await;
    assert!(find(&perf["async_migrations"], LS)["status"].is_string());

    // Speed up: no need to wait for the gentle duty.
    let done = wait_status(&app, "done").await;
    assert_eq!(done["async_migrations_running"], false);
    let m = find(&done["async_migrations"], LS);
    assert_eq!(m["percent"], 100.0);
    assert!(m["endedAt"].is_string());
    assert_eq!(m["etaSec"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migration_shows_its_error() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(|p| {
            let made = legacy_file(p.parent().unwrap(), 2_000, 2);
            std::fs::rename(made, p).unwrap();
            let c = rusqlite::Connection::open(p).unwrap();
            c.execute_batch(
                "CREATE TRIGGER no_backfill BEFORE UPDATE OF last_seen ON transmissions
                 BEGIN SELECT RAISE(ABORT, 'last_seen is frozen by the operator'); END;",
            )
            .unwrap();
        })),
        migrations: Some(vec![Arc::new(TxLastSeenBackfill)]),
        ..Default::default()
    })
    .await;
    let h = wait_status(&app, "failed").await;
    let m = find(&h["async_migrations"], LS);
    assert!(
        m["error"].as_str().unwrap().contains("last_seen is frozen"),
        "{m}"
    );
    assert_eq!(h["async_migrations_running"], false);
    let (_, list) = app.get("/api/perf/async-migrations").await;
    assert!(find(&list, LS)["error"]
        .as_str()
        .unwrap()
        .contains("frozen"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_read_failure_fails_closed_and_is_not_cached() {
    let app = legacy_app(500, EngineConfig::default(), None, true).await;
    // Make the bookkeeping table unreadable, for real.
    app.sql()
        .execute_batch("ALTER TABLE _async_migrations RENAME TO _async_migrations_hidden")
        .unwrap();
    let (s, h) = app.get("/api/healthz").await;
    assert_eq!(s, 200, "healthz stays 200 while the process serves");
    assert_eq!(h["async_migrations_running"], true, "fail closed");
    assert!(
        h["async_migrations_error"]
            .as_str()
            .unwrap()
            .contains("_async_migrations"),
        "{h}"
    );
    assert!(
        h.get("async_migrations").is_none(),
        "no list that could pass for 'none'"
    );

    let (s, body) = app.get("/api/perf/async-migrations").await;
    assert_eq!(s, 500);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("migration status unavailable"));

    let r = app.client.get(app.url("/api/perf")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let header = r
        .headers()
        .get("x-async-migrations-error")
        .expect("header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(header.contains("_async_migrations"), "{header}");
    let perf: Value = r.json().await.unwrap();
    assert!(perf["asyncMigrationsError"].is_string());
    assert!(
        perf["endpoints"]["/api/healthz"]["count"].as_u64().unwrap() >= 1,
        "the rest still flows"
    );

    // Repaired: the very next call reads again (the error was not cached).
    app.sql()
        .execute_batch("ALTER TABLE _async_migrations_hidden RENAME TO _async_migrations")
        .unwrap();
    let (_, h) = app.get("/api/healthz").await;
    assert!(h.get("async_migrations_error").is_none(), "{h}");
    assert_eq!(find(&h["async_migrations"], LS)["status"], "pending");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_herd_on_an_expired_cache_causes_one_database_read() {
    let app = legacy_app(500, EngineConfig::default(), None, true).await;
    app.get("/api/healthz").await;
    // Let the cache expire (its TTL, and a margin for a loaded machine).
    tokio::time::sleep(meshscope::status::DEFAULT_TTL + Duration::from_millis(200)).await;
    let before = app.status.db_reads();
    let calls = (0..200).map(|_| {
        let client = app.client.clone();
        let url = app.url("/api/healthz");
        tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|r| *r.as_ref().unwrap() == 200));
    assert_eq!(
        app.status.db_reads() - before,
        1,
        "singleflight: one read for the herd"
    );

    // Direct calls, with no value cached at all, also share one read.
    let cold = legacy_app(300, EngineConfig::default(), None, true).await;
    let before = cold.status.db_reads();
    let calls = (0..200).map(|_| {
        let s = cold.status.clone();
        tokio::spawn(async move { s.records().await.map(|r| r.len()) })
    });
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.unwrap().unwrap(), 1);
    }
    assert_eq!(cold.status.db_reads() - before, 1);
}

async fn post(app: &TestApp, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = app.client.post(app.url(path));
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn controls_need_a_key_and_follow_the_transitions() {
    // No key configured: changes are disabled.
    let open = legacy_app(500, slow(), None, true).await;
    let (s, body) = post(
        &open,
        &format!("/api/migrations/{LS}/pause"),
        Some("anything1"),
    )
    .await;
    assert_eq!(s, 403, "{body}");

    let key = "operator-key-1";
    let app = legacy_app(8_000, slow(), Some(key), false).await;
    wait_status(&app, "running").await;
    let p = |a: &str| format!("/api/migrations/{LS}/{a}");
    assert_eq!(post(&app, &p("pause"), None).await.0, 401);
    assert_eq!(post(&app, &p("pause"), Some("wrong-key-99")).await.0, 401);
    let (s, body) = post(&app, "/api/migrations/nope_v1/pause", Some(key)).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(post(&app, &p("explode"), Some(key)).await.0, 404);

    let (s, info) = post(&app, &p("pause"), Some(key)).await;
    assert_eq!((s, info["status"].as_str()), (200, Some("paused")));
    let (s, body) = post(&app, &p("pause"), Some(key)).await;
    assert_eq!(s, 409);
    assert!(body["error"].as_str().unwrap().contains("cannot pause"));
    let (s, info) = post(&app, &p("resume"), Some(key)).await;
    assert_eq!((s, info["status"].as_str()), (200, Some("running")));
    let (s, _) = post(&app, &p("retry"), Some(key)).await;
    assert_eq!(s, 409, "retry a running migration");
    let (s, info) = post(&app, &p("cancel"), Some(key)).await;
    assert_eq!((s, info["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(post(&app, &p("resume"), Some(key)).await.0, 409);
    let (s, info) = post(&app, &p("retry"), Some(key)).await;
    assert_eq!((s, info["status"].as_str()), (200, Some("pending")));
    assert_eq!(info["rowsProcessed"], 0);

    // Pause and cancel from two tabs at once: one consistent outcome.
    wait_status(&app, "running").await;
    let (pause, cancel) = (p("pause"), p("cancel"));
    let (a, b) = tokio::join!(
        post(&app, &pause, Some(key)),
        post(&app, &cancel, Some(key))
    );
    let stored: String = app
        .sql()
        .query_row(
            "SELECT status FROM _async_migrations WHERE name = ?1",
            [LS],
            |r| r.get(0),
        )
        .unwrap();
    let (_, h) = app.get("/api/healthz").await;
    let shown = find(&h["async_migrations"], LS)["status"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stored, "cancelled",
        "cancel applies after pause and before it: {a:?} {b:?}"
    );
    assert_eq!(shown, "cancelled");
    assert_eq!(b.0, 200);
    assert!(a.0 == 200 || a.0 == 409, "{a:?}");

    // Retry runs it to completion.
    post(&app, &p("retry"), Some(key)).await;
    let fast_done = wait_status(&app, "done").await;
    assert_eq!(
        find(&fast_done["async_migrations"], LS)["attempts"],
        3,
        "two retries after the first run"
    );
    assert_eq!(post(&app, &p("resume"), Some(key)).await.0, 409);
    assert_eq!(post(&app, &p("cancel"), Some(key)).await.0, 409);
}

/// Reads SSE events (name, data) from a streaming response.
struct Sse {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    async fn next(&mut self, timeout: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && name == "message" {
                    continue; // a comment or retry-only block
                }
                return Some((name, data));
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// The next `migrations` event's record of `LS`, within `within`.
async fn next_record(sse: &mut Sse, within: Duration) -> (Value, Value) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (name, data) = sse.next(left).await.expect("a migrations event in time");
        if name == "migrations" {
            let v: Value = serde_json::from_str(&data).unwrap();
            return (find(&v["async_migrations"], LS).clone(), v);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_follow_progress_and_controls_at_once_and_report_done() {
    // About 60 chunks at a 2% duty: seconds of progress, many events.
    let gentle = EngineConfig {
        duty: 0.02,
        ..slow()
    };
    let key = "operator-key-1";
    let app = legacy_app(12_000, gentle, Some(key), false).await;
    let r = app.client.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut sse = Sse {
        stream: Box::pin(r.bytes_stream()),
        buf: String::new(),
    };
    let (name, first) = sse
        .next(Duration::from_secs(5))
        .await
        .expect("initial event");
    assert_eq!(name, "migrations");
    let first: Value = serde_json::from_str(&first).unwrap();
    assert!(first["async_migrations"].is_array());
    // A change the stream is woken for reaches it within a second; the
    // stream's fallback poll is far slower, so only the wakeup passes this.
    // Controls change the status at a known moment (their answer): each of
    // six must be seen within a second (by the poll alone, each would be
    // seen in time with a chance of 1 in 5: all six, 1 in 15,625).
    let poll = meshscope::api::EVENTS_POLL;
    assert!(poll >= Duration::from_secs(5));
    let mut record = loop {
        let (m, _) = next_record(&mut sse, poll * 2).await;
        if m["status"] == "running" {
            break m;
        }
    };
    for op in ["pause", "resume", "pause", "resume", "pause", "resume"] {
        let (s, info) = post(&app, &format!("/api/migrations/{LS}/{op}"), Some(key)).await;
        assert_eq!(s, 200, "{op}: {info}");
        let want = if op == "pause" { "paused" } else { "running" };
        let answered = Instant::now();
        loop {
            let (m, _) = next_record(&mut sse, Duration::from_secs(1)).await;
            if m["status"] == want {
                record = m;
                break;
            }
        }
        assert!(
            answered.elapsed() < Duration::from_secs(1),
            "{op} seen after {:?}",
            answered.elapsed()
        );
    }
    // Then progress, never backwards, to done. Each event comes with a
    // change; chunks run at a 2% duty, so allow the poll's interval twice.
    let mut last = record["rowsProcessed"].as_i64().unwrap();
    let mut updates = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (m, v) = next_record(&mut sse, poll * 2).await;
        let processed = m["rowsProcessed"].as_i64().unwrap();
        assert!(processed >= last, "{processed} after {last}");
        last = processed;
        updates += 1;
        if m["status"] == "done" {
            assert_eq!(v["async_migrations_running"], false);
            break;
        }
        assert!(Instant::now() < deadline);
    }
    assert!(updates >= 3, "several progress events, got {updates}");
}

/// The last_seen backfill under a name no other test uses: the metrics
/// recorder is process-wide, and tests run side by side.
struct MetricsProbe;

impl meshscope::migrate::Migration for MetricsProbe {
    fn name(&self) -> &'static str {
        "metrics_probe_v1"
    }
    fn count(&self, c: &rusqlite::Connection, max_id: i64) -> rusqlite::Result<i64> {
        TxLastSeenBackfill.count(c, max_id)
    }
    fn chunk(
        &self,
        c: &rusqlite::Connection,
        a: i64,
        b: i64,
        u: meshscope::migrate::Upkeep,
    ) -> Result<i64, meshscope::migrate::MigrationError> {
        TxLastSeenBackfill.chunk(c, a, b, u)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_expose_migrations_ingest_and_http() {
    use meshscope::migrate::Migration;
    let app = spawn_with(Options {
        prepare: Some(Box::new(|p| {
            let made = legacy_file(p.parent().unwrap(), 1_000, 2);
            std::fs::rename(made, p).unwrap();
        })),
        migrations: Some(vec![Arc::new(MetricsProbe)]),
        ..Default::default()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, h) = app.get("/api/healthz").await;
        if find(&h["async_migrations"], MetricsProbe.name())["status"] == "done" {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.get("/api/stats").await;
    let text = app.get_text("/metrics").await;
    for want in [
        "meshscope_migration_rows_processed{migration=\"metrics_probe_v1\"} 1000",
        "meshscope_migration_rows_total{migration=\"metrics_probe_v1\"} 1000",
        "meshscope_migration_status{migration=\"metrics_probe_v1\",status=\"done\"} 1",
        "meshscope_migration_status{migration=\"metrics_probe_v1\",status=\"running\"} 0",
        "meshscope_migration_chunk_seconds_bucket",
        "meshscope_migration_batch_size",
        "meshscope_http_request_duration_seconds_bucket{route=\"/api/stats\"",
    ] {
        assert!(text.contains(want), "missing {want} in:\n{text}");
    }
}

/// The server applies exactly the shared rule (`Control::applies_to`, which
/// the dashboard uses to enable its buttons): for every stored status and
/// every control, 200 when the rule allows it and 409 when it refuses.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_accepts_a_control_exactly_when_the_shared_rule_does() {
    use shared::migration::{Control, MigrationStatus};
    let statuses = [
        ("pending_async", None),
        ("running", Some(10)),
        ("paused", Some(10)),
        ("done", Some(10)),
        // At the attempt limit, so boot does not retry it by itself.
        ("failed", Some(10)),
        ("cancelled", Some(10)),
    ];
    for (stored, cursor) in statuses {
        let status = MigrationStatus::from_stored(stored);
        for op in Control::ALL {
            let app = spawn_with(Options {
                api_key: Some("operator-key-1".into()),
                hold_migrations: true,
                prepare: Some(Box::new(move |p| {
                    let c = meshscope::db::open_writer(p).unwrap();
                    c.execute(
                        "INSERT INTO _async_migrations (name, status, started_at, cursor, attempts)
                         VALUES (?1, ?2, '2026-01-01T00:00:00.000Z', ?3, 3)",
                        rusqlite::params![LS, stored, cursor],
                    )
                    .unwrap();
                })),
                migrations: Some(vec![std::sync::Arc::new(
                    meshscope::migrate::last_seen::TxLastSeenBackfill,
                )]),
                ..Default::default()
            })
            .await;
            let (_, h) = app.get("/api/healthz").await;
            assert_eq!(find(&h["async_migrations"], LS)["status"], status.as_str());
            let (s, body) = post(
                &app,
                &format!("/api/migrations/{LS}/{}", op.action()),
                Some("operator-key-1"),
            )
            .await;
            let want = if op.applies_to(status) { 200 } else { 409 };
            assert_eq!(s, want, "{} on {stored}: {body}", op.action());
        }
    }
}
