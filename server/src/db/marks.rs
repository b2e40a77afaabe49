//! Write marks: how far the file's row ids had gone when meshscope last
//! wrote it, so rows another program (CoreScope) added since are noticed.
//!
//! The maintained counts (`counts_backfill_v1`'s) are exact only for rows
//! meshscope wrote; CoreScope's ingestor adds transmissions, sightings and
//! observers without touching them. Every meshscope write that can add rows
//! records, in the same transaction, `sqlite_sequence` of `transmissions`
//! and `observations` (which only grows: deleting rows never lowers it)
//! and the largest observer rowid, in `_meshscope_marks`. A start that
//! finds other values, or a running writer that sees another connection
//! commit (`PRAGMA data_version`), knows the file changed under it and has
//! the counts recounted online; until then the API says they are not ready.

use rusqlite::Connection;

/// The marks as the file holds them now.
fn current(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT 'seq:' || name, seq FROM sqlite_sequence
             WHERE name IN ('transmissions', 'observations')
         UNION ALL
         SELECT 'rowid:observers', COALESCE(MAX(rowid), 0) FROM observers
         ORDER BY 1",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Records the marks as they are now, in the caller's transaction.
pub fn record(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO _meshscope_marks (name, n)
         SELECT 'seq:' || name, seq FROM sqlite_sequence
             WHERE name IN ('transmissions', 'observations')
         UNION ALL
         SELECT 'rowid:observers', COALESCE(MAX(rowid), 0) FROM observers",
    )?
    .execute([])?;
    Ok(())
}

/// What another program added since the recorded marks: `None` when no
/// id went past them; `Some(words)` naming what moved. A file without marks (written before meshscope kept them, or by
/// another program only) reads as changed when it has rows.
pub(crate) fn changed(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let now = current(conn)?;
    let mut stmt = conn.prepare_cached("SELECT name, n FROM _meshscope_marks ORDER BY name")?;
    let stored: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if stored.is_empty() {
        let rows = now.iter().any(|(_, n)| *n > 0);
        return Ok(rows.then(|| "no record of meshscope's last write".to_string()));
    }
    let moved: Vec<String> = now
        .iter()
        .filter_map(|(name, n)| {
            let was = stored
                .iter()
                .find(|(s, _)| s == name)
                .map_or(0, |(_, v)| *v);
            // Only ids that rose: meshscope's own deletes (retention) may
            // lower the largest observer rowid.
            (*n > was).then(|| {
                let what = name.split(':').nth(1).unwrap_or(name);
                format!("{what} ids {was} → {n}")
            })
        })
        .collect();
    Ok((!moved.is_empty()).then(|| moved.join(", ")))
}

/// Where a write that found rows another program added says so, for the
/// writer thread to pass on (to the engine, which has the counts redone).
#[derive(Clone, Default)]
pub struct Notice(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl Notice {
    /// Notes `what` changed (the first note waiting is kept).
    pub(crate) fn note(&self, what: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(what);
    }

    /// Takes the waiting note, if any.
    pub(crate) fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// At the start of a meshscope write transaction: notes rows another
/// program added since meshscope's last write (nothing else writes while
/// the transaction holds the write lock, so none is missed or mistaken).
pub(crate) fn check(conn: &Connection, notice: &Notice) -> rusqlite::Result<()> {
    if let Some(what) = changed(conn)? {
        notice.note(what);
    }
    Ok(())
}

/// `PRAGMA data_version`: changes when another connection commits.
pub(crate) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_notice_rows_added_by_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mine = crate::db::open_writer(&path).unwrap();
        assert_eq!(changed(&mine).unwrap(), None, "an empty file");
        mine.execute_batch(
            "INSERT INTO observers (id, name) VALUES ('ab', '');
             INSERT INTO transmissions (raw_hex, hash, first_seen) VALUES ('0500', 'h1', 'x');",
        )
        .unwrap();
        assert!(changed(&mine).unwrap().is_some(), "rows without marks");
        record(&mine).unwrap();
        assert_eq!(changed(&mine).unwrap(), None);
        let v = data_version(&mine).unwrap();
        // Another program adds a transmission.
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch(
                "INSERT INTO transmissions (raw_hex, hash, first_seen) VALUES ('0501', 'h2', 'y')",
            )
            .unwrap();
        assert_ne!(data_version(&mine).unwrap(), v);
        let what = changed(&mine).unwrap().unwrap();
        assert!(what.contains("transmissions ids 1 → 2"), "{what}");
        // Deleting rows (retention) does not read as another writer.
        record(&mine).unwrap();
        mine.execute_batch("DELETE FROM transmissions").unwrap();
        assert_eq!(changed(&mine).unwrap(), None);
    }
}
