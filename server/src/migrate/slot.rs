//! One registered migration as a [`Job`]: its stored row, the runtime
//! detail of its status, and the state machine that drives it (plan →
//! chunks → done/failed/cancelled; paused by an operator, by shutdown, or by
//! a full disk or foreign lock with automatic resume; `throttled` while the
//! database is under strain).
//!
//! One representation of state: the stored row ([`MigrationRecord::status`])
//! says what the migration is doing; [`Run`] only carries the runtime detail
//! of that status (a row count in flight, the id range being walked) and is
//! reset on every status change.
//!
//! Every status change goes through [`MigrationJob::transition`], which
//! writes the row, then applies it, then publishes it (live status and
//! observers). How a failed write is taken is the change's own rule
//! ([`Write`]): a control or a start changes nothing (the caller is told);
//! a failure shows anyway and is written as soon as writes succeed; a pause
//! for a full disk is not written now (the write would meet the same full
//! disk) and the resume writes it.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use shared::migration::{Control, MigrationInfo, MigrationRecord, MigrationStatus, Owner};

use super::job::{Cx, Job};
use super::sizer::BatchSizer;
use super::store::{self, Row, StoreError};
use super::unit::{rest, sqlite_of, Outcome};
use super::{ControlError, EngineConfig, Migration, MigrationError, Progress};
use crate::backoff::Backoff;
use crate::clock::{now_ms, now_text};
use crate::store::{Coverage, Upkeep};

/// Sample chunks (rolled back) timed for the pre-flight estimate.
const SAMPLE_ROUNDS: u32 = 6;
/// First wait before resuming a migration paused by a full disk or a lock.
const RESUME_MIN: Duration = Duration::from_secs(1);
/// Longest wait between tries.
const RESUME_MAX: Duration = Duration::from_secs(30);
/// How often a row that could not be stored is written again.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
enum PlanError {
    #[error("no read-only connection for counting rows: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The rows to process, counted off the writer.
type PlanResult = Result<i64, PlanError>;

/// Runtime detail of a migration's current status.
enum Run {
    /// Nothing in flight: a `pending` row needs counting, a `running` row
    /// needs its id range read before the next chunk.
    Idle,
    /// Counting rows up to `max_id` off the writer (`pending`).
    Planning {
        rx: mpsc::Receiver<PlanResult>,
        max_id: i64,
    },
    /// Counted (`pending`): the next unit starts the run.
    Planned {
        max_id: i64,
        total: i64,
    },
    PlanFailed(String),
    /// Walking ids up to `max_id` (`running`).
    Active {
        max_id: i64,
    },
}

/// The pre-flight estimate of a pending migration: a few chunks of growing
/// size over its first ids, each timed and rolled back (one per unit, so
/// ingest runs between them), then the cost per id times the ids to visit.
enum Sample {
    /// Not sampled yet.
    Todo,
    Rounds {
        max_id: i64,
        done: u32,
        sizer: BatchSizer,
    },
    /// Estimated, or the estimate failed (logged; the run goes on without).
    Over,
}

/// How a status change takes a bookkeeping write that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Nothing changes; the error goes to the caller.
    First,
    /// Applied and shown anyway; written again as soon as writes succeed.
    Anyway,
    /// Not written now (a full disk or foreign lock would refuse it too):
    /// applied and shown; the change that ends it writes it.
    Later,
}

/// A registered migration as a job.
pub(crate) struct MigrationJob {
    m: Arc<dyn Migration>,
    row: Row,
    run: Run,
    sizer: BatchSizer,
    /// A pause the engine made (full disk, lock held elsewhere, or a pause
    /// stored by the last shutdown): when to resume by itself.
    resume_at: Option<Instant>,
    /// Between resumes, and between writes of a row that could not be stored.
    backoff: Backoff,
    /// The stored row lags `row`: when to write it again.
    unsaved: Option<Instant>,
    /// Held back by the health throttle until then.
    throttle_until: Option<Instant>,
    sample: Sample,
    /// The next sample round waits until then (the duty's rest).
    sample_at: Option<Instant>,
    /// This process's part of the run: when its first chunk ended, the
    /// cursor then, and the chunks since, for [`REFINE_AFTER`].
    since: Option<(Instant, i64, u32)>,
}

/// After this many committed chunks the estimate is refined from the run's
/// own pace (rests, commits and waits behind ingest included, which the
/// rolled-back samples leave out: at duty 0.01 they were 2.5× short here).
const REFINE_AFTER: u32 = 3;

/// Back to `pending` for a run from scratch, registered again now.
fn reset_for_retry(row: &mut Row) {
    let attempts = row.rec.attempts;
    *row = Row::fresh(row.rec.name.as_str());
    row.rec.attempts = attempts;
}

