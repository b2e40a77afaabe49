//! Retention: a recurring job that deletes what is older than the operator
//! keeps (`[retention] packet_days`, `observer_days`), in short chunks on
//! the writer thread between ingest groups: a [`Job`] of the scheduler, each
//! chunk one bounded unit (`unit::Bounds`, sized to the same time budget by
//! the same [`BatchSizer`] as a migration's).
//!
//! What CoreScope does with the same settings (read in Kpa-clawbot/CoreScope,
//! `cmd/ingestor/maintenance.go`, `cmd/ingestor/config.go`,
//! `cmd/ingestor/main.go`, `cmd/server/db.go`): `retention.packetDays`
//! deletes each transmission whose `first_seen` (RFC3339 text) is strictly
//! older than now minus that many days, with all its observations, 250
//! transmissions per transaction, at start and then every 24 h; 0 turns it
//! off. `retention.observerDays` (default 14 there, -1 keeps forever) marks
//! observers whose `last_seen` is strictly older as `inactive = 1`, a soft
//! delete so `observations.observer_idx` still joins, at start and every 24 h.
//!
//! meshscope follows those semantics with the sighting as the unit that
//! ages (the maintained counts are kept per sighting):
//! - **Packets**: a sighting whose `timestamp` is strictly older than the
//!   cutoff (now − `packet_days` × 86,400 s, fixed when a run starts) goes;
//!   one exactly at the cutoff stays, like CoreScope's `<`. A transmission
//!   the chunk leaves without any sighting goes in the same chunk; one that
//!   still has a newer sighting stays (CoreScope would delete it, newer
//!   sightings included, by its `first_seen`). A transmission that had no
//!   sighting before the run is not retention's to remove.
//! - **Observers**: one whose `last_seen` (any time text SQLite reads) is
//!   strictly older than now − `observer_days` goes once no sighting refers
//!   to it, so no `observer_idx` ever points at a missing (or reused) row —
//!   the reason CoreScope soft-deletes; meshscope lists every observer and
//!   its files have no `inactive` column. With `packet_days` ≤
//!   `observer_days` such an observer's sightings are gone by then. A
//!   missing or unreadable `last_seen` keeps the observer. Its
//!   `packet_count` is a lifetime tally and is not lowered.
//! - **Schedule**: off unless configured; a run starts when the writer
//!   starts serving and then one hour after the previous run ended
//!   ([`EVERY`]; hourly rather than daily keeps each run to about an hour of
//!   rows). A run waits while any migration is pending, running or paused,
//!   and needs `counts_backfill_v1` done: it keeps the counts that
//!   migration computes.
//!
//! Each chunk is one IMMEDIATE transaction: it deletes the oldest sightings
//! below the cutoff (`ORDER BY timestamp, id LIMIT n`, on the timestamp
//! index), lowers their transmissions' `observation_count`, deletes the
//! transmissions left empty and lowers the totals in `_meshscope_counters`,
//! all in that transaction. The cutoff decides what goes, not a cursor: a
//! chunk lost to a crash leaves its rows in place and the next run deletes
//! them, so a kill at any instant loses nothing that should stay and leaves
//! nothing half applied. Nothing is written to `_async_migrations`
//! (CoreScope reads that table and would show a row it does not know): the
//! run shows through the engine's live status as `retention`, `running`
//! while it deletes and `done` (no banner line) when it ends, and its last
//! run in `/api/perf`.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use shared::api::RetentionRun;
use shared::migration::{Control, MigrationInfo, MigrationRecord, MigrationStatus, Owner};
use shared::timefmt::format_unix_secs;

use super::job::{Cx, Job};
use super::live::LiveStatus;
use super::sizer::BatchSizer;
use super::unit::{rest, Outcome};
use super::{ControlError, EngineConfig, Progress};
use crate::backoff::Backoff;
use crate::clock::{now_ms, now_secs, now_text};
use crate::store::counts::{self, counter};
use crate::store::Upkeep;

