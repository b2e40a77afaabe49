//! Online migrations: long data rewrites run in short chunks on the one
//! writer thread, between ingest groups, with progress committed atomically
//! with the work.
//!
//! Strategy (numbers measured on this 2-core machine, 71K transmissions /
//! 1.5M observations): the one-statement backfill takes 0.3-0.5 s and holds
//! the writer throughout; the published fix (5,000-row chunks + 100 ms sleep)
//! takes 7x longer and still lets ingest wait 56 ms at p99. Here each chunk
//! is sized to a time budget (default 10 ms) from the measured cost of recent
//! chunks, and the writer runs every queued ingest request between two
//! chunks, so ingest waits at most about one budget, while the migration runs
//! flat out whenever ingest is idle (no sleeps; `duty` < 1 can slow it on
//! purpose). Under sustained ingest the migration still gets one chunk per
//! ingest group, and a group is capped at `writer::MAX_GROUP` requests: with
//! group commits of a few ms that is at least half of the writer's time.
//!
//! Crash safety: a chunk's rows, its cursor and its progress counters commit
//! in one transaction, so a crash at any instant loses no work and redoes
//! none. Status changes and terminal writes are short transactions of their
//! own; a bookkeeping write that matches no row is an error.

pub mod config;
pub mod counts;
pub mod dedup;
mod engine;
pub mod from_pubkey;
pub mod index_build;
mod job;
pub mod last_seen;
mod live;
mod merge;
pub mod nodes;
pub mod regions;
pub mod rehash;
pub mod retention;
mod sizer;
mod slot;
pub mod store;
mod unit;

use std::sync::Arc;

use rusqlite::Connection;

pub use crate::backoff::Backoff;
pub use crate::store::{Coverage, Upkeep};
pub use config::{EngineConfig, EngineConfigError};
pub use engine::Engine;
pub use live::LiveStatus;
pub use retention::{Cutoffs, RetentionConfig, Schedule};
pub use slot::preflight;
use store::StoreError;
pub use unit::Contention;

/// One named online migration. Implementations visit `transmissions` ids in
/// ranges; the engine owns the cursor, the transaction and the bookkeeping.
pub trait Migration: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Whether this file needs the migration, read at boot: most run once
    /// on every file ([`Need::Once`]); an index build is needed while its
    /// index is missing, and not registered at all on a file that has it.
    fn needed(&self, conn: &Connection) -> rusqlite::Result<Need> {
        let _ = conn;
        Ok(Need::Once)
    }

    /// Runs on the writer when a run from scratch is planned, before its id
    /// range is fixed: resets what the migration keeps outside the rows it
    /// walks (a counter, say). Most migrations keep nothing.
    fn start(&self, conn: &Connection) -> Result<(), MigrationError> {
        let _ = conn;
        Ok(())
    }

    /// Upper bound of the ids this run will visit (snapshot at start; rows
    /// inserted later are out of scope).
    fn max_id(&self, conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("SELECT COALESCE(MAX(id), 0) FROM transmissions", [], |r| {
            r.get(0)
        })
    }

    /// Rows this run will process, up to `max_id`; runs on a read-only
    /// connection. 0 means there is nothing to do: the run ends at once,
    /// without walking the ids.
    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64>;

    /// Processes rows with `after < id <= upto` inside the engine's
    /// transaction; returns how many eligible rows it visited. `upkeep`
    /// says which rows the maintained counts and nodes already cover (a
    /// migration that removes or moves rows keeps those exact).
    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        upkeep: Upkeep,
    ) -> Result<i64, MigrationError>;

    /// Runs on the writer once every range is processed, in the
    /// transaction that records the run as done (a failure fails the run).
    fn finish(&self, conn: &Connection) -> Result<(), MigrationError> {
        let _ = conn;
        Ok(())
    }

    /// Runs on the writer when a run ends without finishing (cancelled or
    /// failed), and at boot for a row that ended so: undoes what the run
    /// keeps in step with live writes (an index build's triggers). Quick.
    fn abandon(&self, conn: &Connection) -> rusqlite::Result<()> {
        let _ = conn;
        Ok(())
    }
}

/// What a file needs of a migration (see [`Migration::needed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Run once; a done row stays done.
    Once,
    /// Needed now: registered, and run again even after a done run.
    Yes,
    /// Not needed: not registered when the file has no row for it.
    No,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file does not allow the work, in words for the operator.
    #[error("{0}")]
    Refused(String),
}

/// The migrations this build knows, in the order they run.
pub fn registry() -> Vec<Arc<dyn Migration>> {
    let mut list: Vec<Arc<dyn Migration>> = vec![
        // Merges first: the counts and nodes backfills then see one row
        // per packet and per sighting.
        Arc::new(dedup::ObservationsDedup),
        Arc::new(rehash::HashRehash),
    ];
    // Indexes next, so the backfills and every read after them have them.
    list.extend(
        crate::db::schema::INDEXES
            .iter()
            .map(|spec| Arc::new(index_build::IndexBuild::new(spec)) as Arc<dyn Migration>),
    );
    list.extend([
        Arc::new(last_seen::TxLastSeenBackfill) as Arc<dyn Migration>,
        Arc::new(from_pubkey::FromPubkeyBackfill::default()),
        Arc::new(counts::CountsBackfill),
        Arc::new(nodes::NodesBackfill::default()),
        Arc::new(regions::NodeRegions),
    ]);
    list
}

/// What progress observers are told after every chunk and status change.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub name: String,
    pub status: shared::migration::MigrationStatus,
    pub rows_processed: i64,
    pub rows_total: i64,
    pub batch: i64,
    pub chunk: Option<std::time::Duration>,
}

/// Told every [`Progress`] (metrics, the CLI's bars).
pub type Observer = Box<dyn Fn(&Progress) + Send>;

/// Why an operator control was not applied.
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

/// Whether `name` is a migration of this build (rows of other names belong
/// to another program, such as CoreScope).
pub fn is_registered(name: &str) -> bool {
    registry().iter().any(|m| m.name() == name)
}
