//! What the scheduler ([`super::Engine`]) asks of a kind of background work
//! ([`Job`]), and what it lends a job while it runs ([`Cx`]). The kinds are
//! the registered migrations ([`super::slot::MigrationJob`], one per
//! [`super::Migration`]) and retention ([`super::retention::Retention`]); a
//! new kind is a new file implementing [`Job`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use shared::migration::{Control, MigrationInfo, MigrationRecord};

use super::live::LiveStatus;
use super::unit::{Bounds, Contention};
use super::{ControlError, EngineConfig, Observer, Progress};
use crate::db::ReaderPool;
use crate::health::DbHealth;
use crate::store::{Coverage, Upkeep};

/// What a running job may use of the scheduler's.
pub(crate) struct Cx<'a> {
    pub(crate) cfg: &'a EngineConfig,
    /// Read-only connections for counting rows off the writer; `None`
    /// offline (`meshscope migrate`, `prune`), where counting runs on the
    /// writer connection.
    pub(crate) readers: Option<&'a ReaderPool>,
    pub(crate) live: &'a LiveStatus,
    pub(crate) observers: &'a [Observer],
    pub(crate) health: Option<&'a DbHealth>,
    pub(crate) contention: Option<Contention>,
    /// Until then no job's regular unit runs: the rest a unit at a duty
    /// below 1 leaves, or a retry's wait, shared by every job.
    pub(crate) not_before: &'a mut Option<Instant>,
    /// What the maintained counts and nodes already cover.
    pub(crate) upkeep: Upkeep,
}

impl Cx<'_> {
    /// The bounds a unit runs under.
    pub(crate) fn bounds(&self) -> Bounds<'_> {
        Bounds {
            budget: self.cfg.budget,
            contention: self.contention.clone(),
            live: self.live,
        }
    }

    /// Tells the progress observers (metrics, the CLI's bars); an observer
    /// that panics is a bug, reported as an error.
    pub(crate) fn notify(&self, p: &Progress) -> Result<(), ObserverPanicked> {
        for o in self.observers {
            catch_unwind(AssertUnwindSafe(|| o(p)))
                .map_err(|e| ObserverPanicked(crate::panics::message(&*e)))?;
        }
        Ok(())
    }

    /// The health throttle for a job whose record is `rec`: asks the
    /// signals (a job already held back clears at a lower level) and keeps
    /// the record's `throttleReason`/`throttledUntil`, the one place they
    /// are written. `Some(when)`: held back, look again then; `None`: it may
    /// run a unit now.
    pub(crate) fn throttle(&self, rec: &mut MigrationRecord) -> Option<Instant> {
        let was = rec.throttle_reason.is_some();
        let strain = self
            .health
            .and_then(|h| h.strain(&self.cfg.health, was, crate::clock::now_ms()));
        rec.throttled_until = strain.as_ref().map(|_| {
            shared::timefmt::format_unix_ms(
                crate::clock::now_ms() + THROTTLE_RECHECK.as_millis() as i64,
            )
        });
        rec.throttle_reason = strain;
        rec.throttle_reason
            .as_ref()
            .map(|_| Instant::now() + THROTTLE_RECHECK)
    }
}

/// How often a throttled job looks at the signals again.
const THROTTLE_RECHECK: Duration = Duration::from_millis(200);

/// A progress observer (metrics, the CLI's bars) panicked: a bug, which
/// fails the migration it was reporting on rather than the writer.
#[derive(Debug, thiserror::Error)]
#[error("progress observer panicked: {0}")]
pub(crate) struct ObserverPanicked(pub(crate) String);

/// One kind of background work, run a bounded unit at a time.
pub(crate) trait Job: Send {
    fn name(&self) -> &str;

    /// Its record as shown (healthz, the status list).
    fn record(&self) -> &MigrationRecord;

    /// Pending, running or paused: jobs that wait for the others hold back.
    fn in_progress(&self) -> bool;

    /// Runs only while no other job is in progress (retention waits for
    /// every migration).
    fn runs_after_others(&self) -> bool {
        false
    }

    /// Whether what it keeps is ready for it (retention keeps the counts,
    /// so it needs them whole).
    fn may_run(&self, upkeep: Upkeep) -> bool {
        let _ = upkeep;
        true
    }

    /// Work that goes before every job's regular units (a migration's
    /// pre-flight sample, so every pending line has its estimate early).
    fn prelude_due(&self) -> bool {
        false
    }

    fn prelude(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        let _ = (conn, cx);
    }

    /// When its next regular unit is due; `None`: it has none.
    fn due(&mut self, now: Instant, not_before: Option<Instant>) -> Option<Instant>;

    /// Runs its next unit (the scheduler calls it when due).
    fn unit(&mut self, conn: &mut Connection, cx: &mut Cx<'_>);

    /// When a record it could not store is to be written again.
    fn unsaved_due(&self) -> Option<Instant> {
        None
    }

    /// Writes a record it could not store, if it is time.
    fn flush(&mut self, conn: &Connection, now: Instant) {
        let _ = (conn, now);
    }

    /// An operator control, by the rule every line follows
    /// ([`Control::applies_to`]).
    fn control(
        &mut self,
        conn: &Connection,
        op: Control,
        cx: &mut Cx<'_>,
    ) -> Result<MigrationInfo, ControlError>;

    /// Which transmission ids it has covered (`None`: it computes nothing
    /// live ingest keeps).
    fn coverage(&self) -> Option<Coverage> {
        None
    }

    /// Fails the job for a reason found outside its own handling (a panic
    /// the writer caught).
    fn fail(&mut self, conn: &Connection, msg: &str, cx: &mut Cx<'_>);

    /// Runs again from scratch (another program changed the rows it
    /// computed); false when it has nothing to redo.
    fn redo(&mut self, conn: &Connection, cx: &mut Cx<'_>) -> bool {
        let _ = (conn, cx);
        false
    }

    /// Tells the observers its state (after they are added at boot).
    fn announce(&self, cx: &Cx<'_>);

    /// Before the writer exits: record where it is, so the next start
    /// resumes it.
    fn shutdown(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        let _ = (conn, cx);
    }
}
