//! The database's health, as the migration engine's throttle reads it.
//!
//! Four signals say the database is under strain, each with a threshold the
//! operator can set (0 turns a signal off):
//! - **WAL backlog**: frames in the WAL not yet copied back to the database
//!   (from the checkpointer's last `PRAGMA wal_checkpoint`, in bytes).
//!   Readers pay for a long WAL and it is disk space; a migration writes it
//!   faster than anything else. Clears at half the threshold, so the
//!   migration runs in bursts that let the checkpointer catch up rather than
//!   flapping chunk by chunk.
//! - **Checkpoint stuck**: the checkpoint's backfill mark has not moved while
//!   frames wait behind it: a reader holds an old snapshot, so nothing a
//!   migration writes now can be checkpointed until it lets go.
//! - **Ingest wait**: the p99 of ingest requests' wait in the writer queue
//!   over the last [`WAIT_WINDOW`] (at least [`WAIT_MIN_SAMPLES`] of them).
//! - **Free disk space** under the database, under a floor.
//!
//! Producers: the checkpointer thread ([`DbHealth::record_checkpoint`]) and
//! the writer thread ([`DbHealth::record_ingest_wait`]). The engine asks
//! [`DbHealth::strain`] before each chunk.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::fmt::bytes_approx;

/// Ingest waits older than this do not count.
pub const WAIT_WINDOW: Duration = Duration::from_secs(5);
/// Fewer waits than this in the window say nothing about ingest.
pub const WAIT_MIN_SAMPLES: usize = 20;
/// At most this many waits are kept (the newest).
const WAIT_KEEP: usize = 4096;
/// Free space is read from the file system at most this often.
const FREE_EVERY: Duration = Duration::from_secs(1);

/// The throttle's thresholds; 0 turns a signal off.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// WAL frames not yet checkpointed, in bytes.
    pub wal_max_bytes: u64,
    /// How long the checkpoint may be held back by a reader.
    pub checkpoint_stuck: Duration,
    /// Ingest queue wait p99 over [`WAIT_WINDOW`].
    pub ingest_wait_p99: Duration,
    /// Free bytes on the disk holding the database.
    pub min_free_bytes: u64,
}

