//! The engine: drives the registered migrations on the writer thread, one
//! unit of work at a time, and applies operator controls.
//!
//! One representation of state: each migration's stored row
//! ([`MigrationRecord::status`], a [`MigrationStatus`]) says what it is
//! doing; [`Run`] only carries the runtime detail of that status (a row
//! count in flight, the id range being walked) and is reset on every status
//! change. What to do next is derived from the two.
//!
//! Bookkeeping comes first: a status change is written, then applied in
//! memory, so a failed write leaves the engine as it was (a control answers
//! 500 and nothing changed). The exception is a failure, which must show
//! even when it cannot be stored: it is applied in memory, the row is marked
//! unsaved, and rewritten as soon as writes succeed again.
//!
//! A full disk or a lock held by another process clears by itself, so it is
//! not a failure: the migration pauses with the reason shown and resumes by
//! itself (backing off from 1 s to 30 s between tries), or at once on an
//! operator resume.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use shared::migration::{Control, MigrationInfo, MigrationRecord, MigrationStatus, Owner};

use super::live::LiveStatus;
use super::retention::{self, Retention, Schedule};
use super::sizer::BatchSizer;
use super::store::{self, Row, StoreError};
use super::{EngineConfig, Migration, MigrationError};
use crate::clock::{now_ms, now_text};
use crate::db::{self, Fault, ReaderPool};
use crate::health::DbHealth;

/// Says whether anything waits for the writer (ingest, a control): a chunk
/// past its budget is then stopped.
pub type Contention = Arc<dyn Fn() -> bool + Send + Sync>;

/// A chunk is stopped once it has held the writer this many budgets while
/// something waits for it...
const SOFT_OVERRUN: f64 = 1.2;
/// ...or this many budgets whatever waits (a hard cap on the writer hold).
const HARD_OVERRUN: f64 = 2.5;
/// SQLite VM steps between two looks at the clock during a chunk.
const PROGRESS_OPS: i32 = 2_000;
/// How often a throttled migration looks at the signal again.
const THROTTLE_RECHECK: Duration = Duration::from_millis(200);
/// Sample chunks (rolled back) timed for the pre-flight estimate.
const SAMPLE_ROUNDS: u32 = 6;

/// What a migration has covered of the transmission ids (see
/// [`Engine::coverage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every id: the migration is done.
    All,
    /// Ids up to `cursor` (processed) and above `max_id` (never visited);
    /// the ones between are still to come.
    Outside { cursor: i64, max_id: i64 },
    /// None: not started, or ended without finishing.
    Nothing,
}

impl Coverage {
    /// Whether live ingest must keep the migration's result for row `id`.
    pub fn covers(self, id: i64) -> bool {
        match self {
            Coverage::All => true,
            Coverage::Outside { cursor, max_id } => id <= cursor || id > max_id,
            Coverage::Nothing => false,
        }
    }
}

/// What progress observers are told after every chunk and status change.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub name: String,
    pub status: MigrationStatus,
    pub rows_processed: i64,
    pub rows_total: i64,
    pub batch: i64,
    pub chunk: Option<Duration>,
}

pub type Observer = Box<dyn Fn(&Progress) + Send>;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no migration named {0:?}")]
    NotFound(String),
    #[error("cannot {action} {name}: it is {status}")]
    Conflict {
        action: &'static str,
        name: String,
        status: &'static str,
    },
    #[error("could not record the change, so nothing changed: {0}")]
    Store(#[from] StoreError),
}

/// A progress observer (metrics, the CLI's bars) panicked: a bug, which
/// fails the migration it was reporting on rather than the writer.
#[derive(Debug, thiserror::Error)]
#[error("progress observer panicked: {0}")]
struct ObserverPanicked(String);

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

struct Slot {
    m: Arc<dyn Migration>,
    row: Row,
    run: Run,
    sizer: BatchSizer,
    /// A pause the engine made (full disk, lock held elsewhere, or a pause
    /// stored by the last shutdown): when to resume by itself.
    resume_at: Option<Instant>,
    backoff: Duration,
    /// The stored row lags `row`: when to write it again (every
    /// [`FLUSH_EVERY`] at first, less often while writes keep failing).
    unsaved: Option<Instant>,
    /// Held back by the health throttle until then.
    throttle_until: Option<Instant>,
    /// The pre-flight estimate, while a pending migration is sampled.
    sample: Sample,
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

impl Slot {
    fn status(&self) -> MigrationStatus {
        self.row.rec.status
    }

    fn name(&self) -> &'static str {
        self.m.name()
    }

    /// When this slot's next unit of work is due, if it has any.
    fn due(&self, not_before: Option<Instant>, now: Instant) -> Option<Instant> {
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
}

/// A condition that clears by itself, in words for the operator; `None`
/// for errors that are real failures.
fn transient(e: &rusqlite::Error) -> Option<&'static str> {
    match db::fault(e) {
        Fault::DiskFull => Some(
            "the database disk is full; resuming by itself once writes succeed again \
             (free space on the disk holding the database)",
        ),
        Fault::Busy => Some(
            "another process holds the database's write lock; resuming by itself once it lets go",
        ),
        Fault::Other => None,
    }
}

