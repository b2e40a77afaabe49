//! `POST /api/ingest`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use shared::api::IngestResponse;

use super::error::ApiError;
use super::{auth, now_secs, AppState, MAX_BODY};
use crate::ingest;

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
    let items = ingest::parse_body(&body).map_err(ApiError::BadRequest)?;
    let response = state.writer.ingest(items, now_secs()).await?;
    Ok(Json(response))
}
