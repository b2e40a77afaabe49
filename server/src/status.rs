//! Where migration status comes from: the `_async_migrations` table (so a
//! migration run by another process on the file is visible too), overlaid
//! with the live progress of the migrations this process runs.
//!
//! Reads go through a [`SingleFlight`] cache (TTL about 1 s): at most one
//! database read in flight, no lock held across it, failures never cached.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::SingleFlight;
use crate::db::ReaderPool;
use crate::migrate::{store, LiveStatus};
use shared::migration::{MigrationInfo, MigrationRecord};
use shared::timefmt::parse_rfc3339_ms;

pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

type Records = Arc<Vec<MigrationRecord>>;

pub struct StatusSource {
    readers: ReaderPool,
    live: LiveStatus,
    cache: Arc<SingleFlight<Records>>,
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
    pub async fn records(self: &Arc<Self>) -> Result<Vec<MigrationRecord>, String> {
        let pool = self.readers.clone();
        let stored = self.cache.get(move || read_db(pool)).await?;
        Ok(self.overlay(&stored))
    }

    /// Operator view of every migration at `now_ms`.
    pub async fn infos(self: &Arc<Self>, now_ms: i64) -> Result<Vec<MigrationInfo>, String> {
        let recs = self.records().await?;
        Ok(recs.iter().map(|r| info_logged(r, now_ms)).collect())
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

async fn read_db(pool: ReaderPool) -> Result<Records, String> {
    let res = tokio::task::spawn_blocking(move || -> Result<Vec<MigrationRecord>, String> {
        let conn = pool
            .get()
            .map_err(|e| format!("no database connection: {e}"))?;
        let rows =
            store::read_all(&conn).map_err(|e| format!("cannot read _async_migrations: {e}"))?;
        Ok(rows.into_iter().map(|r| r.rec).collect())
    })
    .await
    .map_err(|e| format!("status read task failed: {e}"))?;
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

/// Builds the info, logging (rate-limited) any timestamp that does not parse.
fn info_logged(r: &MigrationRecord, now_ms: i64) -> MigrationInfo {
    for (field, v) in [
        ("started_at", &r.started_at),
        ("ended_at", &r.ended_at),
        ("last_update_at", &r.last_update_at),
    ] {
        if let Some(s) = v.as_deref().filter(|s| parse_rfc3339_ms(s).is_none()) {
            crate::ratelimit::warn_limited(
                &format!("bad-timestamp:{}:{field}", r.name),
                &format!(
                    "_async_migrations.{field} of {} does not parse as RFC3339: {s:?}",
                    r.name
                ),
            );
        }
    }
    MigrationInfo::from_record(r, now_ms)
}
