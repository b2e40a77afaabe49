//! The running totals the read path takes instead of scans
//! (`_meshscope_counters`: transmissions, sightings, observers, transmissions
//! per payload type), kept in the same transaction as the rows they count by
//! ingest, retention, merges and `counts_backfill_v1`.

use rusqlite::{params, Connection};

/// Counter names in `_meshscope_counters`.
pub mod counter {
    pub const TRANSMISSIONS: &str = "transmissions";
    pub const OBSERVATIONS: &str = "observations";
    pub const OBSERVERS: &str = "observers";

    /// Transmissions of one payload type (`NULL` types under `type:null`).
    pub fn of_type(t: Option<i64>) -> String {
        match t {
            Some(t) => format!("type:{t}"),
            None => "type:null".to_string(),
        }
    }
}

/// Adds `n` to a counter (creating it), in the caller's transaction.
pub(crate) fn add(conn: &Connection, name: &str, n: i64) -> rusqlite::Result<()> {
    if n != 0 {
        conn.prepare_cached(
            "INSERT INTO _meshscope_counters (name, n) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET n = n + excluded.n",
        )?
        .execute(params![name, n])?;
    }
    Ok(())
}
