//! POST /api/ingest: dedup, last_seen rules, all-or-nothing, and every 4xx path.

use serde_json::json;

use crate::helpers::{advert_payload, hash_of, packet, spawn_app, spawn_with, Options};

#[tokio::test]
async fn same_packet_over_paths_and_observers_is_one_transmission() {
    let app = spawn_app().await;
    let via_a = packet(5, &[0x11, 0x22], b"hello mesh");
    let via_b = packet(5, &[0x33], b"hello mesh");
    assert_eq!(hash_of(&via_a), hash_of(&via_b));

    let (s, body) = app
        .post_json(
            "/api/ingest",
            &json!([
                {"observer": "aa01", "raw": via_a, "snr": 7.5, "rssi": -90.0, "iata": "SEA"},
                {"observer": "bb02", "raw": via_b, "snr": 2.0},
                {"observer": "aa01", "raw": via_b},
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body,
        json!({"accepted": 3, "newTransmissions": 1, "duplicates": 0})
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM transmissions"), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM observations"), 3);

    // The same (transmission, observer, path) again is merged, not duplicated.
    let (s, body) = app
        .post_json("/api/ingest", &json!({"observer": "aa01", "raw": via_a}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"accepted": 1, "newTransmissions": 0, "duplicates": 1})
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM observations"), 3);

    let stored_hash: String = app
        .sql()
        .query_row("SELECT hash FROM transmissions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored_hash, hash_of(&via_a));
    let path: String = app
        .sql()
        .query_row(
            "SELECT o.path_json FROM observations o JOIN observers b ON b.rowid = o.observer_idx
             WHERE b.id = 'bb02'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(path, r#"["33"]"#);
    let (iata, count): (String, i64) = app
        .sql()
        .query_row(
            "SELECT iata, packet_count FROM observers WHERE id = 'aa01'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((iata.as_str(), count), ("SEA", 2));
}

#[tokio::test]
async fn advert_stores_the_public_key() {
    let app = spawn_app().await;
    let raw = packet(4, &[], &advert_payload(0xab));
    let (s, _) = app
        .post_json("/api/ingest", &json!({"observer": "aa01", "raw": raw}))
        .await;
    assert_eq!(s, 200);
    let key: String = app
        .sql()
        .query_row("SELECT from_pubkey FROM transmissions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(key, "ab".repeat(32));
}

#[tokio::test]
async fn last_seen_only_rises() {
    let app = spawn_app().await;
    let raw = packet(2, &[], b"rising");
    let item = json!({"observer": "aa01", "raw": raw});
    assert_eq!(app.post_json("/api/ingest", &item).await.0, 200);
    let first: i64 = app.count("SELECT last_seen FROM transmissions");
    assert!(first > 1_700_000_000, "new transmission gets now: {first}");

    // A later value must never be lowered by a new sighting.
    let future = first + 10_000;
    app.sql()
        .execute("UPDATE transmissions SET last_seen = ?1", [future])
        .unwrap();
    let again = json!({"observer": "bb02", "raw": raw});
    assert_eq!(app.post_json("/api/ingest", &again).await.0, 200);
    assert_eq!(app.count("SELECT last_seen FROM transmissions"), future);

    // A not-yet-backfilled row (0) is raised to the sighting time.
    app.sql()
        .execute("UPDATE transmissions SET last_seen = 0", [])
        .unwrap();
    let third = json!({"observer": "cc03", "raw": raw});
    assert_eq!(app.post_json("/api/ingest", &third).await.0, 200);
    let raised = app.count("SELECT last_seen FROM transmissions");
    assert!(raised >= first, "{raised} < {first}");
}

#[tokio::test]
async fn a_bad_item_rejects_the_whole_request() {
    let app = spawn_app().await;
    let good = packet(2, &[], b"good one");
    let (s, body) = app
        .post_json(
            "/api/ingest",
            &json!([{"observer": "aa01", "raw": good}, {"observer": "aa01", "raw": "05"}]),
        )
        .await;
    assert_eq!(s, 400);
    let err = body["error"].as_str().unwrap();
    assert!(err.starts_with("item 1: raw:"), "{err}");
    assert_eq!(app.count("SELECT COUNT(*) FROM transmissions"), 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM observers"), 0);
}

#[tokio::test]
async fn a_failing_write_rolls_back_only_its_own_request() {
    let app = spawn_app().await;
    // Make the database refuse one specific sighting, for real.
    app.sql()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON observations WHEN NEW.snr = -99
             BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END;",
        )
        .unwrap();
    let a = packet(2, &[], b"first of two");
    let b = packet(2, &[], b"second of two");
    let (s, body) = app
        .post_json(
            "/api/ingest",
            &json!([{"observer": "aa01", "raw": a}, {"observer": "aa01", "raw": b, "snr": -99.0}]),
        )
        .await;
    assert_eq!(s, 500, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("refused by test trigger"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM transmissions"),
        0,
        "nothing half-written"
    );
    // The writer keeps serving.
    let (s, _) = app
        .post_json("/api/ingest", &json!({"observer": "aa01", "raw": a}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM transmissions"), 1);
}

#[tokio::test]
async fn bad_input_gets_400_naming_the_problem() {
    let app = spawn_app().await;
    let good = packet(2, &[], b"x");
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "not valid JSON"),
        ("\"text\"".into(), "object or an array"),
        (
            json!({"observer": "aa01"}).to_string(),
            "item 0: raw: is required",
        ),
        (
            json!({"observer": "aa01", "raw": "xyz1"}).to_string(),
            "item 0: raw: not valid hex",
        ),
        (
            json!({"observer": "aa01", "raw": "0102"}).to_string(),
            "item 0: raw:",
        ),
        (
            json!({"observer": "aa01", "raw": good, "snr": "high"}).to_string(),
            "item 0: snr:",
        ),
        (
            json!({"observer": "aa01", "raw": good, "colour": 1}).to_string(),
            "unknown field",
        ),
        (
            json!({"observer": 12, "raw": good}).to_string(),
            "item 0: observer:",
        ),
    ];
    for (body, want) in cases {
        let (s, resp) = app.post_raw("/api/ingest", body.clone(), &[]).await;
        assert_eq!(s, 400, "{body} -> {resp}");
        let err = resp["error"].as_str().unwrap_or_default();
        assert!(err.contains(want), "{body}: {err:?} lacks {want:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM transmissions"), 0);
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let app = spawn_app().await;
    let big = format!("[{}]", "1,".repeat(600_000) + "1");
    let (s, body) = app.post_raw("/api/ingest", big, &[]).await;
    assert_eq!(s, 413);
    assert!(body["error"].as_str().unwrap().contains("larger than"));
}

#[tokio::test]
async fn api_key_is_required_when_configured() {
    let app = spawn_with(Options {
        api_key: Some("s3cret-key".into()),
        ..Default::default()
    })
    .await;
    let body = json!({"observer": "aa01", "raw": packet(2, &[], b"k")}).to_string();
    let (s, resp) = app.post_raw("/api/ingest", body.clone(), &[]).await;
    assert_eq!(s, 401);
    assert!(resp["error"].as_str().unwrap().contains("API key required"));
    let (s, _) = app
        .post_raw(
            "/api/ingest",
            body.clone(),
            &[("Authorization", "Bearer wrong-key")],
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = app
        .post_raw("/api/ingest", body.clone(), &[("X-API-Key", "s3cret-key")])
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .post_raw(
            "/api/ingest",
            body,
            &[("Authorization", "Bearer s3cret-key")],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM observations"), 1);
}

/// RFC 3339 text of a unix second.
fn rfc3339(secs: i64) -> String {
    shared::timefmt::format_unix_secs(secs)
}

#[tokio::test]
async fn the_observer_timestamp_dates_the_sighting_within_bounds() {
    let app = spawn_app().await;
    let now = meshscope::clock::now_secs();
    let two_hours_ago = now - 7200;
    let heard_then = packet(2, &[], b"heard two hours ago");
    let item = json!({"observer": "aa01", "raw": heard_then, "timestamp": rfc3339(two_hours_ago)});
    assert_eq!(app.post_json("/api/ingest", &item).await.0, 200);
    let row = |raw: &str| -> (i64, i64, String) {
        app.sql()
            .query_row(
                "SELECT o.timestamp, t.last_seen, t.first_seen FROM observations o
                 JOIN transmissions t ON t.id = o.transmission_id WHERE t.hash = ?1",
                [hash_of(raw)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    };
    assert_eq!(
        row(&heard_then),
        (two_hours_ago, two_hours_ago, rfc3339(two_hours_ago)),
        "a new transmission is dated by its observation"
    );

    // Heard again later, by another observer: last_seen rises to that time;
    // an older sighting never lowers it.
    let later = json!({"observer": "bb02", "raw": heard_then, "timestamp": rfc3339(now - 60)});
    assert_eq!(app.post_json("/api/ingest", &later).await.0, 200);
    let older = json!({"observer": "cc03", "raw": heard_then, "timestamp": rfc3339(now - 9000)});
    assert_eq!(app.post_json("/api/ingest", &older).await.0, 200);
    assert_eq!(
        app.count("SELECT last_seen FROM transmissions"),
        now - 60,
        "last_seen is the latest heard time"
    );
    let by_cc03 = app.count(
        "SELECT o.timestamp FROM observations o JOIN observers b ON b.rowid = o.observer_idx
         WHERE b.id = 'cc03'",
    );
    assert_eq!(by_cc03, now - 9000);

    // Out of bounds: the ingest time.
    for (i, ts) in [
        rfc3339(now + 14 * 3600 + 120),
        rfc3339(now - 30 * 86_400 - 120),
        "2020-01-01T00:00:00Z".to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let raw = packet(2, &[], format!("clock off {i}").as_bytes());
        let before = meshscope::clock::now_secs();
        let item = json!({"observer": "aa01", "raw": raw, "timestamp": ts});
        assert_eq!(app.post_json("/api/ingest", &item).await.0, 200);
        let after = meshscope::clock::now_secs();
        let (obs, last, _) = row(&raw);
        assert!(
            (before..=after).contains(&obs) && obs == last,
            "{ts}: stored {obs}, ingest time was {before}..={after}"
        );
    }
}

#[tokio::test]
async fn a_malformed_timestamp_gets_400_and_stores_nothing() {
    let app = spawn_app().await;
    let good = packet(2, &[], b"x");
    for ts in [
        json!("yesterday"),
        json!(1_747_389_600),
        json!("2026-02-30T10:00:00Z"),
        json!({"at": 1}),
    ] {
        let body = json!([
            {"observer": "aa01", "raw": good},
            {"observer": "aa01", "raw": good, "timestamp": ts},
        ]);
        let (s, resp) = app.post_json("/api/ingest", &body).await;
        assert_eq!(s, 400, "{ts} -> {resp}");
        let err = resp["error"].as_str().unwrap_or_default();
        assert!(err.contains("item 1: timestamp:"), "{ts}: {err}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM observations"), 0);
}