fn migration_sqlite(e: &MigrationError) -> Option<&rusqlite::Error> {
    match e {
        MigrationError::Sqlite(e) => Some(e),
        MigrationError::Store(s) => s.sqlite(),
    }
}

/// Stops the chunk that started at `started` (through SQLite's progress
/// handler) once it has held the writer [`SOFT_OVERRUN`] budgets while
/// `waiting` says something waits, or [`HARD_OVERRUN`] budgets in any case;
/// `None` leaves it to run to its end. Disarmed by [`disarm_interrupt`].
pub(super) fn arm_interrupt(
    conn: &Connection,
    waiting: Option<Contention>,
    budget: Duration,
    started: Instant,
) {
    let Some(waiting) = waiting else { return };
    let soft = budget.mul_f64(SOFT_OVERRUN);
    let hard = budget.mul_f64(HARD_OVERRUN);
    conn.progress_handler(
        PROGRESS_OPS,
        Some(move || {
            let held = started.elapsed();
            held > hard || (held > soft && waiting())
        }),
    );
}

pub(super) fn disarm_interrupt(conn: &Connection) {
    conn.progress_handler(0, None::<fn() -> bool>);
}

/// The chunk was stopped by the progress handler (SQLITE_INTERRUPT).
pub(super) fn interrupted(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// Runs the migration's chunk over `after < id <= upto` and rolls it back:
/// how long the real one would hold the writer, with nothing written.
fn time_sample(
    conn: &Connection,
    m: &dyn Migration,
    after: i64,
    upto: i64,
    upkeep: super::Upkeep,
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
    upkeep: super::Upkeep,
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

/// Back to `pending` for a run from scratch, registered again now.
fn reset_for_retry(row: &mut Row) {
    let attempts = row.rec.attempts;
    *row = Row::fresh(row.rec.name.as_str());
    row.rec.attempts = attempts;
}

/// Drives the registered migrations; owned by the writer thread.
pub struct Engine {
    cfg: EngineConfig,
    slots: Vec<Slot>,
    readers: Option<ReaderPool>,
    observers: Vec<Observer>,
    live: LiveStatus,
    not_before: Option<Instant>,
    enabled: bool,
    health: Option<DbHealth>,
    contention: Option<Contention>,
    /// The retention job, when configured; runs when no migration is in progress.
    retention: Option<Retention>,
}

impl Engine {
    /// Watches `health` before each chunk: a migration holds back
    /// (`throttled`) while the database is under strain.
    pub fn set_health(&mut self, health: DbHealth) {
        self.health = Some(health);
    }

    /// Lets a chunk past its budget be stopped while `waiting()` says
    /// something waits for the writer (the writer sets it; offline runs have
    /// nothing to yield to).
    pub fn set_contention(&mut self, waiting: Contention) {
        self.contention = Some(waiting);
    }

    /// An ingest request waited `d` for the writer (the throttle's ingest signal).
    pub fn note_ingest_wait(&self, d: Duration) {
        if let Some(h) = &self.health {
            h.record_ingest_wait(d);
        }
    }

    /// Holds or releases migration work (boot holds it until HTTP answers).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Registers every migration not yet in the table as `pending_async`
    /// and decides what each one does at this start. Only quick writes: no
    /// migration work happens here. `readers` (when given) counts rows off
    /// the writer; without it counting runs on the writer connection.
    ///
    /// A bookkeeping write that fails here (a full disk) does not stop the
    /// boot: the row is kept in memory and written once writes succeed.
    pub fn boot(
        conn: &Connection,
        migrations: Vec<Arc<dyn Migration>>,
        cfg: EngineConfig,
        readers: Option<ReaderPool>,
        live: LiveStatus,
    ) -> Result<Engine, StoreError> {
        let now = Instant::now();
        let mut slots = Vec::with_capacity(migrations.len());
        for m in migrations {
            let fresh = Row::fresh(m.name());
            let mut unsaved = None;
            if let Err(e) = store::register(conn, &fresh) {
                tracing::error!(migration = m.name(), error = %e,
                    "cannot register the migration; keeping it in memory and retrying the write");
                unsaved = Some(now + FLUSH_EVERY);
            }
            let mut row = store::read_one(conn, m.name())?.unwrap_or(fresh);
            // A throttle is this process's reading of the database; one
            // stored by an earlier process means nothing now.
            if row.rec.throttle_reason.take().is_some() {
                row.rec.throttled_until = None;
                if let Err(e) = store::write(conn, &row) {
                    tracing::warn!(migration = m.name(), error = %e,
                        "cannot clear the last process's throttle; retrying the write");
                    unsaved = Some(now + FLUSH_EVERY);
                }
            }
            let mut resume_at = None;
            let status = row.rec.status;
            match status {
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
            live.set(&row.rec);
            slots.push(Slot {
                m,
                row,
                run: Run::Idle,
                sizer: BatchSizer::new(cfg.budget, cfg.min_batch, cfg.max_batch),
                resume_at,
                backoff: RESUME_MIN,
                unsaved,
                throttle_until: None,
                sample: Sample::Todo,
            });
        }
        let mut engine = Engine {
            cfg,
            slots,
            readers,
            observers: Vec::new(),
            live,
            not_before: None,
            enabled: false,
            health: None,
            contention: None,
            retention: None,
        };
        match crate::db::marks::changed(conn) {
            Ok(Some(what)) => engine.foreign_writes(conn, &what),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e,
                "cannot tell whether another program wrote the file; its rows may be uncounted"),
        }
        Ok(engine)
    }

    /// Another program added rows to the file (`what`, from `db::marks`):
    /// the maintained counts leave them out, so `counts_backfill_v1` runs
    /// again from scratch (the API says "counting" meanwhile, never a wrong
    /// number as exact). A run not yet planned, failed or cancelled is left
    /// as it is: its next run counts everything.
    pub(crate) fn foreign_writes(&mut self, conn: &Connection, what: &str) {
        let Some(i) = self
            .slots
            .iter()
            .position(|s| s.name() == super::counts::NAME)
        else {
            return;
        };
        let slot = &mut self.slots[i];
        let redo = match (slot.status(), &slot.run) {
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
        crate::ratelimit::warn_limited(
            "foreign-writes",
            &format!(
                "the file was changed by another program since meshscope last wrote it \
                 ({what}){}",
                if redo { "; counting again online" } else { "" }
            ),
        );
        if !redo {
            return;
        }
        let mut next = slot.row.clone();
        reset_for_retry(&mut next);
        if let Err(e) = store::upsert(conn, &next) {
            tracing::error!(migration = slot.name(), error = %e,
                "cannot record the recount; keeping it in memory and retrying the write");
            slot.unsaved.get_or_insert(Instant::now() + FLUSH_EVERY);
        }
        slot.row = next;
        slot.run = Run::Idle;
        slot.resume_at = None;
        slot.sample = Sample::Over;
        slot.sizer = BatchSizer::new(self.cfg.budget, self.cfg.min_batch, self.cfg.max_batch);
        self.after_status_change(conn, i);
    }

    /// Runs the retention job on `schedule` (see [`retention`]).
    pub fn set_retention(&mut self, schedule: Schedule) {
        self.retention = Some(Retention::new(
            schedule,
            &self.cfg,
            self.readers.clone(),
            self.live.clone(),
        ));
    }

    /// Whether the retention job may run now: enabled, no migration
    /// pending, running or paused, and the counts it keeps ready.
    fn retention_may_run(&self) -> bool {
        self.enabled
            && self.retention.is_some()
            && !self.slots.iter().any(|s| s.status().is_in_progress())
            && self.coverage(super::counts::NAME) == Coverage::All
    }

    /// Runs one retention unit if one is due (one chunk at most).
    fn run_retention(&mut self, conn: &mut Connection) {
        if !self.retention_may_run() {
            return;
        }
        // The same health throttle as migrations, before every chunk.
        let throttle = match (&self.health, &self.retention) {
            (Some(h), Some(r)) => h.strain(
                &self.cfg.health,
                r.record().throttle_reason.is_some(),
                now_ms(),
            ),
            _ => None,
        };
        let contention = self.contention.clone();
        let Some(r) = self.retention.as_mut() else {
            return;
        };
        if let Some(p) = r.run_unit(conn, throttle, contention) {
            if let Err(e) = self.notify(&p) {
                tracing::error!(error = %e, "progress observer failed on retention");
            }
        }
    }

    pub fn add_observer(&mut self, o: Observer) {
        self.observers.push(o);
    }

    /// Tells observers every migration's current state (after adding them at boot).
    pub(crate) fn announce(&self) {
        for i in 0..self.slots.len() {
            if let Err(e) = self.notify(&self.progress(i, None)) {
                tracing::error!(error = %e, "progress observer failed at boot");
            }
        }
    }

    /// Current records of every registered migration.
    pub fn records(&self) -> Vec<MigrationRecord> {
        self.slots.iter().map(|s| s.row.rec.clone()).collect()
    }

    pub fn info(&self, name: &str) -> Option<MigrationInfo> {
        self.slots
            .iter()
            .find(|s| s.name() == name)
            .map(|s| MigrationInfo::from_record(&s.row.rec, now_ms(), Owner::Meshscope))
    }

    /// The slot whose work comes next: migrations run one at a time, in
    /// registry order.
    fn current(&self, now: Instant) -> Option<usize> {
        if !self.enabled {
            return None;
        }
        self.slots
            .iter()
            .position(|s| s.due(self.not_before, now).is_some())
    }

    /// When the next unit of work may run; `None` when there is none.
    pub fn next_due(&mut self) -> Option<Instant> {
        let now = Instant::now();
        if !self.enabled {
            return None;
        }
        let flush = self.slots.iter().filter_map(|s| s.unsaved).min();
        if self.to_sample().is_some() {
            return Some(now);
        }
        let work = match self.current(now) {
            Some(i) => {
                self.poll_plan(i);
                self.slots[i].due(self.not_before, now)
            }
            None if self.retention_may_run() => self.retention.as_ref().and_then(|r| r.due(now)),
            None => None,
        };
        match (work, flush) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first pending migration still without its pre-flight estimate.
    fn to_sample(&self) -> Option<usize> {
        self.slots.iter().position(|s| {
            s.status() == MigrationStatus::Pending && !matches!(s.sample, Sample::Over)
        })
    }

    /// One round of a pending migration's pre-flight sample (see [`Sample`]).
    fn sample_round(&mut self, conn: &Connection, i: usize) {
        let cfg = self.cfg.clone();
        let slot = &mut self.slots[i];
        let m = slot.m.clone();
        let state = std::mem::replace(&mut slot.sample, Sample::Over);
        let (max_id, done, mut sizer) = match state {
            Sample::Todo => match m.max_id(conn) {
                Ok(max_id) => (
                    max_id,
                    0,
                    BatchSizer::new(cfg.budget, cfg.min_batch, cfg.max_batch),
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
        let after = slot.row.cursor.unwrap_or(0);
        let ids = (max_id - after).max(0);
        if done >= SAMPLE_ROUNDS || ids == 0 {
            let est = sizer.seconds_for(ids) / cfg.duty;
            slot.row.rec.estimated_ms = Some((est * 1000.0).ceil() as i64);
            tracing::info!(
                migration = m.name(),
                ids,
                estimated_sec = est,
                "pre-flight estimate"
            );
            if let Err(e) = store::write(conn, &slot.row) {
                crate::ratelimit::warn_limited(
                    &format!("estimate:{}", m.name()),
                    &format!("{}: cannot store the pre-flight estimate: {e}", m.name()),
                );
            }
            self.publish(i);
            return;
        }
        let upto = after.saturating_add(sizer.batch()).min(max_id);
        let upkeep = self.upkeep();
        let sampled = catch_unwind(AssertUnwindSafe(|| {
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
                self.live.record_hold(took, false);
                self.slots[i].sample = Sample::Rounds {
                    max_id,
                    done: done + 1,
                    sizer,
                };
            }
            Err(e) => {
                // A busy or full database: try again later, like a chunk would.
                if migration_sqlite(&e).and_then(transient).is_some() {
                    self.slots[i].sample = Sample::Rounds {
                        max_id,
                        done,
                        sizer,
                    };
                    self.not_before = Some(Instant::now() + RESUME_MIN);
                    return;
                }
                tracing::warn!(migration = m.name(), error = %e, "the pre-flight sample failed; running without an estimate");
            }
        }
    }

    /// Picks up a finished row count, if one is in flight.
    fn poll_plan(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if let Run::Planning { rx, max_id } = &slot.run {
            let max_id = *max_id;
            slot.run = match rx.try_recv() {
                Ok(Ok(total)) => Run::Planned { max_id, total },
                Ok(Err(e)) => Run::PlanFailed(e.to_string()),
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    Run::PlanFailed("the row-counting thread died".into())
                }
            };
        }
    }

    /// The scheduling rule every driver of the engine uses (the writer
    /// thread between ingest groups, `meshscope migrate` in a loop): runs
    /// one unit if one is due now, and says when the next is due (`None`:
    /// no work left).
    pub fn run_due(&mut self, conn: &mut Connection) -> Option<Instant> {
        if self.next_due().is_some_and(|due| due <= Instant::now()) {
            self.run_unit(conn);
        }
        self.next_due()
    }

    /// Runs one unit of work: a chunk, or a step of starting, resuming or
    /// recording a migration.
    fn run_unit(&mut self, conn: &mut Connection) {
        let now = Instant::now();
        self.flush_unsaved(conn, now);
        if let Some(i) = self.to_sample() {
            if self.not_before.is_none_or(|t| t <= now) {
                return self.sample_round(conn, i);
            }
        }
        let Some(i) = self.current(now) else {
            return self.run_retention(conn);
        };
        if self.slots[i]
            .due(self.not_before, now)
            .is_some_and(|d| d > now)
        {
            return;
        }
        self.poll_plan(i);
        let slot = &mut self.slots[i];
        let run = std::mem::replace(&mut slot.run, Run::Idle);
        match (slot.status(), run) {
            (MigrationStatus::Pending, Run::Idle) => self.start_plan(conn, i),
            (MigrationStatus::Pending, planning @ Run::Planning { .. }) => {
                self.slots[i].run = planning;
            }
            (MigrationStatus::Pending, Run::Planned { max_id, total }) => {
                self.start_run(conn, i, max_id, total);
            }
            (MigrationStatus::Pending, Run::PlanFailed(msg)) => {
                self.fail(conn, i, &format!("counting rows failed: {msg}"));
            }
            (MigrationStatus::Running, Run::Active { max_id }) => {
                self.slots[i].run = Run::Active { max_id };
                if self.healthy(conn, i) {
                    self.chunk(conn, i, max_id);
                }
            }
            (MigrationStatus::Running, _) => self.resume_run(conn, i),
            (MigrationStatus::Paused, _) => self.auto_resume(conn, i),
            _ => {}
        }
    }

    /// Whether the running migration `i` may take its next chunk: asks the
    /// health signals, and moves it in or out of `throttled` (stored as
    /// `running` with the reason beside it) when the answer changes.
    fn healthy(&mut self, conn: &Connection, i: usize) -> bool {
        let Some(health) = self.health.clone() else {
            return true;
        };
        let slot = &mut self.slots[i];
        let was = slot.row.rec.throttle_reason.is_some();
        let strain = health.strain(&self.cfg.health, was, now_ms());
        if strain.is_none() && !was {
            return true;
        }
        let mut next = slot.row.clone();
        match &strain {
            Some(reason) => {
                let until = now_ms() + THROTTLE_RECHECK.as_millis() as i64;
                next.rec.throttle_reason = Some(reason.clone());
                next.rec.throttled_until = Some(shared::timefmt::format_unix_ms(until));
                slot.throttle_until = Some(Instant::now() + THROTTLE_RECHECK);
            }
            None => {
                next.rec.throttle_reason = None;
                next.rec.throttled_until = None;
                slot.throttle_until = None;
            }
        }
        // The stored row changes when the throttle starts or ends; while it
        // lasts only the live record follows the reason's numbers.
        if was != strain.is_some() {
            next.rec.last_update_at = Some(now_text());
            if let Err(e) = store::write(conn, &next) {
                crate::ratelimit::warn_limited(
                    &format!("throttle:{}", slot.name()),
                    &format!("{}: cannot record the throttle: {e}", slot.name()),
                );
                slot.unsaved.get_or_insert(Instant::now() + FLUSH_EVERY);
            }
            match &strain {
                Some(reason) => crate::ratelimit::warn_limited(
                    &format!("throttled:{}", slot.name()),
                    &format!("{} throttled: {reason}", slot.name()),
                ),
                None => tracing::info!(
                    migration = slot.name(),
                    "the database is healthy again; migration resumed"
                ),
            }
        }
        slot.row = next;
        if was != strain.is_some() {
            self.after_status_change(conn, i);
        } else {
            self.live.set(&self.slots[i].row.rec);
        }
        strain.is_none()
    }

    /// Writes rows that could not be stored when they changed.
    fn flush_unsaved(&mut self, conn: &Connection, now: Instant) {
        for slot in &mut self.slots {
            let Some(at) = slot.unsaved else { continue };
            if now < at {
                continue;
            }
            match store::upsert(conn, &slot.row) {
                Ok(()) => {
                    slot.unsaved = None;
                    tracing::info!(
                        migration = slot.name(),
                        "bookkeeping row written after an earlier failure"
                    );
                }
                Err(e) => {
                    let wait = slot.backoff;
                    slot.backoff = (slot.backoff * 2).min(RESUME_MAX);
                    slot.unsaved = Some(Instant::now() + wait);
                    crate::ratelimit::warn_limited(
                        &format!("unsaved:{}", slot.name()),
                        &format!(
                            "{}: the bookkeeping row still cannot be written: {e}",
                            slot.name()
                        ),
                    );
                }
            }
        }
    }

    /// Plans a run from scratch: on the writer, the migration resets what it
    /// keeps outside the migrated rows ([`Migration::start`]) and the id
    /// range is fixed (`MAX(id)` now); the eligible rows are then counted on
    /// a read-only connection.
    fn start_plan(&mut self, conn: &mut Connection, i: usize) {
        let m = self.slots[i].m.clone();
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
                if let Some(reason) = migration_sqlite(&e).and_then(transient) {
                    return self.pause_by_itself(conn, i, reason);
                }
                return self.fail(conn, i, &format!("starting the run failed: {e}"));
            }
        };
        match &self.readers {
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
                    Ok(_) => self.slots[i].run = Run::Planning { rx, max_id },
                    Err(e) => self.fail(
                        conn,
                        i,
                        &format!("cannot start the row-counting thread: {e}"),
                    ),
                }
            }
            None => match m.count(conn, max_id) {
                Ok(total) => self.slots[i].run = Run::Planned { max_id, total },
                Err(e) => self.sqlite_error(conn, i, &e, "counting rows failed"),
            },
        }
    }

    fn start_run(&mut self, conn: &mut Connection, i: usize, max_id: i64, total: i64) {
        let now = now_text();
        let slot = &mut self.slots[i];
        let mut next = slot.row.clone();
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
        if let Err(e) = store::write(conn, &next) {
            if let Some(reason) = e.sqlite().and_then(transient) {
                return self.pause_by_itself(conn, i, reason);
            }
            // The attempt counts even though it could not be recorded.
            self.slots[i].row.rec.attempts = next.rec.attempts;
            return self.fail(conn, i, &format!("could not record the start: {e}"));
        }
        tracing::info!(
            migration = slot.name(),
            rows = total,
            max_id,
            attempt = next.rec.attempts,
            "migration started"
        );
        slot.row = next;
        slot.run = Run::Active { max_id };
        self.after_status_change(conn, i);
        if total == 0 {
            // Nothing to process: done at once, without walking the ids.
            self.finish(conn, i);
        }
    }

    /// Continues a `running` row from its stored cursor, up to the id range
    /// fixed when the run started (rows since then are live ingest's; a row
    /// stored before meshscope kept the range is walked up to today's ids).
    fn resume_run(&mut self, conn: &Connection, i: usize) {
        let slot = &mut self.slots[i];
        let stored = slot.row.max_id;
        match stored.map_or_else(|| slot.m.max_id(conn), Ok) {
            Ok(max_id) => {
                tracing::info!(
                    migration = slot.name(),
                    cursor = slot.row.cursor,
                    processed = slot.row.rec.rows_processed,
                    total = slot.row.rec.rows_total,
                    "migration resumed from its cursor"
                );
                slot.run = Run::Active { max_id };
            }
            Err(e) => self.sqlite_error(conn, i, &e, "reading the id range failed"),
        }
    }

    fn chunk(&mut self, conn: &mut Connection, i: usize, max_id: i64) {
        let slot = &mut self.slots[i];
        let after = slot.row.cursor.unwrap_or(0);
        if after >= max_id {
            return self.finish(conn, i);
        }
        let upto = after.saturating_add(slot.sizer.batch()).min(max_id);
        let m = slot.m.clone();
        // A chunk commits with the file's durability, its sync inside its
        // own hold: relaxed to NORMAL, the next ingest commit paid for
        // syncing the chunk's frames, which put the chunk's cost into
        // ingest's tail (scale 1: ingest p99 23.7 ms relaxed against 12.0 ms
        // synced, for the same backfill wall time).
        let started = Instant::now();
        // Past its budget while something waits (or far past it whatever
        // waits), the chunk is stopped: it rolls back, its cursor untouched,
        // and is retried smaller. A chunk already at the smallest size runs
        // to its end, so a slow disk cannot stall the migration.
        let interruptible = slot.sizer.batch() > self.cfg.min_batch;
        let upkeep = self.upkeep();
        arm_interrupt(
            conn,
            self.contention.clone().filter(|_| interruptible),
            self.cfg.budget,
            started,
        );
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<i64, MigrationError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows = m.chunk(&tx, after, upto, upkeep)?;
            store::chunk_progress(&tx, m.name(), upto, rows, &now_text())?;
            tx.commit()?;
            Ok(rows)
        }));
        disarm_interrupt(conn);
        let took = started.elapsed();
        let rows = match outcome {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) if migration_sqlite(&e).is_some_and(interrupted) => {
                self.live.record_hold(took, true);
                self.slots[i].sizer.interrupted(upto - after, took);
                tracing::debug!(
                    migration = m.name(),
                    after,
                    upto,
                    took_ms = took.as_secs_f64() * 1000.0,
                    "chunk stopped past its budget; retrying smaller"
                );
                return;
            }
            Ok(Err(e)) => {
                if let Some(reason) = migration_sqlite(&e).and_then(transient) {
                    return self.pause_by_itself(conn, i, reason);
                }
                return self.fail(conn, i, &e.to_string());
            }
            Err(p) => {
                return self.fail(
                    conn,
                    i,
                    &format!("migration panicked: {}", crate::panics::message(&*p)),
                )
            }
        };
        self.live.record_hold(took, false);
        let slot = &mut self.slots[i];
        tracing::debug!(
            migration = m.name(),
            after,
            upto,
            rows,
            took_ms = took.as_secs_f64() * 1000.0,
            "chunk committed"
        );
        slot.row.cursor = Some(upto);
        slot.row.rec.rows_processed += rows;
        slot.row.rec.last_update_at = Some(now_text());
        slot.sizer.observe(upto - after, took);
        slot.backoff = RESUME_MIN;
        if self.cfg.duty < 1.0 {
            let rest = took.as_secs_f64() * (1.0 - self.cfg.duty) / self.cfg.duty;
            self.not_before = Some(Instant::now() + Duration::from_secs_f64(rest));
        }
        if upto >= max_id {
            // The terminal event is the only one reported for the last chunk.
            return self.finish(conn, i);
        }
        self.slots[i].run = Run::Active { max_id };
        self.live.set(&self.slots[i].row.rec);
        let p = self.progress(i, Some(took));
        if let Err(e) = self.notify(&p) {
            self.fail(conn, i, &e.to_string());
        }
    }

    fn finish(&mut self, conn: &mut Connection, i: usize) {
        let slot = &mut self.slots[i];
        let mut next = slot.row.clone();
        next.rec.status = MigrationStatus::Done;
        let now = now_text();
        next.rec.ended_at = Some(now.clone());
        next.rec.last_update_at = Some(now);
        let m = slot.m.clone();
        // The migration's last step and the `done` commit together.
        let recorded = (|| -> Result<(), MigrationError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            m.finish(&tx)?;
            store::write(&tx, &next)?;
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = recorded {
            if let Some(reason) = migration_sqlite(&e).and_then(transient) {
                return self.pause_by_itself(conn, i, reason);
            }
            return self.fail(conn, i, &format!("could not complete the run: {e}"));
        }
        tracing::info!(
            migration = slot.name(),
            rows = next.rec.rows_processed,
            "migration done"
        );
        slot.row = next;
        slot.run = Run::Idle;
        self.after_status_change(conn, i);
    }

    /// An SQLite error outside a chunk: a pause when it clears by itself,
    /// else a failure.
    fn sqlite_error(&mut self, conn: &Connection, i: usize, e: &rusqlite::Error, what: &str) {
        match transient(e) {
            Some(reason) => self.pause_by_itself(conn, i, reason),
            None => self.fail(conn, i, &format!("{what}: {e}")),
        }
    }

    /// Pauses for a condition that clears by itself; shown with `reason`
    /// and resumed by [`Engine::auto_resume`] after a growing wait. The row
    /// is not written now: the write would meet the same full disk or lock
    /// (and hold the writer for another busy timeout); the resume writes it.
    fn pause_by_itself(&mut self, _conn: &Connection, i: usize, reason: &str) {
        let slot = &mut self.slots[i];
        let wait = slot.backoff;
        slot.backoff = (slot.backoff * 2).min(RESUME_MAX);
        slot.resume_at = Some(Instant::now() + wait);
        slot.run = Run::Idle;
        let r = &mut slot.row.rec;
        r.status = MigrationStatus::Paused;
        r.error = Some(reason.to_string());
        r.last_update_at = Some(now_text());
        crate::ratelimit::warn_limited(
            &format!("paused:{}", slot.name()),
            &format!(
                "{} paused: {reason} (next try in {} s)",
                slot.name(),
                wait.as_secs()
            ),
        );
        self.publish(i);
    }

    /// Resumes a migration the engine paused (or a pause stored by the last
    /// shutdown): `running` from its cursor, or `pending` without one.
    fn auto_resume(&mut self, conn: &Connection, i: usize) {
        let slot = &mut self.slots[i];
        let mut next = slot.row.clone();
        next.rec.status = if next.cursor.is_some() {
            MigrationStatus::Running
        } else {
            MigrationStatus::Pending
        };
        next.rec.error = None;
        next.rec.last_update_at = Some(now_text());
        match store::write(conn, &next) {
            Ok(()) => {
                slot.row = next;
                slot.resume_at = None;
                slot.unsaved = None;
                slot.run = Run::Idle;
                tracing::info!(migration = slot.name(), "migration resumed by itself");
                self.after_status_change(conn, i);
            }
            Err(e) => match e.sqlite().and_then(transient) {
                Some(reason) => self.pause_by_itself(conn, i, reason),
                None => self.fail(conn, i, &format!("could not record the resume: {e}")),
            },
        }
    }

    /// Ends the migration as `failed` with `msg`; never panics, always logs.
    /// Shown even when it cannot be stored (then written later).
    fn fail(&mut self, conn: &Connection, i: usize, msg: &str) {
        let slot = &mut self.slots[i];
        slot.run = Run::Idle;
        slot.resume_at = None;
        let now = now_text();
        let r = &mut slot.row.rec;
        r.status = MigrationStatus::Failed;
        r.error = Some(msg.to_string());
        r.ended_at = Some(now.clone());
        r.last_update_at = Some(now);
        tracing::error!(migration = slot.name(), error = msg, "migration failed");
        if let Err(e) = store::write(conn, &slot.row) {
            tracing::error!(migration = slot.name(), error = %e,
                "could not record the failure in _async_migrations; retrying the write");
            slot.unsaved.get_or_insert(Instant::now() + FLUSH_EVERY);
        }
        self.publish(i);
    }

    /// Publishes the slot's record and tells observers; an observer failure
    /// here is only logged (the migration is already stopping).
    fn publish(&self, i: usize) {
        self.live.set(&self.slots[i].row.rec);
        if let Err(e) = self.notify(&self.progress(i, None)) {
            tracing::error!(error = %e, "progress observer failed");
        }
    }

    /// Publishes a status change and tells observers; an observer that
    /// panics fails the migration.
    fn after_status_change(&mut self, conn: &Connection, i: usize) {
        self.live.set(&self.slots[i].row.rec);
        let p = self.progress(i, None);
        if let Err(e) = self.notify(&p) {
            self.fail(conn, i, &e.to_string());
        }
    }

    fn progress(&self, i: usize, chunk: Option<Duration>) -> Progress {
        let s = &self.slots[i];
        Progress {
            name: s.name().to_string(),
            status: s.row.rec.shown_status(),
            rows_processed: s.row.rec.rows_processed,
            rows_total: s.row.rec.rows_total,
            batch: s.sizer.batch(),
            chunk,
        }
    }

    fn notify(&self, p: &Progress) -> Result<(), ObserverPanicked> {
        for o in &self.observers {
            catch_unwind(AssertUnwindSafe(|| o(p)))
                .map_err(|e| ObserverPanicked(crate::panics::message(&*e)))?;
        }
        Ok(())
    }

    /// Applies an operator control; runs on the writer thread, so controls
    /// from several clients are serialised into one consistent sequence.
    /// The rule of which control applies to which status is
    /// [`Control::applies_to`], the same the dashboard uses.
    pub fn control(
        &mut self,
        conn: &Connection,
        name: &str,
        op: Control,
    ) -> Result<MigrationInfo, ControlError> {
        if let (retention::NAME, Some(r)) = (name, self.retention.as_mut()) {
            let p = r.control(op)?;
            let info = MigrationInfo::from_record(r.record(), now_ms(), Owner::Meshscope);
            if let Err(e) = self.notify(&p) {
                tracing::error!(error = %e, "progress observer failed on retention");
            }
            return Ok(info);
        }
        let i = self
            .slots
            .iter()
            .position(|s| s.name() == name)
            .ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        let status = self.slots[i].status();
        if !op.applies_to(status) {
            return Err(ControlError::Conflict {
                action: op.action(),
                name: name.to_string(),
                status: status.as_str(),
            });
        }
        let now = now_text();
        let mut next = self.slots[i].row.clone();
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
        store::upsert(conn, &next)?;
        let slot = &mut self.slots[i];
        slot.row = next;
        slot.run = Run::Idle;
        slot.resume_at = None;
        slot.unsaved = None;
        if op == Control::Retry {
            slot.sizer = BatchSizer::new(self.cfg.budget, self.cfg.min_batch, self.cfg.max_batch);
            slot.backoff = RESUME_MIN;
            crate::ratelimit::reset_matching(name);
        }
        tracing::info!(
            migration = name,
            op = op.action(),
            "operator control applied"
        );
        self.after_status_change(conn, i);
        Ok(MigrationInfo::from_record(
            &self.slots[i].row.rec,
            now_ms(),
            Owner::Meshscope,
        ))
    }

    /// What the writer's live upkeep covers for each migration that
    /// computes something: a row the migration will still visit is left to
    /// it, so nothing is counted twice or missed.
    pub fn upkeep(&self) -> super::Upkeep {
        super::Upkeep {
            counts: self.coverage(super::counts::NAME),
            nodes: self.coverage(super::nodes::NAME),
        }
    }

    /// Which transmission ids the migration `name` has already processed (or
    /// will never visit).
    pub fn coverage(&self, name: &str) -> Coverage {
        let Some(slot) = self.slots.iter().find(|s| s.name() == name) else {
            return Coverage::Nothing;
        };
        match (slot.status(), &slot.run) {
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
                    _ => slot.row.max_id,
                };
                // No cursor yet: no chunk ran, nothing processed.
                match max_id {
                    Some(max_id) => Coverage::Outside {
                        cursor: slot.row.cursor.unwrap_or(0),
                        max_id,
                    },
                    None => Coverage::Nothing,
                }
            }
            _ => Coverage::Nothing,
        }
    }

    /// The current migration failed outside its own error handling (a
    /// panic on the writer caught by the writer loop).
    pub(crate) fn fail_current(&mut self, conn: &Connection, msg: &str) {
        if let Some(i) = self.current(Instant::now()) {
            self.fail(conn, i, msg);
        }
    }

    /// Before the writer exits: a migration in flight is recorded as
    /// `paused` with its progress, so the next start resumes it; rows that
    /// could not be stored get a last try.
    pub fn shutdown(&mut self, conn: &mut Connection) {
        self.flush_unsaved(conn, Instant::now() + RESUME_MAX);
        for i in 0..self.slots.len() {
            if self.slots[i].status() != MigrationStatus::Running {
                continue;
            }
            let slot = &mut self.slots[i];
            let mut next = slot.row.clone();
            next.rec.status = MigrationStatus::Paused;
            next.rec.last_update_at = Some(now_text());
            match store::write(conn, &next) {
                Ok(()) => {
                    tracing::info!(
                        migration = slot.name(),
                        "migration paused for shutdown; the next start resumes it"
                    );
                    slot.row = next;
                    slot.run = Run::Idle;
                    self.live.set(&self.slots[i].row.rec);
                }
                Err(e) => {
                    tracing::error!(migration = slot.name(), error = %e,
                        "could not record the pause; the next start resumes from the last stored chunk");
                }
            }
        }
    }
}
