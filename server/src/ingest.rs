//! Ingest: validating sightings (from `POST /api/ingest` or MQTT) and
//! applying them to the store on the writer connection.
//!
//! Rules: a new hash makes a transmission (`first_seen` = `last_seen` = the
//! time it was heard); a known hash gains an observation and its `last_seen`
//! is raised, never lowered; the same (transmission, observer, path) again is
//! merged, not duplicated. Dedup is done by lookup (on the
//! `observations(transmission_id)` index) so it also holds on CoreScope files
//! that lack the unique dedup index.
//!
//! Each new transmission is stored with CoreScope's `decoded_json` and
//! `channel_hash` ([`crate::decoder::corescope`]), so CoreScope reads it as
//! its own; a repeated sighting updates the first one's signal figures as
//! CoreScope's `ON CONFLICT … DO UPDATE` does.
//!
//! The time a sighting was heard is the observer's `timestamp` when the
//! sighting carries one that [`crate::heard`] accepts, else the ingest time:
//! it dates the observation, a new transmission's `first_seen`, and raises
//! `last_seen`. An observer's own `last_seen` stays the ingest time (when
//! meshscope last heard from it, which a late backlog upload also is).

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};
use shared::api::IngestResponse;
use shared::packet::PAYLOAD_ADVERT;
use shared::timefmt::format_unix_secs;

use crate::decoder;
use crate::fields::{self, kind, Mode};
use crate::store::{counts, nodes, Upkeep};

/// Most items one ingest request may carry.
pub(crate) const MAX_ITEMS: usize = 1000;

/// One validated, decoded sighting, ready for the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub observer: String,
    pub observer_name: Option<String>,
    pub iata: Option<String>,
    pub raw_hex: String,
    pub hash: String,
    pub route_type: i64,
    pub payload_type: i64,
    pub payload_version: i64,
    pub from_pubkey: Option<String>,
    /// CoreScope's `decoded_json` and `channel_hash` for the packet.
    pub decoded_json: String,
    pub channel_hash: Option<String>,
    pub path_json: String,
    pub snr: Option<f64>,
    pub rssi: Option<f64>,
    pub score: Option<i64>,
    pub direction: Option<String>,
    /// When the observer heard it (unix seconds), from its `timestamp` as
    /// [`crate::heard::resolve`] accepted it; `None`: the ingest time.
    pub heard_at: Option<i64>,
}

impl Sighting {
    /// When it was heard: its own time, or `ingest_secs`.
    pub fn heard_secs(&self, ingest_secs: i64) -> i64 {
        self.heard_at.unwrap_or(ingest_secs)
    }
}

/// Fields of a sighting before decoding, whatever transport carried them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSighting {
    pub observer: String,
    pub observer_name: Option<String>,
    pub iata: Option<String>,
    pub raw: String,
    pub snr: Option<f64>,
    pub rssi: Option<f64>,
    pub score: Option<i64>,
    pub direction: Option<String>,
    /// The observer's receive time as sent (see [`crate::heard`]).
    pub timestamp: Option<String>,
}

/// Why a sighting was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn field_err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Observer ids are public keys (or their prefixes) in hex.
pub(crate) fn validate_observer(id: &str) -> Result<(), FieldError> {
    if id.is_empty() {
        return Err(field_err("observer", "must not be empty"));
    }
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(field_err(
            "observer",
            "must be a hex id of at most 64 characters",
        ));
    }
    Ok(())
}

/// IATA-style region codes: 2-8 letters or digits, stored uppercase.
pub(crate) fn normalize_iata(s: &str) -> Result<String, FieldError> {
    let s = s.trim();
    if s.len() < 2 || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(field_err("iata", "must be 2-8 letters or digits"));
    }
    Ok(s.to_ascii_uppercase())
}