/// Runs the migration's chunk over `after < id <= upto` and rolls it back:
/// how long the real one would hold the writer, with nothing written.
fn time_sample(
    conn: &Connection,
    m: &dyn Migration,
    after: i64,
    upto: i64,
    upkeep: Upkeep,
) -> Result<Duration, MigrationError> {
    let started = Instant::now();
    conn.execute_batch("SAVEPOINT meshscope_sample")?;
    let res = m.chunk(conn, after, upto, upkeep);
    let took = started.elapsed();
    let undone = conn.execute_batch("ROLLBACK TO meshscope_sample; RELEASE meshscope_sample");
    res?;
    undone?;
    Ok(took)
}

/// The pre-flight estimate of visiting `after < id <= max_id` at `cfg`'s
/// budget and duty, in seconds, from [`SAMPLE_ROUNDS`] sample chunks rolled
/// back (nothing is written). `meshscope migrate --dry-run` uses it; the
/// engine takes the same rounds one unit at a time.
pub fn preflight(
    conn: &Connection,
    m: &dyn Migration,
    cfg: &EngineConfig,
    after: i64,
    max_id: i64,
    upkeep: Upkeep,
) -> Result<f64, MigrationError> {
    let mut sizer = BatchSizer::new(cfg.budget, cfg.min_batch, cfg.max_batch);
    for _ in 0..SAMPLE_ROUNDS {
        let upto = after.saturating_add(sizer.batch()).min(max_id);
        if upto <= after {
            break;
        }
        let took = time_sample(conn, m, after, upto, upkeep)?;
        sizer.observe(upto - after, took);
    }
    Ok(sizer.seconds_for(max_id - after) / cfg.duty)
}

impl MigrationJob {
    /// Registers `m` (a `pending_async` row when it has none) and decides
    /// what it does at this start. Only quick writes; a write that fails (a
    /// full disk) does not stop the boot: the row is kept in memory and
    /// written once writes succeed.
    pub(crate) fn boot(
        conn: &Connection,
        m: Arc<dyn Migration>,
        need: super::Need,
        cfg: &EngineConfig,
    ) -> Result<MigrationJob, StoreError> {
        let now = Instant::now();
        let fresh = Row::fresh(m.name());
        let mut unsaved = None;
        if let Err(e) = store::register(conn, &fresh) {
            tracing::error!(migration = m.name(), error = %e,
                "cannot register the migration; keeping it in memory and retrying the write");
            unsaved = Some(now + FLUSH_EVERY);
        }
        let mut row = store::read_one(conn, m.name())?.unwrap_or(fresh);
        // A throttle is this process's reading of the database; one stored
        // by an earlier process means nothing now.
        if row.rec.throttle_reason.take().is_some() {
            row.rec.throttled_until = None;
            if let Err(e) = store::write(conn, &row) {
                tracing::warn!(migration = m.name(), error = %e,
                    "cannot clear the last process's throttle; retrying the write");
                unsaved = Some(now + FLUSH_EVERY);
            }
        }
        if need == super::Need::Yes && row.rec.status == MigrationStatus::Done {
            // Done before, needed again (an index dropped since): a new run.
            tracing::info!(migration = m.name(), "needed again; starting a new run");
            let mut next = row.clone();
            reset_for_retry(&mut next);
            if let Err(e) = store::write(conn, &next) {
                tracing::error!(migration = m.name(), error = %e,
                    "cannot record the new run; retrying the write");
                unsaved = Some(now + FLUSH_EVERY);
            }
            row = next;
        }
        if matches!(
            row.rec.status,
            MigrationStatus::Cancelled | MigrationStatus::Failed
        ) {
            if let Err(e) = m.abandon(conn) {
                tracing::warn!(migration = m.name(), error = %e,
                    "cannot undo what the ended run kept in step");
            }
        }
        let mut resume_at = None;
        match row.rec.status {
            MigrationStatus::Running | MigrationStatus::Paused if row.cursor.is_none() => {
                // Stopped before its first chunk: a run from scratch.
                row.rec.status = MigrationStatus::Pending;
            }
            // Stored by a clean shutdown (or an operator): resumes at start.
            MigrationStatus::Paused => resume_at = Some(now),
            MigrationStatus::Failed if row.rec.attempts < cfg.max_attempts => {
                tracing::info!(
                    migration = m.name(),
                    attempts = row.rec.attempts,
                    "retrying failed migration automatically"
                );
                let mut next = row.clone();
                reset_for_retry(&mut next);
                if let Err(e) = store::write(conn, &next) {
                    tracing::error!(migration = m.name(), error = %e,
                        "cannot record the automatic retry; retrying the write");
                    unsaved = Some(now + FLUSH_EVERY);
                }
                row = next;
            }
            MigrationStatus::Failed => tracing::warn!(
                migration = m.name(),
                attempts = row.rec.attempts,
                "migration failed too often; waiting for an explicit retry"
            ),
            MigrationStatus::Unknown => tracing::warn!(
                migration = m.name(),
                status = row.rec.stored_status(),
                "unrecognised stored status; not touching it"
            ),
            MigrationStatus::Pending
            | MigrationStatus::Running
            | MigrationStatus::Throttled
            | MigrationStatus::Done
            | MigrationStatus::Cancelled
            | MigrationStatus::Unowned => {}
        }
        Ok(MigrationJob {
            m,
            row,
            run: Run::Idle,
            sizer: BatchSizer::new(cfg.budget, cfg.min_batch, cfg.max_batch),
            resume_at,
            backoff: Backoff::new(RESUME_MIN, RESUME_MAX),
            unsaved,
            throttle_until: None,
            sample: Sample::Todo,
            sample_at: None,
            since: None,
        })
    }

