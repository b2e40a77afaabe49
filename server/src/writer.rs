//! The writer: one thread owns the only read-write connection and serves a
//! queue of commands — ingest requests, bookkeeping closures and, between
//! them, units of background work (online-migration chunks).
//!
//! Scheduling: the thread drains everything queued, runs all ingest it found
//! as one group commit (one transaction, one savepoint per request so each
//! request is all-or-nothing), then runs at most one background unit, then
//! drains again. Ingest therefore waits for at most one unit (a few ms, by
//! the unit's time budget) and is never starved; background work is never
//! starved either, as it gets one unit per drain however busy ingest is,
//! and one drain commits at most [`MAX_GROUP`] requests.
//!
//! The thread never dies of one bad command: every job, group commit and
//! background unit runs under `catch_unwind`, a transaction left open by a
//! panic is rolled back, and an SQLite error fails only the requests it
//! touched, with a typed [`WriteError`] (a full disk, a lock held by another
//! process). If the thread ends anyway, [`WriterHealth`] says so with the
//! reason, so the server reports `ready: false` and exits for its supervisor
//! to restart it, never living on unable to write.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use shared::api::IngestResponse;
use tokio::sync::{oneshot, watch};

use crate::db::{self, Fault};
use crate::ingest::{self, Sighting};
use crate::migrate::{Engine, Upkeep};

/// How many commands may wait in the queue before senders are slowed down.
pub(crate) const QUEUE_CAPACITY: usize = 4096;

/// How many sightings may wait for the writer at once, across all ingest
/// requests: what bounds the queue's memory (a validated sighting is well
/// under 1 KiB), whatever the request sizes. A sender that finds no room
/// waits (MQTT: its messages stay unacknowledged) or is refused (HTTP: 503).
pub const QUEUE_SIGHTINGS: usize = 20_000;

/// Most ingest requests committed in one group before the engine gets its
/// next chunk: the bound on how long sustained ingest can keep a migration off
/// the writer.
pub(crate) const MAX_GROUP: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// `SQLITE_FULL`: nothing of the request was stored.
    #[error("the database disk is full: {0}")]
    DiskFull(rusqlite::Error),
    /// Another process held the write lock past the busy timeout.
    #[error("the database is locked by another process: {0}")]
    Busy(rusqlite::Error),
    #[error("database write failed: {0}")]
    Sqlite(rusqlite::Error),
    /// The write panicked inside meshscope (a bug); nothing was stored.
    #[error("the write failed inside meshscope: {0}")]
    Panicked(String),
    #[error("the writer has stopped: {0}")]
    Stopped(String),
    /// No room for the request's sightings in the queue in time.
    #[error("the ingest queue is full")]
    QueueFull,
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        match db::fault(&e) {
            Fault::DiskFull => WriteError::DiskFull(e),
            Fault::Busy => WriteError::Busy(e),
            Fault::Other => WriteError::Sqlite(e),
        }
    }
}

impl WriteError {
    /// A copy for answering several requests with one failure.
    fn duplicate(&self) -> WriteError {
        let same = |e: &rusqlite::Error| match e {
            rusqlite::Error::SqliteFailure(code, msg) => {
                rusqlite::Error::SqliteFailure(*code, msg.clone())
            }
            other => rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(other.to_string()),
            ),
        };
        match self {
            WriteError::DiskFull(e) => WriteError::DiskFull(same(e)),
            WriteError::Busy(e) => WriteError::Busy(same(e)),
            WriteError::Sqlite(e) => WriteError::Sqlite(same(e)),
            WriteError::Panicked(m) => WriteError::Panicked(m.clone()),
            WriteError::Stopped(m) => WriteError::Stopped(m.clone()),
            WriteError::QueueFull => WriteError::QueueFull,
        }
    }

    /// Whether the error concerns the whole database, not one request's
    /// rows: a full disk or a lock held elsewhere, which clear by themselves.
    /// The whole group fails with it, and MQTT keeps retrying it.
    pub(crate) fn whole_database(&self) -> bool {
        matches!(self, WriteError::DiskFull(_) | WriteError::Busy(_))
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, WriteError>>;

/// A closure run on the writer connection, in queue order.
pub(crate) type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A closure run on the writer connection with the migration engine.
pub(crate) type EngineJob = Box<dyn FnOnce(&mut Connection, &mut Engine) + Send>;

pub enum Command {
    Ingest {
        items: Vec<Sighting>,
        now_secs: i64,
        enqueued: Instant,
        reply: Reply<IngestResponse>,
        /// The request's room in [`QUEUE_SIGHTINGS`], freed once answered.
        room: tokio::sync::OwnedSemaphorePermit,
    },
    Exec(Job),
    /// A closure that also reaches the migration engine (controls, status).
    Engine(EngineJob),
    Shutdown,
}

/// Observes ingest queue waits (for metrics); called on the writer thread.
pub(crate) type WaitObserver = Box<dyn Fn(Duration) + Send>;

/// Whether the writer thread is serving, and why not when it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterState {
    Running,
    /// Stopped on request (shutdown).
    Stopped,
    /// Ended by a failure; the process cannot write any more.
    Dead(String),
}

