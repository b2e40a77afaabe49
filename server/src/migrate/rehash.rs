//! `hash_rehash_v1`: gives every transmission the hash CoreScope's current
//! rule gives its bytes ([`crate::decoder::content_hash`]), so a packet
//! heard again always lands on its row. Older CoreScope versions stored
//! other hashes (the raw packet's first 16 characters, uppercase or not,
//! and an older formula's digest: 145 of the 499 rows in CoreScope's own
//! test database); CoreScope's server re-keys them in memory at each start
//! (`cmd/server/hash_migrate.go`), never in the file.
//!
//! Keyset over ids; each chunk re-hashes the rows of its range whose hash
//! differs. When the current hash already names another row (the packet was
//! heard again and stored twice), the two are merged into the row holding
//! the current hash, as CoreScope merges them
//! ([`super::merge::merge_transmission`]: sightings moved, the stale row
//! archived whole, counts kept exact). Every replaced hash stays findable:
//! `_meshscope_hash_aliases` maps it to its row.

use rusqlite::{params, Connection, OptionalExtension};

use super::{merge, Migration, MigrationError};
use crate::decoder::content_hash;
use crate::store::Upkeep;

pub const NAME: &str = "hash_rehash_v1";

pub struct HashRehash;

impl Migration for HashRehash {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Every transmission up to `max_id` when some hash is stale, else
    /// none (the run then ends at once): each row's hash recomputed on a
    /// read-only connection.
    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        let mut stmt = conn.prepare("SELECT hash, raw_hex FROM transmissions WHERE id <= ?1")?;
        let mut rows = stmt.query([max_id])?;
        let (mut all, mut stale) = (0i64, false);
        while let Some(r) = rows.next()? {
            all += 1;
            if !stale {
                let (hash, raw): (String, String) = (r.get(0)?, r.get(1)?);
                stale = content_hash(&raw) != hash;
            }
        }
        Ok(if stale { all } else { 0 })
    }

    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        upkeep: Upkeep,
    ) -> Result<i64, MigrationError> {
        let rows: Vec<(i64, String, String)> = conn
            .prepare_cached(
                "SELECT id, hash, raw_hex FROM transmissions WHERE id > ?1 AND id <= ?2",
            )?
            .query_map([after, upto], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (id, stored, raw) in &rows {
            let current = content_hash(raw);
            if &current == stored {
                continue;
            }
            let holder: Option<i64> = conn
                .prepare_cached("SELECT id FROM transmissions WHERE hash = ?1")?
                .query_row([&current], |r| r.get(0))
                .optional()?;
            match holder {
                Some(survivor) => {
                    let moved = merge::merge_transmission(conn, *id, survivor, upkeep)?;
                    tracing::info!(
                        migration = NAME,
                        transmission = id,
                        into = survivor,
                        sightings = moved,
                        "same packet stored twice (an older hash); merged"
                    );
                }
                None => {
                    conn.prepare_cached("UPDATE transmissions SET hash = ?2 WHERE id = ?1")?
                        .execute(params![id, current])?;
                    merge::alias(conn, stored, *id)?;
                }
            }
        }
        Ok(rows.len() as i64)
    }
}
