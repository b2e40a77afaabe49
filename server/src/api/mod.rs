//! The HTTP API and static dashboard: `app(state)` builds the whole router,
//! so tests can drive it with `oneshot` or on a real socket.

pub mod auth;
pub mod error;
mod migrations;
pub use migrations::POLL as EVENTS_POLL;
mod live;
mod nodes;
pub mod perf;
mod read;
pub(crate) mod rendered;
mod write;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::ReaderPool;
use crate::http::Limits;
use crate::keys::Keys;
use crate::status::StatusSource;
use crate::writer::Writer;
use error::ApiError;
use perf::PerfRecorder;

/// Largest accepted request body.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// Ingest requests handled at once (body read, parsed, waiting for queue
/// room): with [`MAX_BODY`], what bounds ingest's memory outside the
/// writer's queue. A request that finds no slot within
/// [`INGEST_ADMISSION`] is answered 503 with `Retry-After`.
pub const INGEST_SLOTS: usize = 16;
/// How long an ingest request may wait for a slot, and then for room in the
/// writer's queue, before it is refused.
pub const INGEST_ADMISSION: std::time::Duration = std::time::Duration::from_millis(50);

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub readers: ReaderPool,
    pub writer: Arc<Writer>,
    pub(crate) perf: PerfRecorder,
    pub started: Instant,
    pub keys: Keys,
    pub(crate) throttle: auth::Throttle,
    pub limits: Limits,
    /// Open `/api/events` streams (at most `limits.max_event_streams`).
    pub(crate) event_streams: Arc<tokio::sync::Semaphore>,
    /// Open `/api/live` streams (at most `limits.max_event_streams`).
    pub(crate) live_streams: Arc<tokio::sync::Semaphore>,
    /// The node index for path names, and the live feed.
    pub mesh: crate::mesh::Mesh,
    /// What the Map page draws under the nodes (`GET /api/map`).
    pub map: shared::api::MapConfig,
    /// Ingest requests being read, parsed or queued at once (see
    /// [`INGEST_SLOTS`]).
    pub(crate) ingest_slots: Arc<tokio::sync::Semaphore>,
    pub dist: Option<PathBuf>,
    pub status: Arc<StatusSource>,
    /// `/api/stats`: computed at most once per [`STATS_TTL`], one
    /// computation at a time (the caller that refreshes waits, so an answer
    /// is never older than the TTL plus one computation).
    pub(crate) stats: Arc<crate::cache::SingleFlight<shared::api::Stats, SharedError>>,
    /// `/api/stats?iata=`: one cache per region set (see [`REGION_STATS_TTL`]).
    pub(crate) region_stats: std::sync::Mutex<std::collections::HashMap<Vec<String>, RegionStats>>,
    /// `/api/stats` statements that walked a whole table (`statsFullScans`
    /// of `/api/perf`): does not grow once the maintained counts are ready.
    pub stats_full_scans: Arc<std::sync::atomic::AtomicU64>,
    /// healthz and the migration list, rendered once per change (at most
    /// once per status TTL).
    pub(crate) healthz: rendered::RenderCache,
    pub(crate) migration_list: rendered::RenderCache,
    /// Live-ingest sources (MQTT brokers); empty when none is configured.
    pub ingest_liveness: crate::mqtt::Liveness,
    /// The database's health readings (the WAL's size and restarts).
    pub db_health: crate::health::DbHealth,
    /// Becomes `true` when the server starts shutting down. Long-lived
    /// responses (the `/api/events` stream) end on it, so an open dashboard
    /// does not keep graceful shutdown waiting forever.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

/// An error several waiting requests share (the one `/api/stats` load).
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub(crate) struct SharedError(Arc<ApiError>);

impl From<SharedError> for ApiError {
    /// The same answer for every request that shared the failed load.
    fn from(e: SharedError) -> ApiError {
        match &*e.0 {
            ApiError::Unavailable(m) => ApiError::Unavailable(m.clone()),
            ApiError::Busy(m) => ApiError::Busy(m.clone()),
            other => ApiError::internal("counting packets failed", other.to_string()),
        }
    }
}

impl crate::cache::Abandoned for SharedError {
    fn abandoned() -> Self {
        SharedError(Arc::new(ApiError::Unavailable(
            "the computation was abandoned; try again".into(),
        )))
    }
}

/// One region set's `/api/stats` cache.
pub(crate) type RegionStats = Arc<crate::cache::SingleFlight<shared::api::Stats, SharedError>>;

/// How old `/api/stats?iata=` may be. Its windows count the distinct packets
/// the regions' observers heard, an index range of sightings (about 0.2-0.9 s
/// for a day of a busy region at the bench's scale 10), so it is computed at
/// most this often per region set, once for every client asking.
pub(crate) const REGION_STATS_TTL: std::time::Duration = std::time::Duration::from_secs(10);
/// Region sets cached at once (a client choosing many sets evicts them all).
pub(crate) const REGION_STATS_KEPT: usize = 64;