/// The writer thread's state, watched by healthz and `serve`.
#[derive(Clone)]
pub struct WriterHealth(watch::Sender<WriterState>);

impl Default for WriterHealth {
    fn default() -> Self {
        WriterHealth(watch::Sender::new(WriterState::Running))
    }
}

impl WriterHealth {
    pub fn state(&self) -> WriterState {
        self.0.borrow().clone()
    }

    pub(crate) fn is_running(&self) -> bool {
        *self.0.borrow() == WriterState::Running
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<WriterState> {
        self.0.subscribe()
    }

    fn set(&self, s: WriterState) {
        self.0.send_replace(s);
    }

    /// The error a request gets once the writer is gone.
    fn stopped_error(&self) -> WriteError {
        match self.state() {
            WriterState::Dead(reason) => WriteError::Stopped(format!(
                "the database writer failed ({reason}); meshscope is exiting so its \
                 supervisor can restart it"
            )),
            _ => WriteError::Stopped("the server is shutting down".into()),
        }
    }
}

/// Handle to the writer thread.
pub struct Writer {
    tx: flume::Sender<Command>,
    /// Rows another program added, noticed by a write (see `db::marks`).
    foreign: crate::db::marks::Notice,
    room: std::sync::Arc<tokio::sync::Semaphore>,
    join: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<crate::db::Checkpointer>>,
    health: WriterHealth,
}

impl Writer {
    /// Starts the writer thread on `conn`, holding `lock` until it exits.
    pub fn spawn(
        conn: Connection,
        lock: Option<crate::db::WriterLock>,
        engine: Engine,
        on_wait: Option<WaitObserver>,
        feed: Option<crate::mesh::FeedSink>,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = flume::bounded(QUEUE_CAPACITY);
        let health = WriterHealth::default();
        let thread_health = health.clone();
        let foreign = crate::db::marks::Notice::default();
        let thread_foreign = foreign.clone();
        let join = std::thread::Builder::new()
            .name("meshscope-writer".into())
            .spawn(move || {
                let ended = catch_unwind(AssertUnwindSafe(|| {
                    run(
                        conn,
                        &rx,
                        engine,
                        on_wait.as_ref(),
                        &thread_foreign,
                        feed.as_ref(),
                    );
                }));
                match ended {
                    Ok(()) => thread_health.set(WriterState::Stopped),
                    Err(p) => {
                        // The state first: healthz and `serve` must learn it
                        // whatever happens to the log line.
                        let msg = crate::panics::message(&*p);
                        thread_health.set(WriterState::Dead(format!("writer panicked: {msg}")));
                        let _ = catch_unwind(|| {
                            tracing::error!(panic = %msg, "the writer thread panicked and stopped; \
                                meshscope cannot write any more");
                        });
                    }
                }
                // The writer role ends with the writer thread.
                drop(lock);
            })?;
        Ok(Writer {
            tx,
            foreign,
            room: std::sync::Arc::new(tokio::sync::Semaphore::new(QUEUE_SIGHTINGS)),
            join: Mutex::new(Some(join)),
            checkpointer: Mutex::new(None),
            health,
        })
    }

    /// Hands WAL checkpoints to `c` (the writer connection must have
    /// `wal_autocheckpoint=0`); it is stopped after the writer on shutdown.
    pub(crate) fn set_checkpointer(&self, c: crate::db::Checkpointer) {
        if let Ok(mut slot) = self.checkpointer.lock() {
            *slot = Some(c);
        }
    }

