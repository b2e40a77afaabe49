//! RFC3339 timestamps as stored in the database and sent over the API.
//!
//! meshscope writes UTC with millisecond precision (`2026-11-26T01:49:49.123Z`),
//! the shape CoreScope files use, so stored strings sort in time order.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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

/// Parses an RFC3339 timestamp into unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parses either unix seconds (all digits) or RFC3339 into unix seconds, as
/// the API's `since`/`until` parameters accept both.
pub fn parse_time_param(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    parse_rfc3339_ms(s).map(|ms| ms.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts() {
        let a = format_unix_ms(1_764_121_789_123);
        assert_eq!(a, "2025-11-26T01:49:49.123Z");
        assert_eq!(parse_rfc3339_ms(&a), Some(1_764_121_789_123));
        let b = format_unix_secs(1_764_121_790);
        assert!(a < b, "stored strings must sort in time order");
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
        assert_eq!(parse_time_param("yesterday"), None);
        assert_eq!(parse_time_param(""), None);
    }
}
