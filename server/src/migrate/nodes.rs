//! `nodes_backfill_v1`: builds CoreScope's `nodes` table for the ADVERTs an
//! existing file already holds, decoding each one's `raw_hex` in Rust and
//! applying a chunk's adverts once per node by the rules live ingest keeps
//! (`store::nodes`). Live ingest keeps the table for the transmissions this
//! migration has covered ([`crate::store::Coverage`]), so the two may
//! interleave in any order and end equal to a file whose nodes were kept at
//! ingest from the start (a test checks it).

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{params, Connection};
use shared::packet::PAYLOAD_ADVERT;
use shared::timefmt::format_unix_secs;

use super::{Migration, MigrationError};
use crate::decoder::{self, advert};
use crate::store::nodes::{apply_known, known, refused, Heard, BY_MESHSCOPE, BY_OTHERS};
use crate::store::Upkeep;

pub const NAME: &str = "nodes_backfill_v1";

/// The ADVERTs among transmission ids up to `max_id`: the rows this
/// backfill and `node_regions_v1` visit.
pub(crate) fn adverts_upto(conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM transmissions WHERE payload_type = ?1 AND id <= ?2",
        params![PAYLOAD_ADVERT, max_id],
        |r| r.get(0),
    )
}

#[derive(Default)]
pub struct NodesBackfill {
    refused: AtomicI64,
}

impl NodesBackfill {
    /// ADVERTs visited that do not describe a node.
    pub fn refused(&self) -> i64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Migration for NodesBackfill {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A run from scratch first marks every node already in the table
    /// without meshscope's bookkeeping as another program's (left as it
    /// is), then counts again the adverts of the nodes meshscope built; the
    /// seen times are a minimum and a maximum, so keeping them loses nothing.
    fn start(&self, conn: &Connection) -> Result<(), MigrationError> {
        conn.execute(
            "INSERT OR IGNORE INTO _meshscope_nodes (public_key, counts_from)
             SELECT public_key, ?1 FROM nodes",
            [BY_OTHERS],
        )?;
        conn.execute(
            "UPDATE nodes SET advert_count = 0 WHERE public_key IN
                (SELECT public_key FROM _meshscope_nodes WHERE counts_from = ?1)",
            [BY_MESHSCOPE],
        )?;
        conn.execute(
            "UPDATE _meshscope_nodes SET advert_tx_id = NULL, location_tx_id = NULL
             WHERE counts_from = ?1",
            [BY_MESHSCOPE],
        )?;
        Ok(())
    }

    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        adverts_upto(conn, max_id)
    }

    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        _upkeep: Upkeep,
    ) -> Result<i64, MigrationError> {
        // A transmission not yet given its `last_seen` (0) has it from its
        // newest sighting; one without sightings from its first_seen.
        let mut select = conn.prepare_cached(
            "SELECT t.id, t.raw_hex, t.first_seen,
                    CASE WHEN t.last_seen > 0 THEN t.last_seen
                         ELSE (SELECT MAX(o.timestamp) FROM observations o
                               WHERE o.transmission_id = t.id) END
             FROM transmissions t
             WHERE t.id > ?1 AND t.id <= ?2 AND t.payload_type = ?3",
        )?;
        let rows = select
            .query_map(params![after, upto, PAYLOAD_ADVERT], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // The chunk's adverts by node, in id order, applied once per node.
        let mut by_node: Vec<Heard> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = Default::default();
        for (id, raw_hex, first_seen, last) in &rows {
            let decoded = decoder::parse_hex(raw_hex)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    decoder::decode(&b)
                        .map_err(|e| e.to_string())
                        .map(|p| advert::decode(p.payload))
                });
            match decoded {
                Ok(Ok(a)) => {
                    let last_seen = last.map(format_unix_secs);
                    let last_seen = last_seen.as_deref().unwrap_or(first_seen);
                    match at.get(&a.public_key) {
                        Some(&i) => by_node[i].add(a, *id, first_seen, last_seen),
                        None => {
                            at.insert(a.public_key.clone(), by_node.len());
                            by_node.push(Heard::one(a, *id, first_seen, last_seen));
                        }
                    }
                }
                Ok(Err(e)) => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    refused(*id, &e);
                }
                Err(e) => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    crate::ratelimit::warn_limited(
                        &format!("{NAME}:undecodable"),
                        &format!(
                            "{NAME}: transmission {id} does not decode: {e}; not stored as a node"
                        ),
                    );
                }
            }
        }
        for h in &by_node {
            // A node another program counted is left as it is; one not
            // there when the run started, or meshscope's, counts.
            let k = known(conn, &h.newest.public_key)?;
            if !k.others {
                apply_known(conn, h, &k)?;
            }
        }
        Ok(rows.len() as i64)
    }
}
