//! What MeshCore observers publish, turned into ingest input: the topic
//! (`…/<IATA>/<observer id>/packets|status`), the packet JSON (into a
//! validated [`Sighting`], by the same `RawSighting::validate` as
//! `POST /api/ingest`) and the status JSON (into a [`StatusUpdate`]).
//!
//! Pure functions, no I/O: every outcome, including each way a payload can
//! be malformed, is a value the subscriber counts.

use serde_json::{Map, Value};

use crate::fields::{self, kind, Mode};

use crate::decoder;
use crate::ingest::{normalize_iata, validate_observer, FieldError, RawSighting, Sighting};

/// Why a message was refused. Each reason is its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    /// The payload is not a JSON object.
    NotJson,
    /// A packet payload without a (non-empty) `raw` string.
    NoRaw,
    /// `raw` is not hex.
    BadHex,
    /// `raw` is hex but not a MeshCore packet.
    Undecodable,
    /// The observer id in the topic is not a hex id.
    BadObserver,
    /// The region (topic level or `region` field) is not an IATA-style code.
    BadRegion,
    /// Another field has a value of the wrong type or out of range.
    BadField,
    /// Valid, but the store kept refusing it with an error that does not
    /// clear by itself (not a full disk or a lock: those are retried until
    /// they clear); refused so it cannot stall the source for good.
    StoreFailed,
    /// Larger than [`MAX_MESSAGE_BYTES`]: refused unread (not parsed).
    TooLarge,
}

impl Reject {
    /// The `reason` label of counters and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::NotJson => "not_json",
            Reject::NoRaw => "no_raw",
            Reject::BadHex => "bad_hex",
            Reject::Undecodable => "undecodable",
            Reject::BadObserver => "bad_observer",
            Reject::BadRegion => "bad_region",
            Reject::BadField => "bad_field",
            Reject::StoreFailed => "store_failed",
            Reject::TooLarge => "too_large",
        }
    }
}

/// Largest message payload accepted. A MeshCore packet is at most 255 bytes
/// (510 as hex) and a status report a few hundred: a message near this size
/// is not an observer's, and a larger one is refused unparsed. Oversized
/// text fields inside smaller messages are cut instead (see [`MAX_TEXT_CHARS`]).
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Longest text field stored from a message (`origin`, `model`,
/// `firmware`), in characters; longer values are cut on a character
/// boundary and counted.
pub const MAX_TEXT_CHARS: usize = 128;

/// Why a well-formed message was skipped on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ignore {
    /// A topic under the subscription that is neither `…/packets` nor `…/status`.
    OtherTopic,
    /// A region outside the source's `iata_filter`.
    Filtered,
}

impl Ignore {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignore::OtherTopic => "other_topic",
            Ignore::Filtered => "filtered",
        }
    }
}

/// A refused message: the reason (for counters) and a detail (for the log).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub(crate) struct Rejection {
    pub(crate) reason: Reject,
    pub(crate) detail: String,
}

fn reject(reason: Reject, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

/// An observer's self-report from a `…/status` topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StatusUpdate {
    pub observer: String,
    pub iata: Option<String>,
    pub name: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    /// The observer software's version (CoreScope's `client_version`).
    pub client_version: Option<String>,
    /// The radio settings as reported (frequency, bandwidth, SF, CR).
    pub radio: Option<String>,
    pub battery_mv: Option<i64>,
    pub uptime_secs: Option<i64>,
    pub noise_floor: Option<f64>,
    /// `"status": "offline"` (usually the observer's last will, sent by the
    /// broker when it vanished): the report must not count as being seen.
    pub(crate) offline: bool,
}

/// What one MQTT message amounts to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    /// A packet, and why it is dated at receipt when it is.
    Packet(Box<Sighting>, Option<crate::heard::AtReceipt>),
    Status(StatusUpdate),
    Ignored(Ignore),
    Rejected(Rejection),
}

