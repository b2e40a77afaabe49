//! The engine's records as last changed, shared with status readers in this
//! process (the API overlays them on the stored rows, so progress shows
//! between writes and a state that could not be stored still shows).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::api::ChunkHold;
use shared::api::RetentionRun;
use shared::migration::MigrationRecord;

use crate::latency::Latencies;
use crate::store::Upkeep;

/// Records of the migrations this process runs (and of its retention job,
/// as `retention`); `version` bumps on every change so watchers can wake.
#[derive(Clone)]
pub struct LiveStatus {
    rows: Arc<Mutex<BTreeMap<String, MigrationRecord>>>,
    /// The retention job's last (or current) run, for `/api/perf`.
    retention: Arc<Mutex<Option<RetentionRun>>>,
    version: tokio::sync::watch::Sender<u64>,
    holds: Arc<Mutex<Holds>>,
    /// What live upkeep covers, as the engine last computed it.
    upkeep: Arc<Mutex<Upkeep>>,
}

/// How long chunks held the writer (µs), committed or interrupted.
struct Holds {
    all: Latencies,
    interrupted: u64,
}

impl Default for LiveStatus {
    fn default() -> Self {
        LiveStatus {
            rows: Arc::default(),
            retention: Arc::default(),
            version: tokio::sync::watch::Sender::new(0),
            holds: Arc::new(Mutex::new(Holds {
                all: Latencies::default(),
                interrupted: 0,
            })),
            upkeep: Arc::default(),
        }
    }
}

impl LiveStatus {
    pub(crate) fn set(&self, rec: &MigrationRecord) {
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rec.name.clone(), rec.clone());
        self.version.send_modify(|v| *v += 1);
    }

    /// The engine's coverage after a change (see `Engine::upkeep`).
    pub(crate) fn set_upkeep(&self, upkeep: Upkeep) {
        *self.upkeep.lock().unwrap_or_else(|p| p.into_inner()) = upkeep;
    }

    /// What live upkeep covers now, e.g. [`Upkeep::counts_ready`].
    pub fn upkeep(&self) -> Upkeep {
        *self.upkeep.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_retention(&self, run: RetentionRun) {
        *self.retention.lock().unwrap_or_else(|p| p.into_inner()) = Some(run);
    }

    /// The retention job's last run; `None` when it is off or has not run.
    pub fn retention(&self) -> Option<RetentionRun> {
        self.retention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes so far.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Records of migrations this process runs, by name. A lock poisoned by
    /// a panic elsewhere still holds whole records (each is replaced in one
    /// `insert`), so they are read, never shown as an empty list.
    pub fn snapshot(&self) -> BTreeMap<String, MigrationRecord> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A chunk held the writer for `d` (`interrupted`: it was stopped and
    /// rolled back to let ingest in).
    pub(crate) fn record_hold(&self, d: Duration, interrupted: bool) {
        let mut h = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        h.all.record(d);
        if interrupted {
            h.interrupted += 1;
        }
        let outcome = if interrupted {
            "interrupted"
        } else {
            "committed"
        };
        metrics::histogram!("meshscope_migration_chunk_hold_seconds", "outcome" => outcome)
            .record(d.as_secs_f64());
    }

    /// Chunk hold times since this process started (`None` before the first chunk).
    pub fn chunk_holds(&self) -> Option<ChunkHold> {
        let h = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        if h.all.is_empty() {
            return None;
        }
        Some(ChunkHold {
            n: h.all.len(),
            p50_ms: h.all.quantile_ms(0.5),
            p99_ms: h.all.quantile_ms(0.99),
            max_ms: h.all.max_ms(),
            interrupted: h.interrupted,
        })
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }
}
