//! `node_regions_v1`: fills `_meshscope_node_regions` (see
//! `store::regions`) from the adverts a file already holds, one id range of
//! transmissions per chunk. It runs after `from_pubkey_backfill_v1`, whose
//! column it reads. Live ingest keeps the table for the ids it has covered;
//! both write by the same upsert (the latest time wins), so they may
//! interleave in any order.

use rusqlite::{params, Connection};
use shared::packet::PAYLOAD_ADVERT;

use super::{Migration, MigrationError};
use crate::store::Upkeep;

pub const NAME: &str = "node_regions_v1";

pub struct NodeRegions;

impl Migration for NodeRegions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        super::nodes::adverts_upto(conn, max_id)
    }

    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        _upkeep: Upkeep,
    ) -> Result<i64, MigrationError> {
        conn.prepare_cached(crate::store::regions::FROM_ADVERTS)?
            .execute([after, upto])?;
        let adverts: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM transmissions WHERE id > ?1 AND id <= ?2 AND payload_type = ?3",
            )?
            .query_row(params![after, upto, PAYLOAD_ADVERT], |r| r.get(0))?;
        Ok(adverts)
    }
}
