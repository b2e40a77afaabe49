//! `meshscope serve`: open the store, start the writer, serve HTTP and
//! subscribe to the configured MQTT brokers until SIGINT/SIGTERM, then stop
//! live ingest and the writer cleanly, in that order.
//!
//! If the writer thread dies (it should not: every command on it is
//! guarded), the process cannot store anything any more. It then reports
//! `ready: false` (healthz answers 503) for [`FATAL_GRACE`], so health
//! checks see it, and exits non-zero for its supervisor to restart it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::api::{self, AppState, Inner};
use crate::config::ServeConfig;
use crate::db;
use crate::migrate::{self, Engine, LiveStatus};
use crate::mqtt;
use crate::status::{self, StatusSource};
use crate::writer::{Writer, WriterState};

/// How long a server whose writer died keeps answering (healthz 503,
/// writes 503) before it exits.
pub(crate) const FATAL_GRACE: Duration = Duration::from_secs(2);

/// A running server's parts, for `serve` and for tests.
pub struct Parts {
    pub state: AppState,
    pub writer: Arc<Writer>,
    pub live: LiveStatus,
}

impl Parts {
    /// Lets the engine start migration work; `serve` calls this once HTTP
    /// answers, so boot never waits for a migration.
    pub async fn start_migrations(&self) -> anyhow::Result<()> {
        self.writer
            .with_engine(|_, engine| engine.set_enabled(true))
            .await?;
        Ok(())
    }

    /// Starts live ingest from the configured MQTT brokers (none: a no-op
    /// handle). Stop it with [`mqtt::Handle::shutdown`] before the writer.
    pub fn start_mqtt(&self, cfg: &ServeConfig) -> mqtt::Handle {
        mqtt::start(
            &cfg.mqtt,
            &cfg.db,
            &self.writer,
            &self.state.ingest_liveness,
        )
    }
}

/// Opens the database (writer first, then readers), registers pending
/// migrations, and starts the writer with the engine held until
/// [`Parts::start_migrations`].
pub fn build(cfg: &ServeConfig) -> anyhow::Result<Parts> {
    build_with(cfg, migrate::registry())
}

/// [`build`] with a chosen set of migrations (tests).
pub fn build_with(
    cfg: &ServeConfig,
    migrations: Vec<Arc<dyn migrate::Migration>>,
) -> anyhow::Result<Parts> {
    let lock = db::WriterLock::acquire(&cfg.db)?;
    let conn = db::open_writer_with(&cfg.db, cfg.durability)?;
    // Checkpoints run on their own thread (see db::Checkpointer), never inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let health = crate::health::DbHealth::for_db(&cfg.db);
    let checkpointer = db::Checkpointer::spawn(&cfg.db, health.clone())?;
    let readers = db::open_readers(&cfg.db, cfg.readers)?;
    let live = LiveStatus::default();
    crate::metrics::install();
    let mut engine = Engine::boot(
        &conn,
        migrations,
        cfg.engine.clone(),
        Some(readers.clone()),
        live.clone(),
    )
    .context("cannot read or register online migrations")?;
    if cfg.retention.is_on() {
        engine.set_retention(migrate::Schedule::Every(
            cfg.retention,
            migrate::retention::EVERY,
        ));
    }
    engine.add_observer(Box::new(crate::metrics::observe_migration));
    let mesh = crate::mesh::Mesh::default();
    let nodes_written = mesh.clone();
    engine.add_observer(Box::new(move |p: &migrate::Progress| {
        if p.name == migrate::nodes::NAME {
            nodes_written.nodes_changed();
        }
    }));
    engine.set_health(health.clone());
    engine.announce();
    let writer = Arc::new(
        Writer::spawn(
            conn,
            Some(lock),
            engine,
            Some(Box::new(crate::metrics::observe_ingest_wait)),
            Some(mesh.sink()),
        )
        .context("cannot start the writer thread")?,
    );
    writer.set_checkpointer(checkpointer);
    mesh.start(readers.clone())
        .context("cannot start the live feed thread")?;
    // Status reads (healthz, the banner) have a connection of their own, so
    // they never wait behind slow user queries for a pooled one.
    let status_reader = db::open_readers(&cfg.db, 1)?;
    let state = AppState::new(Inner {
        readers: readers.clone(),
        writer: writer.clone(),
        perf: api::perf::PerfRecorder::default(),
        started: Instant::now(),
        keys: cfg.keys.clone(),
        throttle: api::auth::Throttle::default(),
        limits: cfg.limits.clone(),
        event_streams: Arc::new(tokio::sync::Semaphore::new(cfg.limits.max_event_streams)),
        live_streams: Arc::new(tokio::sync::Semaphore::new(cfg.limits.max_event_streams)),
        mesh,
        map: cfg.map.clone(),
        ingest_slots: Arc::new(tokio::sync::Semaphore::new(api::INGEST_SLOTS)),
        dist: Some(cfg.dist.clone()),
        status: StatusSource::new(status_reader, live.clone(), status::DEFAULT_TTL),
        stats: Arc::new(crate::cache::SingleFlight::new(api::STATS_TTL, false)),
        region_stats: Default::default(),
        stats_full_scans: Arc::default(),
        healthz: api::rendered::RenderCache::new(status::DEFAULT_TTL),
        migration_list: api::rendered::RenderCache::new(status::DEFAULT_TTL),
        ingest_liveness: mqtt::Liveness::new(cfg.mqtt.iter().map(|s| s.name.as_str())),
        db_health: health,
        shutdown: tokio::sync::watch::Sender::new(false),
    });
    Ok(Parts {
        state,
        writer,
        live,
    })
}

