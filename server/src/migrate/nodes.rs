//! The network's nodes, from ADVERT packets, in CoreScope's `nodes` table.
//!
//! Live ingest keeps the table (see [`on_sighting`]) for the transmissions
//! `nodes_backfill_v1` has covered; the backfill builds it for the rest of
//! an existing file, decoding each ADVERT's `raw_hex` in Rust. Both apply
//! an advert with one function whose every part is order-free:
//!
//! - `advert_count` adds one per ADVERT transmission (a packet heard by
//!   several observers is one advert);
//! - `first_seen` keeps the earliest, `last_seen` the latest sighting;
//! - name and role come from the newest advert (highest transmission id),
//!   latitude and longitude from the newest advert that carried a location:
//!   an advert without a location keeps the last known one, as CoreScope
//!   does.
//!
//! The ids that order updates are meshscope's bookkeeping, kept in its own
//! `_meshscope_nodes` (CoreScope copies `nodes` by position into
//! `inactive_nodes`, so `nodes` carries only CoreScope's columns). A node
//! row meshscope did not build (`counts_from = 'corescope'`: CoreScope
//! counted it, over history its retention may have deleted since) is never
//! recounted: the backfill leaves it exactly as it is, and live ingest adds
//! what it hears from then on.
//!
//! So ingest and the backfill may interleave in any order and end equal to
//! a file whose nodes were kept at ingest from the start (a test checks it).
//! Adverts CoreScope would not store as a node (too short, zero key, a
//! location off the globe) are counted and logged, never stored.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{params, Connection};
use shared::packet::PAYLOAD_ADVERT;
use shared::timefmt::format_unix_secs;

use super::{Migration, MigrationError, Upkeep};
use crate::decoder::{self, advert};

pub const NAME: &str = "nodes_backfill_v1";

/// Who counted a node: `counts_from` of `_meshscope_nodes`.
const BY_MESHSCOPE: &str = "meshscope";
const BY_OTHERS: &str = "corescope";

/// Adverts of one node applied together: how many, the newest (its name
/// and role), the newest that carried a location, the earliest first and
/// the latest last sighting.
struct Heard {
    newest: advert::Advert,
    newest_id: i64,
    located: Option<(f64, f64, i64)>,
    first_seen: String,
    last_seen: String,
    count: i64,
}

impl Heard {
    fn one(a: advert::Advert, tx_id: i64, first_seen: &str, last_seen: &str) -> Heard {
        Heard {
            located: a.lat.zip(a.lon).map(|(lat, lon)| (lat, lon, tx_id)),
            newest: a,
            newest_id: tx_id,
            first_seen: first_seen.to_string(),
            last_seen: last_seen.to_string(),
            count: 1,
        }
    }

    /// Adds a later advert (a higher transmission id) of the same node.
    fn add(&mut self, a: advert::Advert, tx_id: i64, first_seen: &str, last_seen: &str) {
        if let (Some(lat), Some(lon)) = (a.lat, a.lon) {
            self.located = Some((lat, lon, tx_id));
        }
        if first_seen < self.first_seen.as_str() {
            self.first_seen = first_seen.to_string();
        }
        if last_seen > self.last_seen.as_str() {
            self.last_seen = last_seen.to_string();
        }
        self.newest = a;
        self.newest_id = tx_id;
        self.count += 1;
    }
}

/// Applies one ADVERT transmission (`tx_id`) to its node.
fn apply_advert(
    conn: &Connection,
    a: &advert::Advert,
    tx_id: i64,
    first_seen: &str,
    last_seen: &str,
) -> rusqlite::Result<()> {
    let k = known(conn, &a.public_key)?;
    apply_known(
        conn,
        &Heard::one(a.clone(), tx_id, first_seen, last_seen),
        &k,
    )
}

/// Applies a node's adverts, with what the file holds of it already read.
fn apply_known(conn: &Connection, h: &Heard, k: &Known) -> rusqlite::Result<()> {
    let a = &h.newest;
    let newest = k.advert_id.is_none_or(|id| h.newest_id > id);
    let located = h
        .located
        .filter(|(_, _, id)| k.location_id.is_none_or(|known| *id > known));
    let (lat, lon) = (located.map(|l| l.0), located.map(|l| l.1));
    if k.exists {
        conn.prepare_cached(
            "UPDATE nodes SET
                name = CASE WHEN ?2 THEN ?3 ELSE name END,
                role = CASE WHEN ?2 THEN ?4 ELSE role END,
                lat = CASE WHEN ?5 THEN ?6 ELSE lat END,
                lon = CASE WHEN ?5 THEN ?7 ELSE lon END,
                first_seen = CASE WHEN first_seen IS NULL OR ?8 < first_seen THEN ?8 ELSE first_seen END,
                last_seen = CASE WHEN last_seen IS NULL OR ?9 > last_seen THEN ?9 ELSE last_seen END,
                advert_count = COALESCE(advert_count, 0) + ?10
             WHERE public_key = ?1",
        )?
        .execute(params![
            a.public_key,
            newest,
            a.name,
            a.role(),
            located.is_some(),
            lat,
            lon,
            h.first_seen,
            h.last_seen,
            h.count
        ])?;
    } else {
        conn.prepare_cached(
            "INSERT INTO nodes (public_key, name, role, lat, lon, first_seen, last_seen, advert_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            a.public_key,
            a.name,
            a.role(),
            lat,
            lon,
            h.first_seen,
            h.last_seen,
            h.count
        ])?;
    }
    // A node that was there without bookkeeping was counted by another
    // program; one these adverts create is meshscope's.
    let counts_from = if k.exists && !k.book {
        BY_OTHERS
    } else {
        BY_MESHSCOPE
    };
    conn.prepare_cached(
        "INSERT INTO _meshscope_nodes (public_key, advert_tx_id, location_tx_id, counts_from)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(public_key) DO UPDATE SET
            advert_tx_id = MAX(COALESCE(advert_tx_id, 0), excluded.advert_tx_id),
            location_tx_id = CASE WHEN excluded.location_tx_id IS NULL THEN location_tx_id
                                  ELSE MAX(COALESCE(location_tx_id, 0), excluded.location_tx_id) END",
    )?
    .execute(params![
        a.public_key,
        h.newest_id,
        h.located.map(|l| l.2),
        counts_from
    ])?;
    Ok(())
}

/// What the file holds of a node: its row and meshscope's bookkeeping.
#[derive(Clone, Copy)]
struct Known {
    exists: bool,
    /// meshscope has bookkeeping for it.
    book: bool,
    advert_id: Option<i64>,
    location_id: Option<i64>,
    /// Another program counted it (`counts_from = 'corescope'`).
    others: bool,
}

/// One look at the node `key` (its row and bookkeeping together).
fn known(conn: &Connection, key: &str) -> rusqlite::Result<Known> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM nodes WHERE public_key = ?1),
                b.public_key IS NOT NULL, b.advert_tx_id, b.location_tx_id,
                COALESCE(b.counts_from = ?2, 0)
         FROM (SELECT 1) LEFT JOIN _meshscope_nodes b ON b.public_key = ?1",
    )?
    .query_row(params![key, BY_OTHERS], |r| {
        Ok(Known {
            exists: r.get(0)?,
            book: r.get(1)?,
            advert_id: r.get(2)?,
            location_id: r.get(3)?,
            others: r.get(4)?,
        })
    })
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
        conn.query_row(
            "SELECT COUNT(*) FROM transmissions WHERE payload_type = ?1 AND id <= ?2",
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