    fn status(&self) -> MigrationStatus {
        self.row.rec.status
    }

    /// Pending with its pre-flight sample not over.
    fn sampling(&self) -> bool {
        self.status() == MigrationStatus::Pending && !matches!(self.sample, Sample::Over)
    }

    fn progress(&self, chunk: Option<Duration>) -> Progress {
        Progress {
            name: self.m.name().to_string(),
            status: self.row.rec.shown_status(),
            rows_processed: self.row.rec.rows_processed,
            rows_total: self.row.rec.rows_total,
            batch: self.sizer.batch(),
            chunk,
        }
    }

    /// The one way a status changes: `next` is written (by `write`'s rule),
    /// then applied (the runtime detail reset), then published.
    fn transition(
        &mut self,
        conn: &Connection,
        next: Row,
        write: Write,
        cx: &mut Cx<'_>,
    ) -> Result<(), StoreError> {
        if write != Write::Later {
            if let Err(e) = store::upsert(conn, &next) {
                if write == Write::First {
                    return Err(e);
                }
                tracing::error!(migration = self.m.name(), error = %e,
                    "could not record the change in _async_migrations; retrying the write");
                self.unsaved.get_or_insert(Instant::now() + FLUSH_EVERY);
            } else {
                self.unsaved = None;
            }
        }
        let ended = matches!(
            next.rec.status,
            MigrationStatus::Cancelled | MigrationStatus::Failed
        ) && next.rec.status != self.row.rec.status;
        self.row = next;
        self.run = Run::Idle;
        if ended {
            if let Err(e) = self.m.abandon(conn) {
                crate::ratelimit::warn_limited(
                    &format!("abandon:{}", self.m.name()),
                    &format!(
                        "{}: cannot undo what the run kept in step: {e}",
                        self.m.name()
                    ),
                );
            }
        }
        cx.live.set(&self.row.rec);
        if let Err(e) = cx.notify(&self.progress(None)) {
            if self.status() == MigrationStatus::Failed {
                tracing::error!(error = %e, "progress observer failed");
            } else {
                self.fail(conn, &e.to_string(), cx);
            }
        }
        Ok(())
    }

    /// Shows progress within a status (rows, the throttle's numbers).
    fn show(&mut self, conn: &Connection, chunk: Option<Duration>, cx: &mut Cx<'_>) {
        cx.live.set(&self.row.rec);
        if let Err(e) = cx.notify(&self.progress(chunk)) {
            self.fail(conn, &e.to_string(), cx);
        }
    }

    /// A start, resume or finish could not be recorded: a pause when the
    /// write met a condition that clears by itself, else a failure.
    fn unrecorded(&mut self, conn: &Connection, what: &str, e: &StoreError, cx: &mut Cx<'_>) {
        match e.sqlite().and_then(crate::db::fault_words) {
            Some(reason) => self.pause_by_itself(conn, reason, cx),
            None => self.fail(conn, &format!("could not record {what}: {e}"), cx),
        }
    }

