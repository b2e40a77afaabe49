//! Where migration status comes from: the `_async_migrations` table (so a
//! migration run by another process on the file is visible too), overlaid
//! with the live progress of the migrations this process runs.
//!
//! Reads go through a small cache (TTL about 1 s) with singleflight: at most
//! one database read is in flight; while it runs, callers get the previous
//! value if there is one, otherwise they wait for that read. The read runs
//! in its own task (a caller that goes away cannot strand the others) and no
//! lock is held across database I/O. A failed read is never cached: the
//! next call reads again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::migration::{MigrationInfo, MigrationRecord};
use shared::timefmt::parse_rfc3339_ms;
use tokio::sync::watch;

use crate::db::ReaderPool;
use crate::migrate::{store, LiveStatus};

pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

type Records = Arc<Vec<MigrationRecord>>;
type Flight = watch::Receiver<Option<Result<Records, String>>>;

#[derive(Default)]
struct CacheState {
    value: Option<(Instant, Records)>,
    inflight: Option<Flight>,
}

pub struct StatusSource {
    readers: ReaderPool,
    live: LiveStatus,
    ttl: Duration,
    state: Mutex<CacheState>,
    db_reads: AtomicU64,
}

impl StatusSource {
    pub fn new(readers: ReaderPool, live: LiveStatus, ttl: Duration) -> Arc<StatusSource> {
        Arc::new(StatusSource {
            readers,
            live,
            ttl,
            state: Mutex::new(CacheState::default()),
            db_reads: AtomicU64::new(0),
        })
    }

    /// How many reads reached the database so far.
    pub fn db_reads(&self) -> u64 {
        self.db_reads.load(Ordering::Relaxed)
    }

    pub fn live(&self) -> &LiveStatus {
        &self.live
    }

    /// Every known migration's record, freshest view available.
    pub async fn records(self: &Arc<Self>) -> Result<Vec<MigrationRecord>, String> {
        let flight = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match (&st.value, &st.inflight) {
                (Some((at, v)), _) if at.elapsed() < self.ttl => return Ok(self.overlay(v)),
                (Some((_, v)), Some(_)) => return Ok(self.overlay(v)),
                (None, Some(rx)) => rx.clone(),
                (_, None) => {
                    let (tx, rx) = watch::channel(None);
                    st.inflight = Some(rx.clone());
                    let me = self.clone();
                    tokio::spawn(async move {
                        let res = me.read_db().await;
                        {
                            let mut st = me.state.lock().unwrap_or_else(|p| p.into_inner());
                            st.inflight = None;
                            if let Ok(v) = &res {
                                st.value = Some((Instant::now(), v.clone()));
                            }
                        }
                        let _ = tx.send(Some(res));
                    });
                    rx
                }
            }
        };
        let mut flight = flight;
        let res = flight
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the status read was abandoned".to_string())?
            .clone()
            .unwrap_or_else(|| Err("the status read returned nothing".to_string()));
        res.map(|v| self.overlay(&v))
    }

    /// Operator view of every migration at `now_ms`.
    pub async fn infos(self: &Arc<Self>, now_ms: i64) -> Result<Vec<MigrationInfo>, String> {
        let recs = self.records().await?;
        Ok(recs.iter().map(|r| info_logged(r, now_ms)).collect())
    }

    async fn read_db(&self) -> Result<Records, String> {
        self.db_reads.fetch_add(1, Ordering::Relaxed);
        let pool = self.readers.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<Vec<MigrationRecord>, String> {
            let conn = pool
                .get()
                .map_err(|e| format!("no database connection: {e}"))?;
            let rows = store::read_all(&conn)
                .map_err(|e| format!("cannot read _async_migrations: {e}"))?;
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
