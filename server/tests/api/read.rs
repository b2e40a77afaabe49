//! Read API: stats, packets (filters, paging, bad params), timestamps,
//! observers, healthz, perf, unknown routes and the SPA fallback.

use serde_json::{json, Value};

use crate::helpers::{advert_payload, hash_of, packet, spawn_app, spawn_with, Options, TestApp};

/// Three transmissions: an ADVERT heard by two observers, a GRP_TXT and a TXT_MSG.
async fn fill(app: &TestApp) -> (String, String, String) {
    let advert = packet(4, &[1], &advert_payload(0x42));
    let grp = packet(5, &[], b"group text");
    let txt = packet(2, &[7, 8], b"direct text");
    let (s, _) = app
        .post_json(
            "/api/ingest",
            &json!([
                {"observer": "aa01", "raw": advert, "iata": "SEA"},
                {"observer": "bb02", "raw": advert, "iata": "PDX"},
                {"observer": "aa01", "raw": grp},
                {"observer": "bb02", "raw": txt},
            ]),
        )
        .await;
    assert_eq!(s, 200);
    (advert, grp, txt)
}

#[tokio::test]
async fn stats_count_what_was_stored() {
    let app = spawn_app().await;
    fill(&app).await;
    app.wait_counts_ready().await;
    let (s, st) = app.get("/api/stats").await;
    assert_eq!(s, 200);
    assert_eq!(st["totalTransmissions"], 3);
    assert_eq!(st["totalObservations"], 4);
    assert_eq!(st["totalObservers"], 2);
    assert_eq!(st["packetsLastHour"], 3);
    assert_eq!(st["packetsLast24h"], 3);
    assert_eq!(
        st["byPayloadType"],
        json!({"ADVERT": 1, "GRP_TXT": 1, "TXT_MSG": 1})
    );
}