/// The name the job shows under (healthz, the dashboard, metrics).
pub const NAME: &str = "retention";

/// Time from the end of one run to the start of the next.
pub const EVERY: Duration = Duration::from_secs(3600);

const DAY_SECS: i64 = 86_400;
/// First wait before retrying after a full disk or a foreign lock...
const RETRY_MIN: Duration = Duration::from_secs(1);
/// ...and the longest.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The operator's retention settings; `None` keeps that kind forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionConfig {
    pub packet_days: Option<u32>,
    pub observer_days: Option<u32>,
}

/// A retention setting that cannot be used (named as in the config file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{option}: must be a whole number of days, at least 1, got {value} \
     (leave it out to keep everything)"
)]
pub struct DaysError {
    pub option: &'static str,
    pub value: i64,
}

impl RetentionConfig {
    /// Validates days as given (file, flag or environment): whole days ≥ 1.
    pub fn days(option: &'static str, value: Option<i64>) -> Result<Option<u32>, DaysError> {
        match value {
            None => Ok(None),
            Some(v) => match u32::try_from(v) {
                // More than about 11 million years keeps everything anyway.
                Ok(d) if d >= 1 => Ok(Some(d.min(u32::MAX / 2))),
                _ => Err(DaysError { option, value: v }),
            },
        }
    }

    pub fn is_on(&self) -> bool {
        self.packet_days.is_some() || self.observer_days.is_some()
    }

    /// The cutoffs of a run starting at `now_secs`.
    pub fn cutoffs(&self, now_secs: i64) -> Cutoffs {
        let at = |days: u32| now_secs.saturating_sub(i64::from(days) * DAY_SECS);
        Cutoffs {
            packets: self.packet_days.map(at),
            observers: self.observer_days.map(at),
        }
    }
}

/// Unix seconds: rows strictly older go; `None` keeps that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cutoffs {
    pub packets: Option<i64>,
    pub observers: Option<i64>,
}

/// Rows deleted (or, in a preview, that would be): the API's own type.
pub use shared::api::RetentionDeleted as Deleted;

/// Deletes up to `limit` of the oldest sightings strictly older than
/// `cutoff`, then the transmissions that left without any, keeping the
/// maintained counts, inside the caller's transaction. Fewer than `limit`
/// sightings deleted means none older is left.
pub fn delete_sightings(conn: &Connection, cutoff: i64, limit: i64) -> rusqlite::Result<Deleted> {
    let mut per_tx: BTreeMap<i64, i64> = BTreeMap::new();
    {
        let mut del = conn.prepare_cached(
            "DELETE FROM observations WHERE id IN
                (SELECT id FROM observations WHERE timestamp < ?1 ORDER BY timestamp, id LIMIT ?2)
             RETURNING transmission_id",
        )?;
        let mut rows = del.query(params![cutoff, limit])?;
        while let Some(r) = rows.next()? {
            *per_tx.entry(r.get::<_, i64>(0)?).or_default() += 1;
        }
    }
    let mut out = Deleted::default();
    let mut by_type: BTreeMap<Option<i64>, i64> = BTreeMap::new();
    let mut lower = conn.prepare_cached(
        "UPDATE transmissions SET observation_count = observation_count - ?2 WHERE id = ?1",
    )?;
    let mut drop_empty = conn.prepare_cached(
        "DELETE FROM transmissions WHERE id = ?1
            AND NOT EXISTS (SELECT 1 FROM observations WHERE transmission_id = ?1)
         RETURNING payload_type",
    )?;
    for (tx_id, n) in per_tx {
        out.observations += n;
        lower.execute(params![tx_id, n])?;
        let mut gone = drop_empty.query([tx_id])?;
        if let Some(r) = gone.next()? {
            *by_type.entry(r.get::<_, Option<i64>>(0)?).or_default() += 1;
            out.transmissions += 1;
        }
    }
    counts::add(conn, counter::OBSERVATIONS, -out.observations)?;
    counts::add(conn, counter::TRANSMISSIONS, -out.transmissions)?;
    for (t, n) in by_type {
        counts::add(conn, &counter::of_type(t), -n)?;
    }
    Ok(out)
}

