//! Request timing for `/api/perf`: a middleware records every `/api/*`
//! request's duration in an HDR histogram keyed by the matched route template.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use shared::api::EndpointStats;

use super::AppState;
use crate::latency::Latencies;

pub(crate) struct PerfRecorder {
    total: AtomicU64,
    routes: Mutex<HashMap<String, Latencies>>,
}

impl Default for PerfRecorder {
    fn default() -> Self {
        PerfRecorder {
            total: AtomicU64::new(0),
            routes: Mutex::new(HashMap::new()),
        }
    }
}

impl PerfRecorder {
    pub(crate) fn record(&self, route: &str, took: Duration) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes.entry(route.to_string()).or_default().record(took);
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, EndpointStats> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .iter()
            .map(|(k, h)| {
                let [p50_ms, p95_ms, p99_ms, max_ms] = h.quantiles_ms();
                (
                    k.clone(),
                    EndpointStats {
                        count: h.len(),
                        p50_ms,
                        p95_ms,
                        p99_ms,
                        max_ms,
                    },
                )
            })
            .collect()
    }
}

/// Times the request under its route template (`/api/packets`, not the URL).
pub(crate) async fn track(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let route = matched.map(|m| m.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    // The event stream lives as long as the client; its duration is not a latency.
    if let Some(route) = route.filter(|r| r.starts_with("/api/") && r != "/api/events") {
        let took = start.elapsed();
        state.perf.record(&route, took);
        crate::metrics::observe_http(&route, took);
    }
    resp
}
