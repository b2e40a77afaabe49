//! The network's nodes, from ADVERT packets, in CoreScope's `nodes` table.
//!
//! Live ingest keeps the table (see [`on_sighting`]) for the transmissions
//! `nodes_backfill_v1` has covered; the backfill builds it for the rest of
//! an existing file, decoding each ADVERT's `raw_hex` in Rust. Both apply
//! an advert with one statement whose every part is order-free:
//!
//! - `advert_count` adds one per ADVERT transmission (a packet heard by
//!   several observers is one advert);
//! - `first_seen` keeps the earliest, `last_seen` the latest sighting;
//! - name and role come from the newest advert (highest transmission id,
//!   `advert_tx_id`), latitude and longitude from the newest advert that
//!   carried a location (`location_tx_id`): an advert without a location
//!   keeps the last known one, as CoreScope does.
//!
//! So ingest and the backfill may interleave in any order and end equal to
//! a file whose nodes were kept at ingest from the start (a test checks it).
//! Adverts CoreScope would not store as a node (too short, zero key, a
//! location off the globe) are counted and logged, never stored.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{params, Connection};
use shared::packet::PAYLOAD_ADVERT;
use shared::timefmt::format_unix_secs;

use super::{Migration, MigrationError};
use crate::decoder::{self, advert};

pub const NAME: &str = "nodes_backfill_v1";

/// Applies one ADVERT transmission (`tx_id`) to its node.
fn apply_advert(
    conn: &Connection,
    a: &advert::Advert,
    tx_id: i64,
    first_seen: &str,
    last_seen: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO nodes (public_key, name, role, lat, lon, first_seen, last_seen,
            advert_count, advert_tx_id, location_tx_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, CASE WHEN ?4 IS NULL THEN NULL ELSE ?8 END)
         ON CONFLICT(public_key) DO UPDATE SET
            name = CASE WHEN advert_tx_id IS NULL OR excluded.advert_tx_id > advert_tx_id
                        THEN excluded.name ELSE name END,
            role = CASE WHEN advert_tx_id IS NULL OR excluded.advert_tx_id > advert_tx_id
                        THEN excluded.role ELSE role END,
            lat = CASE WHEN excluded.location_tx_id > COALESCE(location_tx_id, 0)
                       THEN excluded.lat ELSE lat END,
            lon = CASE WHEN excluded.location_tx_id > COALESCE(location_tx_id, 0)
                       THEN excluded.lon ELSE lon END,
            location_tx_id = MAX(COALESCE(location_tx_id, 0), COALESCE(excluded.location_tx_id, 0)),
            advert_tx_id = MAX(COALESCE(advert_tx_id, 0), excluded.advert_tx_id),
            first_seen = CASE WHEN first_seen IS NULL OR excluded.first_seen < first_seen
                              THEN excluded.first_seen ELSE first_seen END,
            last_seen = CASE WHEN last_seen IS NULL OR excluded.last_seen > last_seen
                             THEN excluded.last_seen ELSE last_seen END,
            advert_count = COALESCE(advert_count, 0) + 1",
    )?
    .execute(params![
        a.public_key,
        a.name,
        a.role(),
        a.lat,
        a.lon,
        first_seen,
        last_seen,
        tx_id
    ])?;
    Ok(())
}

fn refused(tx_id: i64, e: &advert::AdvertError) {
    crate::ratelimit::warn_limited(
        "nodes:refused-advert",
        &format!("transmission {tx_id}: {e}; not stored as a node"),
    );
}

/// Live upkeep for one sighting of an ADVERT, inside ingest's transaction:
/// a new transmission (`first_seen` set) is applied whole; another sighting
/// of a known one only raises its node's `last_seen` to `heard`.
pub(crate) fn on_sighting(
    conn: &Connection,
    raw_hex: &str,
    from_pubkey: Option<&str>,
    tx_id: i64,
    first_seen: Option<&str>,
    heard: &str,
) -> rusqlite::Result<()> {
    match first_seen {
        Some(first) => {
            let decoded = decoder::parse_hex(raw_hex)
                .ok()
                .and_then(|b| decoder::decode(&b).ok().map(|p| advert::decode(p.payload)));
            match decoded {
                Some(Ok(a)) => apply_advert(conn, &a, tx_id, first, heard)?,
                Some(Err(e)) => refused(tx_id, &e),
                None => {}
            }
        }
        None => {
            if let Some(key) = from_pubkey {
                conn.prepare_cached(
                    "UPDATE nodes SET last_seen = ?2
                     WHERE public_key = ?1 AND (last_seen IS NULL OR last_seen < ?2)",
                )?
                .execute(params![key, heard])?;
            }
        }
    }
    Ok(())
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

    /// A run from scratch counts every advert again; the seen times are a
    /// minimum and a maximum, so keeping them loses nothing.
    fn start(&self, conn: &Connection) -> Result<(), MigrationError> {
        conn.execute(
            "UPDATE nodes SET advert_count = 0, advert_tx_id = NULL, location_tx_id = NULL",
            [],
        )?;
        Ok(())
    }

    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT COUNT(*) FROM transmissions WHERE payload_type = ?1 AND id <= ?2",
            params![PAYLOAD_ADVERT, max_id],
            |r| r.get(0),
        )
    }

    fn chunk(&self, conn: &Connection, after: i64, upto: i64) -> Result<i64, MigrationError> {
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
                    apply_advert(conn, &a, *id, first_seen, last_seen)?;
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
        Ok(rows.len() as i64)
    }
}