    /// One round of the pre-flight sample (see [`Sample`]).
    fn sample_round(&mut self, conn: &Connection, cx: &mut Cx<'_>) {
        let m = self.m.clone();
        let state = std::mem::replace(&mut self.sample, Sample::Over);
        let (max_id, done, mut sizer) = match state {
            Sample::Todo => match m.max_id(conn) {
                Ok(max_id) => (
                    max_id,
                    0,
                    BatchSizer::new(cx.cfg.budget, cx.cfg.min_batch, cx.cfg.max_batch),
                ),
                Err(e) => {
                    tracing::warn!(migration = m.name(), error = %e, "cannot estimate the run");
                    return;
                }
            },
            Sample::Rounds {
                max_id,
                done,
                sizer,
            } => (max_id, done, sizer),
            Sample::Over => return,
        };
        let after = self.row.cursor.unwrap_or(0);
        let ids = (max_id - after).max(0);
        if done >= SAMPLE_ROUNDS || ids == 0 {
            // The samples are rolled back, so they leave out each chunk's
            // commit (its sync, inside the hold the duty's rest is sized
            // by): timed here on a real one, the row's own write.
            let written = Instant::now();
            let first = store::write(conn, &self.row);
            let commit = written.elapsed().as_secs_f64();
            let chunks = (ids as f64 / sizer.batch().max(1) as f64).ceil();
            let est = (sizer.seconds_for(ids) + chunks * commit) / cx.cfg.duty;
            self.row.rec.estimated_ms = Some((est * 1000.0).ceil() as i64);
            tracing::info!(
                migration = m.name(),
                ids,
                chunks,
                commit_ms = commit * 1000.0,
                estimated_sec = est,
                "pre-flight estimate"
            );
            if let Err(e) = first.and_then(|()| store::write(conn, &self.row)) {
                crate::ratelimit::warn_limited(
                    &format!("estimate:{}", m.name()),
                    &format!("{}: cannot store the pre-flight estimate: {e}", m.name()),
                );
            }
            self.show(conn, None, cx);
            return;
        }
        let upto = after.saturating_add(sizer.batch()).min(max_id);
        let upkeep = cx.upkeep;
        let sampled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            time_sample(conn, &*m, after, upto, upkeep)
        }));
        let sampled = match sampled {
            Ok(r) => r,
            Err(p) => {
                // The sample's savepoint may be left open: undo it here.
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                tracing::warn!(migration = m.name(), panic = %crate::panics::message(&*p),
                    "the pre-flight sample panicked; running without an estimate");
                return;
            }
        };
        match sampled {
            Ok(took) => {
                sizer.observe(upto - after, took);
                cx.live.record_hold(took, false);
                // Sampled as the run will go: after the duty's rest (a chunk
                // after a long rest runs on cold caches, several times slower
                // here at duty 0.01).
                self.sample_at = rest(took, cx.cfg.duty).map(|r| Instant::now() + r);
                self.sample = Sample::Rounds {
                    max_id,
                    done: done + 1,
                    sizer,
                };
            }
            Err(e) => {
                // A busy or full database: try again later, like a chunk would.
                if sqlite_of(&e).and_then(crate::db::fault_words).is_some() {
                    self.sample = Sample::Rounds {
                        max_id,
                        done,
                        sizer,
                    };
                    *cx.not_before = Some(Instant::now() + RESUME_MIN);
                    return;
                }
                tracing::warn!(migration = m.name(), error = %e,
                    "the pre-flight sample failed; running without an estimate");
            }
        }
    }

    /// Picks up a finished row count, if one is in flight.
    fn poll_plan(&mut self) {
        if let Run::Planning { rx, max_id } = &self.run {
            let max_id = *max_id;
            self.run = match rx.try_recv() {
                Ok(Ok(total)) => Run::Planned { max_id, total },
                Ok(Err(e)) => Run::PlanFailed(e.to_string()),
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    Run::PlanFailed("the row-counting thread died".into())
                }
            };
        }
    }

    /// Whether the running migration may take its next chunk: asks the
    /// health signals, and moves it in or out of `throttled` (stored as
    /// `running` with the reason beside it) when the answer changes.
    fn healthy(&mut self, conn: &Connection, cx: &mut Cx<'_>) -> bool {
        if cx.health.is_none() {
            return true;
        }
        let was = self.row.rec.throttle_reason.is_some();
        let mut next = self.row.clone();
        self.throttle_until = cx.throttle(&mut next.rec);
        let strain = next.rec.throttle_reason.clone();
        if strain.is_none() && !was {
            return true;
        }
        if was == strain.is_some() {
            // While it lasts only the live record follows the reason's numbers.
            self.row = next;
            cx.live.set(&self.row.rec);
            return false;
        }
        next.rec.last_update_at = Some(now_text());
        match &strain {
            Some(reason) => crate::ratelimit::warn_limited(
                &format!("throttled:{}", self.m.name()),
                &format!("{} throttled: {reason}", self.m.name()),
            ),
            None => tracing::info!(
                migration = self.m.name(),
                "the database is healthy again; migration resumed"
            ),
        }
        let run = std::mem::replace(&mut self.run, Run::Idle);
        // The throttle does not change the run in flight.
        let _ = self.transition(conn, next, Write::Anyway, cx);
        self.run = run;
        strain.is_none()
    }

    /// Plans a run from scratch: on the writer, the migration resets what it
    /// keeps outside the migrated rows ([`Migration::start`]) and the id
    /// range is fixed (`MAX(id)` now); the eligible rows are then counted on
    /// a read-only connection.
    fn start_plan(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        let m = self.m.clone();
        let begun = (|| -> Result<i64, MigrationError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            m.start(&tx)?;
            let max_id = m.max_id(&tx)?;
            tx.commit()?;
            Ok(max_id)
        })();
        let max_id = match begun {
            Ok(v) => v,
            Err(e) => {
                if let Some(reason) = sqlite_of(&e).and_then(crate::db::fault_words) {
                    return self.pause_by_itself(conn, reason, cx);
                }
                return self.fail(conn, &format!("starting the run failed: {e}"), cx);
            }
        };
        match cx.readers {
            Some(pool) => {
                let pool = pool.clone();
                let (tx, rx) = mpsc::channel();
                let counter = m.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("plan-{}", m.name()))
                    .spawn(move || {
                        let res = (|| -> PlanResult {
                            let c = pool.get()?;
                            Ok(counter.count(&c, max_id)?)
                        })();
                        let _ = tx.send(res);
                    });
                match spawned {
                    Ok(_) => self.run = Run::Planning { rx, max_id },
                    Err(e) => self.fail(
                        conn,
                        &format!("cannot start the row-counting thread: {e}"),
                        cx,
                    ),
                }
            }
            None => match m.count(conn, max_id) {
                Ok(total) => self.run = Run::Planned { max_id, total },
                Err(e) => self.sqlite_error(conn, &e, "counting rows failed", cx),
            },
        }
    }

    fn start_run(&mut self, conn: &mut Connection, max_id: i64, total: i64, cx: &mut Cx<'_>) {
        let now = now_text();
        let mut next = self.row.clone();
        let r = &mut next.rec;
        r.status = MigrationStatus::Running;
        r.started_at = Some(now.clone());
        r.ended_at = None;
        r.error = None;
        r.rows_processed = 0;
        r.rows_total = total;
        r.last_update_at = Some(now);
        r.attempts += 1;
        next.cursor = Some(0);
        next.max_id = Some(max_id);
        self.since = None;
        let attempts = next.rec.attempts;
        if let Err(e) = self.transition(conn, next, Write::First, cx) {
            // The attempt counts even though it could not be recorded.
            self.row.rec.attempts = attempts;
            return self.unrecorded(conn, "the start", &e, cx);
        }
        tracing::info!(
            migration = self.m.name(),
            rows = total,
            max_id,
            attempt = attempts,
            "migration started"
        );
        self.run = Run::Active { max_id };
        if total == 0 {
            // Nothing to process: done at once, without walking the ids.
            self.finish(conn, cx);
        }
    }

    /// Continues a `running` row from its stored cursor, up to the id range
    /// fixed when the run started (rows since then are live ingest's; a row
    /// stored before meshscope kept the range is walked up to today's ids).
    fn resume_run(&mut self, conn: &Connection, cx: &mut Cx<'_>) {
        match self.row.max_id.map_or_else(|| self.m.max_id(conn), Ok) {
            Ok(max_id) => {
                tracing::info!(
                    migration = self.m.name(),
                    cursor = self.row.cursor,
                    processed = self.row.rec.rows_processed,
                    total = self.row.rec.rows_total,
                    "migration resumed from its cursor"
                );
                self.run = Run::Active { max_id };
            }
            Err(e) => self.sqlite_error(conn, &e, "reading the id range failed", cx),
        }
    }

    fn chunk(&mut self, conn: &mut Connection, max_id: i64, cx: &mut Cx<'_>) {
        let after = self.row.cursor.unwrap_or(0);
        if after >= max_id {
            return self.finish(conn, cx);
        }
        let m = self.m.clone();
        let upkeep = cx.upkeep;
        // A chunk commits with the file's durability, its sync inside its
        // own hold: relaxed to NORMAL, the next ingest commit paid for
        // syncing the chunk's frames, which put the chunk's cost into
        // ingest's tail (scale 1: ingest p99 23.7 ms relaxed against 12.0 ms
        // synced, for the same backfill wall time).
        let outcome = cx.bounds().run(conn, &mut self.sizer, |tx, size| {
            let upto = after.saturating_add(size).min(max_id);
            let rows = m.chunk(tx, after, upto, upkeep)?;
            store::chunk_progress(tx, m.name(), upto, rows, &now_text())?;
            Ok(((upto, rows), upto - after))
        });
        let ((upto, rows), took) = match outcome {
            Outcome::Committed { value, took } => (value, took),
            Outcome::Stopped { took } => {
                tracing::debug!(
                    migration = m.name(),
                    after,
                    took_ms = took.as_secs_f64() * 1000.0,
                    "chunk stopped past its budget; retrying smaller"
                );
                return;
            }
            Outcome::Transient(reason) => return self.pause_by_itself(conn, reason, cx),
            Outcome::Failed(msg) => return self.fail(conn, &msg, cx),
        };
        tracing::debug!(
            migration = m.name(),
            after,
            upto,
            rows,
            took_ms = took.as_secs_f64() * 1000.0,
            "chunk committed"
        );
        self.row.cursor = Some(upto);
        self.row.rec.rows_processed += rows;
        self.refine_estimate(upto, max_id - upto);
        self.row.rec.last_update_at = Some(now_text());
        self.backoff.reset();
        if let Some(r) = rest(took, cx.cfg.duty) {
            *cx.not_before = Some(Instant::now() + r);
        }
        if upto >= max_id {
            // The terminal event is the only one reported for the last chunk.
            return self.finish(conn, cx);
        }
        self.show(conn, Some(took), cx);
    }

    /// Counts a committed chunk ending at `upto`; [`REFINE_AFTER`] chunks
    /// after the first of this process, the estimate becomes the run's time
    /// so far plus the ids `left` at the pace of those chunks (their rests
    /// and waits included).
    fn refine_estimate(&mut self, upto: i64, left: i64) {
        let now = Instant::now();
        let Some((t0, from, n)) = self.since.as_mut() else {
            self.since = Some((now, upto, 0));
            return;
        };
        *n += 1;
        let (walked, elapsed) = (upto - *from, now.duration_since(*t0).as_secs_f64());
        if *n != REFINE_AFTER || walked <= 0 {
            return;
        }
        let Some(started) = self
            .row
            .rec
            .started_at
            .as_deref()
            .and_then(shared::timefmt::parse_time_ms)
        else {
            return;
        };
        let so_far = (now_ms() - started).max(0) as f64 / 1000.0;
        let est = so_far + left as f64 * elapsed / walked as f64;
        tracing::info!(
            migration = self.m.name(),
            estimated_sec = est,
            was_sec = self.row.rec.estimated_ms.map(|ms| ms as f64 / 1000.0),
            "estimate refined from the run's first chunks"
        );
        self.row.rec.estimated_ms = Some((est * 1000.0).ceil() as i64);
    }

    fn finish(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        let mut next = self.row.clone();
        next.rec.status = MigrationStatus::Done;
        let now = now_text();
        next.rec.ended_at = Some(now.clone());
        next.rec.last_update_at = Some(now);
        let m = self.m.clone();
        // The migration's last step and the `done` row commit together.
        let recorded = (|| -> Result<(), MigrationError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            m.finish(&tx)?;
            store::write(&tx, &next)?;
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = recorded {
            if let Some(reason) = sqlite_of(&e).and_then(crate::db::fault_words) {
                return self.pause_by_itself(conn, reason, cx);
            }
            return self.fail(conn, &format!("could not complete the run: {e}"), cx);
        }
        tracing::info!(
            migration = m.name(),
            rows = next.rec.rows_processed,
            "migration done"
        );
        // Written above with the finish step.
        let _ = self.transition(conn, next, Write::Later, cx);
    }

    /// An SQLite error outside a chunk: a pause when it clears by itself,
    /// else a failure.
    fn sqlite_error(
        &mut self,
        conn: &Connection,
        e: &rusqlite::Error,
        what: &str,
        cx: &mut Cx<'_>,
    ) {
        match crate::db::fault_words(e) {
            Some(reason) => self.pause_by_itself(conn, reason, cx),
            None => self.fail(conn, &format!("{what}: {e}"), cx),
        }
    }

    /// Pauses for a condition that clears by itself; shown with `reason`
    /// and resumed by [`MigrationJob::auto_resume`] after a growing wait.
    fn pause_by_itself(&mut self, conn: &Connection, reason: &str, cx: &mut Cx<'_>) {
        let wait = self.backoff.next_wait();
        self.resume_at = Some(Instant::now() + wait);
        let mut next = self.row.clone();
        next.rec.status = MigrationStatus::Paused;
        next.rec.error = Some(reason.to_string());
        next.rec.last_update_at = Some(now_text());
        crate::ratelimit::warn_limited(
            &format!("paused:{}", self.m.name()),
            &format!(
                "{} paused: {reason} (next try in {} s)",
                self.m.name(),
                wait.as_secs()
            ),
        );
        let _ = self.transition(conn, next, Write::Later, cx);
    }

    /// Resumes a migration the engine paused (or a pause stored by the last
    /// shutdown): `running` from its cursor, or `pending` without one.
    fn auto_resume(&mut self, conn: &Connection, cx: &mut Cx<'_>) {
        let mut next = self.row.clone();
        next.rec.status = if next.cursor.is_some() {
            MigrationStatus::Running
        } else {
            MigrationStatus::Pending
        };
        next.rec.error = None;
        next.rec.last_update_at = Some(now_text());
        match self.transition(conn, next, Write::First, cx) {
            Ok(()) => {
                self.resume_at = None;
                tracing::info!(migration = self.m.name(), "migration resumed by itself");
            }
            Err(e) => self.unrecorded(conn, "the resume", &e, cx),
        }
    }
}

