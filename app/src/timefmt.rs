//! Display of API timestamps.

/// `2026-01-01T10:00:00.123Z` → `2026-01-01 10:00:00 UTC`; anything else as is.
pub(crate) fn short_time(s: &str) -> String {
    match (s.get(..10), s.get(11..19)) {
        (Some(d), Some(t)) if s.ends_with('Z') && s.as_bytes().get(10) == Some(&b'T') => {
            format!("{d} {t} UTC")
        }
        _ => s.to_string(),
    }
}
