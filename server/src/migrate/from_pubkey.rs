//! `from_pubkey_backfill_v1`: stores the advertiser's public key for ADVERT
//! transmissions that lack it, decoding `raw_hex` in Rust (per-row work the
//! database cannot do). Undecodable rows are counted, logged, and left NULL;
//! they never fail the migration.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{params, Connection};
use shared::packet::PAYLOAD_ADVERT;

use super::{Migration, MigrationError};
use crate::decoder;
use crate::store::Upkeep;

pub const NAME: &str = "from_pubkey_backfill_v1";

#[derive(Default)]
pub struct FromPubkeyBackfill {
    undecodable: AtomicI64,
}

impl FromPubkeyBackfill {
    /// Rows visited that could not be decoded (left NULL).
    pub fn undecodable(&self) -> i64 {
        self.undecodable.load(Ordering::Relaxed)
    }
}

impl Migration for FromPubkeyBackfill {
    fn name(&self) -> &'static str {
        NAME
    }

    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT COUNT(*) FROM transmissions
             WHERE payload_type = ?1 AND from_pubkey IS NULL AND id <= ?2",
            params![PAYLOAD_ADVERT, max_id],
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
        let mut select = conn.prepare_cached(
            "SELECT id, raw_hex FROM transmissions
             WHERE id > ?1 AND id <= ?2 AND payload_type = ?3 AND from_pubkey IS NULL",
        )?;
        let rows = select
            .query_map(params![after, upto, PAYLOAD_ADVERT], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut update =
            conn.prepare_cached("UPDATE transmissions SET from_pubkey = ?2 WHERE id = ?1")?;
        for (id, raw_hex) in &rows {
            let key = decoder::parse_hex(raw_hex)
                .ok()
                .and_then(|b| decoder::decode(&b).ok().and_then(|p| p.advert_pubkey()));
            match key {
                Some(k) => {
                    update.execute(params![id, k])?;
                }
                None => {
                    let n = self.undecodable.fetch_add(1, Ordering::Relaxed) + 1;
                    crate::ratelimit::warn_limited(
                        &format!("{NAME}:undecodable"),
                        &format!("{NAME}: transmission {id} does not decode as an ADVERT; left NULL ({n} so far)"),
                    );
                }
            }
        }
        Ok(rows.len() as i64)
    }
}