impl Default for HealthConfig {
    /// The settings' declared defaults.
    fn default() -> Self {
        use crate::settings::default_of;
        let mib = |key| default_of::<u64>(key) * 1024 * 1024;
        HealthConfig {
            wal_max_bytes: mib("throttle_wal_mb"),
            checkpoint_stuck: Duration::from_secs(default_of("throttle_checkpoint_stuck_secs")),
            ingest_wait_p99: Duration::from_millis(default_of("throttle_ingest_wait_ms")),
            min_free_bytes: mib("throttle_min_free_mb"),
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Un-checkpointed WAL bytes at the last checkpoint.
    wal_backlog: AtomicU64,
    /// Since when (unix ms) the checkpoint mark has not moved with frames
    /// waiting; 0 when it is keeping up.
    stuck_since_ms: AtomicI64,
    /// The last checkpoint's (frames in the WAL, frames checkpointed).
    last_mark: Mutex<Option<(i64, i64)>>,
    waits: Mutex<VecDeque<(Instant, Duration)>>,
    free: Mutex<Option<(Instant, Option<u64>)>>,
    dir: Option<PathBuf>,
    /// The WAL file's size at the last look, and the largest seen.
    wal_bytes: AtomicU64,
    wal_peak: AtomicU64,
    /// The writer's WAL restarts (see `db::bound_wal`): their holds, and
    /// how many found a reader still on old frames.
    restarts: Mutex<crate::latency::Latencies>,
    restarts_busy: AtomicU64,
    /// Checkpoints recorded so far, and whether the writer wants one now.
    checkpoints: AtomicU64,
    checkpoint_wanted: std::sync::atomic::AtomicBool,
}

/// Shared health readings; cheap to clone.
#[derive(Clone, Default)]
pub struct DbHealth(Arc<Inner>);

impl DbHealth {
    /// Readings for the database at `path` (free space is read there).
    pub fn for_db(path: &Path) -> DbHealth {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        DbHealth(Arc::new(Inner {
            dir: Some(dir),
            ..Inner::default()
        }))
    }

    /// What a `PRAGMA wal_checkpoint` returned: `log` frames in the WAL,
    /// `done` of them checkpointed; `now_ms` is the time of the call.
    pub(crate) fn record_checkpoint(&self, log: i64, done: i64, page_size: i64, now_ms: i64) {
        let backlog = (log - done).max(0) as u64 * page_size.max(0) as u64;
        self.0.wal_backlog.store(backlog, Ordering::Relaxed);
        self.0.checkpoints.fetch_add(1, Ordering::Release);
        let mut last = self.0.last_mark.lock().unwrap_or_else(|p| p.into_inner());
        // Stuck: frames wait and the mark is where it was last time.
        let stuck = done < log && last.is_some_and(|(_, prev_done)| prev_done == done);
        if !stuck {
            self.0.stuck_since_ms.store(0, Ordering::Relaxed);
        } else if self.0.stuck_since_ms.load(Ordering::Relaxed) == 0 {
            self.0.stuck_since_ms.store(now_ms, Ordering::Relaxed);
        }
        *last = Some((log, done));
    }

    /// Checkpoints recorded so far (a later one has a larger number).
    pub(crate) fn checkpoints(&self) -> u64 {
        self.0.checkpoints.load(Ordering::Acquire)
    }

    /// Asks the checkpointer for a checkpoint now (the writer wants to
    /// restart the WAL).
    pub(crate) fn request_checkpoint(&self) {
        self.0.checkpoint_wanted.store(true, Ordering::Release);
    }

    /// Whether a checkpoint was asked for since the last call.
    pub(crate) fn take_checkpoint_request(&self) -> bool {
        self.0.checkpoint_wanted.swap(false, Ordering::AcqRel)
    }

    /// The WAL file holds `bytes` now.
    pub(crate) fn record_wal_size(&self, bytes: u64) {
        self.0.wal_bytes.store(bytes, Ordering::Relaxed);
        self.0.wal_peak.fetch_max(bytes, Ordering::Relaxed);
        metrics::gauge!("meshscope_wal_bytes").set(bytes as f64);
    }

    /// A WAL restart held the writer for `took`; `busy` when a reader on
    /// old frames kept it from restarting the file.
    pub(crate) fn record_wal_restart(&self, took: Duration, busy: bool) {
        if busy {
            self.0.restarts_busy.fetch_add(1, Ordering::Relaxed);
        }
        self.0
            .restarts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(took);
    }

    /// The WAL's size, peak and restarts since this process started.
    pub fn wal(&self) -> shared::api::WalStats {
        let r = self.0.restarts.lock().unwrap_or_else(|p| p.into_inner());
        let any = !r.is_empty();
        shared::api::WalStats {
            bytes: self.0.wal_bytes.load(Ordering::Relaxed),
            peak_bytes: self.0.wal_peak.load(Ordering::Relaxed),
            restarts: r.len(),
            restarts_busy: self.0.restarts_busy.load(Ordering::Relaxed),
            restart_hold_p99_ms: any.then(|| r.quantile_ms(0.99)),
            restart_hold_max_ms: any.then(|| r.max_ms()),
        }
    }

    /// An ingest request waited `d` in the writer queue.
    pub(crate) fn record_ingest_wait(&self, d: Duration) {
        let mut w = self.0.waits.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= WAIT_KEEP {
            w.pop_front();
        }
        w.push_back((Instant::now(), d));
    }

    /// Un-checkpointed WAL bytes at the last checkpoint.
    pub fn wal_backlog_bytes(&self) -> u64 {
        self.0.wal_backlog.load(Ordering::Relaxed)
    }

    /// How long the checkpoint has been held back, if it is.
    pub fn checkpoint_stuck_for(&self, now_ms: i64) -> Option<Duration> {
        let since = self.0.stuck_since_ms.load(Ordering::Relaxed);
        (since > 0).then(|| Duration::from_millis((now_ms - since).max(0) as u64))
    }

    /// The p99 of ingest waits in the last [`WAIT_WINDOW`], when there were
    /// at least [`WAIT_MIN_SAMPLES`].
    pub fn ingest_wait_p99(&self) -> Option<Duration> {
        let mut w = self.0.waits.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while w
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > WAIT_WINDOW)
        {
            w.pop_front();
        }
        if w.len() < WAIT_MIN_SAMPLES {
            return None;
        }
        let mut v: Vec<Duration> = w.iter().map(|(_, d)| *d).collect();
        drop(w);
        v.sort_unstable();
        let idx = ((v.len() as f64) * 0.99).ceil() as usize;
        v.get(idx.saturating_sub(1).min(v.len() - 1)).copied()
    }

    /// Free bytes on the disk holding the database (read at most once a
    /// second); `None` when it cannot be read.
    pub fn free_bytes(&self) -> Option<u64> {
        let dir = self.0.dir.as_ref()?;
        let mut cached = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, v)) = *cached {
            if at.elapsed() < FREE_EVERY {
                return v;
            }
        }
        let v = match rustix::fs::statvfs(dir) {
            Ok(s) => Some(s.f_bavail.saturating_mul(s.f_frsize)),
            Err(e) => {
                crate::ratelimit::warn_limited(
                    "statvfs",
                    &format!(
                        "cannot read free disk space under {} (the free-space throttle is blind): {e}",
                        dir.display()
                    ),
                );
                None
            }
        };
        *cached = Some((Instant::now(), v));
        v
    }

    /// Why a migration should hold back now, in words for the operator;
    /// `None` when the database is healthy. `throttled` says whether it is
    /// holding back already (the WAL signal then clears at half its limit).
    pub fn strain(&self, cfg: &HealthConfig, throttled: bool, now_ms: i64) -> Option<String> {
        if cfg.min_free_bytes > 0 {
            if let Some(free) = self.free_bytes().filter(|f| *f < cfg.min_free_bytes) {
                return Some(format!(
                    "only {} free on the database's disk, under the {} floor; \
                     free some space and it resumes by itself",
                    bytes_approx(free),
                    bytes_approx(cfg.min_free_bytes)
                ));
            }
        }
        if !cfg.checkpoint_stuck.is_zero() {
            if let Some(stuck) = self
                .checkpoint_stuck_for(now_ms)
                .filter(|d| *d >= cfg.checkpoint_stuck)
            {
                return Some(format!(
                    "the WAL checkpoint has not moved for {} s: a long read holds an old \
                     snapshot; waiting for it to finish",
                    stuck.as_secs()
                ));
            }
        }
        if cfg.wal_max_bytes > 0 {
            let backlog = self.wal_backlog_bytes();
            let limit = if throttled {
                cfg.wal_max_bytes / 2
            } else {
                cfg.wal_max_bytes
            };
            if backlog > limit {
                return Some(format!(
                    "the WAL holds {} not yet checkpointed (limit {}); waiting for the \
                     checkpoint to catch up",
                    bytes_approx(backlog),
                    bytes_approx(cfg.wal_max_bytes)
                ));
            }
        }
        if !cfg.ingest_wait_p99.is_zero() {
            if let Some(p99) = self.ingest_wait_p99().filter(|p| *p > cfg.ingest_wait_p99) {
                return Some(format!(
                    "ingest waited {} ms at p99 over the last {} s (limit {} ms); \
                     giving the writer to ingest",
                    p99.as_millis(),
                    WAIT_WINDOW.as_secs(),
                    cfg.ingest_wait_p99.as_millis()
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthConfig {
        HealthConfig {
            wal_max_bytes: 4096 * 100,
            checkpoint_stuck: Duration::from_secs(2),
            ingest_wait_p99: Duration::from_millis(50),
            min_free_bytes: 0,
        }
    }

    #[test]
    fn wal_backlog_throttles_and_clears_at_half_the_limit() {
        let h = DbHealth::default();
        h.record_checkpoint(150, 0, 4096, 1_000);
        let why = h.strain(&cfg(), false, 1_000).expect("150 frames > 100");
        assert!(why.contains("WAL holds"), "{why}");
        // 60 frames: under the limit, but not under half while throttled.
        h.record_checkpoint(160, 100, 4096, 1_100);
        assert!(h.strain(&cfg(), false, 1_100).is_none());
        assert!(h.strain(&cfg(), true, 1_100).is_some());
        h.record_checkpoint(160, 150, 4096, 1_200);
        assert!(h.strain(&cfg(), true, 1_200).is_none());
    }

    #[test]
    fn a_checkpoint_mark_that_does_not_move_is_stuck_after_the_threshold() {
        let h = DbHealth::default();
        h.record_checkpoint(10, 5, 4096, 1_000);
        h.record_checkpoint(20, 5, 4096, 1_500);
        assert_eq!(
            h.checkpoint_stuck_for(2_000),
            Some(Duration::from_millis(500))
        );
        assert!(h.strain(&cfg(), false, 2_000).is_none());
        h.record_checkpoint(30, 5, 4096, 3_000);
        let why = h.strain(&cfg(), false, 3_600).expect("stuck 2.1 s");
        assert!(why.contains("has not moved for 2 s"), "{why}");
        // The mark moves (the reader let go): clear at once.
        h.record_checkpoint(30, 30, 4096, 3_700);
        assert_eq!(h.checkpoint_stuck_for(3_800), None);
        // A mark that moves under steady reads is not stuck.
        h.record_checkpoint(50, 40, 4096, 4_000);
        h.record_checkpoint(70, 60, 4096, 9_000);
        assert_eq!(h.checkpoint_stuck_for(9_000), None);
    }

    #[test]
    fn ingest_wait_p99_needs_enough_samples_in_the_window() {
        let h = DbHealth::default();
        for _ in 0..(WAIT_MIN_SAMPLES - 1) {
            h.record_ingest_wait(Duration::from_millis(500));
        }
        assert_eq!(h.ingest_wait_p99(), None);
        assert!(h.strain(&cfg(), false, 0).is_none());
        for _ in 0..100 {
            h.record_ingest_wait(Duration::from_millis(1));
        }
        // 19 of 119 waits are slow: the p99 is slow.
        let why = h.strain(&cfg(), false, 0).expect("p99 500 ms");
        assert!(why.contains("ingest waited 500 ms at p99"), "{why}");
    }

    #[test]
    fn a_free_space_floor_above_what_is_free_throttles() {
        let dir = std::env::temp_dir().join("meshscope-health-test.db");
        let h = DbHealth::for_db(&dir);
        let free = h.free_bytes().expect("statvfs of the temp dir");
        let mut c = cfg();
        c.min_free_bytes = free.saturating_mul(2).max(1);
        let why = h.strain(&c, false, 0).expect("floor above free space");
        assert!(why.contains("free on the database's disk"), "{why}");
        c.min_free_bytes = 1;
        assert!(h.strain(&c, false, 0).is_none());
    }
}
