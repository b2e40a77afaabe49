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
