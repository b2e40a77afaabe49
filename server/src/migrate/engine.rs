//! The scheduler: owns the background jobs ([`Job`]: the registered
//! migrations, in registry order, then retention) and runs one bounded unit
//! of one of them each time the writer (or `meshscope migrate`) asks.
//!
//! The order rules, all here: a job's prelude (a migration's pre-flight
//! sample) goes before any regular unit; otherwise the first job in order
//! with work due runs, so migrations run one at a time in registry order; a
//! job that runs after the others (retention) waits while any other is in
//! progress and until what it keeps is ready; the rest a unit leaves at a
//! duty below 1 holds every job back. Nothing runs until the engine is
//! enabled (`serve` enables it once HTTP answers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use shared::migration::{Control, MigrationInfo, MigrationRecord, Owner};

use super::job::{Cx, Job};
use super::live::LiveStatus;
use super::retention::{self, Retention, Schedule};
use super::slot::MigrationJob;
use super::store::StoreError;
use super::unit::Contention;
use super::{ControlError, EngineConfig, Migration, Observer};
use crate::clock::now_ms;
use crate::db::ReaderPool;
use crate::health::DbHealth;
use crate::store::{Coverage, Upkeep};

/// Drives the background jobs; owned by the writer thread.
pub struct Engine {
    cfg: EngineConfig,
    jobs: Vec<Box<dyn Job>>,
    readers: Option<ReaderPool>,
    observers: Vec<Observer>,
    live: LiveStatus,
    not_before: Option<Instant>,
    enabled: bool,
    health: Option<DbHealth>,
    contention: Option<Contention>,
    /// A WAL restart the scheduler waits for (see `db::bound_wal`).
    wal: crate::db::WalRestart,
}

/// Lends the engine's parts to a job (a macro, so the jobs list stays
/// borrowable beside it).
macro_rules! cx {
    ($engine:expr, $upkeep:expr) => {
        Cx {
            cfg: &$engine.cfg,
            readers: $engine.readers.as_ref(),
            live: &$engine.live,
            observers: &$engine.observers,
            health: $engine.health.as_ref(),
            contention: $engine.contention.clone(),
            not_before: &mut $engine.not_before,
            upkeep: $upkeep,
        }
    };
}

