//! SQLite access: the one read-write connection (owned by the writer thread)
//! and the pool of read-only WAL connections the HTTP readers use.
//!
//! The writer is opened first: it sets the pragmas and brings the schema up
//! to date. Readers are opened afterwards, read-only, and refuse a file whose
//! schema version is not the one this code was built for.

pub mod marks;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

pub(crate) type ReaderPool = r2d2::Pool<SqliteConnectionManager>;
pub type Reader = r2d2::PooledConnection<SqliteConnectionManager>;

/// How long a connection waits on a lock held by another connection before
/// giving up with SQLITE_BUSY.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What kind of failure an SQLite error is, for callers that must tell a
/// condition that clears by itself (a full disk, a lock held by another
/// process) from a real failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `SQLITE_FULL`: the disk (or `max_page_count`) is full.
    DiskFull,
    /// `SQLITE_BUSY` / `SQLITE_LOCKED`: another connection holds a lock
    /// longer than [`BUSY_TIMEOUT`].
    Busy,
    Other,
}

/// Classifies an SQLite error.
pub fn fault(e: &rusqlite::Error) -> Fault {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => Fault::DiskFull,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Fault::Busy,
        _ => Fault::Other,
    }
}

/// A condition that clears by itself, in words for the operator (every
/// job and status line says it the same way); `None` for an error that is a
/// real failure.
pub fn fault_words(e: &rusqlite::Error) -> Option<&'static str> {
    match fault(e) {
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

/// How hard a commit is made durable before it is acknowledged
/// (`--durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=NORMAL`: every commit survives a crash of meshscope or
    /// of the machine's processes; a power cut or kernel crash may lose the
    /// last commits (never corrupt the file).
    Normal,
    /// `synchronous=FULL`: every acknowledged commit is on disk (fsync per
    /// commit), also across a power cut.
    #[default]
    Full,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Normal => "normal",
            Durability::Full => "full",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this meshscope supports \
         ({supported}); upgrade meshscope or point --db at another file"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("schema upgrade of {path} failed at step {step} ({name}): {source}")]
    Upgrade {
        path: PathBuf,
        step: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("cannot open read-only connections to {path}: {source}")]
    Pool { path: PathBuf, source: r2d2::Error },
    #[error(
        "another meshscope process holds the writer role on {path} (lock file {lock}); \
         stop it first, or point --db at another file"
    )]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("cannot lock {lock}: {source}")]
    Lock {
        lock: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The writer role on a database file, held by exactly one process: an
/// exclusive OS lock on `<db>.lock`, released when dropped (or when the
/// process dies, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct WriterLock {
    _file: std::fs::File,
}

