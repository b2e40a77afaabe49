//! Answers that every poller asks for (healthz, the migration list):
//! serialised once per change window and shared as bytes by all clients,
//! with an `ETag` so a poller that has them gets `304 Not Modified`, and a
//! `Cache-Control` that matches how long they stay fresh.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One rendered answer.
pub(crate) struct Rendered {
    pub(crate) status: StatusCode,
    body: Bytes,
    etag: HeaderValue,
    /// Whether it may be reused: a failure is never cached (the next
    /// request reads again).
    reusable: bool,
}

impl Rendered {
    /// Renders `value` as JSON with `status`.
    pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Rendered {
        use sha2::Digest;
        let (status, body) = match serde_json::to_vec(value) {
            Ok(body) => (status, body),
            // Not expected (plain data); never an answer that passes for one.
            Err(e) => {
                tracing::error!(error = %e, "cannot render an answer as JSON");
                let error = shared::api::ErrorBody {
                    error: format!("cannot render the answer: {e}"),
                };
                let body = serde_json::to_vec(&error).unwrap_or_default();
                (StatusCode::INTERNAL_SERVER_ERROR, body)
            }
        };
        let digest = sha2::Sha256::digest(&body);
        let etag = HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..12])))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Rendered {
            status,
            body: Bytes::from(body),
            etag,
            reusable: status.is_success(),
        }
    }

    /// Marks the rendering as one not to reuse (it reports a failure).
    pub(crate) fn once(mut self) -> Rendered {
        self.reusable = false;
        self
    }

    /// The answer to a request with `headers`: 304 when it already has these
    /// bytes (`If-None-Match`), else the bytes (shared, not copied).
    pub(crate) fn respond(&self, headers: &HeaderMap, fresh_for: Duration) -> Response {
        let cache = if self.status.is_success() {
            HeaderValue::from_str(&format!("max-age={}", fresh_for.as_secs().max(1)))
                .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
        } else {
            HeaderValue::from_static("no-store")
        };
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim() == self.etag.to_str().unwrap_or(""))
            });
        let mut resp = if matches && self.status.is_success() {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut r = (self.status, self.body.clone()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        };
        resp.headers_mut().insert(header::ETAG, self.etag.clone());
        resp.headers_mut().insert(header::CACHE_CONTROL, cache);
        resp
    }
}

/// The latest rendering of one answer, reused while younger than `ttl` and
/// rendered from the same state (`key`: a digest of what it shows, such as
/// the live status version and whether the writer runs), so a change is
/// seen at once, not after the TTL.
pub(crate) struct RenderCache {
    ttl: Duration,
    latest: Mutex<Option<(Instant, u64, Arc<Rendered>)>>,
}

impl RenderCache {
    pub(crate) fn new(ttl: Duration) -> RenderCache {
        RenderCache {
            ttl,
            latest: Mutex::new(None),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The rendering for state `key`, made with `render` when there is none
    /// fresh for that key.
    pub(crate) async fn get<F, Fut>(&self, key: u64, render: F) -> Arc<Rendered>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Rendered>,
    {
        if let Some((at, k, r)) = self
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if *k == key && at.elapsed() < self.ttl {
                return r.clone();
            }
        }
        let r = Arc::new(render().await);
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        *latest = r.reusable.then(|| (Instant::now(), key, r.clone()));
        r
    }
}

/// A digest of the values a rendering depends on.
pub(crate) fn key_of(parts: &[u64]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}
