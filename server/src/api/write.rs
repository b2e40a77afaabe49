//! `POST /api/ingest`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use shared::api::{ErrorBody, IngestResponse};

use super::error::ApiError;
use super::{auth, AppState, MAX_BODY};
use crate::clock::now_secs;
use crate::ingest;

#[utoipa::path(post, path = "/api/ingest", tag = "ingest",
    request_body(content = Vec<IngestItem>, description = "one item or an array of up to 1000"),
    responses((status = 200, body = IngestResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, description = "nothing stored: another process holds the write lock, or the server is stopping (Retry-After when worth retrying)", body = ErrorBody),
        (status = 507, description = "nothing stored: the database disk is full (Retry-After)", body = ErrorBody)),
    security((), ("api_key" = [])))]
pub(super) async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    auth::check_if_configured(state.api_key.as_ref(), &headers)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: MAX_BODY }
        } else {
            ApiError::BadRequest(format!("cannot read request body: {}", r.body_text()))
        }
    })?;
    let items = ingest::parse_body(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let response = state.writer.ingest(items, now_secs()).await?;
    Ok(Json(response))
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
}
