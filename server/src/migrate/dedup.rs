//! `observations_dedup_v1`: merges repeated sightings (the same
//! transmission, observer and path) that files from older CoreScope
//! versions hold, so the unique index both programs' ingest relies on
//! (`idx_observations_dedup`; CoreScope's ingestor will not start without
//! it) can exist. CoreScope created that index only on fresh tables, and
//! its fixture holds such a pair.
//!
//! Keyset over transmission ids like the backfills: each chunk finds the
//! repeated groups of its range on the `observations(transmission_id)`
//! index and merges each ([`super::merge::merge_repeated_sightings`]: the
//! first row kept, the others archived whole, counts adjusted in the same
//! transaction). Once every range is merged, the index is built when the
//! table is small enough to build it within a chunk's budget; a larger
//! table keeps it on the missing-index list (built offline by `meshscope
//! migrate`, or online where that is supported).

use rusqlite::Connection;

use super::{merge, Migration, MigrationError};
use crate::store::Upkeep;

pub const NAME: &str = "observations_dedup_v1";

/// Largest table the unique index is built on as the run ends (about a
/// microsecond a row here, so within a chunk's budget).
pub(crate) const BUILD_MAX_ROWS: i64 = 10_000;

pub struct ObservationsDedup;

impl Migration for ObservationsDedup {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Every transmission up to `max_id` when some have repeated
    /// sightings, else none (the run then ends at once): one look over the
    /// table on a read-only connection, so files without repeats (every
    /// file meshscope wrote) do not walk it.
    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT CASE WHEN EXISTS (
                SELECT 1 FROM observations
                WHERE transmission_id <= ?1 AND observer_idx IS NOT NULL
                GROUP BY transmission_id, observer_idx, COALESCE(path_json, '')
                HAVING COUNT(*) > 1)
             THEN (SELECT COUNT(*) FROM transmissions WHERE id <= ?1) ELSE 0 END",
            [max_id],
            |r| r.get(0),
        )
    }

    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        upkeep: Upkeep,
    ) -> Result<i64, MigrationError> {
        let repeated: Vec<i64> = conn
            .prepare_cached(
                "SELECT DISTINCT transmission_id FROM (
                    SELECT transmission_id FROM observations
                    WHERE transmission_id > ?1 AND transmission_id <= ?2 AND observer_idx IS NOT NULL
                    GROUP BY transmission_id, observer_idx, COALESCE(path_json, '')
                    HAVING COUNT(*) > 1)",
            )?
            .query_map([after, upto], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for tx in repeated {
            let gone = merge::merge_repeated_sightings(conn, tx)?;
            tracing::info!(
                migration = NAME,
                transmission = tx,
                merged = gone,
                "repeated sightings merged (archived in _meshscope_merged)"
            );
            merge::recount(conn, tx, upkeep)?;
        }
        let visited = conn
            .prepare_cached("SELECT COUNT(*) FROM transmissions WHERE id > ?1 AND id <= ?2")?
            .query_row([after, upto], |r| r.get(0))?;
        Ok(visited)
    }

    fn finish(&self, conn: &Connection) -> Result<(), MigrationError> {
        if crate::db::has_index_on(
            conn,
            "observations",
            &["transmission_id", "observer_idx", ""],
        )? {
            return Ok(());
        }
        let rows = crate::db::schema::approx_rows(conn, "observations")?;
        let spec = crate::db::schema::INDEXES
            .iter()
            .find(|s| s.create_sql.contains("idx_observations_dedup"));
        match spec {
            Some(spec) if rows <= BUILD_MAX_ROWS => conn.execute_batch(spec.create_sql)?,
            _ => tracing::warn!(
                rows,
                "repeated sightings merged; the unique sightings index is not built online on a \
                 table this size (build it with `meshscope migrate`)"
            ),
        }
        Ok(())
    }
}
