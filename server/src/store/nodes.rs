//! The `nodes` table's upkeep rules (CoreScope's table, meshscope's
//! bookkeeping beside it in `_meshscope_nodes`): how an ADVERT changes its
//! node, the same for live ingest and `nodes_backfill_v1`.
//!
//! Every part is order-free, so ingest and the backfill may interleave:
//! - `advert_count` adds one per ADVERT transmission (a packet heard by
//!   several observers is one advert);
//! - `first_seen` keeps the earliest, `last_seen` the latest sighting,
//!   compared as instants, never as text (CoreScope's `…:56Z` and
//!   meshscope's `…:56.123Z`, or SQLite's space form, sort wrongly as
//!   text): [`later`] in Rust, SQLite's `julianday()` in SQL, both reading
//!   every shape `shared::timefmt::parse_time_ms` reads; a time that is not
//!   one loses to one that is;
//! - name and role come from the newest advert (highest transmission id),
//!   latitude and longitude from the newest advert that carried a location:
//!   an advert without a location keeps the last known one, as CoreScope
//!   does.
//!
//! The ids that order updates are kept in `_meshscope_nodes` (CoreScope
//! copies `nodes` by position into `inactive_nodes`, so `nodes` carries only
//! CoreScope's columns). A node row meshscope did not build
//! (`counts_from = 'corescope'`: CoreScope counted it, over history its
//! retention may have deleted since) is never recounted: a backfill leaves
//! it as it is, and live ingest adds what it hears from then on. Adverts
//! CoreScope would not store as a node (too short, zero key, a location off
//! the globe) are counted and logged, never stored.

use rusqlite::{params, Connection};

use crate::decoder::{self, advert};

/// Who counted a node: `counts_from` of `_meshscope_nodes`.
pub(crate) const BY_MESHSCOPE: &str = "meshscope";
pub(crate) const BY_OTHERS: &str = "corescope";

/// Adverts of one node applied together: how many, the newest (its name
/// and role), the newest that carried a location, the earliest first and
/// the latest last sighting.
pub(crate) struct Heard {
    pub(crate) newest: advert::Advert,
    newest_id: i64,
    located: Option<(f64, f64, i64)>,
    first_seen: String,
    last_seen: String,
    count: i64,
}

impl Heard {
    pub(crate) fn one(a: advert::Advert, tx_id: i64, first_seen: &str, last_seen: &str) -> Heard {
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
    pub(crate) fn add(&mut self, a: advert::Advert, tx_id: i64, first_seen: &str, last_seen: &str) {
        if let (Some(lat), Some(lon)) = (a.lat, a.lon) {
            self.located = Some((lat, lon, tx_id));
        }
        if later(&self.first_seen, first_seen) {
            self.first_seen = first_seen.to_string();
        }
        if later(last_seen, &self.last_seen) {
            self.last_seen = last_seen.to_string();
        }
        self.newest = a;
        self.newest_id = tx_id;
        self.count += 1;
    }
}

/// Whether stored time `a` is a later instant than `b` (or `b` is not a
/// time and `a` is).
pub(crate) fn later(a: &str, b: &str) -> bool {
    use shared::timefmt::parse_time_ms;
    match (parse_time_ms(a), parse_time_ms(b)) {
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => true,
        _ => false,
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
pub(crate) fn apply_known(conn: &Connection, h: &Heard, k: &Known) -> rusqlite::Result<()> {
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
                first_seen = CASE WHEN julianday(first_seen) IS NULL
                    OR julianday(?8) < julianday(first_seen) THEN ?8 ELSE first_seen END,
                last_seen = CASE WHEN julianday(last_seen) IS NULL
                    OR julianday(?9) > julianday(last_seen) THEN ?9 ELSE last_seen END,
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
pub(crate) struct Known {
    exists: bool,
    /// meshscope has bookkeeping for it.
    book: bool,
    advert_id: Option<i64>,
    location_id: Option<i64>,
    /// Another program counted it (`counts_from = 'corescope'`).
    pub(crate) others: bool,
}

/// One look at the node `key` (its row and bookkeeping together).
pub(crate) fn known(conn: &Connection, key: &str) -> rusqlite::Result<Known> {
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

pub(crate) fn refused(tx_id: i64, e: &advert::AdvertError) {
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
                     WHERE public_key = ?1
                       AND (julianday(last_seen) IS NULL OR julianday(last_seen) < julianday(?2))",
                )?
                .execute(params![key, heard])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes found in real files: CoreScope's whole seconds, its and
    /// meshscope's milliseconds, SQLite's space form.
    const SHAPES: [(&str, &str); 3] = [
        ("2026-03-28T10:54:56.123Z", "2026-03-28T10:54:56Z"),
        ("2026-03-28 10:54:57", "2026-03-28T10:54:56.500Z"),
        ("2026-03-28 11:00:00", "2026-03-28T10:59:59.999Z"),
    ];

    #[test]
    fn stored_times_compare_as_instants_in_rust_and_in_sql() {
        let c = Connection::open_in_memory().unwrap();
        for (late, early) in SHAPES {
            // As text, each pair sorts the wrong way round.
            assert!(late < early, "{late} vs {early} is a real text trap");
            assert!(later(late, early), "{late} after {early}");
            assert!(!later(early, late));
            let sql: bool = c
                .query_row("SELECT julianday(?1) > julianday(?2)", [late, early], |r| {
                    r.get(0)
                })
                .unwrap();
            assert!(sql, "SQL agrees: {late} after {early}");
        }
        assert!(later("2026-03-28T10:54:56Z", "not a time"));
        assert!(!later("not a time", "2026-03-28T10:54:56Z"));
    }
}