#[tokio::test]
async fn packets_list_filters_and_pages() {
    let app = spawn_app().await;
    let (advert, grp, txt) = fill(&app).await;
    let (s, page) = app.get("/api/packets").await;
    assert_eq!(s, 200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 50);
    let pk = page["packets"].as_array().unwrap();
    // Newest first by default.
    assert_eq!(pk[0]["hash"], hash_of(&txt));
    assert_eq!(pk[2]["hash"], hash_of(&advert));
    assert_eq!(pk[2]["observationCount"], 2);
    assert_eq!(pk[2]["payloadType"], 4);
    assert_eq!(pk[2]["routeType"], 1);
    assert_eq!(pk[2]["fromPubkey"], "42".repeat(32));
    assert!(pk[2]["lastSeen"].is_string());
    assert!(pk[2]["firstSeen"].as_str().unwrap().ends_with('Z'));
    assert_eq!(pk[2]["rawHex"].as_str().unwrap().to_lowercase(), advert);

    let hashes = |v: &Value| -> Vec<String> {
        v["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["hash"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, p) = app.get("/api/packets?type=ADVERT").await;
    assert_eq!(hashes(&p), vec![hash_of(&advert)]);
    let (_, p) = app.get("/api/packets?type=5").await;
    assert_eq!(hashes(&p), vec![hash_of(&grp)]);
    let (_, p) = app.get("/api/packets?observer=bb02&order=asc").await;
    assert_eq!(hashes(&p), vec![hash_of(&advert), hash_of(&txt)]);
    assert_eq!(p["total"], 2);
    let (_, p) = app.get("/api/packets?observer=ffff").await;
    assert_eq!(p["total"], 0);
    let prefix = &hash_of(&grp)[..6];
    let (_, p) = app.get(&format!("/api/packets?hash={prefix}")).await;
    assert_eq!(hashes(&p), vec![hash_of(&grp)]);
    let (_, p) = app.get("/api/packets?limit=1&offset=1").await;
    assert_eq!(hashes(&p), vec![hash_of(&grp)]);
    assert_eq!(p["total"], 3);
    let (_, p) = app
        .get("/api/packets?since=2000-01-01T00:00:00Z&until=4102444800")
        .await;
    assert_eq!(p["total"], 3);
    let (_, p) = app.get("/api/packets?until=2000-01-01T00:00:00Z").await;
    assert_eq!(p["total"], 0);
}

#[tokio::test]
async fn bad_packet_params_get_400_naming_the_param() {
    let app = spawn_app().await;
    for (q, param) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("type=BOGUS", "type"),
        ("since=last-tuesday", "since"),
        ("until=soon", "until"),
        ("order=sideways", "order"),
        ("hash=not-hex!", "hash"),
    ] {
        let (s, body) = app.get(&format!("/api/packets?{q}")).await;
        assert_eq!(s, 400, "{q}");
        let err = body["error"].as_str().unwrap();
        assert!(err.starts_with(&format!("{param}:")), "{q}: {err}");
    }
}

#[tokio::test]
async fn timestamps_are_ascending_and_need_since() {
    let app = spawn_app().await;
    fill(&app).await;
    let (s, body) = app.get("/api/packets/timestamps").await;
    assert_eq!(s, 400);
    assert!(body["error"].as_str().unwrap().starts_with("since:"));
    let (s, body) = app.get("/api/packets/timestamps?since=0").await;
    assert_eq!(s, 200);
    let list: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(list.len(), 3);
    assert!(list.windows(2).all(|w| w[0] <= w[1]), "{list:?}");
    let (_, body) = app.get("/api/packets/timestamps?since=4102444800").await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn observers_list_ids_regions_and_counts() {
    let app = spawn_app().await;
    fill(&app).await;
    let (s, body) = app.get("/api/observers").await;
    assert_eq!(s, 200);
    let mut rows = body.as_array().unwrap().clone();
    rows.sort_by_key(|r| r["id"].as_str().unwrap().to_string());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "aa01");
    assert_eq!(rows[0]["iata"], "SEA");
    assert_eq!(rows[0]["packetCount"], 2);
    assert_eq!(rows[1]["iata"], "PDX");
    assert!(rows[1]["lastSeen"].is_string());
}

#[tokio::test]
async fn healthz_and_perf_count_requests_by_route() {
    let app = spawn_app().await;
    let (s, h) = app.get("/api/healthz").await;
    assert_eq!(s, 200);
    assert_eq!(h["ready"], true);
    assert!(h["version"].is_string());
    assert!(h["uptimeSec"].is_u64());
    for _ in 0..3 {
        app.get("/api/stats").await;
    }
    app.get("/api/packets?limit=5").await;
    app.get("/api/packets?limit=6").await;
    let (s, perf) = app.get("/api/perf").await;
    assert_eq!(s, 200);
    assert_eq!(perf["endpoints"]["/api/stats"]["count"], 3);
    assert_eq!(
        perf["endpoints"]["/api/packets"]["count"], 2,
        "keyed by template, not URL"
    );
    assert_eq!(perf["endpoints"]["/api/healthz"]["count"], 1);
    assert!(perf["totalRequests"].as_u64().unwrap() >= 6);
    let st = &perf["endpoints"]["/api/stats"];
    for k in ["p50Ms", "p95Ms", "p99Ms", "maxMs"] {
        assert!(st[k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert!(st["p50Ms"].as_f64() <= st["maxMs"].as_f64());
}

#[tokio::test]
async fn unknown_api_routes_are_json_404_and_pages_fall_back_to_index() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<html>dashboard</html>").unwrap();
    let app = spawn_with(Options {
        dist: Some(dist.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let (s, body) = app.get("/api/nope").await;
    assert_eq!(s, 404);
    assert!(body["error"].as_str().unwrap().contains("/api/nope"));
    let r = app.client.get(app.url("/migrations")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("dashboard"));
}

/// `cargo xtask dist` writes `.br` and `.gz` beside the dashboard's files:
/// a browser that takes brotli gets the `.br` bytes, one that takes only
/// gzip the `.gz`, anyone else the file itself.
#[tokio::test]
async fn the_dashboard_is_served_precompressed() {
    let dist = tempfile::tempdir().unwrap();
    let d = dist.path();
    std::fs::write(d.join("index.html"), "<html>dashboard</html>").unwrap();
    std::fs::write(d.join("index.html.br"), b"brotli-index").unwrap();
    std::fs::write(d.join("app_bg.wasm"), b"\0asm-plain").unwrap();
    std::fs::write(d.join("app_bg.wasm.br"), b"brotli-bytes").unwrap();
    std::fs::write(d.join("app_bg.wasm.gz"), b"gzip-bytes").unwrap();
    let app = spawn_with(Options {
        dist: Some(d.to_path_buf()),
        ..Default::default()
    })
    .await;
    let fetch = |path: &'static str, accept: &'static str| {
        let req = app
            .client
            .get(app.url(path))
            .header("accept-encoding", accept);
        async move {
            let r = req.send().await.unwrap();
            let enc = r
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string());
            let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
            (enc, ctype, r.bytes().await.unwrap().to_vec())
        }
    };
    let (enc, ctype, body) = fetch("/app_bg.wasm", "gzip, deflate, br").await;
    assert_eq!(
        (enc.as_deref(), body.as_slice()),
        (Some("br"), &b"brotli-bytes"[..])
    );
    assert_eq!(ctype, "application/wasm");
    let (enc, _, body) = fetch("/app_bg.wasm", "gzip").await;
    assert_eq!(
        (enc.as_deref(), body.as_slice()),
        (Some("gzip"), &b"gzip-bytes"[..])
    );
    let (enc, _, body) = fetch("/app_bg.wasm", "identity").await;
    assert_eq!((enc, body.as_slice()), (None, &b"\0asm-plain"[..]));
    // A page path falls back to index.html, precompressed too.
    let (enc, _, body) = fetch("/observers", "br").await;
    assert_eq!(
        (enc.as_deref(), body.as_slice()),
        (Some("br"), &b"brotli-index"[..])
    );
}

#[tokio::test]
async fn openapi_document_lists_every_api_route() {
    let app = spawn_app().await;
    let (s, doc) = app.get("/api/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let contract = [
        ("get", "/api/healthz"),
        ("get", "/api/perf"),
        ("get", "/api/perf/async-migrations"),
        ("get", "/api/events"),
        ("post", "/api/migrations/{name}/{action}"),
        ("get", "/api/stats"),
        ("get", "/api/packets"),
        ("get", "/api/packets/timestamps"),
        ("get", "/api/observers"),
        ("get", "/api/nodes"),
        ("get", "/api/nodes/{publicKey}"),
        ("get", "/api/packets/{hash}"),
        ("post", "/api/ingest"),
        ("get", "/api/openapi.json"),
        ("get", "/api/resolve-hops"),
        ("get", "/api/live"),
        ("get", "/api/map"),
    ];
    for (method, path) in contract {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the document"
        );
    }
    // And everything documented is really routed (not the catch-all 404).
    for (path, item) in paths {
        let concrete = path.replace("{name}", "x").replace("{action}", "pause");
        for method in item.as_object().unwrap().keys() {
            let req = match method.as_str() {
                // Streams: routed when they answer as one, never read to the end.
                "get" if concrete == "/api/events" || concrete == "/api/live" => {
                    let r = app.client.get(app.url(&concrete)).send().await.unwrap();
                    assert_eq!(r.status(), 200, "{path}");
                    assert!(r.headers()["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("text/event-stream"));
                    continue;
                }
                "get" => app.client.get(app.url(&concrete)),
                "post" => app.client.post(app.url(&concrete)),
                other => panic!("unexpected method {other}"),
            };
            let r = req.send().await.unwrap();
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("no API route"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    assert!(doc["components"]["schemas"]["MigrationInfo"].is_object());
    assert!(doc["components"]["schemas"]["Healthz"].is_object());
}

#[tokio::test]
async fn stats_follow_writes() {
    let app = spawn_app().await;
    fill(&app).await;
    app.wait_counts_ready().await;
    let (_, st) = app.get("/api/stats").await;
    assert_eq!(st["totalTransmissions"], 3);
    let (s, _) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "aa01", "raw": packet(2, &[], b"later")}),
        )
        .await;
    assert_eq!(s, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let (_, fresh) = app.get("/api/stats").await;
        if fresh["totalTransmissions"] == 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stats never refreshed: {fresh}"
        );
    }
}

#[tokio::test]
async fn healthz_and_the_status_list_answer_304_to_pollers_that_have_them() {
    let app = spawn_app().await;
    for path in ["/api/healthz", "/api/perf/async-migrations"] {
        // healthz carries the uptime in seconds: a second may tick between
        // two requests, so a few tries.
        let mut not_modified = false;
        for _ in 0..5 {
            let r = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(r.headers()["cache-control"], "max-age=1", "{path}");
            let etag = r.headers()["etag"].to_str().unwrap().to_string();
            assert!(!r.bytes().await.unwrap().is_empty());
            let again = app
                .client
                .get(app.url(path))
                .header("if-none-match", &etag)
                .send()
                .await
                .unwrap();
            if again.status() == 304 {
                assert_eq!(again.headers()["etag"], etag.as_str());
                assert!(again.bytes().await.unwrap().is_empty(), "{path}");
                not_modified = true;
                break;
            }
            assert_eq!(again.status(), 200, "{path}");
        }
        assert!(not_modified, "{path}: never 304");
        // An ETag it no longer has gets the whole answer.
        let r = app
            .client
            .get(app.url(path))
            .header("if-none-match", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_ok());
    }
}