impl Job for MigrationJob {
    fn name(&self) -> &str {
        self.m.name()
    }

    fn record(&self) -> &MigrationRecord {
        &self.row.rec
    }

    fn in_progress(&self) -> bool {
        self.status().is_in_progress()
    }

    fn prelude_due(&self) -> bool {
        self.sampling() && self.sample_at.is_none_or(|t| t <= Instant::now())
    }

    fn prelude(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        self.sample_round(conn, cx);
    }

    fn due(&mut self, now: Instant, not_before: Option<Instant>) -> Option<Instant> {
        self.poll_plan();
        if self.sampling() {
            // The next sample round, after its rest.
            return Some(self.sample_at.unwrap_or(now).max(now));
        }
        match (self.status(), &self.run) {
            (MigrationStatus::Pending, Run::Planning { .. }) => {
                Some(now + Duration::from_millis(5))
            }
            (MigrationStatus::Pending, _) => Some(now),
            (MigrationStatus::Running, Run::Active { .. }) => Some(
                not_before
                    .unwrap_or(now)
                    .max(self.throttle_until.unwrap_or(now))
                    .max(now),
            ),
            (MigrationStatus::Running, _) => Some(now),
            (MigrationStatus::Paused, _) => self.resume_at,
            _ => None,
        }
    }

