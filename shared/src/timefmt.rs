//! Timestamps as stored in the database and sent over the API.
//!
//! meshscope writes UTC RFC3339 with millisecond precision
//! (`2026-11-26T01:49:49.123Z`). Files written by CoreScope also hold SQLite's
//! own `datetime('now')` text (`2026-11-27 07:33:12`: UTC, a space instead of
//! `T`, no zone) and RFC3339 without fractions (`2026-11-27T07:33:12Z`), so
//! every reader of a stored time goes through [`parse_time_ms`], which takes
//! all of them.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Formats unix milliseconds as RFC3339 UTC with milliseconds.
pub fn format_unix_ms(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Formats unix seconds as RFC3339 UTC.
pub fn format_unix_secs(secs: i64) -> String {
    format_unix_ms(secs.saturating_mul(1000))
}

/// Parses a stored or API timestamp into unix milliseconds: RFC3339 (any
/// zone, any fraction), or SQLite's `YYYY-MM-DD HH:MM:SS[.SSS]` (also with a
/// `T`), which SQLite defines as UTC. `None` for anything else.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let dt = match OffsetDateTime::parse(s, &Rfc3339) {
        Ok(dt) => dt,
        Err(_) => {
            let sqlite = format_description!(
                version = 2,
                "[year]-[month]-[day][first [ ][T]][hour]:[minute]:[second][optional [.[subsecond]]]"
            );
            PrimitiveDateTime::parse(s, sqlite).ok()?.assume_utc()
        }
    };
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parses either unix seconds (all digits) or a timestamp [`parse_time_ms`]
/// takes into unix seconds, as the API's `since`/`until` parameters accept both.
pub fn parse_time_param(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    parse_time_ms(s).map(|ms| ms.div_euclid(1000))
}

/// A stored timestamp for people: `2026-01-01 10:00:00 UTC` (seconds, UTC,
/// whatever shape it was stored in); text that is not a time is shown as is.
pub fn short_time(s: &str) -> String {
    match parse_time_ms(s) {
        Some(ms) => {
            let full = format_unix_ms(ms);
            format!("{} {} UTC", &full[..10], &full[11..19])
        }
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts() {
        let a = format_unix_ms(1_764_121_789_123);
        assert_eq!(a, "2025-11-26T01:49:49.123Z");
        assert_eq!(parse_time_ms(&a), Some(1_764_121_789_123));
        let b = format_unix_secs(1_764_121_790);
        assert!(a < b, "stored strings must sort in time order");
    }

    #[test]
    fn sqlite_datetime_text_is_utc() {
        // What CoreScope's `DEFAULT (datetime('now'))` writes.
        assert_eq!(
            parse_time_ms("2026-11-27 07:33:12"),
            parse_time_ms("2026-11-27T07:33:12Z")
        );
        assert_eq!(
            parse_time_ms("2026-11-27 07:33:12"),
            Some(1_795_764_792_000)
        );
        assert_eq!(
            parse_time_ms("2026-11-27 07:33:12.250"),
            Some(1_795_764_792_250)
        );
        assert_eq!(
            parse_time_ms("2026-11-27T07:33:12"),
            Some(1_795_764_792_000)
        );
        // CoreScope's Go `time.RFC3339`: no fraction.
        assert_eq!(
            parse_time_ms("2026-11-27T08:33:12+01:00"),
            Some(1_795_764_792_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-27",
            "2026-13-27 07:33:12",
            "2026-11-27 07:33",
            "2026-11-27 07:33:12 junk",
        ] {
            assert_eq!(parse_time_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn time_params() {
        assert_eq!(parse_time_param("1700000000"), Some(1_700_000_000));
        assert_eq!(
            parse_time_param("2023-11-14T22:13:20Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_time_param("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_time_param("2023-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_time_param("yesterday"), None);
        assert_eq!(parse_time_param(""), None);
    }

    #[test]
    fn short_time_reads_every_stored_shape() {
        assert_eq!(
            short_time("2026-01-01T10:00:00.123Z"),
            "2026-01-01 10:00:00 UTC"
        );
        assert_eq!(short_time("2026-01-01 10:00:00"), "2026-01-01 10:00:00 UTC");
        assert_eq!(
            short_time("2026-01-01T11:00:00+01:00"),
            "2026-01-01 10:00:00 UTC"
        );
        assert_eq!(short_time("not a time"), "not a time");
    }
}