/// Observers not heard since before `cutoff` that no sighting refers to.
const OBSERVERS_TO_GO: &str = "FROM observers o
    WHERE unixepoch(o.last_seen) < ?1
      AND NOT EXISTS (SELECT 1 FROM observations s WHERE s.observer_idx = o.rowid)";

/// Deletes up to `limit` observers not heard since before `cutoff` that no
/// sighting refers to, keeping the observers total, inside the caller's
/// transaction.
pub fn delete_observers(conn: &Connection, cutoff: i64, limit: i64) -> rusqlite::Result<Deleted> {
    let n = conn
        .prepare_cached(&format!(
            "DELETE FROM observers WHERE rowid IN (SELECT o.rowid {OBSERVERS_TO_GO} LIMIT ?2)"
        ))?
        .execute(params![cutoff, limit])? as i64;
    counts::add(conn, counter::OBSERVERS, -n)?;
    Ok(Deleted {
        observers: n,
        ..Deleted::default()
    })
}

/// What a run with `cutoffs` would delete now, exactly (the dry run): the
/// sightings below the packet cutoff, the transmissions all of whose
/// sightings are, and the observers that would be left unreferenced.
pub fn preview(conn: &Connection, cutoffs: Cutoffs) -> rusqlite::Result<Deleted> {
    let mut out = Deleted::default();
    if let Some(cp) = cutoffs.packets {
        out.observations = conn.query_row(
            "SELECT COUNT(*) FROM observations WHERE timestamp < ?1",
            [cp],
            |r| r.get(0),
        )?;
        out.transmissions = conn.query_row(
            "SELECT COUNT(*) FROM
                (SELECT DISTINCT transmission_id AS id FROM observations WHERE timestamp < ?1) g
             WHERE NOT EXISTS
                (SELECT 1 FROM observations o WHERE o.transmission_id = g.id AND o.timestamp >= ?1)",
            [cp],
            |r| r.get(0),
        )?;
    }
    if let Some(co) = cutoffs.observers {
        out.observers = observers_to_go(conn, co, cutoffs.packets)?;
    }
    Ok(out)
}

/// Observers a run would delete: those whose remaining sightings (at or
/// after the packet cutoff; all of them without one) are none.
fn observers_to_go(
    conn: &Connection,
    cutoff: i64,
    packet_cutoff: Option<i64>,
) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM observers o
         WHERE unixepoch(o.last_seen) < ?1
           AND NOT EXISTS (SELECT 1 FROM observations s
                           WHERE s.observer_idx = o.rowid AND (?2 IS NULL OR s.timestamp >= ?2))",
        params![cutoff, packet_cutoff],
        |r| r.get(0),
    )
}

/// The rows a run will visit (sightings and observers), for its progress.
fn count_total(conn: &Connection, cutoffs: Cutoffs) -> rusqlite::Result<i64> {
    let mut n = 0;
    if let Some(cp) = cutoffs.packets {
        n += conn.query_row(
            "SELECT COUNT(*) FROM observations WHERE timestamp < ?1",
            [cp],
            |r| r.get::<_, i64>(0),
        )?;
    }
    if let Some(co) = cutoffs.observers {
        n += observers_to_go(conn, co, cutoffs.packets)?;
    }
    Ok(n)
}

/// When runs happen.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// At start, then `every` after each run ended, with cutoffs from the
    /// configured days at each start (`serve`).
    Every(RetentionConfig, Duration),
    /// One run with these cutoffs, now (`meshscope prune`, the bench).
    Once(Cutoffs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sightings,
    Observers,
}

