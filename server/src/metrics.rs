//! Prometheus metrics (`GET /metrics`): per-migration progress, status,
//! chunk duration and batch size; the ingest wait in the writer queue; HTTP
//! request duration by route. One process-wide recorder, installed on first use.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shared::migration::MigrationStatus;

use crate::migrate::Progress;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process) and returns its handle.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .and_then(|b| b.install_recorder());
            match built {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the metrics recorder; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition.
pub fn render() -> Option<String> {
    install().map(PrometheusHandle::render)
}

/// Engine observer: migration progress, status, chunk duration, batch size.
pub(crate) fn observe_migration(p: &Progress) {
    let name = p.name.clone();
    metrics::gauge!("meshscope_migration_rows_processed", "migration" => name.clone())
        .set(p.rows_processed as f64);
    metrics::gauge!("meshscope_migration_rows_total", "migration" => name.clone())
        .set(p.rows_total as f64);
    metrics::gauge!("meshscope_migration_batch_size", "migration" => name.clone())
        .set(p.batch as f64);
    for st in MigrationStatus::ALL {
        let on = if st == p.status { 1.0 } else { 0.0 };
        metrics::gauge!("meshscope_migration_status", "migration" => name.clone(), "status" => st.as_str())
            .set(on);
    }
    if let Some(d) = p.chunk {
        metrics::histogram!("meshscope_migration_chunk_seconds", "migration" => name)
            .record(d.as_secs_f64());
    }
}

/// Writer hook: how long an ingest request waited in the queue.
pub(crate) fn observe_ingest_wait(d: Duration) {
    metrics::histogram!("meshscope_ingest_queue_wait_seconds").record(d.as_secs_f64());
}

pub(crate) fn observe_http(route: &str, d: Duration) {
    metrics::histogram!("meshscope_http_request_duration_seconds", "route" => route.to_string())
        .record(d.as_secs_f64());
}