    fn unit(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        self.poll_plan();
        let run = std::mem::replace(&mut self.run, Run::Idle);
        match (self.status(), run) {
            (MigrationStatus::Pending, Run::Idle) => self.start_plan(conn, cx),
            (MigrationStatus::Pending, planning @ Run::Planning { .. }) => self.run = planning,
            (MigrationStatus::Pending, Run::Planned { max_id, total }) => {
                self.start_run(conn, max_id, total, cx);
            }
            (MigrationStatus::Pending, Run::PlanFailed(msg)) => {
                self.fail(conn, &format!("counting rows failed: {msg}"), cx);
            }
            (MigrationStatus::Running, Run::Active { max_id }) => {
                self.run = Run::Active { max_id };
                if self.healthy(conn, cx) {
                    self.chunk(conn, max_id, cx);
                }
            }
            (MigrationStatus::Running, _) => self.resume_run(conn, cx),
            (MigrationStatus::Paused, _) => self.auto_resume(conn, cx),
            _ => {}
        }
    }

    fn unsaved_due(&self) -> Option<Instant> {
        self.unsaved
    }

    fn flush(&mut self, conn: &Connection, now: Instant) {
        let Some(at) = self.unsaved else { return };
        if now < at {
            return;
        }
        match store::upsert(conn, &self.row) {
            Ok(()) => {
                self.unsaved = None;
                tracing::info!(
                    migration = self.m.name(),
                    "bookkeeping row written after an earlier failure"
                );
            }
            Err(e) => {
                self.unsaved = Some(Instant::now() + self.backoff.next_wait());
                crate::ratelimit::warn_limited(
                    &format!("unsaved:{}", self.m.name()),
                    &format!(
                        "{}: the bookkeeping row still cannot be written: {e}",
                        self.m.name()
                    ),
                );
            }
        }
    }

