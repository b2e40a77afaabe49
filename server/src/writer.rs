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

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use shared::api::IngestResponse;
use tokio::sync::oneshot;

use crate::ingest::{self, Sighting};
use crate::migrate::Engine;

/// How many commands may wait in the queue before senders are slowed down.
pub const QUEUE_CAPACITY: usize = 4096;

/// Most ingest requests committed in one group before the engine gets its
/// next chunk: the bound on how long sustained ingest can keep a migration off
/// the writer.
pub const MAX_GROUP: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("database write failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the writer has stopped")]
    Stopped,
}

pub type Reply<T> = oneshot::Sender<Result<T, WriteError>>;

/// A closure run on the writer connection, in queue order.
pub type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A closure run on the writer connection with the migration engine.
pub type EngineJob = Box<dyn FnOnce(&mut Connection, &mut Engine) + Send>;

pub enum Command {
    Ingest {
        items: Vec<Sighting>,
        now_secs: i64,
        enqueued: Instant,
        reply: Reply<IngestResponse>,
    },
    Exec(Job),
    /// A closure that also reaches the migration engine (controls, status).
    Engine(EngineJob),
    Shutdown,
}

/// Observes ingest queue waits (for metrics); called on the writer thread.
pub type WaitObserver = Box<dyn Fn(Duration) + Send>;

/// Handle to the writer thread; cheap to clone the sender out of.
pub struct Writer {
    tx: flume::Sender<Command>,
    join: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<crate::db::Checkpointer>>,
}

impl Writer {
    /// Starts the writer thread on `conn`, holding `lock` until it exits.
    pub fn spawn(
        conn: Connection,
        lock: Option<crate::db::WriterLock>,
        engine: Engine,
        on_wait: Option<WaitObserver>,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = flume::bounded(QUEUE_CAPACITY);
        let join = std::thread::Builder::new()
            .name("meshscope-writer".into())
            .spawn(move || {
                run(conn, &rx, engine, on_wait.as_ref());
                // The writer role ends with the writer thread.
                drop(lock);
            })?;
        Ok(Writer {
            tx,
            join: Mutex::new(Some(join)),
            checkpointer: Mutex::new(None),
        })
    }

    /// Hands WAL checkpoints to `c` (the writer connection must have
    /// `wal_autocheckpoint=0`); it is stopped after the writer on shutdown.
    pub fn set_checkpointer(&self, c: crate::db::Checkpointer) {
        if let Ok(mut slot) = self.checkpointer.lock() {
            *slot = Some(c);
        }
    }

    pub fn sender(&self) -> flume::Sender<Command> {
        self.tx.clone()
    }

    /// Queues one ingest request and waits for its result. Waits for room
    /// when the queue is full (backpressure) rather than dropping.
    pub async fn ingest(
        &self,
        items: Vec<Sighting>,
        now_secs: i64,
    ) -> Result<IngestResponse, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send_async(Command::Ingest {
                items,
                now_secs,
                enqueued: Instant::now(),
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }

    /// Runs `f` on the writer connection, in queue order, and returns its result.
    pub async fn exec<T, F>(&self, f: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, WriteError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.tx
            .send_async(Command::Exec(job))
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }

    /// Runs `f` on the writer thread with the engine, in queue order.
    pub async fn with_engine<T, F>(&self, f: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &mut Engine) -> T + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(move |conn: &mut Connection, engine: &mut Engine| {
            let _ = reply.send(f(conn, engine));
        });
        self.tx
            .send_async(Command::Engine(job))
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)
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

struct PendingIngest {
    items: Vec<Sighting>,
    now_secs: i64,
    reply: Reply<IngestResponse>,
}

fn run(
    mut conn: Connection,
    rx: &flume::Receiver<Command>,
    mut engine: Engine,
    on_wait: Option<&WaitObserver>,
) {
    let mut batch: Vec<PendingIngest> = Vec::new();
    loop {
        // Wait for the first command, or until background work is due.
        let first = match engine.next_due() {
            Some(due) if due <= Instant::now() => rx.try_recv().ok(),
            Some(due) => match rx.recv_deadline(due) {
                Ok(cmd) => Some(cmd),
                Err(flume::RecvTimeoutError::Timeout) => None,
                Err(flume::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(cmd) => Some(cmd),
                Err(_) => break,
            },
        };
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
                } => {
                    if let Some(observe) = on_wait {
                        observe(enqueued.elapsed());
                    }
                    batch.push(PendingIngest {
                        items,
                        now_secs,
                        reply,
                    });
                }
                Command::Exec(job) => {
                    commit_group(&mut conn, &mut batch);
                    job(&mut conn);
                }
                Command::Engine(job) => {
                    commit_group(&mut conn, &mut batch);
                    job(&mut conn, &mut engine);
                }
                Command::Shutdown => {
                    stop = true;
                    break;
                }
            }
        }
        commit_group(&mut conn, &mut batch);
        if stop {
            break;
        }
        if engine.next_due().is_some_and(|due| due <= Instant::now()) {
            engine.run_unit(&mut conn);
        }
    }
    // Answer whatever is still queued, then let background work stop cleanly.
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Command::Ingest {
                items,
                now_secs,
                reply,
                ..
            } => batch.push(PendingIngest {
                items,
                now_secs,
                reply,
            }),
            Command::Exec(job) => job(&mut conn),
            Command::Engine(job) => job(&mut conn, &mut engine),
            Command::Shutdown => {}
        }
    }
    commit_group(&mut conn, &mut batch);
    engine.shutdown(&mut conn);
    tracing::info!("writer stopped");
}

/// Commits all pending ingest requests in one transaction, each in its own
/// savepoint, and answers each request.
fn commit_group(conn: &mut Connection, batch: &mut Vec<PendingIngest>) {
    if batch.is_empty() {
        return;
    }
    let pending = std::mem::take(batch);
    let mut results: Vec<Result<IngestResponse, WriteError>> = Vec::with_capacity(pending.len());
    let outcome = (|| -> Result<(), rusqlite::Error> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for p in &pending {
            let sp = tx.savepoint()?;
            match ingest::apply(&sp, &p.items, p.now_secs) {
                Ok(r) => {
                    sp.commit()?;
                    results.push(Ok(r));
                }
                Err(e) => {
                    // Dropping the savepoint rolls this request back alone.
                    drop(sp);
                    results.push(Err(WriteError::Sqlite(e)));
                }
            }
        }
        tx.commit()
    })();
    match outcome {
        Ok(()) => {
            for (p, r) in pending.into_iter().zip(results) {
                let _ = p.reply.send(r);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, requests = pending.len(), "ingest group commit failed");
            let msg = e.to_string();
            for p in pending {
                let _ = p
                    .reply
                    .send(Err(WriteError::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                        Some(format!("group commit failed: {msg}")),
                    ))));
            }
        }
    }
}
