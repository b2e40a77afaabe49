//! The one error type handlers return: a status and a message the client
//! reads in `{"error": ...}`; 5xx errors also go to the log (rate-limited per
//! kind of error), with their whole cause chain.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::ErrorBody;

use crate::writer::WriteError;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// How long a client is told to wait before retrying a write refused by a
/// lock held elsewhere, and by a full disk.
const RETRY_BUSY_SECS: u64 = 2;
const RETRY_FULL_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: the body is not what the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// 503: the server cannot serve this now (shutting down, no connection).
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: a lock held by another process.
    #[error("{0}")]
    Busy(String),
    /// 507 with `Retry-After`: the database disk is full.
    #[error("{0}")]
    InsufficientStorage(String),
    /// 500: `what` failed; the client reads `what: source`, the log also
    /// gets the source's own causes.
    #[error("{what}: {source}")]
    Internal {
        what: &'static str,
        #[source]
        source: Source,
    },
}

impl ApiError {
    pub(crate) fn internal(what: &'static str, source: impl Into<Source>) -> ApiError {
        ApiError::Internal {
            what,
            source: source.into(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The key 5xx log lines are rate-limited by: one per kind of failure,
    /// so a second kind is never hidden behind the first.
    fn log_kind(&self) -> String {
        match self {
            ApiError::Internal { what, .. } => format!("api-500:{what}"),
            other => format!("api-{}", other.status().as_u16()),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Busy(_) => Some(RETRY_BUSY_SECS),
            ApiError::InsufficientStorage(_) => Some(RETRY_FULL_SECS),
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// `e` and its causes, for the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            crate::ratelimit::warn_limited(
                &self.log_kind(),
                &format!("request failed ({status}): {}", chain(&self)),
            );
        }
        let retry = self.retry_after();
        let mut resp = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if let Some(secs) = retry {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal("database read failed", e)
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        ApiError::Unavailable(format!("no database connection available: {e}"))
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::DiskFull(e) => ApiError::InsufficientStorage(format!(
                "the database disk is full, so nothing from this request was stored \
                 ({e}); free space on the disk that holds the database, and meshscope \
                 accepts writes again by itself"
            )),
            WriteError::Busy(e) => ApiError::Busy(format!(
                "another process holds the database's write lock, so nothing from this \
                 request was stored ({e}); try again shortly"
            )),
            WriteError::Stopped(msg) => ApiError::Unavailable(msg),
            WriteError::QueueFull => ApiError::Busy(
                "meshscope is storing as fast as it can and its queue is full, so nothing \
                 from this request was stored; try again shortly"
                    .into(),
            ),
            WriteError::Sqlite(e) => ApiError::internal("database write failed", e),
            WriteError::Panicked(msg) => {
                ApiError::internal("the write failed inside meshscope (a bug)", msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_is_507_and_busy_is_503_both_with_retry_after() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        );
        let r = ApiError::from(WriteError::from(full)).into_response();
        assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(r.headers()["retry-after"], "30");
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let r = ApiError::from(WriteError::from(busy)).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "2");
    }

    #[test]
    fn internal_errors_are_logged_per_kind() {
        let a = ApiError::internal("database read failed", "x");
        let b = ApiError::internal("database write failed", "y");
        assert_ne!(a.log_kind(), b.log_kind());
        assert_eq!(a.to_string(), "database read failed: x");
    }
}
