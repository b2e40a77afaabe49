//! `POST /api/ingest`.
//!
//! In order: the body must be JSON (`Content-Type: application/json`, 415
//! otherwise, so a web page cannot make a visitor's browser post to it
//! without a CORS preflight); the ingest key when one is configured (401,
//! 429 after repeated wrong keys); a slot among [`INGEST_SLOTS`] and then
//! room in the writer's queue, each within [`INGEST_ADMISSION`] (503 with
//! `Retry-After` otherwise: refused at once, never queued without bound);
//! then the body (at most [`MAX_BODY`], 413), validated item by item (400).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use shared::api::{ErrorBody, IngestResponse};

use super::auth::{self, Scope};
use super::error::ApiError;
use super::{AppState, INGEST_ADMISSION, INGEST_SLOTS, MAX_BODY};
use crate::clock::now_secs;
use crate::ingest;

/// Whether the request declares a JSON body (`application/json`, any
/// parameters such as `charset`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

#[utoipa::path(post, path = "/api/ingest", tag = "ingest",
    request_body(content = Vec<IngestItem>, content_type = "application/json",
        description = "one item or an array of up to 1000"),
    responses((status = 200, body = IngestResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, description = "the body is not declared as application/json", body = ErrorBody),
        (status = 429, description = "too many wrong keys from this address (Retry-After)", body = ErrorBody),
        (status = 503, description = "nothing stored: the server is busy (queue full), another process holds the write lock, or the server is stopping (Retry-After when worth retrying)", body = ErrorBody),
        (status = 507, description = "nothing stored: the database disk is full (Retry-After)", body = ErrorBody)),
    security((), ("api_key" = [])))]
pub(super) async fn ingest(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<IngestResponse>, ApiError> {
    let (parts, body) = req.into_parts();
    let peer = crate::http::peer_of(parts.extensions.get::<ConnectInfo<SocketAddr>>());
    let _slot = match admit(&state, peer, &parts.headers).await {
        Ok(slot) => slot,
        Err(e) => {
            // Read what the client is still sending (discarding it, within
            // limits) so it gets this answer instead of a reset connection.
            drain(body).await;
            return Err(e);
        }
    };
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge { limit: MAX_BODY }
        } else {
            ApiError::BadRequest(format!("cannot read request body: {e}"))
        }
    })?;
    let now = now_secs();
    let items = ingest::parse_body(&body, now).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    drop(body);
    let response = state
        .writer
        .try_ingest(items, now, INGEST_ADMISSION)
        .await?;
    Ok(Json(response))
}

/// The checks that need no body: JSON declared, the key, a slot.
async fn admit(
    state: &AppState,
    peer: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as JSON, with Content-Type: application/json".into(),
        ));
    }
    auth::check(&state.keys, &state.throttle, Scope::Ingest, peer, headers)?;
    let busy = || {
        ApiError::Busy(format!(
            "meshscope is handling its maximum of {INGEST_SLOTS} ingest requests; nothing \
             from this request was stored; try again shortly"
        ))
    };
    tokio::time::timeout(INGEST_ADMISSION, state.ingest_slots.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())
}

/// Discards up to [`MAX_BODY`] bytes of a refused request's body, for at
/// most a second, holding one frame at a time.
async fn drain(body: axum::body::Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut left = MAX_BODY;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len());
            if n >= left {
                break;
            }
            left -= n;
        }
    })
    .await;
}

/// One sighting as `POST /api/ingest` takes it (documentation only: the
/// body is validated by hand so errors can name the item and field).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct IngestItem {
    /// Observer id (hex).
    observer: String,
    /// The packet as heard, hex.
    raw: String,
    /// Region code, 2-8 letters or digits.
    iata: Option<String>,
    snr: Option<f64>,
    rssi: Option<f64>,
    score: Option<i64>,
    direction: Option<String>,
    /// When the observer heard the packet: RFC 3339 text
    /// (`2026-05-16T10:00:00Z`; without a zone it is taken as UTC and must be
    /// within 15 min of the server's clock). More than 14 h ahead or 30 days
    /// back, or ahead at all, the ingest time is used instead; absent, the
    /// ingest time. Not a time (or not a string): 400.
    #[schema(example = "2026-05-16T10:00:00Z")]
    timestamp: Option<String>,
}