/// A run in flight.
struct Run {
    cutoffs: Cutoffs,
    /// `None` while the rows are being counted.
    phase: Option<Phase>,
    counting: Option<mpsc::Receiver<Result<i64, String>>>,
    /// When to look for the row count again.
    poll_at: Instant,
    deleted: Deleted,
    started_at: String,
    /// The line shows (there is something to delete).
    shown: bool,
}

impl Run {
    fn first_phase(&self) -> Option<Phase> {
        if self.cutoffs.packets.is_some() {
            Some(Phase::Sightings)
        } else if self.cutoffs.observers.is_some() {
            Some(Phase::Observers)
        } else {
            None
        }
    }
}

/// The retention job; owned by the engine, so it runs on the writer thread.
pub(crate) struct Retention {
    schedule: Schedule,
    /// When the next run starts; `None`: no more runs.
    next_at: Option<Instant>,
    run: Option<Run>,
    sizer: BatchSizer,
    /// Not before this (a retry, a throttle).
    wait_until: Option<Instant>,
    backoff: Backoff,
    /// Paused by the operator: nothing runs until resumed.
    held: bool,
    rec: MigrationRecord,
    live: LiveStatus,
}

impl Retention {
    pub(crate) fn new(schedule: Schedule, cfg: &EngineConfig, live: LiveStatus) -> Retention {
        let next_at = match schedule {
            Schedule::Every(c, _) if !c.is_on() => None,
            _ => Some(Instant::now()),
        };
        Retention {
            schedule,
            next_at,
            run: None,
            sizer: BatchSizer::new(cfg.budget, cfg.min_batch, cfg.max_batch),
            wait_until: None,
            backoff: Backoff::new(RETRY_MIN, RETRY_MAX),
            held: false,
            rec: MigrationRecord::new(NAME, MigrationStatus::Done),
            live,
        }
    }

    /// One chunk: deletes the oldest rows of the run's phase, within the
    /// bounded unit, and moves to the next phase (or ends) when a chunk
    /// finds fewer than it could take.
    fn chunk(&mut self, conn: &mut Connection, mut run: Run, phase: Phase, cx: &mut Cx<'_>) {
        if let Some(until) = cx.throttle(&mut self.rec) {
            // `throttled`: running, held back, with the reason (as migrations).
            self.wait_until = Some(until);
            self.rec.status = MigrationStatus::Running;
            self.run = Some(run);
            return self.publish(None, cx);
        }
        let cutoffs = run.cutoffs;
        let limit = self.sizer.batch();
        let outcome = cx.bounds().run(conn, &mut self.sizer, |tx, limit| {
            let d = match phase {
                Phase::Sightings => {
                    delete_sightings(tx, cutoffs.packets.unwrap_or(i64::MIN), limit)?
                }
                Phase::Observers => {
                    delete_observers(tx, cutoffs.observers.unwrap_or(i64::MIN), limit)?
                }
            };
            let visited = match phase {
                Phase::Sightings => d.observations,
                Phase::Observers => d.observers,
            };
            Ok(((d, visited), visited))
        });
        let ((d, visited), took) = match outcome {
            Outcome::Committed { value, took } => (value, took),
            // Rolled back whole: nothing deleted, retried smaller.
            Outcome::Stopped { .. } => {
                self.run = Some(run);
                return;
            }
            Outcome::Transient(reason) => return self.retry_later(run, reason, cx),
            Outcome::Failed(msg) => {
                return self.fail_run(&run, &format!("deleting old rows failed: {msg}"), cx)
            }
        };
        run.deleted += d;
        self.backoff.reset();
        if let Some(r) = rest(took, cx.cfg.duty) {
            *cx.not_before = Some(Instant::now() + r);
        }
        tracing::debug!(
            phase = ?phase,
            limit,
            visited,
            took_ms = took.as_secs_f64() * 1000.0,
            "retention chunk committed"
        );
        self.rec.status = MigrationStatus::Running;
        self.rec.error = None;
        self.rec.rows_processed += visited;
        self.rec.last_update_at = Some(now_text());
        if visited < limit {
            run.phase = match phase {
                Phase::Sightings if run.cutoffs.observers.is_some() => Some(Phase::Observers),
                _ => return self.finish(&run, Some(took), cx),
            };
        }
        self.run = Some(run);
        self.publish(Some(took), cx);
    }