    pub fn health(&self) -> &WriterHealth {
        &self.health
    }

    /// Where writes run through [`Writer::exec`] note rows another program
    /// added (see `db::marks::check`).
    pub(crate) fn foreign_notice(&self) -> crate::db::marks::Notice {
        self.foreign.clone()
    }

    /// Queues `cmd` and waits for its answer on `rx`.
    async fn request<T>(
        &self,
        cmd: Command,
        rx: oneshot::Receiver<Result<T, WriteError>>,
    ) -> Result<T, WriteError> {
        if self.tx.send_async(cmd).await.is_err() {
            return Err(self.gone().await);
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.gone().await),
        }
    }

    /// The error for a request the writer will never answer. A reply lost
    /// while the thread still reads as running means it is ending right now
    /// (a panic unwinding); wait a moment for it to say why.
    async fn gone(&self) -> WriteError {
        let mut state = self.health.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            state.wait_for(|s| *s != WriterState::Running),
        )
        .await;
        self.health.stopped_error()
    }

    /// Queues one ingest request and waits for its result. Waits for room
    /// when the queue is full (backpressure) rather than dropping.
    pub async fn ingest(
        &self,
        items: Vec<Sighting>,
        now_secs: i64,
    ) -> Result<IngestResponse, WriteError> {
        let n = room_for(&items);
        let room = self
            .room
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| WriteError::Stopped("the server is shutting down".into()))?;
        self.queue(items, now_secs, room).await
    }

    /// [`Writer::ingest`], refused with [`WriteError::QueueFull`] when the
    /// queue has no room for the sightings within `wait`.
    pub async fn try_ingest(
        &self,
        items: Vec<Sighting>,
        now_secs: i64,
        wait: Duration,
    ) -> Result<IngestResponse, WriteError> {
        let n = room_for(&items);
        let room = match tokio::time::timeout(wait, self.room.clone().acquire_many_owned(n)).await {
            Ok(Ok(room)) => room,
            Ok(Err(_)) => return Err(WriteError::Stopped("the server is shutting down".into())),
            Err(_) => return Err(WriteError::QueueFull),
        };
        self.queue(items, now_secs, room).await
    }

    async fn queue(
        &self,
        items: Vec<Sighting>,
        now_secs: i64,
        room: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<IngestResponse, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.request(
            Command::Ingest {
                items,
                now_secs,
                enqueued: Instant::now(),
                reply,
                room,
            },
            rx,
        )
        .await
    }

    /// Runs `f` on the writer connection, in queue order, and returns its
    /// result; a panic in `f` is an error, not the end of the writer.
    pub async fn exec<T, F>(&self, f: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, WriteError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let r = catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|p| Err(WriteError::Panicked(crate::panics::message(&*p))));
            let _ = reply.send(r);
        });
        self.request(Command::Exec(job), rx).await
    }

    /// Runs `f` on the writer thread with the engine, in queue order.
    pub async fn with_engine<T, F>(&self, f: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &mut Engine) -> T + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(move |conn: &mut Connection, engine: &mut Engine| {
            let r = catch_unwind(AssertUnwindSafe(|| f(conn, engine)))
                .map_err(|p| WriteError::Panicked(crate::panics::message(&*p)));
            let _ = reply.send(r);
        });
        self.request(Command::Engine(job), rx).await
    }

    /// Asks the thread to finish what is queued, stop background work
    /// cleanly, and exit; waits for it.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
        let handle = self.join.lock().map(|mut j| j.take()).unwrap_or(None);
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("writer thread panicked");
            }
        }
        let cp = self
            .checkpointer
            .lock()
            .map(|mut c| c.take())
            .unwrap_or(None);
        if let Some(mut cp) = cp {
            cp.stop();
        }
    }
}

/// The room a request takes in [`QUEUE_SIGHTINGS`].
fn room_for(items: &[Sighting]) -> u32 {
    items.len().clamp(1, QUEUE_SIGHTINGS) as u32
}

struct PendingIngest {
    items: Vec<Sighting>,
    now_secs: i64,
    reply: Reply<IngestResponse>,
    _room: tokio::sync::OwnedSemaphorePermit,
}