/// The soft limit on open files of this process (Linux), if it can be read.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Descriptors kept free for the database, its WAL, logs and the broker
/// connections, beyond the HTTP connections.
const FILES_RESERVED: u64 = 64;

/// Lowers the connection cap to what the open-files limit allows, so a
/// flood of connections cannot leave the server unable to open its own
/// files (healthz failing with "Too many open files").
fn fit_connections_to_files(cfg: &mut ServeConfig) {
    if let Some(limit) = open_files_limit() {
        let room = limit.saturating_sub(FILES_RESERVED).max(1) as usize;
        if cfg.limits.max_connections > room {
            tracing::warn!(
                max_connections = cfg.limits.max_connections,
                open_files_limit = limit,
                lowered_to = room,
                "the open-files limit is too low for --max-connections; lowering it (raise the limit with ulimit -n or LimitNOFILE=)"
            );
            cfg.limits.max_connections = room;
        }
    }
}

pub async fn run(mut cfg: ServeConfig) -> anyhow::Result<()> {
    fit_connections_to_files(&mut cfg);
    let parts = build(&cfg)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read the bound address from this line.
    println!("meshscope listening on http://{addr}");
    tracing::info!(%addr, db = %cfg.db.display(), "serving");
    if cfg.keys.ingest.is_none() {
        if addr.ip().is_loopback() {
            tracing::info!("ingest is open (no key) on a loopback address");
        } else {
            tracing::warn!(%addr, "ingest is OPEN (no key) on a non-loopback address, as --allow-open-ingest asked");
        }
    }
    if !cfg.dist.join("index.html").is_file() {
        tracing::warn!(dist = %cfg.dist.display(), "dashboard not built; serving a placeholder page (run `cargo xtask dist`)");
    }
    tracing::info!(
        durability = cfg.durability.as_str(),
        "commits are acknowledged after the writer's sync"
    );
    let router = api::app(parts.state.clone());
    parts.start_migrations().await?;
    let mqtt = parts.start_mqtt(&cfg);
    let state = parts.state.clone();
    let mut writer_state = parts.writer.health().subscribe();
    crate::http::serve(listener, router, &cfg.limits, async move {
        tokio::select! {
            () = shutdown_signal() => {}
            dead = async { writer_state.wait_for(|s| matches!(s, WriterState::Dead(_))).await.is_ok() } => {
                if dead {
                    tracing::error!(grace_sec = FATAL_GRACE.as_secs(),
                        "the database writer is gone: reporting not ready, then exiting");
                    tokio::time::sleep(FATAL_GRACE).await;
                }
            }
        }
        // End the event streams: shutdown waits for open connections, and a
        // dashboard's stream never ends by itself.
        state.shutdown.send_replace(true);
    })
    .await;
    // Live ingest stops first, storing and acknowledging what it holds, so
    // the writer's last group commit includes it.
    tracing::info!("HTTP stopped; stopping live ingest, then the writer");
    mqtt.shutdown().await;
    let writer = parts.writer.clone();
    tokio::task::spawn_blocking(move || writer.shutdown()).await?;
    if let WriterState::Dead(reason) = parts.writer.health().state() {
        anyhow::bail!(
            "the database writer stopped ({reason}); exiting so a supervisor restarts meshscope"
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
