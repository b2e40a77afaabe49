//! When an observer heard a packet: the `timestamp` a sighting may carry
//! (MQTT envelope or `POST /api/ingest` item), checked against the server's
//! clock so a wrong observer clock cannot misdate the store.
//!
//! The rule follows CoreScope's ingestor (`resolveRxTime` and
//! `parseEnvelopeTime` in `cmd/ingestor/main.go`, read for this, not
//! copied). CoreScope reads `timestamp` only as a string: RFC 3339 with a
//! zone (`Z` or `±HH:MM`), or a zone-less ISO time as Python's
//! `datetime.isoformat()` writes it (`2026-05-16T10:00:00[.123456]`), taken
//! as UTC. Then, against the server's `now`:
//! 1. more than 14 h ahead → ingest time (a clock error: UTC+14 is the
//!    largest offset there is);
//! 2. more than 30 days back → ingest time (a node whose clock reset to a
//!    factory date; no buffered upload is that old);
//! 3. a zone-less time more than 15 min from `now`, either way → ingest
//!    time (an observer writing local time without its zone);
//! 4. ahead of `now` at all → `now` (a slightly fast clock);
//! 5. otherwise the time given.
//!
//! Live ingest (MQTT) follows CoreScope all the way ([`lenient`]): a
//! timestamp of the wrong type or unparseable text dates the sighting at
//! receipt, like a missing one, and the reason is counted per source and
//! observer ([`AtReceipt`]), so an observer whose software writes its time
//! differently loses nothing and is still seen. `POST /api/ingest`,
//! meshscope's own API, refuses a malformed `timestamp` with a 400 naming
//! it. An empty or null value counts as absent, as in CoreScope. Times are
//! kept to the second (the observation's `timestamp` column), rounded down.

/// Furthest ahead of the server's clock a timestamp may be.
pub const MAX_AHEAD_SECS: i64 = 14 * 3600;
/// Furthest behind the server's clock a timestamp may be.
pub const MAX_BEHIND_SECS: i64 = 30 * 86_400;
/// How far from the server's clock a zone-less timestamp may be.
pub const NAIVE_TOLERANCE_SECS: i64 = 15 * 60;

/// A parsed `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub unix_ms: i64,
    /// Written without a zone (taken as UTC).
    pub naive: bool,
}

/// Reads a `timestamp` text; the error says what is accepted.
pub fn parse(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    // shared's parser also takes a space for the 'T' (SQLite's form); an
    // observer's timestamp must have the 'T', as CoreScope requires.
    let unix_ms = (t
        .as_bytes()
        .get(10)
        .is_some_and(|b| matches!(b, b'T' | b't')))
    .then(|| shared::timefmt::parse_time_ms(t))
    .flatten()
    .ok_or_else(|| {
        format!(
            "{text:?} is not a time: expected RFC 3339 text such as \
                 \"2026-05-16T10:00:00Z\" (or without a zone, taken as UTC)"
        )
    })?;
    let zone = &t[19..];
    let naive = !(zone.ends_with(['Z', 'z']) || zone.contains(['+', '-']));
    Ok(Timestamp { unix_ms, naive })
}

/// Why a timestamp was not used as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Clamped {
    /// Ahead, but by at most [`MAX_AHEAD_SECS`]: a fast clock, read as now.
    Ahead,
    TooFarAhead,
    TooOld,
    /// Zone-less and more than [`NAIVE_TOLERANCE_SECS`] from now.
    NaiveOffset,
}

/// The outcome of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Heard at this unix second.
    At(i64),
    /// Use the ingest time.
    Now(Clamped),
}

impl Heard {
    /// Unix seconds, `None` for the ingest time.
    pub fn at(self) -> Option<i64> {
        match self {
            Heard::At(t) => Some(t),
            Heard::Now(_) => None,
        }
    }
}

/// The rule of the module header, for a timestamp and the server's `now`
/// (unix seconds).
pub fn resolve(ts: Timestamp, now: i64) -> Heard {
    let now_ms = now.saturating_mul(1000);
    let ahead_ms = ts.unix_ms.saturating_sub(now_ms);
    if ahead_ms > MAX_AHEAD_SECS * 1000 {
        return Heard::Now(Clamped::TooFarAhead);
    }
    if ahead_ms < -MAX_BEHIND_SECS * 1000 {
        return Heard::Now(Clamped::TooOld);
    }
    if ts.naive && ahead_ms.abs() > NAIVE_TOLERANCE_SECS * 1000 {
        return Heard::Now(Clamped::NaiveOffset);
    }
    if ahead_ms > 0 {
        return Heard::Now(Clamped::Ahead);
    }
    Heard::At(ts.unix_ms.div_euclid(1000))
}

/// Why a live sighting was dated at receipt instead of by its observer's
/// clock (each reason a counter per source and observer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AtReceipt {
    /// No `timestamp` (or null, or empty).
    Missing,
    /// A `timestamp` that is not text (a number, say).
    NotText,
    /// Text that is not a time.
    Unparseable,
    /// A time the rule of the module header does not take as given.
    Clamped(Clamped),
}

impl AtReceipt {
    /// The `reason` label of counters and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AtReceipt::Missing => "missing",
            AtReceipt::NotText => "not_text",
            AtReceipt::Unparseable => "unparseable",
            AtReceipt::Clamped(Clamped::Ahead) => "ahead",
            AtReceipt::Clamped(Clamped::TooFarAhead) => "too_far_ahead",
            AtReceipt::Clamped(Clamped::TooOld) => "too_old",
            AtReceipt::Clamped(Clamped::NaiveOffset) => "naive_offset",
        }
    }

    /// Every reason, in the order they are shown.
    pub const ALL: [AtReceipt; 7] = [
        AtReceipt::Missing,
        AtReceipt::NotText,
        AtReceipt::Unparseable,
        AtReceipt::Clamped(Clamped::Ahead),
        AtReceipt::Clamped(Clamped::TooFarAhead),
        AtReceipt::Clamped(Clamped::TooOld),
        AtReceipt::Clamped(Clamped::NaiveOffset),
    ];
}