/// Cuts `v` to [`MAX_TEXT_CHARS`] characters; true if it was longer.
fn cap(v: &mut Option<String>) -> bool {
    match v {
        Some(s) if s.chars().count() > MAX_TEXT_CHARS => {
            let end = s
                .char_indices()
                .nth(MAX_TEXT_CHARS)
                .map_or(s.len(), |(i, _)| i);
            s.truncate(end);
            true
        }
        _ => false,
    }
}

/// Caps the free-text fields of a parsed message; returns the names of the
/// fields that were cut, for counting.
pub(crate) fn cap_text_fields(parsed: &mut Parsed) -> Vec<&'static str> {
    let mut cut = Vec::new();
    match parsed {
        Parsed::Packet(s, _) => {
            if cap(&mut s.observer_name) {
                cut.push("origin");
            }
        }
        Parsed::Status(u) => {
            for (field, v) in [
                ("origin", &mut u.name),
                ("model", &mut u.model),
                ("firmware", &mut u.firmware),
            ] {
                if cap(v) {
                    cut.push(field);
                }
            }
        }
        Parsed::Ignored(_) | Parsed::Rejected(_) => {}
    }
    cut
}

/// Parses one message. `iata_filter` (uppercase codes), when given, keeps
/// only those regions. Text fields come out capped; the second value names
/// the fields that were cut (see [`cap_text_fields`]).
pub(crate) fn parse_message(
    topic: &str,
    payload: &[u8],
    iata_filter: Option<&[String]>,
    now: i64,
) -> (Parsed, Vec<&'static str>) {
    let mut parsed = parse_uncapped(topic, payload, iata_filter, now);
    let cut = cap_text_fields(&mut parsed);
    (parsed, cut)
}

fn parse_uncapped(topic: &str, payload: &[u8], iata_filter: Option<&[String]>, now: i64) -> Parsed {
    let mut levels = topic.rsplit('/');
    let (Some(kind), Some(observer), Some(topic_iata)) =
        (levels.next(), levels.next(), levels.next())
    else {
        return Parsed::Ignored(Ignore::OtherTopic);
    };
    let is_packet = match kind {
        "packets" => true,
        "status" => false,
        _ => return Parsed::Ignored(Ignore::OtherTopic),
    };
    match parse_known(is_packet, topic_iata, observer, payload, iata_filter, now) {
        Ok(p) => p,
        Err(r) => Parsed::Rejected(r),
    }
}

fn parse_known(
    is_packet: bool,
    topic_iata: &str,
    observer: &str,
    payload: &[u8],
    iata_filter: Option<&[String]>,
    now: i64,
) -> Result<Parsed, Rejection> {
    let obj = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(obj)) => obj,
        Ok(other) => {
            return Err(reject(
                Reject::NotJson,
                format!("payload is {}, not a JSON object", kind(&other)),
            ))
        }
        Err(e) => return Err(reject(Reject::NotJson, format!("payload is not JSON: {e}"))),
    };
    validate_observer(observer)
        .map_err(|e| reject(Reject::BadObserver, format!("topic observer id: {e}")))?;
    // The payload's `region` wins over the topic's region level.
    let iata = match text(&obj, &["region"])? {
        Some(region) => normalize_iata(&region),
        None => normalize_iata(topic_iata),
    }
    .map_err(|e| reject(Reject::BadRegion, e.message))?;
    if let Some(allowed) = iata_filter {
        if !allowed.contains(&iata) {
            return Ok(Parsed::Ignored(Ignore::Filtered));
        }
    }
    let name = text(&obj, &["origin"])?;
    if is_packet {
        let heard = crate::heard::lenient(obj.get("timestamp"), now);
        let mut s = packet(&obj, observer, iata, name, now)?;
        s.heard_at = heard.ok();
        Ok(Parsed::Packet(Box::new(s), heard.err()))
    } else {
        status(&obj, observer, iata, name).map(Parsed::Status)
    }
}