impl RawSighting {
    /// Checks and decodes one sighting; `now` (unix seconds) judges its
    /// `timestamp`.
    pub fn validate(self, now: i64) -> Result<Sighting, FieldError> {
        validate_observer(&self.observer)?;
        let iata = self.iata.as_deref().map(normalize_iata).transpose()?;
        let bytes = decoder::parse_hex(&self.raw).map_err(|e| field_err("raw", e.to_string()))?;
        let packet = decoder::decode(&bytes).map_err(|e| field_err("raw", e.to_string()))?;
        for (name, v) in [("snr", self.snr), ("rssi", self.rssi)] {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(field_err(name, "must be a finite number"));
            }
        }
        if let Some(d) = &self.direction {
            if d.is_empty() || d.len() > 16 {
                return Err(field_err("direction", "must be 1-16 characters"));
            }
        }
        let heard_at = match &self.timestamp {
            Some(t) => {
                let ts = crate::heard::parse(t).map_err(|e| field_err("timestamp", e))?;
                crate::heard::resolve(ts, now).at()
            }
            None => None,
        };
        let stored = decoder::corescope::stored(&packet, decoder::corescope::default_keys());
        Ok(Sighting {
            observer: self.observer,
            observer_name: self.observer_name,
            iata,
            raw_hex: hex::encode_upper(&bytes),
            hash: packet.hash(),
            decoded_json: stored.decoded_json,
            channel_hash: stored.channel_hash,
            route_type: packet.route_type as i64,
            payload_type: i64::from(packet.payload_type),
            payload_version: i64::from(packet.payload_version),
            from_pubkey: packet.advert_pubkey(),
            path_json: packet.path_json(),
            snr: self.snr,
            rssi: self.rssi,
            score: self.score,
            direction: self.direction,
            heard_at,
        })
    }
}

const KNOWN_FIELDS: &[&str] = &[
    "observer",
    "iata",
    "raw",
    "snr",
    "rssi",
    "score",
    "direction",
    "timestamp",
];

fn parse_item(obj: &Map<String, Value>) -> Result<RawSighting, FieldError> {
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(FieldError {
            field: "item",
            message: format!(
                "unknown field {unknown:?} (expected one of {})",
                KNOWN_FIELDS.join(", ")
            ),
        });
    }
    let field = |e: fields::BadField| field_err(e.key, e.message);
    let required = |f: &'static str| -> Result<String, FieldError> {
        fields::text(obj, &[f], Mode::Strict)
            .map_err(field)?
            .ok_or_else(|| field_err(f, "is required"))
    };
    let text = |f: &'static str| fields::text(obj, &[f], Mode::Strict).map_err(field);
    let number = |f: &'static str| fields::number(obj, &[f], Mode::Strict).map_err(field);
    let score = fields::integer(obj, &["score"], Mode::Strict).map_err(field)?;
    Ok(RawSighting {
        observer: required("observer")?,
        observer_name: None,
        iata: text("iata")?,
        raw: required("raw")?,
        snr: number("snr")?,
        rssi: number("rssi")?,
        score,
        direction: text("direction")?,
        timestamp: text("timestamp")?,
    })
}

/// Why an ingest body is refused; items are named by their 0-based index.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("body is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("body must be an object or an array of objects, got {0}")]
    NotObjectOrArray(&'static str),
    #[error("body is an empty array; send at least one item")]
    Empty,
    #[error("body has {0} items; at most {MAX_ITEMS} per request")]
    TooMany(usize),
    #[error("item {index}: must be an object, got {kind}")]
    ItemNotObject { index: usize, kind: &'static str },
    #[error("item {index}: {error}")]
    Item { index: usize, error: FieldError },
}

/// Parses and validates an ingest body: one object or an array of up to
/// [`MAX_ITEMS`]. The error names the item (0-based array index) and field.
/// `now` (unix seconds) judges the items' `timestamp`s.
pub(crate) fn parse_body(body: &[u8], now: i64) -> Result<Vec<Sighting>, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(BodyError::NotJson)?;
    let items: Vec<Value> = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        other => return Err(BodyError::NotObjectOrArray(kind(&other))),
    };
    if items.is_empty() {
        return Err(BodyError::Empty);
    }
    if items.len() > MAX_ITEMS {
        return Err(BodyError::TooMany(items.len()));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let obj = v.as_object().ok_or(BodyError::ItemNotObject {
                index,
                kind: kind(v),
            })?;
            parse_item(obj)
                .and_then(|raw| raw.validate(now))
                .map_err(|error| BodyError::Item { index, error })
        })
        .collect()
}

