//! Schema versions: an append-only list of steps keyed on `PRAGMA user_version`.
//!
//! An applied step is never edited; a change is a new step at the end. Boot
//! steps only do what is instant on any file: create missing tables, add
//! missing columns (`ADD COLUMN` does not rewrite rows), rebuild the
//! one-row-per-migration bookkeeping table, and build missing indexes on
//! tables under [`BOOT_INDEX_MAX_ROWS`] rows. A missing index on a larger
//! table is not built at all: SQLite builds an index in one statement that
//! holds the writer for its whole run (8.5 s on 14.8M observations here), so
//! boot logs a warning naming it and serves without it. Row rewrites are
//! online migrations (see `crate::migrate`).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{has_index_on, table_columns, DbError};

pub(crate) struct Step {
    pub version: i64,
    pub name: &'static str,
    pub apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

pub(crate) const STEPS: &[Step] = &[
    Step {
        version: 1,
        name: "base tables, or additive upgrade of a CoreScope file",
        apply: step1_base,
    },
    Step {
        version: 2,
        name: "_async_migrations bookkeeping",
        apply: step2_async_migrations,
    },
    Step {
        version: 3,
        name: "_async_migrations.started_at NOT NULL, as CoreScope declares it",
        apply: step3_started_at_not_null,
    },
    Step {
        version: 4,
        name: "maintained counts: transmissions.observation_count, _meshscope_counters, runs' id range",
        apply: step4_counts,
    },
    Step {
        version: 5,
        name: "_async_migrations: the health throttle's reason and the pre-flight estimate",
        apply: step5_throttle_estimate,
    },
    Step {
        version: 6,
        name: "nodes: CoreScope's table (added when missing) with the advert ids that order updates",
        apply: step6_nodes,
    },
];

pub const CURRENT_VERSION: i64 = STEPS.len() as i64;

/// Tables with fewer rows than this are indexed at boot (milliseconds);
/// on larger ones a missing index is only reported (see the module header).
pub(crate) const BOOT_INDEX_MAX_ROWS: i64 = 200_000;

/// An index the code expects, found by its key columns whatever its name.
pub struct IndexSpec {
    pub table: &'static str,
    /// Key columns as `pragma_index_info` reports them (`""` for an expression).
    pub columns: &'static [&'static str],
    pub create_sql: &'static str,
}