/// A fault injected on purpose by tests (debug builds only): with
/// `MESHSCOPE_TEST_FAULT=writer-panic`, the writer loop itself panics on the
/// first ingest request, outside every per-command guard, as a bug there
/// would.
fn injected_writer_panic() -> bool {
    cfg!(debug_assertions)
        && std::env::var("MESHSCOPE_TEST_FAULT").is_ok_and(|v| v == "writer-panic")
}

/// How often an idle writer looks whether another program wrote the file.
const FOREIGN_POLL: Duration = Duration::from_secs(1);

fn run(
    mut conn: Connection,
    rx: &flume::Receiver<Command>,
    mut engine: Engine,
    on_wait: Option<&WaitObserver>,
    foreign: &crate::db::marks::Notice,
    feed: Option<&crate::mesh::FeedSink>,
) {
    let fault = injected_writer_panic();
    let mut batch: Vec<PendingIngest> = Vec::new();
    // A chunk that overruns its budget while commands wait is stopped (see
    // `Engine::set_contention`).
    let queued = rx.clone();
    engine.set_contention(std::sync::Arc::new(move || !queued.is_empty()));
    let mut version = crate::db::marks::data_version(&conn).ok();
    loop {
        // Wait for the first command, or until background work is due (or,
        // idle, until it is time to look for another program's writes).
        let due = engine
            .next_due()
            .unwrap_or_else(|| Instant::now() + FOREIGN_POLL);
        let first = if due <= Instant::now() {
            rx.try_recv().ok()
        } else {
            match rx.recv_deadline(due) {
                Ok(cmd) => Some(cmd),
                Err(flume::RecvTimeoutError::Timeout) => None,
                Err(flume::RecvTimeoutError::Disconnected) => break,
            }
        };
        // Another connection committed: see whether it added rows.
        let now_version = crate::db::marks::data_version(&conn).ok();
        if now_version != version {
            version = now_version;
            match crate::db::marks::changed(&conn) {
                Ok(Some(what)) => foreign.note(what),
                Ok(None) => {}
                Err(e) => crate::ratelimit::warn_limited(
                    "marks",
                    &format!("cannot look for another program's writes: {e}"),
                ),
            }
        }
        // Drain everything queued now: ingest goes first, as one group.
        let mut stop = false;
        let mut next = first;
        while batch.len() < MAX_GROUP {
            let Some(cmd) = next.take().or_else(|| rx.try_recv().ok()) else {
                break;
            };
            match cmd {
                Command::Ingest {
                    items,
                    now_secs,
                    enqueued,
                    reply,
                    room,
                } => {
                    if fault {
                        panic!("injected writer fault (MESHSCOPE_TEST_FAULT=writer-panic)");
                    }
                    let waited = enqueued.elapsed();
                    if let Some(observe) = on_wait {
                        observe(waited);
                    }
                    engine.note_ingest_wait(waited);
                    batch.push(PendingIngest {
                        items,
                        now_secs,
                        reply,
                        _room: room,
                    });
                }
                Command::Exec(job) => {
                    commit_group(&mut conn, &mut batch, engine.upkeep(), foreign, feed);
                    guarded(&mut conn, "job", |c| job(c));
                }
                Command::Engine(job) => {
                    commit_group(&mut conn, &mut batch, engine.upkeep(), foreign, feed);
                    guarded(&mut conn, "engine job", |c| job(c, &mut engine));
                }
                Command::Shutdown => {
                    stop = true;
                    break;
                }
            }
        }
        commit_group(&mut conn, &mut batch, engine.upkeep(), foreign, feed);
        if let Some(what) = foreign.take() {
            guarded(&mut conn, "foreign writes", |c| {
                engine.foreign_writes(c, &what);
            });
        }
        if stop {
            break;
        }
        let failed = guarded(&mut conn, "migration unit", |c| {
            engine.run_due(c);
        });
        if let Some(msg) = failed {
            engine.fail_current(&conn, &format!("the engine panicked: {msg}"));
        }
    }
    // Answer whatever is still queued, then let background work stop cleanly.
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Command::Ingest {
                items,
                now_secs,
                reply,
                room,
                ..
            } => batch.push(PendingIngest {
                items,
                now_secs,
                reply,
                _room: room,
            }),
            Command::Exec(job) => {
                guarded(&mut conn, "job", |c| job(c));
            }
            Command::Engine(job) => {
                guarded(&mut conn, "engine job", |c| job(c, &mut engine));
            }
            Command::Shutdown => {}
        }
    }
    commit_group(&mut conn, &mut batch, engine.upkeep(), foreign, feed);
    guarded(&mut conn, "engine shutdown", |c| engine.shutdown(c));
    tracing::info!("writer stopped");
}

