//! Migration status and controls over HTTP: the status list, the live
//! Server-Sent Events stream the banner follows, and pause/resume/cancel/retry.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use axum::Json;
use futures_util::stream::{self, Stream};
use shared::api::{ErrorBody, Healthz};
use shared::migration::MigrationInfo;

use super::error::ApiError;
use super::{auth, AppState};
use crate::clock::now_ms;
use crate::migrate::ControlError;
use shared::migration::Control;

/// Events are coalesced to at most one per this interval (4 per second).
const MIN_EVENT_GAP: Duration = Duration::from_millis(250);
/// A heartbeat event goes out at least this often.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often the stream looks for changes nothing in this process wakes it
/// for: rows another process wrote, a source's last packet growing old.
/// Changes here wake it at once (the engine's records, a source's state).
pub const POLL: Duration = Duration::from_secs(5);
/// What EventSource clients wait before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

/// The migration part of healthz (also the SSE payload): fail closed on a read error.
pub(super) async fn migration_health(state: &AppState) -> Healthz {
    let (list, error) = match state.status.infos(now_ms()).await {
        Ok(list) => (Some(list), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let running = error.is_some()
        || list
            .as_deref()
            .is_some_and(shared::migration::any_in_progress);
    Healthz {
        ready: state.writer.health().is_running(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_sec: state.uptime_sec(),
        async_migrations: list,
        async_migrations_running: Some(running),
        async_migrations_error: error,
        // Absent (not `{}`) when no source is configured: "no live ingest"
        // differs from "sources, all idle".
        ingest_liveness: (!state.ingest_liveness.is_empty())
            .then(|| state.ingest_liveness.snapshot()),
    }
}

/// `GET /api/perf/async-migrations`: the list, or 500 when it cannot be read
/// (never an empty list for a failure).
#[utoipa::path(get, path = "/api/perf/async-migrations", tag = "migrations",
    responses((status = 200, body = Vec<MigrationInfo>), (status = 500, description = "status unreadable (never an empty list)", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let rendered = state
        .migration_list
        .get(state.status_key(), || async {
            match state.status.infos(now_ms()).await {
                Ok(list) => super::rendered::Rendered::json(axum::http::StatusCode::OK, &list),
                Err(e) => {
                    let e = ApiError::internal("migration status unavailable", e);
                    let body = ErrorBody {
                        error: e.to_string(),
                    };
                    // Logged like every 5xx (rate-limited per kind).
                    let _ = e.into_response();
                    super::rendered::Rendered::json(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        &body,
                    )
                }
            }
        })
        .await;
    rendered.respond(&headers, state.migration_list.ttl())
}

/// `POST /api/migrations/{name}/{action}`.
#[utoipa::path(post, path = "/api/migrations/{name}/{action}", tag = "migrations",
    params(("name" = String, Path), ("action" = String, Path, description = "pause, resume, cancel or retry")),
    responses((status = 200, body = MigrationInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, description = "too many wrong keys from this address (Retry-After)", body = ErrorBody)),
    security(("api_key" = [])))]
pub(super) async fn control(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    req: axum::extract::Request,
) -> Result<Json<MigrationInfo>, ApiError> {
    let peer = crate::http::peer_of(
        req.extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>(),
    );
    auth::check(
        &state.keys,
        &state.throttle,
        auth::Scope::Operator,
        peer,
        req.headers(),
    )?;
    let op: Control = action
        .parse()
        .map_err(|e: shared::migration::UnknownControl| ApiError::NotFound(e.to_string()))?;
    let info = state
        .writer
        .with_engine(move |conn, engine| engine.control(conn, &name, op))
        .await?
        .map_err(|e| match e {
            ControlError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ControlError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            ControlError::Store(_) => ApiError::internal("the control was not applied", e),
        })?;
    Ok(Json(info))
}

struct EventState {
    _slot: tokio::sync::OwnedSemaphorePermit,
    app: AppState,
    live: tokio::sync::watch::Receiver<u64>,
    sources: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    last_sent: Option<String>,
    last_emit: Option<tokio::time::Instant>,
    next_heartbeat: tokio::time::Instant,
    first: bool,
}

/// The part of the payload whose change is worth an event: readiness, the
/// migrations, and each ingest source's state as the banner reads it, its
/// last packet and receipt to the minute (so an open dashboard never judges
/// a source silent from a time more than a minute old, and a source that
/// flows does not send an event per packet).
fn fingerprint(h: &Healthz) -> String {
    let sources: Vec<_> = h
        .ingest_liveness
        .iter()
        .flatten()
        .map(|(name, s)| {
            (
                name,
                s.connected,
                &s.stalled,
                &s.last_error,
                s.last_message_unix.map(|t| t.div_euclid(60)),
                s.last_receipt_unix.map(|t| t.div_euclid(60)),
            )
        })
        .collect();
    serde_json::to_string(&(
        h.ready,
        &h.async_migrations,
        &h.async_migrations_error,
        sources,
    ))
    .unwrap_or_default()
}

/// `GET /api/events`: a `migrations` event (the healthz payload) whenever the
/// migration list or an ingest source's state changes (see [`fingerprint`]),
/// at most 4 per second, and a `heartbeat` every 15 s.
/// The stream ends when the server shuts down (clients reconnect elsewhere or
/// report the server unreachable).
#[utoipa::path(get, path = "/api/events", tag = "migrations",
    responses((status = 200, content_type = "text/event-stream", description = "`migrations` events (healthz payload) on change, at most 4/s; `heartbeat` every 15 s"),
        (status = 503, description = "the cap on open streams is reached (Retry-After); poll /api/healthz", body = ErrorBody)))]
