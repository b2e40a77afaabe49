//! API keys (configured as [`ApiKey`]s): two scopes (ingest and operator), a
//! constant-time check of the `Authorization: Bearer <key>` or
//! `X-API-Key: <key>` header, and a throttle on wrong keys per client
//! address. No key is ever echoed in an answer or a log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use super::error::ApiError;
use crate::keys::Keys;

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Wrong keys allowed from one address within [`THROTTLE_WINDOW`].
pub const THROTTLE_FAILURES: u32 = 10;
/// How long an address that guessed wrong too often is refused (429).
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most (the oldest windows are dropped first).
const THROTTLE_TRACKED: usize = 10_000;

/// Wrong keys per client address: after [`THROTTLE_FAILURES`] in a window,
/// the address gets 429 (whatever key it sends) until the window ends.
#[derive(Default)]
pub(crate) struct Throttle {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until `ip` may try again, if it is throttled now.
    fn blocked(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let seen = self.lock();
        let (start, failures) = seen.get(&ip)?;
        let end = *start + THROTTLE_WINDOW;
        (*failures >= THROTTLE_FAILURES && now < end)
            .then(|| end.saturating_duration_since(now).as_secs().max(1))
    }

    fn failed(&self, ip: IpAddr, now: Instant) {
        let mut seen = self.lock();
        if seen.len() >= THROTTLE_TRACKED && !seen.contains_key(&ip) {
            seen.retain(|_, (start, _)| now.duration_since(*start) < THROTTLE_WINDOW);
            if seen.len() >= THROTTLE_TRACKED {
                if let Some(oldest) = seen.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k) {
                    seen.remove(&oldest);
                }
            }
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= THROTTLE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Ingest,
    Operator,
}

/// Checks the request's key for `scope`: ingest is open when it has no key;
/// operator controls are refused outright (403) when they have none.
pub(crate) fn check(
    keys: &Keys,
    throttle: &Throttle,
    scope: Scope,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let key = match (scope, &keys.ingest, &keys.operator) {
        (Scope::Ingest, None, _) => return Ok(()),
        (Scope::Operator, _, None) => {
            return Err(ApiError::Forbidden(
                "this server has no operator key configured, so changes are disabled; \
                 start it with MESHSCOPE_OPERATOR_KEY (or MESHSCOPE_API_KEY for both scopes)"
                    .into(),
            ))
        }
        (Scope::Ingest, Some(k), _) | (Scope::Operator, _, Some(k)) => k,
    };
    let now = Instant::now();
    if let Some(secs) = throttle.blocked(peer, now) {
        return Err(ApiError::TooManyRequests {
            message: format!("too many wrong API keys from this address; try again in {secs} s"),
            retry_after: secs,
        });
    }
    match presented(headers) {
        None => Err(ApiError::Unauthorized(
            "API key required: send Authorization: Bearer <key> or X-API-Key: <key>".into(),
        )),
        Some(p) if key.matches(p) => Ok(()),
        Some(_) => {
            throttle.failed(peer, now);
            Err(ApiError::Unauthorized(match scope {
                Scope::Ingest => "the API key is not valid for ingest".into(),
                Scope::Operator => "the API key is not valid for operator controls".into(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ApiKey;

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {key}").parse().unwrap());
        h
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn scopes_and_validation() {
        let keys = Keys {
            ingest: Some(ApiKey::parse("ingest-key-1").unwrap()),
            operator: Some(ApiKey::parse("operator-key-1").unwrap()),
        };
        let t = Throttle::default();
        assert!(check(&keys, &t, Scope::Ingest, IP, &headers("ingest-key-1")).is_ok());
        assert!(check(&keys, &t, Scope::Operator, IP, &headers("operator-key-1")).is_ok());
        assert!(check(&keys, &t, Scope::Operator, IP, &headers("ingest-key-1")).is_err());
        assert!(check(&keys, &t, Scope::Ingest, IP, &HeaderMap::new()).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "ingest-key-1".parse().unwrap());
        assert!(check(&keys, &t, Scope::Ingest, IP, &h).is_ok());
        assert!(ApiKey::parse("short").is_err());
        assert!(ApiKey::parse("has space in it").is_err());
        let open = Keys::default();
        assert!(check(&open, &t, Scope::Ingest, IP, &HeaderMap::new()).is_ok());
        assert!(matches!(
            check(&open, &t, Scope::Operator, IP, &HeaderMap::new()),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn wrong_keys_are_throttled_per_address_and_the_window_ends() {
        let t = Throttle::default();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..THROTTLE_FAILURES {
            assert_eq!(t.blocked(IP, t0), None);
            t.failed(IP, t0);
        }
        assert!(t.blocked(IP, t0 + Duration::from_secs(1)).is_some());
        assert_eq!(t.blocked(other, t0), None, "per address");
        assert_eq!(t.blocked(IP, t0 + THROTTLE_WINDOW), None, "the window ends");
    }
}
