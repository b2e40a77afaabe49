//! Timestamps as stored in the database and sent over the API.
//!
//! meshscope writes UTC RFC3339 with millisecond precision
//! (`2026-11-26T01:49:49.123Z`). Files written by CoreScope also hold SQLite's
//! own `datetime('now')` text (`2026-11-27 07:33:12`: UTC, a space instead of
//! `T`, no zone) and RFC3339 without fractions (`2026-11-27T07:33:12Z`), so
//! every reader of a stored time goes through [`parse_time_ms`], which takes
//! all of them.
//!
//! The calendar arithmetic is written out here (Howard Hinnant's
//! days-from-civil algorithms) rather than taken from a date crate: this
//! module is compiled into the dashboard's wasm, where a general date
//! library's parsing machinery costs kilobytes of a tight budget. The tests
//! check it against the `time` crate.

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of day `z` after 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Formats unix milliseconds as RFC3339 UTC with milliseconds.
pub fn format_unix_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Formats unix seconds as RFC3339 UTC.
pub fn format_unix_secs(secs: i64) -> String {
    format_unix_ms(secs.saturating_mul(1000))
}

/// Reads `n` ASCII digits at `at`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Parses a stored or API timestamp into unix milliseconds: RFC3339 (any
/// zone, any fraction), or SQLite's `YYYY-MM-DD HH:MM:SS[.SSS]` (also with a
/// `T`), which SQLite defines as UTC. `None` for anything else.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    let seps_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    let year = i64::from(year);
    if !seps_ok
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        match at - start {
            0 => return None,
            1 => millis *= 100,
            2 => millis *= 10,
            _ => {}
        }
    }
    let offset_min: i64 = match &b[at..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let (h, m) = (digits(rest, 0, 2)?, digits(rest, 3, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 60 + m);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3_600 + minute * 60 + second) - offset_min * 60;
    Some(secs * 1_000 + millis)
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
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    #[test]
    fn round_trips_and_sorts() {
        let a = format_unix_ms(1_764_121_789_123);
        assert_eq!(a, "2025-11-26T01:49:49.123Z");
        assert_eq!(parse_time_ms(&a), Some(1_764_121_789_123));
        let b = format_unix_secs(1_764_121_790);
        assert!(a < b, "stored strings must sort in time order");
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn agrees_with_the_time_crate_across_four_centuries() {
        // Every 7,919th hour and an odd millisecond, from 1900 to 2300:
        // leap years, century rules and month ends all pass by.
        let mut ms = -2_208_988_800_000i64; // 1900-01-01
        while ms < 10_413_792_000_000 {
            let ours = format_unix_ms(ms);
            let theirs = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            // time writes trailing zeros of the fraction only as needed.
            assert_eq!(parse_time_ms(&theirs), Some(ms), "{theirs} (ours {ours})");
            assert_eq!(parse_time_ms(&ours), Some(ms), "{ours}");
            assert_eq!(&ours[..19], &theirs[..19], "{ms}");
            ms += 7_919 * 3_600_000 + 137;
        }
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
        // CoreScope's Go `time.RFC3339`: no fraction; any zone.
        assert_eq!(
            parse_time_ms("2026-11-27T08:33:12+01:00"),
            Some(1_795_764_792_000)
        );
        assert_eq!(
            parse_time_ms("2026-11-27T07:33:12.123456789Z"),
            Some(1_795_764_792_123)
        );
        assert_eq!(
            parse_time_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-27",
            "2026-13-27 07:33:12",
            "2026-02-29 07:33:12",
            "2026-11-27 24:00:00",
            "2026-11-27 07:33",
            "2026-11-27 07:33:12 junk",
            "2026-11-27 07:33:12.",
            "2026-11-27T07:33:12+1:00",
            "2026/11/27 07:33:12",
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
