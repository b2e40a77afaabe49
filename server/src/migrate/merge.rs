//! Merging rows that turn out to be one: repeated sightings (the same
//! transmission, observer and path, which CoreScope's unique dedup index
//! forbids but older CoreScope files hold) and two transmissions that are
//! the same packet under an old and a current hash. Used by
//! `observations_dedup_v1` and `hash_rehash_v1`, inside their chunks.
//!
//! Nothing is lost: every row a merge removes is first archived whole, as
//! JSON of all its columns, in `_meshscope_merged` (with the row it went
//! into and why), so each distinct value stays in the file. The row kept is
//! the one CoreScope's dedup keeps: the first (lowest id); its signal
//! figures take the newest value that is there, as CoreScope's
//! `ON CONFLICT … DO UPDATE SET snr = COALESCE(excluded.snr, snr)` does.
//! The maintained counts change in the same transaction, for the rows the
//! counts already cover ([`Upkeep`]).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::now_text;
use crate::store::counts::{self, counter};
use crate::store::Upkeep;

/// Why a row was merged away (`_meshscope_merged.reason`).
pub(crate) const REPEATED_SIGHTING: &str = "repeated sighting";
pub(crate) const SAME_PACKET: &str = "same packet under an older hash";

/// Copies row `id` of `table` (every column, as JSON) into the archive.
pub(crate) fn archive(
    conn: &Connection,
    table: &str,
    id: i64,
    merged_into: i64,
    reason: &str,
) -> rusqlite::Result<()> {
    let cols = crate::db::table_columns(conn, table)?;
    // json_object cannot hold a BLOB; keep one as hex.
    let pairs: Vec<String> = cols
        .iter()
        .map(|c| {
            format!("'{c}', CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE \"{c}\" END")
        })
        .collect();
    conn.prepare_cached(&format!(
        "INSERT INTO _meshscope_merged (tbl, row_id, merged_into, reason, row_json, merged_at)
         SELECT ?1, id, ?2, ?3, json_object({}), ?4 FROM {table} WHERE id = ?5",
        pairs.join(", ")
    ))?
    .execute(params![table, merged_into, reason, now_text(), id])?;
    Ok(())
}

/// One sighting's mergeable figures.
struct Figures {
    id: i64,
    snr: Option<f64>,
    rssi: Option<f64>,
    score: Option<i64>,
    raw_hex: Option<String>,
    resolved_path: Option<String>,
}

