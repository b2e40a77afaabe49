//! `GET /api/live`: every sighting stored from now on, as Server-Sent
//! Events, optionally narrowed to regions (`iata`) and payload types
//! (`type`). Each client reads the feed's broadcast ring at its own pace
//! (see `mesh`): one that falls behind is sent `missed` with how many
//! sightings it lost, and never holds memory or ingest back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use shared::api::{ErrorBody, LiveMissed, LivePacket};
use shared::packet::parse_payload_type;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::read::{bad, nonempty, regions_param};
use super::AppState;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a client asked to see.
struct Filter {
    regions: Vec<String>,
    types: Vec<i64>,
}

impl Filter {
    fn parse(q: &HashMap<String, String>) -> Result<Filter, ApiError> {
        let types = match nonempty(q, "type") {
            None => Vec::new(),
            Some(t) => t
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    parse_payload_type(t).map(i64::from).ok_or_else(|| {
                        bad(
                            "type",
                            &format!("{t:?} is not a payload type: a name (e.g. ADVERT) or 0-15, several separated by commas"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Filter {
            regions: regions_param(q)?,
            types,
        })
    }

    fn passes(&self, p: &LivePacket) -> bool {
        (self.types.is_empty() || self.types.contains(&p.payload_type))
            && (self.regions.is_empty()
                || p.iata
                    .as_deref()
                    .is_some_and(|i| self.regions.iter().any(|r| r.eq_ignore_ascii_case(i))))
    }
}

fn event<T: serde::Serialize>(name: &str, body: &T) -> Option<Event> {
    match serde_json::to_string(body) {
        Ok(data) => Some(Event::default().event(name).data(data)),
        Err(e) => {
            crate::ratelimit::warn_limited(
                "live-serialise",
                &format!("cannot serialise a live event: {e}"),
            );
            None
        }
    }
}

#[utoipa::path(get, path = "/api/live", tag = "packets",
    params(
        ("iata" = Option<String>, Query, description = "only sightings by these regions' observers: codes, comma-separated"),
        ("type" = Option<String>, Query, description = "only these payload types: names or codes, comma-separated"),
    ),
    responses((status = 200, content_type = "text/event-stream",
            description = "`packet` events (a LivePacket) as sightings are stored; `missed` (LiveMissed) when this client fell too far behind",
            body = LivePacket),
        (status = 400, body = ErrorBody),
        (status = 503, description = "the cap on open streams is reached (Retry-After)", body = ErrorBody)))]
pub(super) async fn live(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = Filter::parse(&q)?;
    let slot = state
        .live_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Busy(format!(
                "meshscope is serving its maximum of {} live streams",
                state.limits.max_event_streams
            ))
        })?;
    let rx = state.mesh.subscribe();
    let shutdown = state.shutdown.subscribe();
    let init = (rx, shutdown, slot, Arc::new(filter));
    Ok(Sse::new(stream::unfold(
        init,
        |(mut rx, mut shutdown, slot, filter)| async move {
            loop {
                if *shutdown.borrow() {
                    return None;
                }
                let got = tokio::select! {
                    r = rx.recv() => r,
                    res = shutdown.changed() => {
                        if res.is_err() {
                            return None;
                        }
                        continue;
                    }
                };
                let ev = match got {
                    // Written once by the feed thread, for every client.
                    Ok(p) if filter.passes(&p.packet) => {
                        Some(Event::default().event("packet").data(p.json.as_str()))
                    }
                    Ok(_) => None,
                    Err(RecvError::Lagged(n)) => event("missed", &LiveMissed { count: n }),
                    Err(RecvError::Closed) => return None,
                };
                if let Some(ev) = ev {
                    return Some((Ok(ev), (rx, shutdown, slot, filter)));
                }
            }
        },
    ))
    .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
