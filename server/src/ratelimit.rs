//! Rate-limited warnings: a repeated warning of one kind is logged at most
//! once per interval, with a count of how many were held back — never
//! silenced for good.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

pub(crate) const INTERVAL: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct Limiter {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Limiter {
    /// Whether a message of `kind` may be logged at `now`; when it may, also
    /// how many were suppressed since the last one.
    pub(crate) fn check(&self, kind: &str, now: Instant, interval: Duration) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get_mut(kind) {
            Some((last, suppressed)) if now.duration_since(*last) < interval => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let held = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(held)
            }
            None => {
                seen.insert(kind.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

static GLOBAL: LazyLock<Limiter> = LazyLock::new(Limiter::default);

/// Logs `msg` as a warning unless one of the same `kind` was logged in the last minute.
pub(crate) fn warn_limited(kind: &str, msg: &str) {
    if let Some(held) = GLOBAL.check(kind, Instant::now(), INTERVAL) {
        if held > 0 {
            tracing::warn!(kind, suppressed = held, "{msg}");
        } else {
            tracing::warn!(kind, "{msg}");
        }
    }
}

/// Forgets the rate-limit state of every kind containing `needle`, so a
/// retried migration's first warning is logged again at once.
pub(crate) fn reset_matching(needle: &str) {
    let mut seen = GLOBAL.seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.retain(|k, _| !k.contains(needle));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_kind_and_reports_suppressed() {
        let l = Limiter::default();
        let t0 = Instant::now();
        let i = Duration::from_secs(60);
        assert_eq!(l.check("a", t0, i), Some(0));
        assert_eq!(l.check("a", t0 + Duration::from_secs(1), i), None);
        assert_eq!(l.check("a", t0 + Duration::from_secs(2), i), None);
        assert_eq!(l.check("b", t0 + Duration::from_secs(2), i), Some(0));
        assert_eq!(l.check("a", t0 + Duration::from_secs(61), i), Some(2));
    }
}
