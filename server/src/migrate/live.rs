//! The engine's records as last changed, shared with status readers in this
//! process (the API overlays them on the stored rows, so progress shows
//! between writes and a state that could not be stored still shows).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use shared::migration::MigrationRecord;

/// Records of the migrations this process runs; `version` bumps on every
/// change so watchers can wake.
#[derive(Clone)]
pub struct LiveStatus {
    rows: Arc<Mutex<BTreeMap<String, MigrationRecord>>>,
    version: tokio::sync::watch::Sender<u64>,
}

impl Default for LiveStatus {
    fn default() -> Self {
        LiveStatus {
            rows: Arc::default(),
            version: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl LiveStatus {
    pub(crate) fn set(&self, rec: &MigrationRecord) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.insert(rec.name.clone(), rec.clone());
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// Records of migrations this process runs, by name.
    /// Changes so far.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    pub fn snapshot(&self) -> BTreeMap<String, MigrationRecord> {
        self.rows.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }
}
