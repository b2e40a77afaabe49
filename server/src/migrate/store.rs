//! The `_async_migrations` bookkeeping table: reads, and the forced status
//! writes of the engine. A write that matches no row is an error, never a
//! silent no-op.

use rusqlite::{params, Connection, OptionalExtension};
use shared::migration::{stored, MigrationRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bookkeeping row for {0} is missing or was changed by someone else")]
    NoRow(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Bookkeeping row plus the engine's own columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    pub rec: MigrationRecord,
    pub cursor: Option<i64>,
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        rec: MigrationRecord {
            name: r.get(0)?,
            status: r.get(1)?,
            started_at: r.get(2)?,
            ended_at: r.get(3)?,
            error: r.get(4)?,
            rows_processed: r.get(5)?,
            rows_total: r.get(6)?,
            last_update_at: r.get(7)?,
            attempts: r.get(9)?,
        },
        cursor: r.get(8)?,
    })
}

const SELECT: &str = "SELECT name, status, started_at, ended_at, error, rows_processed, rows_total,
    last_update_at, cursor, attempts FROM _async_migrations";

/// Every bookkeeping row, by name.
pub fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY name"))?;
    let rows = stmt
        .query_map([], row_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn read_one(conn: &Connection, name: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(&format!("{SELECT} WHERE name = ?1"))?
        .query_row([name], row_from)
        .optional()
}

/// Registers `name` as `pending_async` unless a row already exists.
pub fn register(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO _async_migrations (name, status) VALUES (?1, ?2)",
        params![name, stored::PENDING],
    )?;
    Ok(n == 1)
}

/// Writes the whole row as the engine holds it (status changes and
/// terminal writes). Errors when the row is gone.
pub fn write(conn: &Connection, row: &Row) -> Result<(), StoreError> {
    let r = &row.rec;
    let n = conn.execute(
        "UPDATE _async_migrations SET status = ?2, started_at = ?3, ended_at = ?4, error = ?5,
            rows_processed = ?6, rows_total = ?7, last_update_at = ?8, cursor = ?9, attempts = ?10
         WHERE name = ?1",
        params![
            r.name,
            r.status,
            r.started_at,
            r.ended_at,
            r.error,
            r.rows_processed,
            r.rows_total,
            r.last_update_at,
            row.cursor,
            r.attempts
        ],
    )?;
    if n != 1 {
        return Err(StoreError::NoRow(r.name.clone()));
    }
    Ok(())
}

/// Progress written inside a chunk's own transaction: cursor, processed
/// count and time, only while the row is `running`.
pub fn chunk_progress(
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