/// Merges the repeated sightings of transmission `tx` (same observer, same
/// path; an unknown observer never repeats, as in a unique index): the
/// first stays, the others are archived and deleted. Returns how many
/// were deleted; the transmission's count is the caller's.
pub(crate) fn merge_repeated_sightings(conn: &Connection, tx: i64) -> rusqlite::Result<i64> {
    let groups: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT observer_idx, COALESCE(path_json, '') FROM observations
             WHERE transmission_id = ?1 AND observer_idx IS NOT NULL
             GROUP BY observer_idx, COALESCE(path_json, '') HAVING COUNT(*) > 1",
        )?
        .query_map([tx], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut deleted = 0;
    for (observer, path) in groups {
        let rows: Vec<Figures> = conn
            .prepare_cached(
                "SELECT id, snr, rssi, score, raw_hex, resolved_path FROM observations
                 WHERE transmission_id = ?1 AND observer_idx = ?2 AND COALESCE(path_json, '') = ?3
                 ORDER BY id",
            )?
            .query_map(params![tx, observer, path], |r| {
                Ok(Figures {
                    id: r.get(0)?,
                    snr: r.get(1)?,
                    rssi: r.get(2)?,
                    score: r.get(3)?,
                    raw_hex: r.get(4)?,
                    resolved_path: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut rows = rows.into_iter();
        let Some(mut kept) = rows.next() else {
            continue;
        };
        for later in rows {
            kept.snr = later.snr.or(kept.snr);
            kept.rssi = later.rssi.or(kept.rssi);
            kept.score = later.score.or(kept.score);
            kept.raw_hex = later.raw_hex.clone().or(kept.raw_hex);
            kept.resolved_path = later.resolved_path.clone().or(kept.resolved_path);
            archive(conn, "observations", later.id, kept.id, REPEATED_SIGHTING)?;
            conn.prepare_cached("DELETE FROM observations WHERE id = ?1")?
                .execute([later.id])?;
            deleted += 1;
        }
        conn.prepare_cached(
            "UPDATE observations SET snr = ?2, rssi = ?3, score = ?4, raw_hex = ?5,
                resolved_path = ?6 WHERE id = ?1",
        )?
        .execute(params![
            kept.id,
            kept.snr,
            kept.rssi,
            kept.score,
            kept.raw_hex,
            kept.resolved_path
        ])?;
    }
    Ok(deleted)
}

/// Sets transmission `tx`'s sighting count from its rows, when the counts
/// cover it, and moves the sightings total by the change.
pub(crate) fn recount(conn: &Connection, tx: i64, upkeep: Upkeep) -> rusqlite::Result<()> {
    if !upkeep.counts.covers(tx) {
        return Ok(());
    }
    let before: i64 = conn
        .prepare_cached("SELECT observation_count FROM transmissions WHERE id = ?1")?
        .query_row([tx], |r| r.get(0))?;
    let now: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM observations WHERE transmission_id = ?1")?
        .query_row([tx], |r| r.get(0))?;
    if now != before {
        conn.prepare_cached("UPDATE transmissions SET observation_count = ?2 WHERE id = ?1")?
            .execute(params![tx, now])?;
        counts::add(conn, counter::OBSERVATIONS, now - before)?;
    }
    Ok(())
}

/// A stored transmission, as a merge needs it.
struct Tx {
    hash: String,
    first_seen: String,
    last_seen: i64,
    payload_type: Option<i64>,
    from_pubkey: Option<String>,
}

fn read_tx(conn: &Connection, id: i64) -> rusqlite::Result<Option<Tx>> {
    conn.prepare_cached(
        "SELECT hash, first_seen, last_seen, payload_type, from_pubkey FROM transmissions WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(Tx {
            hash: r.get(0)?,
            first_seen: r.get(1)?,
            last_seen: r.get(2)?,
            payload_type: r.get(3)?,
            from_pubkey: r.get(4)?,
        })
    })
    .optional()
}

/// Merges transmission `stale` into `survivor` (the same packet): its
/// sightings move (repeats merged), the survivor's first and last seen
/// widen to cover both, the stale row is archived and deleted and its hash
/// kept as an alias of the survivor. Counts and nodes stay exact for what
/// they cover. Returns how many sightings moved (repeats not counted).
pub(crate) fn merge_transmission(
    conn: &Connection,
    stale: i64,
    survivor: i64,
    upkeep: Upkeep,
) -> rusqlite::Result<i64> {
    let (Some(s), Some(v)) = (read_tx(conn, stale)?, read_tx(conn, survivor)?) else {
        return Ok(0);
    };
    let sightings: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM observations WHERE transmission_id = ?1")?
        .query_row([stale], |r| r.get(0))?;
    archive(conn, "transmissions", stale, survivor, SAME_PACKET)?;
    conn.prepare_cached("UPDATE observations SET transmission_id = ?2 WHERE transmission_id = ?1")?
        .execute(params![stale, survivor])?;
    let repeats = merge_repeated_sightings(conn, survivor)?;
    let earlier = match (
        shared::timefmt::parse_time_ms(&s.first_seen),
        shared::timefmt::parse_time_ms(&v.first_seen),
    ) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    };
    conn.prepare_cached(
        "UPDATE transmissions SET first_seen = CASE WHEN ?2 THEN ?3 ELSE first_seen END,
            last_seen = MAX(last_seen, ?4) WHERE id = ?1",
    )?
    .execute(params![survivor, earlier, s.first_seen, s.last_seen])?;
    // The stale row leaves the totals it was counted in...
    if upkeep.counts.covers(stale) {
        counts::add(conn, counter::TRANSMISSIONS, -1)?;
        counts::add(conn, &counter::of_type(s.payload_type), -1)?;
        counts::add(conn, counter::OBSERVATIONS, -sightings)?;
    }
    // ...and an advert counted twice for a node meshscope counts is one.
    if s.payload_type == Some(i64::from(shared::packet::PAYLOAD_ADVERT))
        && upkeep.nodes.covers(stale)
    {
        if let Some(key) = &s.from_pubkey {
            conn.prepare_cached(
                "UPDATE nodes SET advert_count = MAX(COALESCE(advert_count, 0) - 1, 0)
                 WHERE public_key = ?1 AND public_key IN
                    (SELECT public_key FROM _meshscope_nodes WHERE counts_from = 'meshscope')",
            )?
            .execute([key])?;
        }
    }
    conn.prepare_cached("DELETE FROM transmissions WHERE id = ?1")?
        .execute([stale])?;
    // The sightings moved in count for the survivor once its count is kept.
    recount(conn, survivor, upkeep)?;
    alias(conn, &s.hash, survivor)?;
    conn.prepare_cached(
        "UPDATE _meshscope_hash_aliases SET transmission_id = ?2 WHERE transmission_id = ?1",
    )?
    .execute(params![stale, survivor])?;
    Ok(sightings - repeats)
}

/// Remembers that `hash` (an older rule's) now names transmission `id`.
pub(crate) fn alias(conn: &Connection, hash: &str, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO _meshscope_hash_aliases (hash, transmission_id) VALUES (?1, ?2)
         ON CONFLICT(hash) DO UPDATE SET transmission_id = excluded.transmission_id",
    )?
    .execute(params![hash, id])?;
    Ok(())
}