    /// Starts a run: fixes its cutoffs and counts its rows off the writer.
    fn start(&mut self, conn: &Connection, cx: &mut Cx<'_>) {
        let cutoffs = match self.schedule {
            Schedule::Every(cfg, _) => cfg.cutoffs(now_secs()),
            Schedule::Once(c) => c,
        };
        let mut run = Run {
            cutoffs,
            phase: None,
            counting: None,
            poll_at: Instant::now(),
            deleted: Deleted::default(),
            started_at: now_text(),
            shown: false,
        };
        let (tx, rx) = mpsc::channel();
        match cx.readers {
            Some(pool) => {
                let pool = pool.clone();
                let spawned = std::thread::Builder::new()
                    .name("retention-count".into())
                    .spawn(move || {
                        let res = pool
                            .get()
                            .map_err(|e| format!("no read-only connection: {e}"))
                            .and_then(|c| count_total(&c, cutoffs).map_err(|e| e.to_string()));
                        let _ = tx.send(res);
                    });
                if let Err(e) = spawned {
                    return self.fail_run(
                        &run,
                        &format!("cannot start the counting thread: {e}"),
                        cx,
                    );
                }
            }
            // No reader pool (`meshscope prune`, offline): count here.
            None => {
                let _ = tx.send(count_total(conn, cutoffs).map_err(|e| e.to_string()));
            }
        }
        run.counting = Some(rx);
        tracing::info!(
            packet_cutoff = cutoffs.packets.map(format_unix_secs),
            observer_cutoff = cutoffs.observers.map(format_unix_secs),
            "retention run started"
        );
        self.set_last(&run, MigrationStatus::Running, None, None);
        self.run = Some(run);
    }

    /// Picks up the row count; starts deleting, or ends a run with nothing to do.
    fn poll_count(&mut self, mut run: Run, cx: &mut Cx<'_>) {
        let got = match run.counting.as_ref().map(|rx| rx.try_recv()) {
            Some(Ok(r)) => r,
            Some(Err(mpsc::TryRecvError::Empty)) => {
                run.poll_at = Instant::now() + Duration::from_millis(5);
                self.run = Some(run);
                return;
            }
            Some(Err(mpsc::TryRecvError::Disconnected)) | None => {
                Err("the row-counting thread died".to_string())
            }
        };
        run.counting = None;
        match got {
            Err(e) => self.fail_run(&run, &format!("counting old rows failed: {e}"), cx),
            Ok(0) => {
                // Nothing older than the cutoffs: no line, just the last run.
                tracing::debug!("retention run found nothing to delete");
                self.set_last(&run, MigrationStatus::Done, None, Some(now_text()));
                self.schedule_next();
            }
            Ok(total) => {
                let now = now_text();
                self.rec = MigrationRecord::new(NAME, MigrationStatus::Running);
                self.rec.started_at = Some(run.started_at.clone());
                self.rec.last_update_at = Some(now);
                self.rec.rows_total = total;
                self.rec.attempts = 1;
                run.shown = true;
                run.phase = run.first_phase();
                if run.phase.is_none() {
                    return self.finish(&run, None, cx);
                }
                self.run = Some(run);
                self.publish(None, cx);
            }
        }
    }

    fn finish(&mut self, run: &Run, took: Option<Duration>, cx: &mut Cx<'_>) {
        let now = now_text();
        self.rec.status = MigrationStatus::Done;
        self.rec.error = None;
        self.rec.ended_at = Some(now.clone());
        self.rec.last_update_at = Some(now);
        tracing::info!(
            observations = run.deleted.observations,
            transmissions = run.deleted.transmissions,
            observers = run.deleted.observers,
            "retention run done"
        );
        self.set_last(run, MigrationStatus::Done, None, self.rec.ended_at.clone());
        self.schedule_next();
        if run.shown {
            self.publish(took, cx);
        } else {
            self.tell(took, cx);
        }
    }

