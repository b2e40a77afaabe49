//! Schema versions: an append-only list of steps keyed on `PRAGMA user_version`.
//!
//! An applied step is never edited; a change is a new step at the end. Boot
//! steps only do what is instant on any file: create missing tables, add
//! missing columns (`ADD COLUMN` does not rewrite rows), rebuild small
//! tables of meshscope's own, and build missing indexes on tables under
//! [`BOOT_INDEX_MAX_ROWS`] rows. A missing index on a larger table is not
//! built at boot: SQLite builds an index in one statement that holds the
//! writer for its whole run (24.9 s on 14.75M sightings here), so it is
//! built online (`crate::migrate::index_build`). A **unique** index is built
//! at boot only on an empty table: rows another program wrote may break it
//! (CoreScope files hold repeated sightings), and merging them is the online
//! `observations_dedup_v1`'s work, which runs before the index builds. Row rewrites are online migrations (see
//! `crate::migrate`).
//!
//! All the steps a start applies run in **one** transaction, and the file's
//! journal mode is switched to WAL only after it commits (see
//! `db::open_writer_with`): a start that fails leaves the file exactly as it
//! was.
//!
//! Two-way compatibility with CoreScope (step 7): every table, column and
//! `_migrations` mark of CoreScope's current schema (`cmd/ingestor/db.go`
//! `applySchema`, `internal/dbschema`, at Kpa-clawbot/CoreScope a06ac8ac) is
//! present after an upgrade, so CoreScope's ingestor and server start on a
//! file meshscope wrote; meshscope's own bookkeeping lives in `_meshscope_*`
//! tables, never as extra columns of tables CoreScope copies with `SELECT *`
//! (`nodes` → `inactive_nodes`).

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
    Step {
        version: 7,
        name: "CoreScope's current tables and columns; node bookkeeping, merge archive and write marks in tables of meshscope's own",
        apply: step7_corescope_current,
    },
    Step {
        version: 8,
        name: "_meshscope_node_regions: the regions whose observers heard each node",
        apply: step8_node_regions,
    },
];

pub const CURRENT_VERSION: i64 = STEPS.len() as i64;

/// Tables with fewer rows than this are indexed at boot (milliseconds);
/// on larger ones a missing index is only reported (see the module header).
pub(crate) const BOOT_INDEX_MAX_ROWS: i64 = 200_000;

/// An index the code expects, found by its key columns whatever its name.
pub struct IndexSpec {
    pub name: &'static str,
    /// The online build's migration name (`migrate::index_build`).
    pub job: &'static str,
    pub table: &'static str,
    /// The table columns the index reads (key, expression, `WHERE`), the
    /// rowid aside.
    pub uses: &'static [&'static str],
    /// Key columns as `pragma_index_info` reports them (`""` for an expression).
    pub columns: &'static [&'static str],
    pub create_sql: &'static str,
}