    fn control(
        &mut self,
        conn: &Connection,
        op: Control,
        cx: &mut Cx<'_>,
    ) -> Result<MigrationInfo, ControlError> {
        let status = self.status();
        let name = self.m.name();
        if !op.applies_to(status) {
            return Err(ControlError::Conflict {
                action: op.action(),
                name: name.to_string(),
                status: status.as_str(),
            });
        }
        let now = now_text();
        let mut next = self.row.clone();
        match op {
            Control::Pause => {
                next.rec.status = MigrationStatus::Paused;
                next.rec.last_update_at = Some(now);
            }
            Control::Resume => {
                next.rec.status = if next.cursor.is_some() {
                    MigrationStatus::Running
                } else {
                    MigrationStatus::Pending
                };
                next.rec.error = None;
                next.rec.last_update_at = Some(now);
            }
            Control::Cancel => {
                next.rec.status = MigrationStatus::Cancelled;
                next.rec.ended_at = Some(now.clone());
                next.rec.last_update_at = Some(now);
            }
            Control::Retry => reset_for_retry(&mut next),
        }
        // Bookkeeping first: if it cannot be written, nothing changes.
        self.transition(conn, next, Write::First, cx)?;
        self.resume_at = None;
        if op == Control::Retry {
            self.sizer = BatchSizer::new(cx.cfg.budget, cx.cfg.min_batch, cx.cfg.max_batch);
            self.backoff.reset();
            crate::ratelimit::reset_matching(name);
        }
        tracing::info!(
            migration = name,
            op = op.action(),
            "operator control applied"
        );
        Ok(MigrationInfo::from_record(
            &self.row.rec,
            now_ms(),
            Owner::Meshscope,
        ))
    }