fn packet(
    obj: &Map<String, Value>,
    observer: &str,
    iata: String,
    name: Option<String>,
    now: i64,
) -> Result<Sighting, Rejection> {
    let raw = text(obj, &["raw"])?.ok_or_else(|| reject(Reject::NoRaw, "no \"raw\" field"))?;
    // Told apart here so "not hex" and "not a packet" are separate counters;
    // validate() below parses again, which costs microseconds.
    if let Err(e) = decoder::parse_hex(&raw) {
        return Err(reject(Reject::BadHex, format!("raw: {e}")));
    }
    let score = integer(obj, &["score", "Score"])?;
    RawSighting {
        observer: observer.to_string(),
        observer_name: name,
        iata: Some(iata),
        raw,
        snr: number(obj, &["SNR", "snr"])?,
        rssi: number(obj, &["RSSI", "rssi"])?,
        score,
        direction: text(obj, &["direction", "Direction"])?,
        // The observer's receive time is read by the caller, leniently
        // (`heard::lenient`): an odd one never refuses the packet.
        timestamp: None,
    }
    .validate(now)
    .map_err(|e: FieldError| {
        let reason = match e.field {
            "raw" => Reject::Undecodable,
            "observer" => Reject::BadObserver,
            "iata" => Reject::BadRegion,
            _ => Reject::BadField,
        };
        reject(reason, e.to_string())
    })
}