/// Live ingest's rule (CoreScope's `resolveRxTime`): the unix second the
/// observer heard the packet, or why the ingest time stands in.
pub fn lenient(value: Option<&serde_json::Value>, now: i64) -> Result<i64, AtReceipt> {
    use serde_json::Value;
    let text = match value {
        None | Some(Value::Null) => return Err(AtReceipt::Missing),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(AtReceipt::Missing),
        Some(Value::String(s)) => s,
        Some(_) => return Err(AtReceipt::NotText),
    };
    let ts = parse(text).map_err(|_| AtReceipt::Unparseable)?;
    match resolve(ts, now) {
        Heard::At(t) => Ok(t),
        Heard::Now(why) => Err(AtReceipt::Clamped(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn zoned(unix: i64) -> Timestamp {
        Timestamp {
            unix_ms: unix * 1000,
            naive: false,
        }
    }

    #[test]
    fn boundaries_fourteen_hours_ahead_and_thirty_days_back() {
        // Exactly 14 h ahead is not "more than": a fast clock, read as now.
        assert_eq!(
            resolve(zoned(NOW + MAX_AHEAD_SECS), NOW),
            Heard::Now(Clamped::Ahead)
        );
        assert_eq!(
            resolve(zoned(NOW + MAX_AHEAD_SECS + 1), NOW),
            Heard::Now(Clamped::TooFarAhead)
        );
        assert_eq!(resolve(zoned(NOW + 1), NOW), Heard::Now(Clamped::Ahead));
        assert_eq!(resolve(zoned(NOW), NOW), Heard::At(NOW));
        assert_eq!(
            resolve(zoned(NOW - MAX_BEHIND_SECS), NOW),
            Heard::At(NOW - MAX_BEHIND_SECS)
        );
        assert_eq!(
            resolve(zoned(NOW - MAX_BEHIND_SECS - 1), NOW),
            Heard::Now(Clamped::TooOld)
        );
        assert_eq!(resolve(zoned(NOW - 7200), NOW).at(), Some(NOW - 7200));
    }

    #[test]
    fn zone_less_times_must_be_within_fifteen_minutes() {
        let naive = |unix: i64| Timestamp {
            unix_ms: unix * 1000,
            naive: true,
        };
        assert_eq!(
            resolve(naive(NOW - NAIVE_TOLERANCE_SECS), NOW),
            Heard::At(NOW - NAIVE_TOLERANCE_SECS)
        );
        for off in [-NAIVE_TOLERANCE_SECS - 1, NAIVE_TOLERANCE_SECS + 1, -7200] {
            assert_eq!(
                resolve(naive(NOW + off), NOW),
                Heard::Now(Clamped::NaiveOffset),
                "{off}"
            );
        }
        assert_eq!(resolve(naive(NOW + 60), NOW), Heard::Now(Clamped::Ahead));
    }

    #[test]
    fn live_ingest_dates_every_unusable_timestamp_at_receipt_with_its_reason() {
        use serde_json::json;
        let at = |v: serde_json::Value| lenient(Some(&v), NOW);
        assert_eq!(lenient(None, NOW), Err(AtReceipt::Missing));
        assert_eq!(at(json!(null)), Err(AtReceipt::Missing));
        assert_eq!(at(json!(" ")), Err(AtReceipt::Missing));
        assert_eq!(at(json!(1_800_000_000)), Err(AtReceipt::NotText));
        assert_eq!(at(json!({"t": 1})), Err(AtReceipt::NotText));
        assert_eq!(at(json!("yesterday")), Err(AtReceipt::Unparseable));
        let two_days = shared::timefmt::format_unix_secs(NOW + 2 * 86_400);
        assert_eq!(
            at(json!(two_days)),
            Err(AtReceipt::Clamped(Clamped::TooFarAhead))
        );
        let good = shared::timefmt::format_unix_secs(NOW - 60);
        assert_eq!(at(json!(good)), Ok(NOW - 60));
        let labels: Vec<_> = AtReceipt::ALL.iter().map(|r| r.as_str()).collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(labels.len(), unique.len());
    }

    #[test]
    fn parses_rfc3339_and_zone_less_iso() {
        let t = parse("2026-05-16T10:00:00Z").unwrap();
        assert!(!t.naive);
        assert_eq!(parse("2026-05-16T12:00:00+02:00").unwrap(), t);
        assert_eq!(
            parse("2026-05-16T10:00:00.123456").unwrap(),
            Timestamp {
                unix_ms: t.unix_ms + 123,
                naive: true
            }
        );
        assert!(parse("2026-05-16T10:00:00").unwrap().naive);
        assert!(!parse("2026-05-16T05:00:00-05:00").unwrap().naive);
        // Fractions round down to the second.
        assert_eq!(
            resolve(parse("2026-05-16T10:00:00.999Z").unwrap(), 1_900_000_000),
            Heard::Now(Clamped::TooOld)
        );
        let just = parse("2026-05-16T10:00:00.999Z").unwrap();
        assert_eq!(
            resolve(just, t.unix_ms / 1000 + 10),
            Heard::At(t.unix_ms / 1000)
        );
        for bad in [
            "",
            "not-a-time",
            "1747389600",
            "2026-05-16 10:00:00",
            "2026-13-01T00:00:00Z",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }
}
