//! Which regions heard each node: `_meshscope_node_regions`, one row per
//! (region, node) whose ADVERTs an observer of that region (its `iata`)
//! heard, with the last time. `GET /api/nodes?iata=` reads it. Live ingest
//! keeps it for the transmissions `node_regions_v1` has covered; the
//! migration adds the rest from the file's adverts. Like `nodes`, a row
//! outlives the adverts retention deletes.

use rusqlite::{params, Connection};

/// The region's observers heard `public_key`'s advert at `at` (unix s).
pub fn heard(conn: &Connection, public_key: &str, iata: &str, at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO _meshscope_node_regions (iata, public_key, last_heard)
         VALUES (upper(?1), lower(?2), ?3)
         ON CONFLICT (iata, public_key) DO UPDATE
            SET last_heard = max(last_heard, excluded.last_heard)",
    )?
    .execute(params![iata, public_key, at])?;
    Ok(())
}

/// The statement `node_regions_v1` runs per chunk of transmission ids
/// (`?1 < id <= ?2`): the same rows [`heard`] writes, for stored adverts.
pub const FROM_ADVERTS: &str = "INSERT INTO _meshscope_node_regions (iata, public_key, last_heard)
    SELECT upper(obs.iata), lower(t.from_pubkey), MAX(o.timestamp)
    FROM transmissions t
    JOIN observations o ON o.transmission_id = t.id
    JOIN observers obs ON obs.rowid = o.observer_idx
    WHERE t.id > ?1 AND t.id <= ?2 AND t.payload_type = 4
      AND t.from_pubkey IS NOT NULL AND COALESCE(obs.iata, '') <> ''
    GROUP BY 1, 2
    ON CONFLICT (iata, public_key) DO UPDATE
        SET last_heard = max(last_heard, excluded.last_heard)";