fn status(
    obj: &Map<String, Value>,
    observer: &str,
    iata: String,
    name: Option<String>,
) -> Result<StatusUpdate, Rejection> {
    // Observers put their figures at the top level or inside `stats`: the
    // top level wins when both have a key.
    let stats = obj.get("stats").and_then(Value::as_object);
    type Read<T> = fn(&Map<String, Value>, &[&'static str]) -> Result<Option<T>, Rejection>;
    fn pick<T>(
        obj: &Map<String, Value>,
        stats: Option<&Map<String, Value>>,
        keys: &[&'static str],
        read: Read<T>,
    ) -> Result<Option<T>, Rejection> {
        match read(obj, keys)? {
            Some(v) => Ok(Some(v)),
            None => stats
                .map(|s| read(s, keys))
                .transpose()
                .map(Option::flatten),
        }
    }
    let pick_number = |keys| pick(obj, stats, keys, number);
    let pick_text = |keys| pick(obj, stats, keys, text);
    let integer = |keys| pick(obj, stats, keys, integer);
    Ok(StatusUpdate {
        observer: observer.to_string(),
        iata: Some(iata),
        name,
        model: pick_text(&["model"])?,
        firmware: pick_text(&["firmware_version", "firmware"])?,
        client_version: pick_text(&["clientVersion", "client_version"])?,
        radio: pick_text(&["radio"])?,
        battery_mv: integer(&["battery_mv"])?,
        uptime_secs: integer(&["uptime_secs"])?,
        noise_floor: pick_number(&["noise_floor"])?,
        offline: text(obj, &["status"])?.is_some_and(|s| s.eq_ignore_ascii_case("offline")),
    })
}

/// A field of the wrong kind, as a counted refusal.
fn bad_field(e: fields::BadField) -> Rejection {
    let fields::BadField { key, message } = e;
    reject(Reject::BadField, format!("{key}: {message}"))
}

fn text(obj: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<String>, Rejection> {
    fields::text(obj, keys, Mode::Lenient).map_err(bad_field)
}

fn number(obj: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<f64>, Rejection> {
    fields::number(obj, keys, Mode::Lenient).map_err(bad_field)
}

fn integer(obj: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<i64>, Rejection> {
    fields::integer(obj, keys, Mode::Lenient).map_err(bad_field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    const RAW: &str = "1500aabbccdd"; // GRP_TXT-ish FLOOD packet with no path

    fn parse(topic: &str, payload: &str) -> Parsed {
        parse_message(topic, payload.as_bytes(), None, NOW).0
    }

    fn sighting(p: Parsed) -> Sighting {
        match p {
            Parsed::Packet(s, _) => *s,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    fn reason(p: Parsed) -> Reject {
        match p {
            Parsed::Rejected(r) => r.reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn topic_gives_region_and_observer_and_region_field_overrides() {
        let s = sighting(parse(
            "meshcore/sea/AB12/packets",
            &format!(r#"{{"raw":"{RAW}","SNR":7.5,"RSSI":-90,"origin":"Roof","direction":"rx"}}"#),
        ));
        assert_eq!(s.observer, "AB12");
        assert_eq!(s.iata.as_deref(), Some("SEA"));
        assert_eq!(s.observer_name.as_deref(), Some("Roof"));
        assert_eq!((s.snr, s.rssi), (Some(7.5), Some(-90.0)));
        assert_eq!(s.direction.as_deref(), Some("rx"));
        let s = sighting(parse(
            "custom/prefix/meshcore/SEA/ab12/packets",
            &format!(r#"{{"raw":"{RAW}","region":"pdx"}}"#),
        ));
        assert_eq!(s.iata.as_deref(), Some("PDX"));
    }

    #[test]
    fn numbers_with_units_and_either_key_case() {
        let s = sighting(parse(
            "meshcore/SEA/ab12/packets",
            &format!(
                r#"{{"raw":"{RAW}","snr":"7.25 dB","rssi":"-92dBm","Score":"1000","Direction":"tx"}}"#
            ),
        ));
        assert_eq!(
            (s.snr, s.rssi, s.score),
            (Some(7.25), Some(-92.0), Some(1000))
        );
        assert_eq!(s.direction.as_deref(), Some("tx"));
        let s = sighting(parse(
            "meshcore/SEA/ab12/packets",
            &format!(r#"{{"raw":"{RAW}","SNR":"","RSSI":null,"score":0.6}}"#),
        ));
        assert_eq!((s.snr, s.rssi, s.score), (None, None, Some(1)));
    }

    #[test]
    fn each_malformation_has_its_reason() {
        let t = "meshcore/SEA/ab12/packets";
        assert_eq!(reason(parse(t, "not json")), Reject::NotJson);
        assert_eq!(reason(parse(t, "[1,2]")), Reject::NotJson);
        assert_eq!(reason(parse(t, r#"{"snr":1}"#)), Reject::NoRaw);
        assert_eq!(reason(parse(t, r#"{"raw":""}"#)), Reject::NoRaw);
        assert_eq!(reason(parse(t, r#"{"raw":"zz"}"#)), Reject::BadHex);
        assert_eq!(reason(parse(t, r#"{"raw":"abc"}"#)), Reject::BadHex);
        assert_eq!(reason(parse(t, r#"{"raw":"05"}"#)), Reject::Undecodable);
        let bad_snr = format!(r#"{{"raw":"{RAW}","snr":"n/a"}}"#);
        assert_eq!(reason(parse(t, &bad_snr)), Reject::BadField);
        let bad_type = format!(r#"{{"raw":"{RAW}","rssi":[1]}}"#);
        assert_eq!(reason(parse(t, &bad_type)), Reject::BadField);
        let ok = format!(r#"{{"raw":"{RAW}"}}"#);
        assert_eq!(
            reason(parse("meshcore/SEA/not-hex/packets", &ok)),
            Reject::BadObserver
        );
        assert_eq!(
            reason(parse("meshcore/S/ab12/packets", &ok)),
            Reject::BadRegion
        );
    }

    #[test]
    fn timestamp_gives_the_heard_time_or_dates_the_packet_at_receipt() {
        use crate::heard::{AtReceipt, Clamped};
        let t = "meshcore/SEA/ab12/packets";
        let with = |ts: &str| parse(t, &format!(r#"{{"raw":"{RAW}","timestamp":{ts}}}"#));
        let two_hours_ago = shared::timefmt::format_unix_secs(NOW - 7200);
        assert_eq!(
            sighting(with(&format!("{two_hours_ago:?}"))).heard_at,
            Some(NOW - 7200)
        );
        let cases = [
            (
                r#""2020-01-01T00:00:00Z""#,
                AtReceipt::Clamped(Clamped::TooOld),
            ),
            (r#""""#, AtReceipt::Missing),
            ("null", AtReceipt::Missing),
            (r#""yesterday""#, AtReceipt::Unparseable),
            ("1747389600", AtReceipt::NotText),
            ("[1]", AtReceipt::NotText),
            ("true", AtReceipt::NotText),
        ];
        for (ts, why) in cases {
            match with(ts) {
                Parsed::Packet(s, note) => {
                    assert_eq!(s.heard_at, None, "{ts}");
                    assert_eq!(note, Some(why), "{ts}");
                }
                other => panic!("{ts}: the packet must be kept, got {other:?}"),
            }
        }
        let none = parse(t, &format!(r#"{{"raw":"{RAW}"}}"#));
        assert!(matches!(none, Parsed::Packet(_, Some(AtReceipt::Missing))));
    }

    #[test]
    fn other_topics_and_filtered_regions_are_ignored() {
        let ok = format!(r#"{{"raw":"{RAW}"}}"#);
        assert_eq!(
            parse("meshcore/SEA/ab12/internal", &ok),
            Parsed::Ignored(Ignore::OtherTopic)
        );
        assert_eq!(parse("packets", &ok), Parsed::Ignored(Ignore::OtherTopic));
        let only_pdx = vec!["PDX".to_string()];
        assert_eq!(
            parse_message(
                "meshcore/SEA/ab12/packets",
                ok.as_bytes(),
                Some(&only_pdx),
                NOW
            )
            .0,
            Parsed::Ignored(Ignore::Filtered)
        );
        assert!(matches!(
            parse_message(
                "meshcore/pdx/ab12/packets",
                ok.as_bytes(),
                Some(&only_pdx),
                NOW
            )
            .0,
            Parsed::Packet(..)
        ));
    }

    #[test]
    fn status_reads_top_level_and_stats() {
        let p = parse(
            "meshcore/SEA/ab12/status",
            r#"{"origin":"Roof","model":"Heltec V3","firmware_version":"1.8.2",
                "clientVersion":"meshcoretomqtt/1.0.6","radio":"910.525,62.5,7,5",
                "stats":{"battery_mv":"4100 mV","uptime_secs":3600,"noise_floor":-110.5}}"#,
        );
        let Parsed::Status(s) = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            s,
            StatusUpdate {
                observer: "ab12".into(),
                iata: Some("SEA".into()),
                name: Some("Roof".into()),
                model: Some("Heltec V3".into()),
                firmware: Some("1.8.2".into()),
                client_version: Some("meshcoretomqtt/1.0.6".into()),
                radio: Some("910.525,62.5,7,5".into()),
                battery_mv: Some(4100),
                uptime_secs: Some(3600),
                noise_floor: Some(-110.5),
                offline: false,
            }
        );
        let p = parse(
            "meshcore/SEA/ab12/status",
            r#"{"status":"offline","firmware":"v2","battery_mv":3900}"#,
        );
        let Parsed::Status(s) = p else {
            panic!("{p:?}")
        };
        assert!(s.offline);
        assert_eq!(
            (s.firmware.as_deref(), s.battery_mv),
            (Some("v2"), Some(3900))
        );
        assert_eq!(
            reason(parse("meshcore/SEA/ab12/status", "{")),
            Reject::NotJson
        );
    }

    #[test]
    fn long_text_fields_are_cut_on_a_character_boundary_and_named() {
        let origin = "é".repeat(100_000);
        let body = format!(
            r#"{{"origin":"{origin}","model":"m","firmware":"{}"}}"#,
            "f".repeat(500)
        );
        let (p, cut) = parse_message("meshcore/SEA/ab12/status", body.as_bytes(), None, NOW);
        let Parsed::Status(u) = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            u.name.as_deref().map(|n| n.chars().count()),
            Some(MAX_TEXT_CHARS)
        );
        assert!(u.name.unwrap().chars().all(|c| c == 'é'));
        assert_eq!(u.firmware.map(|f| f.len()), Some(MAX_TEXT_CHARS));
        assert_eq!(u.model.as_deref(), Some("m"));
        assert_eq!(cut, ["origin", "firmware"]);
        let (_, none) = parse_message(
            "meshcore/SEA/ab12/status",
            br#"{"origin":"short"}"#,
            None,
            NOW,
        );
        assert!(none.is_empty());
    }
}