/// What a message says about its observer; `None` fields keep what is stored.
#[derive(Debug, Default)]
pub(crate) struct ObserverUpdate<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) iata: Option<&'a str>,
    /// When it was seen; `None` (an "offline" report) leaves `last_seen`.
    pub(crate) seen_at: Option<&'a str>,
    pub(crate) model: Option<&'a str>,
    pub(crate) firmware: Option<&'a str>,
    pub(crate) client_version: Option<&'a str>,
    pub(crate) radio: Option<&'a str>,
    /// When it last sent a packet (a sighting, not a status report).
    pub(crate) packet_at: Option<&'a str>,
    pub(crate) battery_mv: Option<i64>,
    pub(crate) uptime_secs: Option<i64>,
    pub(crate) noise_floor: Option<f64>,
}

/// Creates or updates an observer's row (the one statement both a sighting
/// and a status report use); returns its rowid, which sightings reference,
/// and its region.
/// A new observer is added to the `observers` total.
pub(crate) fn upsert_observer(
    conn: &Connection,
    u: &ObserverUpdate<'_>,
    now_text: &str,
) -> rusqlite::Result<(i64, Option<String>)> {
    let known: Option<i64> = conn
        .prepare_cached("SELECT rowid FROM observers WHERE id = ?1")?
        .query_row([u.id], |r| r.get(0))
        .optional()?;
    if known.is_none() {
        counts::add(conn, counts::counter::OBSERVERS, 1)?;
    }
    // CoreScope scans `name` into a Go string: an observer without one is
    // stored with '' (as CoreScope's ingestor stores it), never NULL. Being
    // heard clears CoreScope's `inactive` mark; a packet dates
    // `last_packet_at`.
    conn.prepare_cached(
        "INSERT INTO observers (id, name, iata, first_seen, last_seen, packet_count,
            model, firmware, client_version, radio, battery_mv, uptime_secs, noise_floor,
            last_packet_at)
         VALUES (?1, COALESCE(?2, ''), ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(id) DO UPDATE SET
            name = COALESCE(NULLIF(excluded.name, ''), observers.name, ''),
            iata = COALESCE(excluded.iata, observers.iata),
            last_seen = COALESCE(excluded.last_seen, observers.last_seen),
            model = COALESCE(excluded.model, observers.model),
            firmware = COALESCE(excluded.firmware, observers.firmware),
            client_version = COALESCE(excluded.client_version, observers.client_version),
            radio = COALESCE(excluded.radio, observers.radio),
            battery_mv = COALESCE(excluded.battery_mv, observers.battery_mv),
            uptime_secs = COALESCE(excluded.uptime_secs, observers.uptime_secs),
            noise_floor = COALESCE(excluded.noise_floor, observers.noise_floor),
            last_packet_at = COALESCE(excluded.last_packet_at, observers.last_packet_at),
            inactive = CASE WHEN excluded.last_seen IS NULL THEN observers.inactive ELSE 0 END
         RETURNING rowid, iata",
    )?
    .query_row(
        params![
            u.id,
            u.name,
            u.iata,
            now_text,
            u.seen_at,
            u.model,
            u.firmware,
            u.client_version,
            u.radio,
            u.battery_mv,
            u.uptime_secs,
            u.noise_floor,
            u.packet_at
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Applies one request's sightings inside the caller's transaction (the
/// writer wraps each request in a savepoint, so a failure leaves nothing).
/// The maintained counts (each transmission's `observation_count`, the
/// totals) and the nodes are kept for the rows `upkeep` covers; the others
/// are `counts_backfill_v1`'s and `nodes_backfill_v1`'s to compute. Each
/// sighting stored (not a repeat) is added to `stored`, for the live feed
/// once the transaction commits.
pub fn apply(
    tx: &Connection,
    items: &[Sighting],
    now_secs: i64,
    upkeep: Upkeep,
    stored: &mut Vec<crate::mesh::Stored>,
) -> rusqlite::Result<IngestResponse> {
    let counts = upkeep.counts;
    let now_text = format_unix_secs(now_secs);
    let mut out = IngestResponse {
        accepted: 0,
        new_transmissions: 0,
        duplicates: 0,
    };
    // Totals to add, written once at the end of the request.
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    for s in items {
        let heard = s.heard_secs(now_secs);
        let (observer_idx, region) = upsert_observer(
            tx,
            &ObserverUpdate {
                id: &s.observer,
                name: s.observer_name.as_deref(),
                iata: s.iata.as_deref(),
                seen_at: Some(&now_text),
                packet_at: Some(&now_text),
                ..Default::default()
            },
            &now_text,
        )?;

        let existing: Option<i64> = tx
            .prepare_cached("SELECT id FROM transmissions WHERE hash = ?1")?
            .query_row([&s.hash], |r| r.get(0))
            .optional()?;
        let tx_id = match existing {
            Some(id) => {
                // Raise last_seen, never lower it. On a not-yet-backfilled row
                // (0) this observation is the newest, so `heard` is also right.
                tx.prepare_cached(
                    "UPDATE transmissions SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2",
                )?
                .execute(params![id, heard])?;
                id
            }
            None => {
                out.new_transmissions += 1;
                tx.prepare_cached(
                    "INSERT INTO transmissions (raw_hex, hash, first_seen, route_type, payload_type,
                        payload_version, decoded_json, channel_hash, from_pubkey, last_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                )?
                .query_row(
                    params![
                        s.raw_hex,
                        s.hash,
                        format_unix_secs(heard),
                        s.route_type,
                        s.payload_type,
                        s.payload_version,
                        s.decoded_json,
                        s.channel_hash,
                        s.from_pubkey,
                        heard
                    ],
                    |r| r.get::<_, i64>(0),
                )
                .inspect(|id| {
                    if counts.covers(*id) {
                        *totals.entry(counts::counter::TRANSMISSIONS.into()).or_default() += 1;
                        *totals.entry(counts::counter::of_type(Some(s.payload_type))).or_default() += 1;
                    }
                })?
            }
        };

        if s.payload_type == i64::from(PAYLOAD_ADVERT) && upkeep.nodes.covers(tx_id) {
            // The node's times are the transmission's: first_seen as stored
            // for a new one, and when this sighting was heard.
            let heard_text = format_unix_secs(heard);
            let first_seen = existing.is_none().then_some(heard_text.as_str());
            nodes::on_sighting(
                tx,
                &s.raw_hex,
                s.from_pubkey.as_deref(),
                tx_id,
                first_seen,
                &heard_text,
            )?;
        }

        let dup: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM observations
                 WHERE transmission_id = ?1 AND observer_idx IS ?2 AND COALESCE(path_json, '') = ?3",
            )?
            .query_row(params![tx_id, observer_idx, s.path_json], |r| r.get(0))
            .optional()?;
        out.accepted += 1;
        if let Some(dup) = dup {
            // The same sighting again, merged as CoreScope's ingestor merges
            // it: the first row stays, its signal figures take a new value
            // when there is one.
            tx.prepare_cached(
                "UPDATE observations SET snr = COALESCE(?2, snr), rssi = COALESCE(?3, rssi),
                    score = COALESCE(?4, score) WHERE id = ?1",
            )?
            .execute(params![dup, s.snr, s.rssi, s.score])?;
            out.duplicates += 1;
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO observations (transmission_id, observer_idx, direction, snr, rssi, score,
                path_json, timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            tx_id,
            observer_idx,
            s.direction,
            s.snr,
            s.rssi,
            s.score,
            s.path_json,
            heard
        ])?;
        tx.prepare_cached(
            "UPDATE observers SET packet_count = COALESCE(packet_count, 0) + 1 WHERE rowid = ?1",
        )?
        .execute([observer_idx])?;
        if s.payload_type == i64::from(PAYLOAD_ADVERT) && upkeep.regions.covers(tx_id) {
            if let (Some(key), Some(region)) = (&s.from_pubkey, &region) {
                crate::store::regions::heard(tx, key, region, heard)?;
            }
        }
        stored.push(crate::mesh::Stored {
            hash: s.hash.clone(),
            payload_type: s.payload_type,
            observer_id: s.observer.clone(),
            observer_name: s.observer_name.clone(),
            iata: region,
            snr: s.snr,
            rssi: s.rssi,
            heard,
            new_packet: existing.is_none(),
            path_json: s.path_json.clone(),
            from_pubkey: s.from_pubkey.clone(),
        });
        if counts.covers(tx_id) {
            tx.prepare_cached(
                "UPDATE transmissions SET observation_count = observation_count + 1 WHERE id = ?1",
            )?
            .execute([tx_id])?;
            *totals
                .entry(counts::counter::OBSERVATIONS.into())
                .or_default() += 1;
        }
    }
    for (name, n) in totals {
        counts::add(tx, &name, n)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// A FLOOD ADVERT: key, timestamp, a 64-byte signature, no app data.
    const ADVERT_HEX: &str = "1100\
        0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\
        aabbccdd\
        eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\
        eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

    #[test]
    fn single_object_and_array_parse() {
        let one = format!(r#"{{"observer":"ab12","raw":"{ADVERT_HEX}","snr":7.5,"iata":"sea"}}"#);
        let v = parse_body(one.as_bytes(), NOW).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].iata.as_deref(), Some("SEA"));
        assert_eq!(v[0].payload_type, 4);
        assert!(v[0].from_pubkey.as_deref().unwrap().starts_with("01020304"));
        let arr = format!(r#"[{one},{one}]"#);
        assert_eq!(parse_body(arr.as_bytes(), NOW).unwrap().len(), 2);
    }

    #[test]
    fn errors_name_item_and_field() {
        let cases = [
            ("nope", "not valid JSON"),
            ("42", "object or an array"),
            ("[]", "empty array"),
            (
                r#"[{"observer":"ab","raw":"0500"}, 3]"#,
                "item 1: must be an object",
            ),
            (r#"{"observer":"ab"}"#, "item 0: raw: is required"),
            (
                r#"{"observer":"ab","raw":"zz"}"#,
                "item 0: raw: not valid hex",
            ),
            (
                r#"{"observer":"ab","raw":"05"}"#,
                "item 0: raw: packet is 1 bytes",
            ),
            (
                r#"{"observer":"xyz","raw":"0500"}"#,
                "item 0: observer: must be a hex id",
            ),
            (
                r#"{"observer":"ab","raw":"0500","snr":"7"}"#,
                "item 0: snr: must be a number",
            ),
            (
                r#"{"observer":"ab","raw":"0500","score":1.5}"#,
                "item 0: score: must be an integer",
            ),
            (
                r#"{"observer":"ab","raw":"0500","extra":1}"#,
                "item 0: item: unknown field \"extra\"",
            ),
            (
                r#"{"observer":"ab","raw":"0500","iata":"x"}"#,
                "item 0: iata:",
            ),
        ];
        for (body, want) in cases {
            let err = parse_body(body.as_bytes(), NOW).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: got {err:?}, want {want:?}");
        }
        let many = format!(
            "[{}]",
            vec![r#"{"observer":"ab","raw":"0500"}"#; 1001].join(",")
        );
        assert!(parse_body(many.as_bytes(), NOW)
            .unwrap_err()
            .to_string()
            .contains("at most 1000"));
    }
}