/// How old `/api/stats` may be: it reads counters and index ranges, so it
/// is cheap; the short cache only shares one read among a herd.
pub(crate) const STATS_TTL: std::time::Duration = std::time::Duration::from_millis(500);

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

    /// Runs a read on a pooled read-only connection, off the async threads,
    /// stopped (503) when it runs past the query time limit.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.readers.clone();
        let limit = self.limits.query_timeout;
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            let deadline = Instant::now() + limit;
            // SQLite calls this every 1,000 virtual-machine steps; `true`
            // interrupts the statement (SQLITE_INTERRUPT).
            conn.progress_handler(1_000, Some(move || Instant::now() > deadline));
            let res = f(&conn);
            conn.progress_handler(0, None::<fn() -> bool>);
            res.map_err(|e| match e {
                ApiError::Internal { source, .. }
                    if source
                        .downcast_ref::<rusqlite::Error>()
                        .and_then(rusqlite::Error::sqlite_error_code)
                        == Some(rusqlite::ErrorCode::OperationInterrupted) =>
                {
                    ApiError::Unavailable(format!(
                        "the query ran past its {} ms limit and was stopped; narrow it \
                         (a time range, a type, an observer) or page with a smaller limit",
                        limit.as_millis()
                    ))
                }
                other => other,
            })
        })
        .await
        .map_err(|e| ApiError::internal("the read task failed", e))?
    }

    pub(crate) fn uptime_sec(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// A digest of what migration status shows: this process's live
    /// records, the stored rows read so far, whether the writer runs.
    pub(crate) fn status_key(&self) -> u64 {
        rendered::key_of(&[
            self.status.live().version(),
            self.status.db_reads(),
            u64::from(self.writer.health().is_running()),
        ])
    }
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>meshscope</title>\
<body>\
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
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::detail))
        .routes(routes!(nodes::packet))
        .routes(routes!(nodes::resolve_hops))
        .routes(routes!(map_config))
        .routes(routes!(live::live))
        .routes(routes!(write::ingest))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| api_routes().split_for_parts().1).clone()
}

#[utoipa::path(get, path = "/api/map", tag = "nodes",
    responses((status = 200, description = "the Map page's tiles and their attribution", body = shared::api::MapConfig)))]
async fn map_config(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::Json<shared::api::MapConfig> {
    axum::Json(state.map.clone())
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "status",
    responses((status = 200, description = "this document")))]
async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi())
}

/// The dashboard's Content-Security-Policy: its own files, the wasm, and the
/// inline loader Trunk writes into `index.html` (allowed by its hash), and
/// nothing else; no framing by other sites.
/// Map tiles (`tiles`, a URL template) are images from their own origin.
fn content_security_policy(dist: Option<&std::path::Path>, tiles: Option<&str>) -> String {
    use sha2::Digest;
    let inline: Vec<String> = dist
        .and_then(|d| std::fs::read_to_string(d.join("index.html")).ok())
        .map(|html| {
            let mut out = Vec::new();
            let mut rest = html.as_str();
            while let Some(open) = rest.find("<script") {
                let after = &rest[open..];
                let Some(gt) = after.find('>') else { break };
                let body = &after[gt + 1..];
                let Some(close) = body.find("</script>") else {
                    break;
                };
                let script = &body[..close];
                if !after[..gt].contains("src=") && !script.trim().is_empty() {
                    let digest = sha2::Sha256::digest(script.as_bytes());
                    out.push(format!("'sha256-{}'", base64_std(&digest)));
                }
                rest = &body[close..];
            }
            out
        })
        .unwrap_or_default();
    let tile_origin = tiles
        .and_then(|t| {
            let rest = t
                .strip_prefix("https://")
                .or_else(|| t.strip_prefix("http://"))?;
            let host = rest.split('/').next()?;
            // A `{s}` subdomain template: any subdomain of the host.
            let host = host.replace("{s}", "*");
            Some(format!(" {}{host}", &t[..t.len() - rest.len()]))
        })
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {}; style-src 'self'; \
         img-src 'self' data:{tile_origin}; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
        inline.join(" ")
    )
}

/// Standard base64 (with padding), for CSP hashes.
fn base64_std(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `%XX`-decodes a URL path (for the static-file checks only).
fn decode_path(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Guards the dashboard's files: no dotfile (or anything under a dot
/// folder), and nothing a symlink leads to outside `dist/`.
async fn static_guard(
    axum::extract::State(root): axum::extract::State<Arc<PathBuf>>,
    req: Request,
    next: Next,
) -> Response {
    let path = decode_path(req.uri().path());
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    if path.split(['/', '\\']).any(|seg| seg.starts_with('.')) {
        return not_found();
    }
    let target = root.join(path.trim_start_matches('/'));
    if let Ok(real) = tokio::fs::canonicalize(&target).await {
        if !real.starts_with(root.as_path()) {
            return not_found();
        }
    }
    next.run(req).await
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

    let dist = state
        .dist
        .as_ref()
        .filter(|d| d.join("index.html").is_file());
    let csp = content_security_policy(dist.map(PathBuf::as_path), state.map.tiles.as_deref());
    let router = match dist {
        Some(dist) => {
            let root = Arc::new(std::fs::canonicalize(dist).unwrap_or_else(|_| dist.clone()));
            let files = Router::new()
                .fallback_service(
                    // `cargo xtask dist` writes `.br` and `.gz` beside each
                    // file; they are sent as-is to browsers that take them.
                    ServeDir::new(dist)
                        .precompressed_br()
                        .precompressed_gzip()
                        .fallback(
                            ServeFile::new(dist.join("index.html"))
                                .precompressed_br()
                                .precompressed_gzip(),
                        ),
                )
                .layer(axum::middleware::from_fn_with_state(root, static_guard));
            api.fallback_service(files)
        }
        None => api.fallback(|| async { axum::response::Html(NOT_BUILT) }),
    };
    let header = |name: &'static str, value: &str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("")),
        )
    };
    router
        .layer(RequestBodyTimeoutLayer::new(state.limits.body_timeout))
        .layer(CompressionLayer::new())
        .layer(header("content-security-policy", &csp))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("referrer-policy", "no-referrer"))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