/// Index names are CoreScope's where CoreScope has the same index, so
/// neither program builds a second copy under another name.
pub const INDEXES: &[IndexSpec] = &[
    IndexSpec {
        name: "idx_transmissions_hash",
        job: "build_idx_transmissions_hash",
        table: "transmissions",
        uses: &["hash"],
        columns: &["hash"],
        create_sql: "CREATE UNIQUE INDEX IF NOT EXISTS idx_transmissions_hash ON transmissions(hash)",
    },
    IndexSpec {
        name: "idx_transmissions_first_seen",
        job: "build_idx_transmissions_first_seen",
        table: "transmissions",
        uses: &["first_seen"],
        columns: &["first_seen"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_transmissions_first_seen ON transmissions(first_seen)",
    },
    IndexSpec {
        name: "idx_transmissions_payload_type",
        job: "build_idx_transmissions_payload_type",
        table: "transmissions",
        uses: &["payload_type"],
        columns: &["payload_type"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_transmissions_payload_type ON transmissions(payload_type)",
    },
    IndexSpec {
        name: "idx_tx_last_seen_zero",
        job: "build_idx_tx_last_seen_zero",
        table: "transmissions",
        uses: &["last_seen"],
        columns: &["id"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_tx_last_seen_zero ON transmissions(id) WHERE last_seen=0",
    },
    IndexSpec {
        name: "idx_transmissions_from_pubkey",
        job: "build_idx_transmissions_from_pubkey",
        table: "transmissions",
        uses: &["from_pubkey"],
        columns: &["from_pubkey"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_transmissions_from_pubkey ON transmissions(from_pubkey)",
    },
    IndexSpec {
        name: "idx_observations_transmission_id",
        job: "build_idx_observations_transmission_id",
        table: "observations",
        uses: &["transmission_id"],
        columns: &["transmission_id"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_transmission_id ON observations(transmission_id)",
    },
    IndexSpec {
        name: "idx_observations_timestamp",
        job: "build_idx_observations_timestamp",
        table: "observations",
        uses: &["timestamp"],
        columns: &["timestamp"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_timestamp ON observations(timestamp)",
    },
    IndexSpec {
        name: "idx_observations_observer_idx",
        job: "build_idx_observations_observer_idx",
        table: "observations",
        uses: &["observer_idx"],
        columns: &["observer_idx"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_observer_idx ON observations(observer_idx)",
    },
    IndexSpec {
        name: "idx_observations_tx_ts",
        job: "build_idx_observations_tx_ts",
        table: "observations",
        uses: &["transmission_id", "timestamp"],
        columns: &["transmission_id", "timestamp"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_tx_ts ON observations(transmission_id, timestamp)",
    },
    IndexSpec {
        name: "idx_observations_observer_idx_timestamp",
        job: "build_idx_observations_observer_idx_timestamp",
        table: "observations",
        uses: &["observer_idx", "timestamp"],
        columns: &["observer_idx", "timestamp"],
        create_sql: "CREATE INDEX IF NOT EXISTS idx_observations_observer_idx_timestamp \
                     ON observations(observer_idx, timestamp)",
    },
    IndexSpec {
        name: "idx_observations_dedup",
        job: "build_idx_observations_dedup",
        table: "observations",
        uses: &["transmission_id", "observer_idx", "path_json"],
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
    if found == CURRENT_VERSION {
        return Ok(());
    }
    // Every pending step in one transaction: a step that fails rolls back
    // the ones before it too, so a failed start changes nothing.
    let first = &STEPS[found.max(0) as usize];
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|source| DbError::Upgrade {
            path: path.to_path_buf(),
            step: first.version,
            name: first.name,
            source,
        })?;
    for step in STEPS.iter().filter(|s| s.version > found) {
        let fail = |source| DbError::Upgrade {
            path: path.to_path_buf(),
            step: step.version,
            name: step.name,
            source,
        };
        (step.apply)(&tx).map_err(fail)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(fail)?;
        tracing::info!(step = step.version, name = step.name, "schema step applied");
    }
    if injected_last_step_failure() {
        let last = &STEPS[STEPS.len() - 1];
        return Err(DbError::Upgrade {
            path: path.to_path_buf(),
            step: last.version,
            name: last.name,
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some("injected failure (MESHSCOPE_TEST_FAULT=schema-last-step)".into()),
            ),
        });
    }
    tx.commit().map_err(|source| DbError::Upgrade {
        path: path.to_path_buf(),
        step: CURRENT_VERSION,
        name: STEPS[STEPS.len() - 1].name,
        source,
    })?;
    Ok(())
}

/// A fault injected on purpose by tests (debug builds only): with
/// `MESHSCOPE_TEST_FAULT=schema-last-step`, the upgrade fails after its
/// last step, before it commits, as a step failing on odd data would.
fn injected_last_step_failure() -> bool {
    cfg!(debug_assertions)
        && std::env::var("MESHSCOPE_TEST_FAULT").is_ok_and(|v| v == "schema-last-step")
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
    if have.is_empty() {
        // No such table (a file from before it, or none of CoreScope's).
        return Ok(());
    }
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
    build_boot_indexes(tx)
}

/// Builds the missing expected indexes that boot may build (see the module
/// header): a plain one on a table under [`BOOT_INDEX_MAX_ROWS`] rows, a
/// unique one only on an empty table; the others are logged.
fn build_boot_indexes(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for table in ["transmissions", "observations"] {
        if !table_exists(tx, table)? {
            continue;
        }
        let rows = approx_rows(tx, table)?;
        for spec in missing_indexes(tx, table)? {
            let unique = spec.create_sql.contains("UNIQUE");
            if rows == 0 || (!unique && rows < BOOT_INDEX_MAX_ROWS) {
                tx.execute_batch(spec.create_sql)?;
            } else if unique {
                tracing::info!(
                    table,
                    index = spec.name,
                    job = spec.job,
                    "unique index missing on a table with rows; built online after the merges"
                );
            } else {
                tracing::info!(
                    table,
                    rows,
                    index = spec.name,
                    job = spec.job,
                    "index missing on a large table; built online (not at boot: it would hold the writer)"
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

/// CoreScope's tables that meshscope does not write but CoreScope's own SQL
/// reads, created as CoreScope creates them (`cmd/ingestor/db.go`
/// `applySchema`, `internal/dbschema`), with their indexes.
const CORESCOPE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS neighbor_edges (
    node_a TEXT NOT NULL,
    node_b TEXT NOT NULL,
    count INTEGER DEFAULT 1,
    last_seen TEXT,
    PRIMARY KEY (node_a, node_b)
);
CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS observer_metrics (
    observer_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    noise_floor REAL,
    tx_air_secs INTEGER,
    rx_air_secs INTEGER,
    recv_errors INTEGER,
    battery_mv INTEGER,
    packets_sent INTEGER,
    packets_recv INTEGER,
    PRIMARY KEY (observer_id, timestamp)
);
CREATE INDEX IF NOT EXISTS idx_observer_metrics_timestamp ON observer_metrics(timestamp);
CREATE TABLE IF NOT EXISTS dropped_packets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT,
    raw_hex TEXT,
    reason TEXT NOT NULL,
    observer_id TEXT,
    observer_name TEXT,
    node_pubkey TEXT,
    node_name TEXT,
    dropped_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_dropped_observer ON dropped_packets(observer_id);
CREATE INDEX IF NOT EXISTS idx_dropped_node ON dropped_packets(node_pubkey);
CREATE TABLE IF NOT EXISTS client_receptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rx_pubkey TEXT NOT NULL,
    heard_key TEXT NOT NULL,
    heard_keylen INTEGER NOT NULL,
    rssi INTEGER,
    snr REAL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    pos_acc_m REAL,
    rx_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    src TEXT NOT NULL,
    UNIQUE(rx_pubkey, heard_key, rx_at)
);
CREATE INDEX IF NOT EXISTS idx_client_recept_heard_geo ON client_receptions(heard_key, heard_keylen, lat, lon);
CREATE INDEX IF NOT EXISTS idx_client_recept_latlon ON client_receptions(lat, lon);
CREATE INDEX IF NOT EXISTS idx_client_recept_rxat ON client_receptions(rx_at);
CREATE TABLE IF NOT EXISTS client_observers (
    pubkey TEXT PRIMARY KEY,
    name TEXT,
    last_seen TEXT
);
";

/// Columns of CoreScope's current DDL on the tables meshscope writes, in
/// CoreScope's order, added when missing.
const CORESCOPE_COLUMNS: &[(&str, &str, &str)] = &[
    ("transmissions", "channel_hash", "TEXT DEFAULT NULL"),
    ("transmissions", "scope_name", "TEXT DEFAULT NULL"),
    ("observations", "resolved_path", "TEXT"),
    ("observations", "raw_hex", "TEXT"),
    ("observers", "client_version", "TEXT"),
    ("observers", "radio", "TEXT"),
    ("observers", "inactive", "INTEGER DEFAULT 0"),
    ("observers", "last_packet_at", "TEXT DEFAULT NULL"),
    ("observers", "clock_skew_seconds", "INTEGER DEFAULT NULL"),
    ("observers", "clock_skew_count_24h", "INTEGER DEFAULT 0"),
    ("observers", "clock_last_naive_at", "TEXT DEFAULT NULL"),
    ("observers", "can_relay", "INTEGER DEFAULT 1"),
    ("observers", "can_relay_seen", "INTEGER DEFAULT 0"),
    ("observer_metrics", "packets_sent", "INTEGER"),
    ("observer_metrics", "packets_recv", "INTEGER"),
];

/// `nodes` columns after CoreScope's base ones, in CoreScope's order; the
/// same go on `inactive_nodes`, which CoreScope fills with
/// `INSERT … SELECT * FROM nodes` (by position).
const NODE_COLUMNS: &[(&str, &str)] = &[
    ("battery_mv", "INTEGER"),
    ("temperature_c", "REAL"),
    ("foreign_advert", "INTEGER DEFAULT 0"),
    ("default_scope", "TEXT DEFAULT NULL"),
    ("multibyte_sup", "INTEGER NOT NULL DEFAULT 0"),
    ("multibyte_evidence", "TEXT"),
];

/// The indexes CoreScope creates at boot (by name, so CoreScope's own
/// `CREATE INDEX IF NOT EXISTS` finds them), built here on empty tables
/// only: on a file with rows they are CoreScope's business, or meshscope's
/// [`INDEXES`].
const CORESCOPE_INDEXES: &[(&str, &str)] = &[
    ("transmissions", "CREATE INDEX IF NOT EXISTS idx_transmissions_hash ON transmissions(hash)"),
    ("transmissions", "CREATE INDEX IF NOT EXISTS idx_tx_channel_hash ON transmissions(channel_hash) WHERE payload_type = 5"),
    ("transmissions", "CREATE INDEX IF NOT EXISTS idx_tx_scope_name ON transmissions(scope_name) WHERE scope_name IS NOT NULL"),
    ("transmissions", "CREATE INDEX IF NOT EXISTS idx_tx_last_seen_zero ON transmissions(id) WHERE last_seen=0"),
    ("observations", "CREATE INDEX IF NOT EXISTS idx_obs_tx_resolved_path ON observations(transmission_id) \
                      WHERE resolved_path IS NOT NULL AND resolved_path != '' AND resolved_path != '[]'"),
    ("observers", "CREATE INDEX IF NOT EXISTS idx_observers_last_seen ON observers(last_seen)"),
    ("nodes", "CREATE INDEX IF NOT EXISTS idx_nodes_foreign_advert ON nodes(foreign_advert) WHERE foreign_advert = 1"),
    ("inactive_nodes", "CREATE INDEX IF NOT EXISTS idx_inactive_nodes_last_seen ON inactive_nodes(last_seen)"),
];

/// CoreScope's view over sightings (it drops and recreates it at every
/// start; a file meshscope creates has it from the first).
const PACKETS_VIEW: &str = "
CREATE VIEW IF NOT EXISTS packets_v AS
    SELECT o.id, COALESCE(o.raw_hex, t.raw_hex) AS raw_hex,
           datetime(o.timestamp, 'unixepoch') AS timestamp,
           obs.id AS observer_id, obs.name AS observer_name,
           o.direction, o.snr, o.rssi, o.score, t.hash, t.route_type,
           t.payload_type, t.payload_version, o.path_json, t.decoded_json,
           t.created_at
    FROM observations o
    JOIN transmissions t ON t.id = o.transmission_id
    LEFT JOIN observers obs ON obs.rowid = o.observer_idx AND (obs.inactive IS NULL OR obs.inactive = 0);
";

/// The `_migrations` marks CoreScope's ingestor writes on a fresh file
/// (`applySchema`, `dbschema.Apply`, its async index build), each standing
/// for a one-shot step whose result a file meshscope creates already has.
/// Written only on a file created by this start: on another program's file
/// they are that program's.
pub(crate) const CORESCOPE_MARKS: &[&str] = &[
    "advert_count_unique_v1",
    "noise_floor_real_v1",
    "node_telemetry_v1",
    "obs_timestamp_index_v1",
    "observer_metrics_v1",
    "observer_metrics_ts_idx",
    "observers_inactive_v1",
    "observer_metrics_packets_v1",
    "channel_hash_v1",
    "dropped_packets_v1",
    "observers_last_packet_at_v1",
    "observers_clock_naive_v1",
    "cleanup_legacy_null_hash_ts",
    "foreign_advert_v1",
    "from_pubkey_v1",
    "channel_hash_casing_v1",
    "scope_name_v1",
    "nodes_default_scope_v1",
    "observations_raw_hex_v1",
    "obs_observer_ts_idx_v1",
    "backfill_path_json_from_raw_hex_v1",
];

/// meshscope's own tables beside CoreScope's (see the module header).
const MESHSCOPE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS _meshscope_nodes (
    public_key TEXT PRIMARY KEY,
    advert_tx_id INTEGER,
    location_tx_id INTEGER,
    counts_from TEXT NOT NULL DEFAULT 'meshscope'
);
CREATE TABLE IF NOT EXISTS _meshscope_merged (
    id INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    merged_into INTEGER NOT NULL,
    reason TEXT NOT NULL,
    row_json TEXT NOT NULL,
    merged_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _meshscope_hash_aliases (
    hash TEXT PRIMARY KEY,
    transmission_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS _meshscope_marks (
    name TEXT PRIMARY KEY,
    n INTEGER NOT NULL
);
";

fn table_exists(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
}

/// A file this start created: no rows anywhere, and no `_migrations` of
/// CoreScope's.
fn created_now(tx: &Transaction<'_>) -> rusqlite::Result<bool> {
    if table_exists(tx, "_migrations")? {
        return Ok(false);
    }
    for t in ["transmissions", "observations", "observers", "nodes"] {
        if table_exists(tx, t)? && approx_rows(tx, t)? > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The declaration of every column of `table`, in order, as `CREATE TABLE`
/// takes it (for a copy with the same columns in the same positions).
fn column_decls(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid",
    )?;
    let decls = stmt
        .query_map([table], |r| {
            let mut d = format!("{} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?);
            if r.get::<_, bool>(2)? {
                d.push_str(" NOT NULL");
            }
            if let Some(v) = r.get::<_, Option<String>>(3)? {
                d.push_str(&format!(" DEFAULT {v}"));
            }
            if r.get::<_, i64>(4)? > 0 {
                d.push_str(" PRIMARY KEY");
            }
            Ok(d)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(decls)
}

/// CoreScope's current schema on any file, additively (see the module
/// header), and meshscope's bookkeeping out of CoreScope's tables:
/// - `nodes.advert_tx_id`/`location_tx_id` (step 6) move to
///   `_meshscope_nodes` and are dropped from `nodes` (a small table;
///   `DROP COLUMN` rewrites it keeping every value), so `nodes` and
///   `inactive_nodes` have the same columns in the same order;
/// - the archive of merged rows (`_meshscope_merged`: every value of a row
///   a merge removed, as JSON), the hashes a re-hash replaced
///   (`_meshscope_hash_aliases`) and the write marks that tell rows another
///   program added (`_meshscope_marks`).
fn step7_corescope_current(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let fresh = created_now(tx)?;
    tx.execute_batch(CORESCOPE_TABLES)?;
    tx.execute_batch(MESHSCOPE_TABLES)?;
    for table in [
        "transmissions",
        "observations",
        "observers",
        "observer_metrics",
    ] {
        let wanted: Vec<(&str, &str)> = CORESCOPE_COLUMNS
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, c, d)| (*c, *d))
            .collect();
        add_missing_columns(tx, table, &wanted)?;
    }
    let node_cols = table_columns(tx, "nodes")?;
    if node_cols.iter().any(|c| c == "advert_tx_id") {
        tx.execute_batch(
            "INSERT OR IGNORE INTO _meshscope_nodes (public_key, advert_tx_id, location_tx_id)
                 SELECT public_key, advert_tx_id, location_tx_id FROM nodes
                 WHERE advert_tx_id IS NOT NULL OR location_tx_id IS NOT NULL;
             ALTER TABLE nodes DROP COLUMN advert_tx_id;
             ALTER TABLE nodes DROP COLUMN location_tx_id;",
        )?;
    }
    add_missing_columns(tx, "nodes", NODE_COLUMNS)?;
    if table_exists(tx, "inactive_nodes")? {
        add_missing_columns(tx, "inactive_nodes", NODE_COLUMNS)?;
    } else {
        let decls = column_decls(tx, "nodes")?;
        tx.execute_batch(&format!(
            "CREATE TABLE inactive_nodes ({})",
            decls.join(", ")
        ))?;
    }
    for (table, sql) in CORESCOPE_INDEXES {
        if table_exists(tx, table)? && (fresh || approx_rows(tx, table)? == 0) {
            tx.execute_batch(sql)?;
        }
    }
    if fresh {
        tx.execute_batch(PACKETS_VIEW)?;
        let mut mark = tx.prepare("INSERT OR IGNORE INTO _migrations (name) VALUES (?1)")?;
        for name in CORESCOPE_MARKS {
            mark.execute([name])?;
        }
    }
    build_boot_indexes(tx)
}

/// The regions that heard each node (see `store::regions`), keyed for a
/// region's nodes.
fn step8_node_regions(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS _meshscope_node_regions (
            iata TEXT NOT NULL,
            public_key TEXT NOT NULL,
            last_heard INTEGER NOT NULL,
            PRIMARY KEY (iata, public_key)
        ) WITHOUT ROWID",
    )
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
        c.execute_batch(CREATE_TABLES).unwrap();
        c.execute_batch(
            "CREATE TABLE _async_migrations (name TEXT PRIMARY KEY, status TEXT NOT NULL,
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