impl WriterLock {
    pub fn acquire(db: &Path) -> Result<WriterLock, DbError> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let lock = PathBuf::from(format!("{}.lock", db.display()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| DbError::Lock {
                lock: lock.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DbError::Locked {
                path: db.to_path_buf(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(DbError::Lock { lock, source }),
        }
    }
}

/// Opens (creating if needed) the read-write connection and upgrades the
/// schema, with the default durability.
pub fn open_writer(path: &Path) -> Result<Connection, DbError> {
    open_writer_with(path, Durability::default())
}

/// Opens (creating if needed) the read-write connection and upgrades the schema.
pub(crate) fn open_writer_with(path: &Path, durability: Durability) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| DbError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    set_writer_pragmas(&conn, durability)?;
    schema::upgrade(&mut conn, path)?;
    // WAL lets readers run alongside the one writer; the setting is stored
    // in the file, so it is made only once the upgrade committed: a start
    // that fails leaves the file's journal mode as it was.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(conn)
}

/// How soon the checkpointer starts a checkpoint the writer asks for.
const CHECKPOINT_SLICE: Duration = Duration::from_millis(2);
/// How long a background job waits for the checkpointer before the
/// restart is put off.
const WAL_RESTART_PATIENCE: Duration = Duration::from_secs(2);
/// How often the scheduler looks again while it waits.
pub(crate) const WAL_WAIT: Duration = Duration::from_millis(3);
/// After a restart readers kept from happening, the next try waits this long.
const WAL_RETRY: Duration = Duration::from_millis(100);
/// How often the checkpointer looks at the WAL.
pub(crate) const CHECKPOINT_POLL: Duration = Duration::from_millis(250);
/// It checkpoints once the WAL holds this much, or when the last checkpoint
/// is this old: batching means a page changed by many commits (a hot index
/// page during a backfill) is copied back once, not once per commit.
pub(crate) const CHECKPOINT_WAL_BYTES: u64 = 16 * 1024 * 1024;
pub(crate) const CHECKPOINT_MAX_AGE: Duration = Duration::from_secs(2);
/// With at least this much WAL not yet checkpointed at the last look...
const CHECKPOINT_BUSY_BYTES: u64 = 4 * 1024 * 1024;
/// ...the checkpointer looks again this soon.
const CHECKPOINT_BUSY_POLL: Duration = Duration::from_millis(50);

/// Keeps the WAL file under `limit` bytes while background jobs write; the
/// scheduler asks before every unit, and holds the job (never ingest) while
/// it answers `true`.
///
/// The checkpointer copies frames back as fast as they come, but SQLite
/// only starts the WAL over when a write begins with every frame copied and
/// no reader on an old snapshot, and one chunk after another never leaves
/// that moment: unbounded, a legacy file of 20,000 packets grew a 609 MB
/// WAL through its backfills and a retention run (`tests/api/wal.rs`). So
/// once the file holds more than half of `limit`, the job holds back while
/// the checkpointer, asked at once, copies the frames left; then the writer
/// runs a RESTART checkpoint, which has almost nothing left to copy, waits
/// at most `wait` (one budget) for readers still on old frames, and starts
/// the WAL over (the next commit cuts the file to a quarter of `limit`). A reader that stays longer makes it try again before
/// the next unit. If the checkpointer does not answer within
/// [`WAL_RESTART_PATIENCE`], the restart is put off (the writer never copies
/// a backlog itself: ingest would wait behind it). Its hold is
/// measured (`DbHealth::wal`). `state` is the scheduler's memory of the
/// request in flight.
pub(crate) fn bound_wal(
    conn: &Connection,
    health: &crate::health::DbHealth,
    limit: u64,
    wait: Duration,
    state: &mut WalRestart,
) -> bool {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else {
        return false;
    };
    let wal = format!("{path}-wal");
    let bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    health.record_wal_size(bytes);
    if limit == 0 || bytes <= limit / 2 {
        state.asked = None;
        return false;
    }
    if state
        .quiet_until
        .is_some_and(|t| t > std::time::Instant::now())
    {
        return false;
    }
    let asked = &mut state.asked;
    match *asked {
        None => {
            *asked = Some((health.checkpoints(), std::time::Instant::now()));
            health.request_checkpoint();
            return true;
        }
        Some((seq, since)) => {
            // A checkpoint since the request copied all but what ingest
            // committed meanwhile.
            let copied = health.checkpoints() > seq;
            if !copied && since.elapsed() < WAL_RESTART_PATIENCE {
                return true;
            }
            if !copied {
                // Copying the backlog here would hold ingest behind it (a
                // fallback that did had ingest p99 at 204 ms at bench scale
                // 10): the job goes on, and the next try waits a while.
                crate::ratelimit::warn_limited(
                    "wal-restart",
                    "WAL restart put off: the checkpointer has not caught up",
                );
                health.record_wal_restart(Duration::ZERO, true);
                state.asked = None;
                state.quiet_until = Some(std::time::Instant::now() + WAL_RETRY);
                return false;
            }
        }
    }
    let started = std::time::Instant::now();
    // RESTART rather than TRUNCATE (which syncs: 21 ms at p99 here against
    // 9); the next commit after it cuts the file to `journal_size_limit`.
    let _ = conn.pragma_update(None, "journal_size_limit", (limit / 4) as i64);
    let _ = conn.busy_timeout(wait);
    let r = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    let took = started.elapsed();
    let busy = match r {
        Ok(b) => b != 0,
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => true,
        Err(e) => {
            crate::ratelimit::warn_limited(
                "wal-restart",
                &format!("WAL restart failed (the WAL grows until one succeeds): {e}"),
            );
            true
        }
    };
    health.record_wal_restart(took, busy);
    let after = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    health.record_wal_size(after);
    tracing::debug!(
        before = bytes,
        after,
        busy,
        took_ms = took.as_secs_f64() * 1000.0,
        "WAL restart"
    );
    // Busy: the job goes on, and the next try waits a while (waiting for
    // the checkpointer before every unit made retention 10x slower).
    state.asked = None;
    state.quiet_until = busy.then(|| std::time::Instant::now() + WAL_RETRY);
    false
}

/// The scheduler's memory of a WAL restart (see [`bound_wal`]): the
/// checkpoint asked for and when, and how long to leave the WAL alone after
/// a restart that readers kept from happening.
#[derive(Debug, Default)]
pub(crate) struct WalRestart {
    asked: Option<(u64, std::time::Instant)>,
    quiet_until: Option<std::time::Instant>,
}

/// Moves WAL checkpoints off the writer thread.
///
/// With SQLite's default, the commit that pushes the WAL past 1000 pages also
/// runs the checkpoint, including the fsync that `synchronous=NORMAL` does at
/// checkpoints — on a multi-GB file that single commit can take hundreds of
/// ms, and whatever ingest is queued behind it waits. Here the writer never
/// checkpoints (`wal_autocheckpoint=0`); this thread does, with PASSIVE
/// checkpoints that never block the writer or readers. Its connection runs
/// nothing but `PRAGMA wal_checkpoint`: it never writes rows, so the writer
/// thread remains the only writer of data.
pub(crate) struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

/// One look of the checkpointer: waits its poll, then checkpoints
/// (PASSIVE) when the WAL is big, the backlog long or the last checkpoint
/// old, and records the result in `health`.
fn checkpoint_once(
    conn: &Connection,
    health: &crate::health::DbHealth,
    wal: &Path,
    page_size: i64,
    last: &mut std::time::Instant,
) {
    // A backlog building up (a migration writing flat out) is looked at
    // more often, so it stays short.
    let poll = if health.wal_backlog_bytes() >= CHECKPOINT_BUSY_BYTES {
        CHECKPOINT_BUSY_POLL
    } else {
        CHECKPOINT_POLL
    };
    // Slept in slices, so a checkpoint the writer asks for starts at once.
    let until = std::time::Instant::now() + poll;
    let mut asked = false;
    while !asked && std::time::Instant::now() < until {
        std::thread::sleep(CHECKPOINT_SLICE.min(until - std::time::Instant::now()));
        asked = health.take_checkpoint_request();
    }
    let wal_bytes = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    health.record_wal_size(wal_bytes);
    if !asked
        && wal_bytes < CHECKPOINT_WAL_BYTES
        && health.wal_backlog_bytes() < CHECKPOINT_BUSY_BYTES
        && last.elapsed() < CHECKPOINT_MAX_AGE
    {
        return;
    }
    *last = std::time::Instant::now();
    let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match r {
        Ok((log, done)) => {
            health.record_checkpoint(log, done, page_size, crate::clock::now_ms());
            if log > 0 {
                tracing::trace!(wal_frames = log, checkpointed = done, "checkpoint");
            }
        }
        Err(e) => crate::ratelimit::warn_limited(
            "checkpoint",
            &format!("WAL checkpoint failed (the WAL keeps growing until one succeeds): {e}"),
        ),
    }
}

impl Checkpointer {
    /// Starts the thread; every checkpoint's result goes to `health` (the
    /// migration throttle's WAL signals).
    pub(crate) fn spawn(
        path: &Path,
        health: crate::health::DbHealth,
    ) -> Result<Checkpointer, DbError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| DbError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(Duration::from_millis(100))?;
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let join = std::thread::Builder::new()
            .name("meshscope-checkpoint".into())
            .spawn(move || {
                use std::sync::atomic::Ordering;
                let mut last = std::time::Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    // One look at a time under a guard: nothing that goes
                    // wrong in one (a full disk, a bug) ends the thread.
                    let looked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        checkpoint_once(&conn, &health, &wal, page_size, &mut last);
                    }));
                    if let Err(p) = looked {
                        let msg = crate::panics::message(&*p);
                        crate::ratelimit::warn_limited(
                            "checkpoint-panic",
                            &format!("the WAL checkpointer panicked ({msg}); it goes on"),
                        );
                        std::thread::sleep(CHECKPOINT_POLL);
                    }
                }
                // Leave a small WAL behind on a clean stop.
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                }
            })
            .map_err(|source| DbError::Lock {
                lock: path.to_path_buf(),
                source,
            })?;
        Ok(Checkpointer {
            stop,
            join: Some(join),
        })
    }

    /// Stops the thread after a last checkpoint; call after the writer stopped.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Pragmas for the writer, set outside any transaction.
