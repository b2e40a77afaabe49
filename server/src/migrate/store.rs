//! The `_async_migrations` bookkeeping table: reads, and the forced status
//! writes of the engine. A write that matches no row is an error, never a
//! silent no-op.
//!
//! The table is CoreScope's (`started_at TEXT NOT NULL DEFAULT
//! (datetime('now'))`, status `pending_async`/`done`/`cancelled`/`failed`)
//! plus meshscope's columns; every write here keeps CoreScope's constraints,
//! so `started_at` is never written NULL.

use rusqlite::{params, Connection, OptionalExtension};
use shared::migration::{MigrationRecord, MigrationStatus};

use crate::clock::now_text;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bookkeeping row for {0} is missing or was changed by someone else")]
    NoRow(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// The SQLite error underneath, if any (to tell a full disk from a bug).
    pub(crate) fn sqlite(&self) -> Option<&rusqlite::Error> {
        match self {
            StoreError::Sqlite(e) => Some(e),
            StoreError::NoRow(_) => None,
        }
    }
}

/// Bookkeeping row plus the engine's own columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub rec: MigrationRecord,
    pub cursor: Option<i64>,
    /// The last id of the run's range, fixed when it started.
    pub max_id: Option<i64>,
}

impl Row {
    /// A row for `name` that is not stored yet: pending, registered now.
    pub(crate) fn fresh(name: &str) -> Row {
        let mut rec = MigrationRecord::new(name, MigrationStatus::Pending);
        rec.started_at = Some(now_text());
        Row {
            rec,
            cursor: None,
            max_id: None,
        }
    }
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let mut rec = MigrationRecord::new(&r.get::<_, String>(0)?, MigrationStatus::Unknown);
    rec.set_stored_status(&r.get::<_, String>(1)?);
    rec.started_at = r.get(2)?;
    rec.ended_at = r.get(3)?;
    rec.error = r.get(4)?;
    rec.rows_processed = r.get(5)?;
    rec.rows_total = r.get(6)?;
    rec.last_update_at = r.get(7)?;
    rec.attempts = r.get(9)?;
    rec.throttle_reason = r.get(11)?;
    rec.throttled_until = r.get(12)?;
    rec.estimated_ms = r.get(13)?;
    Ok(Row {
        rec,
        cursor: r.get(8)?,
        max_id: r.get(10)?,
    })
}

/// The columns read, in order, with what stands in for each on a file
/// that lacks it (CoreScope's table has only the first five, and later
/// versions add the progress ones; `meshscope migrations` reads such files
/// as they are, before any upgrade).
const COLUMNS: [(&str, &str); 14] = [
    ("name", "name"),
    ("status", "status"),
    ("started_at", "NULL"),
    ("ended_at", "NULL"),
    ("error", "NULL"),
    ("rows_processed", "0"),
    ("rows_total", "0"),
    ("last_update_at", "NULL"),
    ("cursor", "NULL"),
    ("attempts", "0"),
    ("max_id", "NULL"),
    ("throttle_reason", "NULL"),
    ("throttled_until", "NULL"),
    ("estimated_ms", "NULL"),
];

fn select(conn: &Connection) -> rusqlite::Result<String> {
    let have = crate::db::table_columns(conn, "_async_migrations")?;
    let cols: Vec<&str> = COLUMNS
        .iter()
        .map(|(col, absent)| {
            if have.iter().any(|h| h.eq_ignore_ascii_case(col)) {
                *col
            } else {
                *absent
            }
        })
        .collect();
    Ok(format!("SELECT {} FROM _async_migrations", cols.join(", ")))
}

/// Every bookkeeping row, by name.
pub fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&format!("{} ORDER BY name", select(conn)?))?;
    let rows = stmt
        .query_map([], row_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn read_one(conn: &Connection, name: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(&format!("{} WHERE name = ?1", select(conn)?))?
        .query_row([name], row_from)
        .optional()
}

/// Registers `row` (a fresh pending row) unless a row of that name exists;
/// true when it was inserted.
pub(crate) fn register(conn: &Connection, row: &Row) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO _async_migrations (name, status, started_at) VALUES (?1, ?2, ?3)",
        params![row.rec.name, row.rec.stored_status(), row.rec.started_at],
    )?;
    Ok(n == 1)
}

/// Writes the whole row as the engine holds it (status changes and
/// terminal writes). Errors when the row is gone.
pub fn write(conn: &Connection, row: &Row) -> Result<(), StoreError> {
    let r = &row.rec;
    let n = conn.execute(
        "UPDATE _async_migrations SET status = ?2, started_at = COALESCE(?3, started_at),
            ended_at = ?4, error = ?5, rows_processed = ?6, rows_total = ?7, last_update_at = ?8,
            cursor = ?9, attempts = ?10, max_id = ?11, throttle_reason = ?12,
            throttled_until = ?13, estimated_ms = ?14
         WHERE name = ?1",
        params![
            r.name,
            r.stored_status(),
            r.started_at,
            r.ended_at,
            r.error,
            r.rows_processed,
            r.rows_total,
            r.last_update_at,
            row.cursor,
            r.attempts,
            row.max_id,
            r.throttle_reason,
            r.throttled_until,
            r.estimated_ms
        ],
    )?;
    if n != 1 {
        return Err(StoreError::NoRow(r.name.clone()));
    }
    Ok(())
}

/// [`write`], registering the row first if it is missing (a row whose first
/// write failed, e.g. on a full disk at boot).
pub(crate) fn upsert(conn: &Connection, row: &Row) -> Result<(), StoreError> {
    register(conn, row)?;
    write(conn, row)
}

/// Progress written inside a chunk's own transaction: cursor, processed
/// count and time, only while the row is `running`.
pub(crate) fn chunk_progress(
    conn: &Connection,
    name: &str,
    cursor: i64,
    rows: i64,
    now: &str,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE _async_migrations SET cursor = ?2, rows_processed = rows_processed + ?3,
                last_update_at = ?4
             WHERE name = ?1 AND status = 'running'",
        )?
        .execute(params![name, cursor, rows, now])?;
    if n != 1 {
        return Err(StoreError::NoRow(name.to_string()));
    }
    Ok(())
}
