//! The HTTP API and static dashboard: `app(state)` builds the whole router,
//! so tests can drive it with `oneshot` or on a real socket.

pub mod auth;
pub mod error;
mod migrations;
pub mod perf;
mod read;
mod write;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::ReaderPool;
use crate::status::StatusSource;
use crate::writer::Writer;
use auth::ApiKey;
use error::ApiError;
use perf::PerfRecorder;

/// Largest accepted request body.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub readers: ReaderPool,
    pub writer: Arc<Writer>,
    pub(crate) perf: PerfRecorder,
    pub started: Instant,
    pub api_key: Option<ApiKey>,
    pub dist: Option<PathBuf>,
    pub status: Arc<StatusSource>,
    /// `/api/stats` counts whole tables (hundreds of ms at 15M sightings):
    /// computed at most once per [`STATS_TTL`], one computation at a time.
    pub(crate) stats: Arc<crate::cache::SingleFlight<shared::api::Stats, SharedError>>,
    /// Live-ingest sources (MQTT brokers); empty when none is configured.
    pub ingest_liveness: crate::mqtt::Liveness,
    /// Becomes `true` when the server starts shutting down. Long-lived
    /// responses (the `/api/events` stream) end on it, so an open dashboard
    /// does not keep graceful shutdown waiting forever.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

/// An error several waiting requests share (the one `/api/stats` load).
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub(crate) struct SharedError(Arc<ApiError>);

impl crate::cache::Abandoned for SharedError {
    fn abandoned() -> Self {
        SharedError(Arc::new(ApiError::Unavailable(
            "the computation was abandoned; try again".into(),
        )))
    }
}

/// How old `/api/stats` may be.
pub(crate) const STATS_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }

    /// Runs a read on a pooled read-only connection, off the async threads.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|e| ApiError::internal("the read task failed", e))?
    }

    pub(crate) fn uptime_sec(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>meshscope</title>\
<body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
<h1>meshscope</h1><p>The server is running, but the dashboard has not been built. \
Run <code>cargo xtask dist</code> (or start with <code>cargo xtask run</code>), \
or pass <code>--dist</code> with the folder holding <code>index.html</code>.</p>\
<p>The JSON API is live: <a href=\"/api/healthz\">/api/healthz</a>, \
<a href=\"/api/stats\">/api/stats</a>, <a href=\"/api/packets\">/api/packets</a>.</p>";

async fn api_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no API route {}", uri.path()))
}

async fn metrics_text() -> Result<String, ApiError> {
    crate::metrics::render()
        .ok_or_else(|| ApiError::Unavailable("the metrics recorder is not installed".into()))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "meshscope API", description = "MeshCore packet store, status and online-migration controls"),
    modifiers(&SecurityAddon)
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let comps = doc.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every `/api` handler, registered in the router and the OpenAPI document
/// from the same `#[utoipa::path]` attribute, so the two cannot drift apart.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(read::healthz))
        .routes(routes!(read::perf))
        .routes(routes!(migrations::list))
        .routes(routes!(migrations::events))
        .routes(routes!(migrations::control))
        .routes(routes!(read::stats))
        .routes(routes!(read::packets))
        .routes(routes!(read::timestamps))
        .routes(routes!(read::observers))
        .routes(routes!(write::ingest))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| api_routes().split_for_parts().1).clone()
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "status",
    responses((status = 200, description = "this document")))]
async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi())
}

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            perf::track,
        ))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .route("/metrics", get(metrics_text));

    let router = match state
        .dist
        .as_ref()
        .filter(|d| d.join("index.html").is_file())
    {
        Some(dist) => api.fallback_service(
            ServeDir::new(dist).fallback(ServeFile::new(dist.join("index.html"))),
        ),
        None => api.fallback(|| async { axum::response::Html(NOT_BUILT) }),
    };
    router
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
