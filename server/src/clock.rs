//! The process clock, below every other module: wall time as unix seconds
//! and milliseconds (stored timestamps, API times). Durations use `Instant`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the unix epoch, by the system clock.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the unix epoch, by the system clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now as stored text (RFC3339 UTC with milliseconds).
pub(crate) fn now_text() -> String {
    shared::timefmt::format_unix_ms(now_ms())
}
