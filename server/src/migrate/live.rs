//! The engine's records as last changed, shared with status readers in this
//! process (the API overlays them on the stored rows, so progress shows
//! between writes and a state that could not be stored still shows).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use shared::api::RetentionRun;
use shared::migration::MigrationRecord;

/// Records of the migrations this process runs (and of its retention job,
/// as `retention`); `version` bumps on every change so watchers can wake.
#[derive(Clone)]
pub struct LiveStatus {
    rows: Arc<Mutex<BTreeMap<String, MigrationRecord>>>,
    /// The retention job's last (or current) run, for `/api/perf`.
    retention: Arc<Mutex<Option<RetentionRun>>>,
    version: tokio::sync::watch::Sender<u64>,
}

impl Default for LiveStatus {
    fn default() -> Self {
        LiveStatus {
            rows: Arc::default(),
            retention: Arc::default(),
            version: tokio::sync::watch::Sender::new(0),
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

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }
}