/// Runs `f` so that a panic in it neither ends the writer nor leaves a
/// transaction open; returns the panic message, if it panicked.
fn guarded(conn: &mut Connection, what: &str, f: impl FnOnce(&mut Connection)) -> Option<String> {
    let res = catch_unwind(AssertUnwindSafe(|| f(conn)));
    rollback_leftover(conn, what);
    match res {
        Ok(()) => None,
        Err(p) => {
            let msg = crate::panics::message(&*p);
            tracing::error!(what, panic = %msg, "a writer command panicked; the writer goes on");
            Some(msg)
        }
    }
}

/// A transaction still open after a command (it panicked, or an error left
/// it behind) would swallow every later write; roll it back.
fn rollback_leftover(conn: &Connection, what: &str) {
    if !conn.is_autocommit() {
        tracing::error!(
            what,
            "a writer command left a transaction open; rolling it back"
        );
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rollback after a failed command failed");
        }
    }
}

/// Commits all pending ingest requests in one transaction, each in its own
/// savepoint, and answers each request. A request whose rows fail is rolled
/// back alone; an error of the whole database (full disk, lock held
/// elsewhere) or a failed commit fails every request of the group with it.
fn commit_group(
    conn: &mut Connection,
    batch: &mut Vec<PendingIngest>,
    upkeep: Upkeep,
    foreign: &crate::db::marks::Notice,
    feed: Option<&crate::mesh::FeedSink>,
) {
    if batch.is_empty() {
        return;
    }
    let pending = std::mem::take(batch);
    let mut stored = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        apply_group(conn, &pending, upkeep, foreign, &mut stored)
    }));
    // Committed: the live feed hears of it (never waited on).
    if let (Some(feed), Ok(Ok(_))) = (feed, &outcome) {
        for s in stored {
            feed.send(s);
        }
    }
    rollback_leftover(conn, "ingest group");
    let results: Vec<Result<IngestResponse, WriteError>> = match outcome {
        Ok(Ok(results)) => results,
        Ok(Err(e)) => {
            crate::ratelimit::warn_limited(
                "ingest-group",
                &format!("ingest group of {} requests failed: {e}", pending.len()),
            );
            pending.iter().map(|_| Err(e.duplicate())).collect()
        }
        Err(p) => {
            let msg = crate::panics::message(&*p);
            tracing::error!(panic = %msg, requests = pending.len(), "ingest group panicked");
            pending
                .iter()
                .map(|_| Err(WriteError::Panicked(msg.clone())))
                .collect()
        }
    };
    for (p, r) in pending.into_iter().zip(results) {
        let _ = p.reply.send(r);
    }
}

fn apply_group(
    conn: &mut Connection,
    pending: &[PendingIngest],
    upkeep: Upkeep,
    foreign: &crate::db::marks::Notice,
    stored: &mut Vec<crate::mesh::Stored>,
) -> Result<Vec<Result<IngestResponse, WriteError>>, WriteError> {
    let mut results = Vec::with_capacity(pending.len());
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Rows another program added since meshscope's last write are noticed
    // before this group adds its own (see `db::marks`).
    crate::db::marks::check(&tx, foreign)?;
    for p in pending {
        let sp = tx.savepoint()?;
        let before = stored.len();
        match ingest::apply(&sp, &p.items, p.now_secs, upkeep, stored) {
            Ok(r) => {
                sp.commit()?;
                results.push(Ok(r));
            }
            Err(e) => {
                let e = WriteError::from(e);
                if e.whole_database() {
                    // The transaction is rolled back when `tx` drops.
                    return Err(e);
                }
                // Dropping the savepoint rolls this request back alone.
                drop(sp);
                stored.truncate(before);
                results.push(Err(e));
            }
        }
    }
    crate::db::marks::record(&tx)?;
    tx.commit()?;
    Ok(results)
}