    fn coverage(&self) -> Option<Coverage> {
        Some(match (self.status(), &self.run) {
            (MigrationStatus::Done, _) => Coverage::All,
            (
                MigrationStatus::Pending,
                Run::Planning { max_id, .. } | Run::Planned { max_id, .. },
            ) => Coverage::Outside {
                cursor: 0,
                max_id: *max_id,
            },
            (MigrationStatus::Running | MigrationStatus::Paused, run) => {
                let max_id = match run {
                    Run::Active { max_id } => Some(*max_id),
                    _ => self.row.max_id,
                };
                // No cursor yet: no chunk ran, nothing processed.
                match max_id {
                    Some(max_id) => Coverage::Outside {
                        cursor: self.row.cursor.unwrap_or(0),
                        max_id,
                    },
                    None => Coverage::Nothing,
                }
            }
            _ => Coverage::Nothing,
        })
    }

    /// Ends the migration as `failed` with `msg`; never panics, always logs.
    /// Shown even when it cannot be stored (then written later).
    fn fail(&mut self, conn: &Connection, msg: &str, cx: &mut Cx<'_>) {
        self.resume_at = None;
        let now = now_text();
        let mut next = self.row.clone();
        let r = &mut next.rec;
        r.status = MigrationStatus::Failed;
        r.error = Some(msg.to_string());
        r.ended_at = Some(now.clone());
        r.last_update_at = Some(now);
        tracing::error!(migration = self.m.name(), error = msg, "migration failed");
        let _ = self.transition(conn, next, Write::Anyway, cx);
    }

    /// Another program added rows: a run not yet planned, failed or
    /// cancelled is left (its next run counts everything); any other runs
    /// again from scratch.
    fn redo(&mut self, conn: &Connection, cx: &mut Cx<'_>) -> bool {
        let redo = match (self.status(), &self.run) {
            (MigrationStatus::Pending, Run::Idle) => false,
            (
                MigrationStatus::Pending
                | MigrationStatus::Running
                | MigrationStatus::Throttled
                | MigrationStatus::Paused
                | MigrationStatus::Done,
                _,
            ) => true,
            _ => false,
        };
        if !redo {
            return false;
        }
        let mut next = self.row.clone();
        reset_for_retry(&mut next);
        self.resume_at = None;
        self.sample = Sample::Over;
        self.sizer = BatchSizer::new(cx.cfg.budget, cx.cfg.min_batch, cx.cfg.max_batch);
        let _ = self.transition(conn, next, Write::Anyway, cx);
        true
    }

    fn announce(&self, cx: &Cx<'_>) {
        cx.live.set(&self.row.rec);
        if let Err(e) = cx.notify(&self.progress(None)) {
            tracing::error!(error = %e, "progress observer failed at boot");
        }
    }

    /// A migration in flight is recorded as `paused` with its progress, so
    /// the next start resumes it; a row that could not be stored gets a
    /// last try.
    fn shutdown(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        self.flush(conn, Instant::now() + RESUME_MAX);
        if self.status() != MigrationStatus::Running {
            return;
        }
        let mut next = self.row.clone();
        next.rec.status = MigrationStatus::Paused;
        next.rec.last_update_at = Some(now_text());
        match self.transition(conn, next, Write::First, cx) {
            Ok(()) => tracing::info!(
                migration = self.m.name(),
                "migration paused for shutdown; the next start resumes it"
            ),
            Err(e) => tracing::error!(migration = self.m.name(), error = %e,
                "could not record the pause; the next start resumes from the last stored chunk"),
        }
    }
}