pub(super) async fn events(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // A stream holds a slot for as long as it is open.
    let slot = state
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Busy(format!(
                "meshscope is serving its maximum of {} event streams; poll /api/healthz instead",
                state.limits.max_event_streams
            ))
        })?;
    let init = EventState {
        _slot: slot,
        live: state.status.live().subscribe(),
        sources: state.ingest_liveness.subscribe_state(),
        shutdown: state.shutdown.subscribe(),
        app: state,
        last_sent: None,
        last_emit: None,
        next_heartbeat: tokio::time::Instant::now() + HEARTBEAT,
        first: true,
    };
    Ok(Sse::new(stream::unfold(init, |mut st| async move {
        loop {
            if *st.shutdown.borrow() {
                return None;
            }
            if !st.first {
                tokio::select! {
                    res = st.shutdown.changed() => {
                        if res.is_err() {
                            return None; // the server state is gone
                        }
                        continue;
                    }
                    _ = st.live.changed() => {}
                    _ = st.sources.changed() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = tokio::time::sleep_until(st.next_heartbeat) => {
                        st.next_heartbeat = tokio::time::Instant::now() + HEARTBEAT;
                        let ev = Event::default().event("heartbeat").data(now_ms().to_string());
                        return Some((Ok(ev), st));
                    }
                }
                if let Some(at) = st.last_emit {
                    tokio::time::sleep_until(at + MIN_EVENT_GAP).await;
                }
            }
            let h = migration_health(&st.app).await;
            let fp = fingerprint(&h);
            if st.last_sent.as_ref() == Some(&fp) {
                continue;
            }
            let data = match serde_json::to_string(&h) {
                Ok(d) => d,
                Err(e) => {
                    // Never an empty event the dashboard could misread.
                    crate::ratelimit::warn_limited(
                        "sse-serialise",
                        &format!("cannot serialise the migrations event: {e}"),
                    );
                    st.last_sent = Some(fp);
                    st.first = false;
                    continue;
                }
            };
            let mut ev = Event::default().event("migrations").data(data);
            if st.first {
                ev = ev.retry(RETRY);
                st.first = false;
            }
            st.last_sent = Some(fp);
            st.last_emit = Some(tokio::time::Instant::now());
            return Some((Ok(ev), st));
        }
    })))
}
