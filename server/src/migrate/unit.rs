//! The bounded unit of writer work that every background job runs through:
//! one IMMEDIATE transaction under an interrupt and a panic guard, its hold
//! on the writer recorded, the chunk sizer fed, and a typed outcome.
//!
//! The interrupt is SQLite's progress handler: a unit that has held the
//! writer `SOFT_OVERRUN` budgets while something waits for it (ingest, a
//! control), or `HARD_OVERRUN` budgets in any case, is stopped and rolled
//! back, and the sizer retries it smaller. A unit already at the smallest
//! size runs to its end, so a slow disk cannot stall a job. A full disk or a
//! lock held by another process is a [`Outcome::Transient`] condition, in
//! words for the operator ([`crate::db::fault_words`]); anything else, a
//! panic included, is [`Outcome::Failed`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::live::LiveStatus;
use super::sizer::BatchSizer;
use super::MigrationError;

/// Says whether anything waits for the writer (ingest, a control): a unit
/// past its budget is then stopped.
pub type Contention = Arc<dyn Fn() -> bool + Send + Sync>;

/// A unit is stopped once it has held the writer this many budgets while
/// something waits for it...
const SOFT_OVERRUN: f64 = 1.2;
/// ...or this many budgets whatever waits (a hard cap on the writer hold).
const HARD_OVERRUN: f64 = 2.5;
/// SQLite VM steps between two looks at the clock during a unit.
const PROGRESS_OPS: i32 = 2_000;

/// Stops the work that started at `started` (through SQLite's progress
/// handler) past its budget, as the module header says; `None` leaves it to
/// run to its end. Disarmed by [`disarm_interrupt`].
pub(crate) fn arm_interrupt(
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

pub(crate) fn disarm_interrupt(conn: &Connection) {
    conn.progress_handler(0, None::<fn() -> bool>);
}

/// The work was stopped by the progress handler (SQLITE_INTERRUPT).
pub(crate) fn interrupted(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// The SQLite error under a job's error, if any.
pub(crate) fn sqlite_of(e: &MigrationError) -> Option<&rusqlite::Error> {
    match e {
        MigrationError::Sqlite(e) => Some(e),
        MigrationError::Store(s) => s.sqlite(),
        MigrationError::Refused(_) => None,
    }
}

/// How a unit ended.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// Committed; `took` is how long it held the writer.
    Committed { value: T, took: Duration },
    /// Stopped past its budget and rolled back; the sizer has learnt it.
    Stopped { took: Duration },
    /// Rolled back for a condition that clears by itself, in words.
    Transient(&'static str),
    /// Rolled back for an error or a panic, in words.
    Failed(String),
}

/// What a unit runs under: the writer-time budget, whether something waits
/// for the writer, and where the hold is recorded.
pub(crate) struct Bounds<'a> {
    pub(crate) budget: Duration,
    pub(crate) contention: Option<Contention>,
    pub(crate) live: &'a LiveStatus,
}

impl Bounds<'_> {
    /// Runs `work` as one unit of `sizer.batch()`: `work` gets the size and
    /// returns its value and how many of the sizer's units (ids, rows) it
    /// covered.
    pub(crate) fn run<T>(
        &self,
        conn: &mut Connection,
        sizer: &mut BatchSizer,
        work: impl FnOnce(&Transaction<'_>, i64) -> Result<(T, i64), MigrationError>,
    ) -> Outcome<T> {
        let size = sizer.batch();
        let started = Instant::now();
        arm_interrupt(
            conn,
            self.contention.clone().filter(|_| !sizer.at_floor()),
            self.budget,
            started,
        );
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(T, i64), MigrationError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done = work(&tx, size)?;
            tx.commit()?;
            Ok(done)
        }));
        disarm_interrupt(conn);
        let took = started.elapsed();
        match outcome {
            Ok(Ok((value, covered))) => {
                self.live.record_hold(took, false);
                sizer.observe(covered, took);
                Outcome::Committed { value, took }
            }
            Ok(Err(e)) if sqlite_of(&e).is_some_and(interrupted) => {
                self.live.record_hold(took, true);
                sizer.interrupted(size, took);
                Outcome::Stopped { took }
            }
            Ok(Err(e)) => match sqlite_of(&e).and_then(crate::db::fault_words) {
                Some(words) => Outcome::Transient(words),
                None => Outcome::Failed(e.to_string()),
            },
            Err(p) => Outcome::Failed(format!("panicked: {}", crate::panics::message(&*p))),
        }
    }
}

/// The rest after a unit that held the writer for `took`, so the job holds
/// it at most `duty` of the time; `None` at full duty.
pub(crate) fn rest(took: Duration, duty: f64) -> Option<Duration> {
    (duty < 1.0).then(|| Duration::from_secs_f64(took.as_secs_f64() * (1.0 - duty) / duty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_keeps_the_writer_share_at_the_duty() {
        assert_eq!(rest(Duration::from_millis(10), 1.0), None);
        let r = rest(Duration::from_millis(10), 0.2).unwrap();
        assert!((r.as_secs_f64() - 0.040).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn a_unit_commits_stops_or_fails_by_kind() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(x)").unwrap();
        let live = LiveStatus::default();
        let b = Bounds {
            budget: Duration::from_millis(5),
            contention: None,
            live: &live,
        };
        let mut sizer = BatchSizer::new(Duration::from_millis(5), 10, 1_000);
        let done = b.run(&mut c, &mut sizer, |tx, n| {
            tx.execute("INSERT INTO t VALUES (?1)", [n])?;
            Ok((n, n))
        });
        assert!(
            matches!(done, Outcome::Committed { value: 10, .. }),
            "{done:?}"
        );
        let failed = b.run(&mut c, &mut sizer, |tx, _| -> Result<((), i64), _> {
            tx.execute("INSERT INTO missing VALUES (1)", [])?;
            Ok(((), 1))
        });
        assert!(
            matches!(failed, Outcome::Failed(ref m) if m.contains("missing")),
            "{failed:?}"
        );
        let panicked = b.run(&mut c, &mut sizer, |_, _| -> Result<((), i64), _> {
            panic!("boom")
        });
        assert!(
            matches!(panicked, Outcome::Failed(ref m) if m.contains("boom")),
            "{panicked:?}"
        );
        assert!(c.is_autocommit(), "nothing left open");
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "only the committed unit wrote");
        // Past its budget with something waiting: stopped, rolled back.
        let mut big = BatchSizer::new(Duration::from_millis(5), 10, 1_000);
        big.observe(10, Duration::from_nanos(10));
        let waiting = Bounds {
            budget: Duration::from_millis(5),
            contention: Some(Arc::new(|| true)),
            live: &live,
        };
        let stopped = waiting.run(&mut c, &mut big, |tx, _| -> Result<((), i64), _> {
            tx.query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000)
                 SELECT COUNT(*) FROM c",
                [],
                |r| r.get::<_, i64>(0),
            )?;
            Ok(((), 1))
        });
        assert!(matches!(stopped, Outcome::Stopped { .. }), "{stopped:?}");
        assert!(c.is_autocommit());
    }
}