    /// Ends the run as failed, shown and logged; the next run comes as scheduled.
    fn fail_run(&mut self, run: &Run, msg: &str, cx: &mut Cx<'_>) {
        let now = now_text();
        tracing::error!(error = msg, "retention run failed; the next run retries");
        if !run.shown {
            self.rec = MigrationRecord::new(NAME, MigrationStatus::Failed);
            self.rec.started_at = Some(run.started_at.clone());
            self.rec.attempts = 1;
        }
        self.rec.status = MigrationStatus::Failed;
        self.rec.error = Some(msg.to_string());
        self.rec.ended_at = Some(now.clone());
        self.rec.last_update_at = Some(now.clone());
        self.set_last(
            run,
            MigrationStatus::Failed,
            Some(msg.to_string()),
            Some(now),
        );
        self.schedule_next();
        self.publish(None, cx);
    }

    /// A full disk or a foreign lock: shown as paused with the reason, the
    /// same chunk retried after a growing wait.
    fn retry_later(&mut self, run: Run, reason: &'static str, cx: &mut Cx<'_>) {
        let wait = self.backoff.next_wait();
        self.wait_until = Some(Instant::now() + wait);
        crate::ratelimit::warn_limited(
            "paused:retention",
            &format!(
                "retention paused: {reason} (next try in {} s)",
                wait.as_secs()
            ),
        );
        self.rec.status = MigrationStatus::Paused;
        self.rec.error = Some(reason.to_string());
        self.rec.last_update_at = Some(now_text());
        self.run = Some(run);
        self.publish(None, cx);
    }

    fn schedule_next(&mut self) {
        self.run = None;
        self.wait_until = None;
        self.next_at = match self.schedule {
            Schedule::Every(_, every) => Some(Instant::now() + every),
            Schedule::Once(_) => None,
        };
    }

    fn set_last(
        &self,
        run: &Run,
        status: MigrationStatus,
        error: Option<String>,
        ended_at: Option<String>,
    ) {
        self.live.set_retention(RetentionRun {
            status,
            started_at: run.started_at.clone(),
            ended_at,
            packet_cutoff: run.cutoffs.packets.map(format_unix_secs),
            observer_cutoff: run.cutoffs.observers.map(format_unix_secs),
            deleted: run.deleted,
            error,
        });
    }

    /// Shows the record (healthz, the dashboard) and the last run, and
    /// tells the observers.
    fn publish(&mut self, took: Option<Duration>, cx: &mut Cx<'_>) {
        self.live.set(&self.rec);
        if let Some(run) = &self.run {
            self.set_last(run, MigrationStatus::Running, None, None);
        }
        self.tell(took, cx);
    }

    /// Tells the observers (a failing one is only logged: retention goes on).
    fn tell(&self, took: Option<Duration>, cx: &Cx<'_>) {
        let p = Progress {
            name: NAME.to_string(),
            status: self.rec.shown_status(),
            rows_processed: self.rec.rows_processed,
            rows_total: self.rec.rows_total,
            batch: self.sizer.batch(),
            chunk: took,
        };
        if let Err(e) = cx.notify(&p) {
            tracing::error!(error = %e, "progress observer failed on retention");
        }
    }
}

impl Job for Retention {
    fn name(&self) -> &str {
        NAME
    }

    fn record(&self) -> &MigrationRecord {
        &self.rec
    }

    fn in_progress(&self) -> bool {
        self.run.is_some()
    }

    /// Retention waits while any migration is pending, running or paused.
    fn runs_after_others(&self) -> bool {
        true
    }

    /// It keeps the counts `counts_backfill_v1` computes: they must be whole.
    fn may_run(&self, upkeep: Upkeep) -> bool {
        upkeep.counts_ready()
    }