pub const INDEXES: &[IndexSpec] = &[
    IndexSpec {
        table: "transmissions",
        columns: &["hash"],
        create_sql: "CREATE UNIQUE INDEX IF NOT EXISTS idx_transmissions_hash ON transmissions(hash)",
    },
    IndexSpec {
        table: "transmissions",
        columns: &["first_seen"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_transmissions_first_seen ON transmissions(first_seen)",
    },
    IndexSpec {
        table: "transmissions",
        columns: &["payload_type"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_transmissions_payload_type ON transmissions(payload_type)",
    },
    IndexSpec {
        table: "transmissions",
        columns: &["id"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_transmissions_last_seen_pending \
                     ON transmissions(id) WHERE last_seen = 0",
    },
    IndexSpec {
        table: "observations",
        columns: &["transmission_id"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_transmission ON observations(transmission_id)",
    },
    IndexSpec {
        table: "observations",
        columns: &["timestamp"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_timestamp ON observations(timestamp)",
    },
    IndexSpec {
        table: "observations",
        columns: &["observer_idx"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_observer ON observations(observer_idx)",
    },
    IndexSpec {
        table: "observations",
        columns: &["transmission_id", "timestamp"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_tx_ts ON observations(transmission_id, timestamp)",
    },
    IndexSpec {
        table: "observations",
        columns: &["transmission_id", "observer_idx", ""],
        create_sql: "CREATE UNIQUE INDEX IF NOT EXISTS idx_observations_dedup \
                     ON observations(transmission_id, observer_idx, COALESCE(path_json, ''))",
    },
];

/// Brings the file to [`CURRENT_VERSION`], one IMMEDIATE transaction per step.
pub(crate) fn upgrade(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > CURRENT_VERSION {
        return Err(DbError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: CURRENT_VERSION,
        });
    }
    for step in STEPS.iter().filter(|s| s.version > found) {
        let fail = |source| DbError::Upgrade {
            path: path.to_path_buf(),
            step: step.version,
            name: step.name,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        (step.apply)(&tx).map_err(fail)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(step = step.version, name = step.name, "schema step applied");
    }
    Ok(())
}

/// Applies the steps after `found` inside `tx` without committing: what
/// `meshscope migrate --dry-run` sees of an older file, rolled back after.
pub fn upgrade_in(tx: &Transaction<'_>, found: i64) -> rusqlite::Result<()> {
    for step in STEPS.iter().filter(|s| s.version > found) {
        (step.apply)(tx)?;
    }
    Ok(())
}

const CREATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS transmissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    raw_hex TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    first_seen TEXT NOT NULL,
    route_type INTEGER,
    payload_type INTEGER,
    payload_version INTEGER,
    decoded_json TEXT,
    from_pubkey TEXT,
    last_seen INTEGER NOT NULL DEFAULT 0,
    created_at TEXT DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS observers (
    id TEXT PRIMARY KEY,
    name TEXT,
    iata TEXT,
    last_seen TEXT,
    first_seen TEXT,
    packet_count INTEGER DEFAULT 0,
    model TEXT,
    firmware TEXT,
    battery_mv INTEGER,
    uptime_secs INTEGER,
    noise_floor REAL
);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transmission_id INTEGER NOT NULL REFERENCES transmissions(id),
    observer_idx INTEGER,
    direction TEXT,
    snr REAL,
    rssi REAL,
    score INTEGER,
    path_json TEXT,
    timestamp INTEGER NOT NULL
);
";

/// Columns an older (CoreScope) file may lack, added without touching rows.
/// `ADD COLUMN` cannot take a non-constant default, so `created_at` comes
/// without one on upgraded files.
const ADDABLE_COLUMNS: &[(&str, &str, &str)] = &[
    ("transmissions", "route_type", "INTEGER"),
    ("transmissions", "payload_type", "INTEGER"),
    ("transmissions", "payload_version", "INTEGER"),
    ("transmissions", "decoded_json", "TEXT"),
    ("transmissions", "from_pubkey", "TEXT"),
    ("transmissions", "last_seen", "INTEGER NOT NULL DEFAULT 0"),
    ("transmissions", "created_at", "TEXT"),
    ("observers", "name", "TEXT"),
    ("observers", "iata", "TEXT"),
    ("observers", "last_seen", "TEXT"),
    ("observers", "first_seen", "TEXT"),
    ("observers", "packet_count", "INTEGER DEFAULT 0"),
    ("observers", "model", "TEXT"),
    ("observers", "firmware", "TEXT"),
    ("observers", "battery_mv", "INTEGER"),
    ("observers", "uptime_secs", "INTEGER"),
    ("observers", "noise_floor", "REAL"),
    ("observations", "observer_idx", "INTEGER"),
    ("observations", "direction", "TEXT"),
    ("observations", "snr", "REAL"),
    ("observations", "rssi", "REAL"),
    ("observations", "score", "INTEGER"),
    ("observations", "path_json", "TEXT"),
];

fn add_missing_columns(
    tx: &Transaction<'_>,
    table: &str,
    wanted: &[(&str, &str)],
) -> rusqlite::Result<()> {
    let have = table_columns(tx, table)?;
    for (col, decl) in wanted {
        if !have.iter().any(|c| c.eq_ignore_ascii_case(col)) {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {col} {decl}"))?;
            tracing::info!(table, column = col, "added missing column");
        }
    }
    Ok(())
}

/// Rows in `table`, estimated from the largest rowid (instant on any size).
pub(crate) fn approx_rows(conn: &Connection, table: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        &format!("SELECT COALESCE(MAX(rowid), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
}

/// The expected indexes `table` lacks.
pub fn missing_indexes(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<Vec<&'static IndexSpec>> {
    let mut out = Vec::new();
    for spec in INDEXES.iter().filter(|s| s.table == table) {
        if !has_index_on(conn, spec.table, spec.columns)? {
            out.push(spec);
        }
    }
    Ok(out)
}

fn step1_base(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(CREATE_TABLES)?;
    for table in ["transmissions", "observers", "observations"] {
        let wanted: Vec<(&str, &str)> = ADDABLE_COLUMNS
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, c, d)| (*c, *d))
            .collect();
        add_missing_columns(tx, table, &wanted)?;
    }
    for table in ["transmissions", "observations"] {
        let rows = approx_rows(tx, table)?;
        for spec in missing_indexes(tx, table)? {
            if rows < BOOT_INDEX_MAX_ROWS {
                tx.execute_batch(spec.create_sql)?;
            } else {
                tracing::warn!(
                    table,
                    rows,
                    index = spec.create_sql,
                    "index missing on a large table; not built at boot (it would hold the writer)"
                );
            }
        }
    }
    Ok(())
}

fn step2_async_migrations(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS _async_migrations (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            error TEXT,
            rows_processed INTEGER NOT NULL DEFAULT 0,
            rows_total INTEGER NOT NULL DEFAULT 0,
            last_update_at TEXT,
            cursor INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0
        )",
    )?;
    // CoreScope's table has only the first five columns; decide by
    // table_info, never by matching an ALTER error's text.
    add_missing_columns(
        tx,
        "_async_migrations",
        &[
            ("started_at", "TEXT"),
            ("ended_at", "TEXT"),
            ("error", "TEXT"),
            ("rows_processed", "INTEGER NOT NULL DEFAULT 0"),
            ("rows_total", "INTEGER NOT NULL DEFAULT 0"),
            ("last_update_at", "TEXT"),
            ("cursor", "INTEGER"),
            ("attempts", "INTEGER NOT NULL DEFAULT 0"),
        ],
    )
}

/// CoreScope declares `started_at TEXT NOT NULL DEFAULT (datetime('now'))`
/// and its readers skip a row whose `started_at` is NULL. Files created by
/// step 2 allowed NULL; SQLite cannot change a column's constraint in place,
/// so the table (one row per migration) is rebuilt with CoreScope's
/// declaration, NULLs filled with the best time known. A table with columns
/// this code does not know is left alone (copying would drop them); writes
/// never store NULL there anyway.
fn step3_started_at_not_null(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let not_null: Option<bool> = tx
        .query_row(
            "SELECT \"notnull\" FROM pragma_table_info('_async_migrations') WHERE name = 'started_at'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if not_null != Some(false) {
        return Ok(());
    }
    let have = table_columns(tx, "_async_migrations")?;
    if have.iter().any(|c| !ASYNC_COLUMNS.contains(&c.as_str())) {
        tracing::warn!(columns = ?have,
            "_async_migrations has columns meshscope does not know; leaving its started_at nullable");
        return Ok(());
    }
    // Another program's view that does not compile (CoreScope recreates
    // `packets_v` at each start) must not stop the rename below.
    tx.pragma_update(None, "legacy_alter_table", true)?;
    tx.execute_batch(
        "CREATE TABLE _async_migrations_v3 (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL DEFAULT (datetime('now')),
            ended_at TEXT,
            error TEXT,
            rows_processed INTEGER NOT NULL DEFAULT 0,
            rows_total INTEGER NOT NULL DEFAULT 0,
            last_update_at TEXT,
            cursor INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO _async_migrations_v3 (name, status, started_at, ended_at, error,
            rows_processed, rows_total, last_update_at, cursor, attempts)
        SELECT name, status, COALESCE(started_at, last_update_at, ended_at, datetime('now')),
            ended_at, error, rows_processed, rows_total, last_update_at, cursor, attempts
        FROM _async_migrations;
        DROP TABLE _async_migrations;
        ALTER TABLE _async_migrations_v3 RENAME TO _async_migrations;",
    )?;
    tx.pragma_update(None, "legacy_alter_table", false)?;
    tracing::info!("_async_migrations rebuilt with started_at NOT NULL");
    Ok(())
}

/// Counts the read path takes from rows instead of scans: each
/// transmission's number of sightings (an additive column; 0 until
/// `counts_backfill_v1` or live ingest sets it), the table of running
/// totals, and the id range a migration run fixed when it started.
fn step4_counts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_missing_columns(
        tx,
        "transmissions",
        &[("observation_count", "INTEGER NOT NULL DEFAULT 0")],
    )?;
    add_missing_columns(tx, "_async_migrations", &[("max_id", "INTEGER")])?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS _meshscope_counters (
            name TEXT PRIMARY KEY,
            n INTEGER NOT NULL DEFAULT 0
        )",
    )
}

fn step5_throttle_estimate(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_missing_columns(
        tx,
        "_async_migrations",
        &[
            ("throttle_reason", "TEXT"),
            ("throttled_until", "TEXT"),
            ("estimated_ms", "INTEGER"),
        ],
    )
}

/// CoreScope's `nodes` table (`applySchema` in `cmd/ingestor/db.go`), made
/// when a file lacks it, plus two columns of meshscope's own: the ids of
/// the newest ADVERT transmission applied to the row and of the newest one
/// that carried a location. Updates compare against them, so ingest and
/// `nodes_backfill_v1` may apply adverts in any order and agree.
fn step6_nodes(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS nodes (
            public_key TEXT PRIMARY KEY, name TEXT, role TEXT, lat REAL, lon REAL,
            last_seen TEXT, first_seen TEXT, advert_count INTEGER DEFAULT 0,
            battery_mv INTEGER, temperature_c REAL, foreign_advert INTEGER DEFAULT 0,
            default_scope TEXT DEFAULT NULL);
         CREATE INDEX IF NOT EXISTS idx_nodes_last_seen ON nodes(last_seen);",
    )?;
    add_missing_columns(
        tx,
        "nodes",
        &[
            ("name", "TEXT"),
            ("role", "TEXT"),
            ("lat", "REAL"),
            ("lon", "REAL"),
            ("last_seen", "TEXT"),
            ("first_seen", "TEXT"),
            ("advert_count", "INTEGER DEFAULT 0"),
            ("advert_tx_id", "INTEGER"),
            ("location_tx_id", "INTEGER"),
        ],
    )?;
    // A node's packets are its ADVERTs' `from_pubkey` (CoreScope has the
    // same index on current files). Like step 1, not built at boot on a
    // large table.
    const FROM_PUBKEY: &str =
        "CREATE INDEX IF NOT EXISTS idx_transmissions_from_pubkey ON transmissions(from_pubkey)";
    let rows = approx_rows(tx, "transmissions")?;
    if rows < BOOT_INDEX_MAX_ROWS {
        tx.execute_batch(FROM_PUBKEY)?;
    } else if !has_index_on(tx, "transmissions", &["from_pubkey"])? {
        tracing::warn!(rows, index = FROM_PUBKEY,
            "index missing on a large table; not built at boot (a node's page reads slowly without it)");
    }
    Ok(())
}

/// The columns of `_async_migrations` after step 2.
const ASYNC_COLUMNS: &[&str] = &[
    "name",
    "status",
    "started_at",
    "ended_at",
    "error",
    "rows_processed",
    "rows_total",
    "last_update_at",
    "cursor",
    "attempts",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_contiguous_and_named_once() {
        for (i, s) in STEPS.iter().enumerate() {
            assert_eq!(s.version, i as i64 + 1, "step {} out of order", s.name);
        }
        let mut names: Vec<_> = STEPS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STEPS.len());
    }

    #[test]
    fn new_file_gets_every_index_and_upgrade_is_idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        upgrade(&mut c, Path::new(":memory:")).unwrap();
        for t in ["transmissions", "observations"] {
            assert!(missing_indexes(&c, t).unwrap().is_empty(), "{t}");
        }
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
        upgrade(&mut c, Path::new(":memory:")).unwrap();
    }

    #[test]
    fn started_at_becomes_not_null_and_keeps_every_row() {
        let mut c = Connection::open_in_memory().unwrap();
        // A file as step 2 left it, with a row whose started_at is NULL.
        c.execute_batch(
            "CREATE TABLE transmissions (id INTEGER PRIMARY KEY, from_pubkey TEXT);
             CREATE TABLE _async_migrations (name TEXT PRIMARY KEY, status TEXT NOT NULL,
                started_at TEXT, ended_at TEXT, error TEXT,
                rows_processed INTEGER NOT NULL DEFAULT 0, rows_total INTEGER NOT NULL DEFAULT 0,
                last_update_at TEXT, cursor INTEGER, attempts INTEGER NOT NULL DEFAULT 0);
             INSERT INTO _async_migrations (name, status, last_update_at, cursor, attempts)
                VALUES ('a', 'running', '2026-01-01T00:00:00.000Z', 42, 2);
             INSERT INTO _async_migrations (name, status, started_at) VALUES ('b', 'done', '2025-01-01 00:00:00');
             PRAGMA user_version = 2;",
        )
        .unwrap();
        upgrade(&mut c, Path::new(":memory:")).unwrap();
        let nn: bool = c
            .query_row(
                "SELECT \"notnull\" FROM pragma_table_info('_async_migrations') WHERE name = 'started_at'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(nn);
        let rows: Vec<(String, String, Option<i64>, i64)> = c
            .prepare(
                "SELECT name, started_at, cursor, attempts FROM _async_migrations ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("a".into(), "2026-01-01T00:00:00.000Z".into(), Some(42), 2),
                ("b".into(), "2025-01-01 00:00:00".into(), None, 0)
            ]
        );
        let err = c
            .execute(
                "INSERT INTO _async_migrations (name, status, started_at) VALUES ('c', 'x', NULL)",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("NOT NULL"), "{err}");
    }

    #[test]
    fn newer_file_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        let err = upgrade(&mut c, Path::new("x.db")).unwrap_err().to_string();
        assert!(err.contains("newer than this meshscope"), "{err}");
    }
}