fn set_writer_pragmas(conn: &Connection, durability: Durability) -> Result<(), rusqlite::Error> {
    // Another process (or a reader) may hold a lock briefly; wait instead of failing at once.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // What an acknowledged write survives (see `Durability`): FULL syncs the
    // WAL at every commit; NORMAL only at checkpoints.
    conn.pragma_update(None, "synchronous", durability.as_str())?;
    // observations.transmission_id references transmissions(id); enforce it on insert.
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Truncate the WAL back to 64 MiB after checkpoints so a long backfill cannot leave it huge.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(())
}

/// Opens the pool of read-only connections. Call after [`open_writer`].
pub(crate) fn open_readers(path: &Path, size: u32) -> Result<ReaderPool, DbError> {
    let manager = SqliteConnectionManager::file(path)
        .with_flags(
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_init(|c| {
            // Readers never block the writer in WAL; wait out a checkpoint's brief lock.
            c.busy_timeout(BUSY_TIMEOUT)?;
            let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if v != schema::CURRENT_VERSION {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
                    Some(format!(
                        "reader sees schema version {v}, expected {}",
                        schema::CURRENT_VERSION
                    )),
                ));
            }
            Ok(())
        });
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(|source| DbError::Pool {
            path: path.to_path_buf(),
            source,
        })
}

/// Names of the columns of `table` (empty when the table does not exist).
pub fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let cols = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(cols)
}

/// Whether `table` has an index whose key columns are exactly `cols`, in order,
/// whatever it is called (CoreScope files name their indexes differently).
/// Expression columns (like `COALESCE(path_json,'')`) show as `None` and match `""`.
pub(crate) fn has_index_on(
    conn: &Connection,
    table: &str,
    cols: &[&str],
) -> rusqlite::Result<bool> {
    let mut list = conn.prepare("SELECT name FROM pragma_index_list(?1)")?;
    let names = list
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut info = conn.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
    for name in names {
        let key = info
            .query_map([&name], |r| r.get::<_, Option<String>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let key: Vec<String> = key.into_iter().map(|c| c.unwrap_or_default()).collect();
        if key.len() == cols.len() && key.iter().zip(cols).all(|(a, b)| a == b) {
            return Ok(true);
        }
    }
    Ok(false)
}
