//! Where migration status comes from: the `_async_migrations` table (so a
//! migration run by another process on the file is visible too), overlaid
//! with the live progress of the migrations this process runs. A row no
//! migration of this build owns (another program's, such as CoreScope's) is
//! shown as such ([`Owner::Other`]), never as work in progress.
//!
//! Reads go through a [`SingleFlight`] cache (TTL about 1 s): at most one
//! database read in flight, no lock held across it, failures never cached.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::SingleFlight;
use crate::db::ReaderPool;
use crate::migrate::{store, LiveStatus};
use shared::migration::{MigrationInfo, MigrationRecord, Owner};

pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

type Records = Arc<Vec<MigrationRecord>>;

/// Why migration status could not be read (shared by every caller that
/// waited for the same read, hence the `Arc`s).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StatusError {
    #[error("no database connection: {0}")]
    NoConnection(Arc<r2d2::Error>),
    #[error("cannot read _async_migrations: {0}")]
    Read(Arc<rusqlite::Error>),
    #[error("the status read task failed: {0}")]
    Task(Arc<tokio::task::JoinError>),
    #[error("the status read was abandoned")]
    Abandoned,
}

impl crate::cache::Abandoned for StatusError {
    fn abandoned() -> Self {
        StatusError::Abandoned
    }
}

pub struct StatusSource {
    readers: ReaderPool,
    live: LiveStatus,
    cache: Arc<SingleFlight<Records, StatusError>>,
}

impl StatusSource {
    pub fn new(readers: ReaderPool, live: LiveStatus, ttl: Duration) -> Arc<StatusSource> {
        Arc::new(StatusSource {
            readers,
            live,
            // The caller that starts a refresh waits for it: status is what
            // the banner trusts, so someone always sees the fresh read.
            cache: Arc::new(SingleFlight::new(ttl, false)),
        })
    }

    /// How many reads reached the database so far.
    pub fn db_reads(&self) -> u64 {
        self.cache.loads()
    }

    pub fn live(&self) -> &LiveStatus {
        &self.live
    }

    /// Every known migration's record, freshest view available.
    pub async fn records(self: &Arc<Self>) -> Result<Vec<MigrationRecord>, StatusError> {
        let pool = self.readers.clone();
        let stored = self.cache.get(move || read_db(pool)).await?;
        Ok(self.overlay(&stored))
    }

    /// Operator view of every migration at `now_ms`.
    pub async fn infos(self: &Arc<Self>, now_ms: i64) -> Result<Vec<MigrationInfo>, StatusError> {
        let recs = self.records().await?;
        let live = self.live.snapshot();
        Ok(recs
            .iter()
            .map(|r| {
                let owner = if live.contains_key(&r.name) || crate::migrate::is_registered(&r.name)
                {
                    Owner::Meshscope
                } else {
                    Owner::Other
                };
                info_logged(r, now_ms, owner)
            })
            .collect())
    }

    /// Stored rows, with this process's live records in place of theirs.
    fn overlay(&self, stored: &[MigrationRecord]) -> Vec<MigrationRecord> {
        let mut live = self.live.snapshot();
        let mut out: Vec<MigrationRecord> = stored
            .iter()
            .map(|r| live.remove(&r.name).unwrap_or_else(|| r.clone()))
            .collect();
        out.extend(live.into_values());
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

async fn read_db(pool: ReaderPool) -> Result<Records, StatusError> {
    let res = tokio::task::spawn_blocking(move || -> Result<Vec<MigrationRecord>, StatusError> {
        let conn = pool
            .get()
            .map_err(|e| StatusError::NoConnection(Arc::new(e)))?;
        let rows = store::read_all(&conn).map_err(|e| StatusError::Read(Arc::new(e)))?;
        Ok(rows.into_iter().map(|r| r.rec).collect())
    })
    .await
    .map_err(|e| StatusError::Task(Arc::new(e)))
    .and_then(|r| r);
    match res {
        Ok(v) => Ok(Arc::new(v)),
        Err(e) => {
            crate::ratelimit::warn_limited(
                "status-read",
                &format!("migration status read failed: {e}"),
            );
            Err(e)
        }
    }
}

/// Builds the info, logging (rate-limited) any stored time that does not parse.
pub fn info_logged(r: &MigrationRecord, now_ms: i64, owner: Owner) -> MigrationInfo {
    for (field, s) in r.unreadable_times() {
        crate::ratelimit::warn_limited(
            &format!("bad-timestamp:{}:{field}", r.name),
            &format!(
                "_async_migrations row {}: {field} is not a time meshscope can read: {s:?}",
                r.name
            ),
        );
    }
    MigrationInfo::from_record(r, now_ms, owner)
}
