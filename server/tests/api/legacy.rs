//! Opening files written by others: a CoreScope-shaped legacy file is
//! upgraded additively and served; a file from a newer meshscope is refused.

use serde_json::json;

use crate::helpers::{packet, spawn_with, try_spawn, Options};

/// An older CoreScope file, from CoreScope's own DDL: no `last_seen`,
/// `user_version` 0, columns meshscope does not know (`radio`,
/// `channel_hash`), and the 5-column `_async_migrations`.
pub fn write_corescope_file(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(crate::corescope::DDL_BASE).unwrap();
    c.execute_batch(
        "ALTER TABLE transmissions ADD COLUMN channel_hash TEXT DEFAULT NULL;
         INSERT INTO _async_migrations VALUES ('some_other_migration', 'done',
            '2025-01-01 00:00:00', '2025-01-01 00:01:00', NULL);
         INSERT INTO observers (id, name, iata, radio) VALUES ('aa01', 'Old Observer', 'SEA', '915MHz');
         INSERT INTO transmissions (raw_hex, hash, first_seen, payload_type, channel_hash)
            VALUES ('0500', 'feedfacefeedface', '2025-01-01T00:00:00Z', 1, 'ch1');
         INSERT INTO observations (transmission_id, observer_idx, timestamp, path_json)
            VALUES (1, 1, 1735689600, '[]'), (1, 1, 1735689700, '[\"AB\"]');",
    )
    .unwrap();
}

#[tokio::test]
async fn corescope_file_is_upgraded_additively_and_served() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(write_corescope_file)),
        hold_migrations: true,
        ..Default::default()
    })
    .await;
    let (s, page) = app.get("/api/packets").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["total"], 1);
    let p = &page["packets"][0];
    assert_eq!(p["hash"], "feedfacefeedface");
    assert_eq!(p["observationCount"], 2);
    assert_eq!(p["lastSeen"], serde_json::Value::Null, "not backfilled yet");

    let c = app.sql();
    // Rows untouched, unknown columns kept, missing columns added.
    let (ch, ls): (String, i64) = c
        .query_row(
            "SELECT channel_hash, last_seen FROM transmissions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ch.as_str(), ls), ("ch1", 0));
    let radio: String = c
        .query_row("SELECT radio FROM observers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(radio, "915MHz");
    let cols = meshscope::db::table_columns(&c, "_async_migrations").unwrap();
    for want in [
        "rows_processed",
        "rows_total",
        "last_update_at",
        "cursor",
        "attempts",
    ] {
        assert!(
            cols.iter().any(|c| c == want),
            "{want} missing from {cols:?}"
        );
    }
    let done: String = c
        .query_row(
            "SELECT status FROM _async_migrations WHERE name = 'some_other_migration'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(done, "done");
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, meshscope::db::schema::CURRENT_VERSION);

    // Ingest works on the upgraded file.
    let (s, body) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "aa01", "raw": packet(2, &[], b"new")}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM transmissions"), 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM observers"), 1);
}

#[tokio::test]
async fn newer_schema_version_is_refused() {
    let result = try_spawn(Options {
        prepare: Some(Box::new(|p| {
            let c = rusqlite::Connection::open(p).unwrap();
            c.pragma_update(None, "user_version", 999).unwrap();
        })),
        ..Default::default()
    })
    .await;
    let err = format!("{:#}", result.err().expect("must refuse"));
    assert!(err.contains("schema version 999"), "{err}");
    assert!(err.contains("newer than this meshscope"), "{err}");
}
