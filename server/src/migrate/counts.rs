//! `counts_backfill_v1`: the counts the read path takes from rows instead of
//! scans: each transmission's `observation_count`, and the running totals in
//! `_meshscope_counters` (transmissions, sightings, observers, transmissions
//! per payload type).
//!
//! Keyset over `id` like the backfills; each chunk sets the count of every
//! transmission in its range from `observations` and adds the range's
//! totals, in the chunk's transaction. Live ingest keeps the counts of the
//! rows this migration has passed (or will never visit: above the run's
//! range) and leaves the others to it ([`super::Coverage`]), so nothing is
//! counted twice or missed, through crashes and restarts. A run from
//! scratch (the first, or a retry) starts by resetting the totals.

use rusqlite::Connection;

use super::{Migration, MigrationError};
use crate::store::counts::{add, counter};
use crate::store::Upkeep;

pub const NAME: &str = "counts_backfill_v1";

pub struct CountsBackfill;

impl Migration for CountsBackfill {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Totals from zero; observers (a small table) are counted here, and
    /// live ingest adds the new ones from now on.
    fn start(&self, conn: &Connection) -> Result<(), MigrationError> {
        conn.execute("DELETE FROM _meshscope_counters", [])?;
        // Whatever another program added so far is counted by this run.
        crate::db::marks::record(conn)?;
        conn.execute(
            "INSERT INTO _meshscope_counters (name, n)
             SELECT ?1, COUNT(*) FROM observers",
            [counter::OBSERVERS],
        )?;
        Ok(())
    }

    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT COUNT(*) FROM transmissions WHERE id <= ?1",
            [max_id],
            |r| r.get(0),
        )
    }

    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        _upkeep: Upkeep,
    ) -> Result<i64, MigrationError> {
        let visited = conn
            .prepare_cached(
                "UPDATE transmissions SET observation_count =
                    (SELECT COUNT(*) FROM observations o WHERE o.transmission_id = transmissions.id)
                 WHERE id > ?1 AND id <= ?2",
            )?
            .execute([after, upto])? as i64;
        let sightings: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(observation_count), 0) FROM transmissions
                 WHERE id > ?1 AND id <= ?2",
            )?
            .query_row([after, upto], |r| r.get(0))?;
        add(conn, counter::TRANSMISSIONS, visited)?;
        add(conn, counter::OBSERVATIONS, sightings)?;
        let mut by_type = conn.prepare_cached(
            "SELECT payload_type, COUNT(*) FROM transmissions
             WHERE id > ?1 AND id <= ?2 GROUP BY payload_type",
        )?;
        let types = by_type
            .query_map([after, upto], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (t, n) in types {
            add(conn, &counter::of_type(t), n)?;
        }
        Ok(visited)
    }
}