impl Engine {
    /// Registers every migration not yet in the table as `pending_async`
    /// and decides what each one does at this start, then looks whether
    /// another program wrote the file since meshscope last did (its rows
    /// are then counted again). Only quick writes: no migration work
    /// happens here. `readers` (when given) counts rows off the writer;
    /// without it counting runs on the writer connection.
    pub fn boot(
        conn: &Connection,
        migrations: Vec<Arc<dyn Migration>>,
        cfg: EngineConfig,
        readers: Option<ReaderPool>,
        live: LiveStatus,
    ) -> Result<Engine, StoreError> {
        let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(migrations.len() + 1);
        for m in migrations {
            let need = m.needed(conn).unwrap_or_else(|e| {
                tracing::warn!(migration = m.name(), error = %e,
                    "cannot tell whether the file needs the migration; running it once");
                super::Need::Once
            });
            if need == super::Need::No && super::store::read_one(conn, m.name())?.is_none() {
                continue;
            }
            let job = MigrationJob::boot(conn, m, need, &cfg)?;
            live.set(job.record());
            jobs.push(Box::new(job));
        }
        jobs.push(Box::new(super::index_build::Cleanup::new(&cfg)));
        let mut engine = Engine {
            cfg,
            jobs,
            readers,
            observers: Vec::new(),
            live,
            not_before: None,
            enabled: false,
            health: None,
            contention: None,
            wal: crate::db::WalRestart::default(),
        };
        match crate::db::marks::changed(conn) {
            Ok(Some(what)) => engine.foreign_writes(conn, &what),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e,
                "cannot tell whether another program wrote the file; its rows may be uncounted"),
        }
        engine.publish();
        Ok(engine)
    }

    /// Watches `health` before each chunk: a job holds back (`throttled`)
    /// while the database is under strain.
    pub fn set_health(&mut self, health: DbHealth) {
        self.health = Some(health);
    }

    /// Lets a unit past its budget be stopped while `waiting()` says
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

    /// Holds or releases background work (boot holds it until HTTP answers).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Runs the retention job on `schedule` (see [`retention`]), after the
    /// migrations.
    pub fn set_retention(&mut self, schedule: Schedule) {
        self.jobs.retain(|j| j.name() != retention::NAME);
        self.jobs.push(Box::new(Retention::new(
            schedule,
            &self.cfg,
            self.live.clone(),
        )));
    }

    pub fn add_observer(&mut self, o: Observer) {
        self.observers.push(o);
    }

    /// Tells observers every job's current state (after adding them at boot).
    pub(crate) fn announce(&mut self) {
        let upkeep = self.upkeep();
        let cx = cx!(self, upkeep);
        for j in &self.jobs {
            j.announce(&cx);
        }
    }

    /// Current records of every registered migration (retention, which is
    /// not stored, is left out).
    pub fn records(&self) -> Vec<MigrationRecord> {
        self.jobs
            .iter()
            .filter(|j| j.coverage().is_some())
            .map(|j| j.record().clone())
            .collect()
    }

    pub fn info(&self, name: &str) -> Option<MigrationInfo> {
        self.jobs
            .iter()
            .find(|j| j.name() == name)
            .map(|j| MigrationInfo::from_record(j.record(), now_ms(), Owner::Meshscope))
    }

    /// Whether job `i` may run now by the order rules.
    fn may_run(&self, i: usize, upkeep: Upkeep) -> bool {
        let j = &self.jobs[i];
        if !j.may_run(upkeep) {
            return false;
        }
        !j.runs_after_others()
            || !self
                .jobs
                .iter()
                .enumerate()
                .any(|(k, other)| k != i && other.in_progress())
    }

    /// The job whose regular unit comes next and when it is due.
    fn current(&mut self, now: Instant) -> Option<(usize, Instant)> {
        if !self.enabled {
            return None;
        }
        let upkeep = self.upkeep();
        let not_before = self.not_before;
        for i in 0..self.jobs.len() {
            if !self.may_run(i, upkeep) {
                continue;
            }
            if let Some(due) = self.jobs[i].due(now, not_before) {
                return Some((i, due));
            }
        }
        None
    }

    /// When the next unit of work may run; `None` when there is none.
    pub fn next_due(&mut self) -> Option<Instant> {
        let now = Instant::now();
        if !self.enabled {
            return None;
        }
        let flush = self.jobs.iter().filter_map(|j| j.unsaved_due()).min();
        if self.jobs.iter().any(|j| j.prelude_due()) {
            return Some(now);
        }
        let work = self.current(now).map(|(_, due)| due);
        match (work, flush) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The scheduling rule every driver of the engine uses (the writer
    /// thread between ingest groups, `meshscope migrate` in a loop): runs
    /// one unit if one is due now, and says when the next is due (`None`:
    /// no work left).
    pub fn run_due(&mut self, conn: &mut Connection) -> Option<Instant> {
        if self.next_due().is_some_and(|due| due <= Instant::now()) {
            let hold = self.health.as_ref().is_some_and(|h| {
                crate::db::bound_wal(
                    conn,
                    h,
                    self.cfg.wal_limit_bytes,
                    self.cfg.budget,
                    &mut self.wal,
                )
            });
            if hold {
                // The job waits for the WAL restart; ingest goes on.
                self.not_before = Some(Instant::now() + crate::db::WAL_WAIT);
            } else {
                self.run_unit(conn);
                self.publish();
            }
        }
        self.next_due()
    }

    fn run_unit(&mut self, conn: &mut Connection) {
        let now = Instant::now();
        for j in &mut self.jobs {
            j.flush(conn, now);
        }
        let upkeep = self.upkeep();
        if let Some(i) = self.jobs.iter().position(|j| j.prelude_due()) {
            if self.not_before.is_none_or(|t| t <= now) {
                let mut cx = cx!(self, upkeep);
                return self.jobs[i].prelude(conn, &mut cx);
            }
        }
        let Some((i, due)) = self.current(now) else {
            return;
        };
        if due > now {
            return;
        }
        let mut cx = cx!(self, upkeep);
        self.jobs[i].unit(conn, &mut cx);
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
        let i = self
            .jobs
            .iter()
            .position(|j| j.name() == name)
            .ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        let upkeep = self.upkeep();
        let mut cx = cx!(self, upkeep);
        let done = self.jobs[i].control(conn, op, &mut cx);
        self.publish();
        done
    }

    /// Shares the current coverage with the API (`LiveStatus::upkeep`),
    /// after every entry point that may change a job's state.
    fn publish(&self) {
        self.live.set_upkeep(self.upkeep());
    }

    /// What the writer's live upkeep covers for each migration that
    /// computes something: a row the migration will still visit is left to
    /// it, so nothing is counted twice or missed.
    pub fn upkeep(&self) -> Upkeep {
        Upkeep {
            counts: self.coverage(super::counts::NAME),
            nodes: self.coverage(super::nodes::NAME),
            regions: self.coverage(super::regions::NAME),
        }
    }

    /// Which transmission ids the migration `name` has already processed (or
    /// will never visit).
    pub fn coverage(&self, name: &str) -> Coverage {
        self.jobs
            .iter()
            .find(|j| j.name() == name)
            .and_then(|j| j.coverage())
            .unwrap_or(Coverage::Nothing)
    }

    /// Another program added rows to the file (`what`, from `db::marks`):
    /// the maintained counts leave them out, so `counts_backfill_v1` runs
    /// again from scratch (the API says "counting…" meanwhile, never a wrong
    /// number as exact).
    pub(crate) fn foreign_writes(&mut self, conn: &Connection, what: &str) {
        let upkeep = self.upkeep();
        let Some(i) = self
            .jobs
            .iter()
            .position(|j| j.name() == super::counts::NAME)
        else {
            return;
        };
        let mut cx = cx!(self, upkeep);
        let redone = self.jobs[i].redo(conn, &mut cx);
        self.publish();
        crate::ratelimit::warn_limited(
            "foreign-writes",
            &format!(
                "the file was changed by another program since meshscope last wrote it \
                 ({what}){}",
                if redone {
                    "; counting again online"
                } else {
                    ""
                }
            ),
        );
    }

    /// The current job failed outside its own error handling (a panic on
    /// the writer caught by the writer loop).
    pub(crate) fn fail_current(&mut self, conn: &Connection, msg: &str) {
        if let Some((i, _)) = self.current(Instant::now()) {
            let upkeep = self.upkeep();
            let mut cx = cx!(self, upkeep);
            self.jobs[i].fail(conn, msg, &mut cx);
            self.publish();
        }
    }

    /// Before the writer exits: every job records where it is, so the next
    /// start resumes it.
    pub fn shutdown(&mut self, conn: &mut Connection) {
        let upkeep = self.upkeep();
        let mut cx = cx!(self, upkeep);
        for j in &mut self.jobs {
            j.shutdown(conn, &mut cx);
        }
    }
}