    /// `None`: nothing to do, ever (a one-off run that ended) or until the
    /// operator resumes.
    fn due(&mut self, now: Instant, not_before: Option<Instant>) -> Option<Instant> {
        if self.held {
            return None;
        }
        let at = match &self.run {
            Some(run) if run.phase.is_none() => run.poll_at,
            Some(_) => now.max(not_before.unwrap_or(now)),
            None => self.next_at?,
        };
        Some(match self.wait_until {
            Some(w) => at.max(w),
            None => at,
        })
    }

    /// The start of a run, a look at the row count, or one chunk.
    fn unit(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        self.wait_until = None;
        let Some(run) = self.run.take() else {
            return self.start(conn, cx);
        };
        match run.phase {
            None => self.poll_count(run, cx),
            Some(phase) => self.chunk(conn, run, phase, cx),
        }
    }

    /// By the rule every line follows ([`Control::applies_to`]): pause holds
    /// the run, resume continues it, cancel ends it (the next run comes as
    /// scheduled), retry starts a run now.
    fn control(
        &mut self,
        _conn: &Connection,
        op: Control,
        cx: &mut Cx<'_>,
    ) -> Result<MigrationInfo, ControlError> {
        let status = self.rec.status;
        if !op.applies_to(status) || (op == Control::Cancel && self.run.is_none()) {
            return Err(ControlError::Conflict {
                action: op.action(),
                name: NAME.to_string(),
                status: status.as_str(),
            });
        }
        let now = now_text();
        match op {
            Control::Pause => {
                self.held = true;
                self.rec.status = MigrationStatus::Paused;
                self.rec.error = None;
            }
            Control::Resume => {
                self.held = false;
                self.rec.status = if self.run.is_some() {
                    MigrationStatus::Running
                } else {
                    MigrationStatus::Done
                };
                self.rec.error = None;
            }
            Control::Cancel => {
                self.held = false;
                if let Some(run) = self.run.take() {
                    self.set_last(&run, MigrationStatus::Cancelled, None, Some(now.clone()));
                }
                self.rec.status = MigrationStatus::Cancelled;
                self.rec.ended_at = Some(now.clone());
                self.schedule_next();
            }
            Control::Retry => {
                self.held = false;
                self.next_at = Some(Instant::now());
                self.rec.status = MigrationStatus::Done;
                self.rec.error = None;
            }
        }
        self.rec.last_update_at = Some(now);
        tracing::info!(op = op.action(), "operator control applied to retention");
        self.publish(None, cx);
        Ok(MigrationInfo::from_record(
            &self.rec,
            now_ms(),
            Owner::Meshscope,
        ))
    }

    fn fail(&mut self, _conn: &Connection, msg: &str, cx: &mut Cx<'_>) {
        if let Some(run) = self.run.take() {
            self.fail_run(&run, msg, cx);
        }
    }

    /// Retention is not stored: nothing to announce until a run shows.
    fn announce(&self, _cx: &Cx<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_whole_and_positive() {
        assert_eq!(RetentionConfig::days("x", None), Ok(None));
        assert_eq!(RetentionConfig::days("x", Some(30)), Ok(Some(30)));
        for bad in [0, -1, -30] {
            let e = RetentionConfig::days("[retention] packet_days", Some(bad)).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("[retention] packet_days"), "{msg}");
            assert!(msg.contains(&bad.to_string()), "{msg}");
        }
    }

    #[test]
    fn cutoffs_are_whole_days_before_now() {
        let cfg = RetentionConfig {
            packet_days: Some(2),
            observer_days: None,
        };
        assert!(cfg.is_on());
        assert!(!RetentionConfig::default().is_on());
        let c = cfg.cutoffs(1_000_000);
        assert_eq!(c.packets, Some(1_000_000 - 2 * 86_400));
        assert_eq!(c.observers, None);
    }
}
