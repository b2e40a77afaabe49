//! `meshscope bench`: latency under backfill, side by side, in one run.
//!
//! Per scale, one legacy file is generated once (cached) and copied fresh
//! for every strategy. Each strategy runs inside a real meshscope server
//! (same writer thread, reader pool and HTTP stack, on its own runtime)
//! while the same load runs against it over loopback HTTP: reader clients
//! looping `/api/packets?limit=50`, `/api/stats` and `/api/healthz`, and an
//! open-loop ingest of one new packet every 20 ms. Strategies:
//! `naive` (the one-statement UPDATE as one writer command), `fixed-sleep`
//! (5,000-row chunks with a 100 ms sleep), `meshscope` (the engine with its
//! defaults) and `idle` (no backfill, as long as the slowest strategy).
//! Retention runs the same way on the file with its migrations done and a
//! cutoff with 10% of the sightings older: `retention-delete` (one DELETE
//! of the old sightings and one of the packets they leave empty, in one
//! writer transaction, counts not kept) against `retention` (the chunked
//! job, counts kept); both must leave the same rows.
//! Only requests sent while the backfill runs count; every strategy gets the
//! same load and the same lead-in, and none gets a warm-up of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use super::seed::{self, SeedOptions};
use meshscope::config::ServeConfig;
use meshscope::latency::Summary;
use meshscope::migrate::{last_seen, Cutoffs, EngineConfig, Schedule};
use meshscope::serve;
use meshscope::settings::{CommandLine, ServeArgs};

pub(crate) const READ_ENDPOINTS: [&str; 3] = ["/api/packets", "/api/stats", "/api/healthz"];
const READ_URLS: [&str; 3] = ["/api/packets?limit=50", "/api/stats", "/api/healthz"];
/// Reader clients per endpoint, each looping with a short pause.
const CLIENTS_PER_ENDPOINT: usize = 2;
const READER_PAUSE: Duration = Duration::from_millis(10);
const INGEST_EVERY: Duration = Duration::from_millis(20);
const LEAD_IN: Duration = Duration::from_millis(500);
const TAIL: Duration = Duration::from_millis(300);
const FIXED_CHUNK: i64 = 5_000;
const FIXED_SLEEP: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub(crate) struct BenchOptions {
    pub(crate) scale: u32,
    pub(crate) smoke: bool,
    pub(crate) herd: bool,
    /// Strategies to run beside idle (empty: all).
    pub(crate) only: Vec<String>,
    pub(crate) out: PathBuf,
    pub(crate) cache: PathBuf,
    /// What the strategies' servers run with.
    pub(crate) durability: meshscope::db::Durability,
}

/// Chunk hold times: `n` chunks, p50/p99/max in ms, how many were stopped
/// past their budget (rolled back and retried smaller).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChunkHoldSummary {
    pub(crate) n: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) interrupted: u64,
    /// The budget they are held to.
    pub(crate) budget_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StrategyResult {
    pub(crate) name: String,
    pub(crate) backfill_wall_sec: Option<f64>,
    pub(crate) wall_ratio_to_naive: Option<f64>,
    /// `retention`'s wall time over `retention-delete`'s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) wall_ratio_to_delete: Option<f64>,
    /// The online index build's wall time over one `CREATE INDEX`'s.
    #[serde(default)]
    pub(crate) wall_ratio_to_create: Option<f64>,
    pub(crate) rows_updated: i64,
    pub(crate) correct: bool,
    pub(crate) orphans_touched: i64,
    pub(crate) wal_peak_bytes: u64,
    pub(crate) ingest: Summary,
    pub(crate) ingest_errors: u64,
    pub(crate) readers: BTreeMap<String, Summary>,
    pub(crate) reader_p99_ratio_to_idle: BTreeMap<String, f64>,
    pub(crate) reader_errors: u64,
    /// How long each chunk held the writer (strategies with chunks).
    pub(crate) chunk_hold_ms: Option<ChunkHoldSummary>,
    /// The engine's pre-flight estimate of the run, and actual / estimate.
    pub(crate) estimated_sec: Option<f64>,
    pub(crate) actual_to_estimate: Option<f64>,
    /// The estimate as refined by the run's first chunks (the last shown).
    #[serde(default)]
    pub(crate) refined_estimate_sec: Option<f64>,
    #[serde(default)]
    pub(crate) actual_to_refined: Option<f64>,
    /// (seconds since the window opened, latency ms) of every ingest request.
    #[serde(skip)]
    pub(crate) ingest_timeline: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HerdResult {
    /// What generated the load: `wrk` in its own process when installed,
    /// else clients inside the bench process.
    pub(crate) generator: String,
    pub(crate) clients: usize,
    pub(crate) seconds: f64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) status_db_reads: u64,
    pub(crate) status_db_reads_per_ttl: f64,
    pub(crate) target_p99_ms: f64,
    /// p99 and status reads per TTL within their targets, no errors, and
    /// the backfill still running when the herd ended.
    pub(crate) met: bool,
    pub(crate) backfill_outlasted_herd: bool,
}

/// Ingest with one `--durability` mode, on an empty file, no backfill.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DurabilityResult {
    pub(crate) mode: String,
    /// Whether ingest kept the counts (`observation_count`, the totals) in
    /// its transactions, as it does once `counts_backfill_v1` is done.
    pub(crate) counts_maintained: bool,
    /// Closed loop: [`BURST_CLIENTS`] clients posting [`BURST_ITEMS`]
    /// sightings per request, back to back.
    pub(crate) burst_sightings_per_sec: f64,
    pub(crate) burst: Summary,
    /// Open loop: one single-sighting request every 20 ms (the strategies' ingest).
    pub(crate) trickle: Summary,
    pub(crate) errors: u64,
}

/// Ingest with `/api/live` clients open, against none, on an empty file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LiveResult {
    /// Clients reading every event.
    pub(crate) readers: usize,
    /// Clients that never read (a small receive window, never drained).
    pub(crate) stalled: usize,
    pub(crate) packets_per_sec: f64,
    pub(crate) seconds: f64,
    /// The same trickle with no live client, then with them.
    pub(crate) ingest_alone: Summary,
    pub(crate) ingest_with_clients: Summary,
    /// `ingest_with_clients.p99 - ingest_alone.p99`.
    pub(crate) p99_delta_ms: f64,
    /// Events every reading client received, summed, against what was sent
    /// (readers x sightings stored while they were open).
    pub(crate) events_received: u64,
    pub(crate) events_sent: u64,
    /// The process's resident memory before the clients opened and after
    /// the run (the server and the clients share the process).
    pub(crate) rss_before_mib: f64,
    pub(crate) rss_after_mib: f64,
    pub(crate) errors: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub(crate) scale: u32,
    pub(crate) smoke: bool,
    pub(crate) transmissions: i64,
    pub(crate) observations: i64,
    pub(crate) sqlite_version: String,
    pub(crate) machine_cores: usize,
    pub(crate) strategies: Vec<StrategyResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) herd: Option<HerdResult>,
    /// The read path on an idle server with its counts ready.
    pub(crate) reads: super::reads::ReadsResult,
    /// The durability the strategies ran with.
    pub(crate) strategies_durability: String,
    pub(crate) durability: Vec<DurabilityResult>,
    pub(crate) live: LiveResult,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Idle,
    Naive,
    FixedSleep,
    Meshscope,
    /// The same backfill at duty 0.1 (its estimate against its wall time).
    MeshscopeGentle,
    RetentionDelete,
    Retention,
    IndexCreate,
    IndexBuild,
}

/// The index the index-build strategies build, the largest of `INDEXES`
/// (24.9 s as one `CREATE INDEX` at scale 10 here).
const BENCH_INDEX: &str = "idx_observations_observer_idx_timestamp";

fn bench_index() -> &'static meshscope::db::schema::IndexSpec {
    meshscope::db::schema::INDEXES
        .iter()
        .find(|s| s.name == BENCH_INDEX)
        .unwrap_or_else(|| unreachable!("{BENCH_INDEX} is in INDEXES"))
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Idle => "idle",
            Kind::Naive => "naive",
            Kind::FixedSleep => "fixed-sleep",
            Kind::Meshscope => "meshscope",
            Kind::MeshscopeGentle => "meshscope-duty-0.1",
            Kind::RetentionDelete => "retention-delete",
            Kind::Retention => "retention",
            Kind::IndexCreate => "create-index",
            Kind::IndexBuild => "index-build",
        }
    }

    fn is_retention(self) -> bool {
        matches!(self, Kind::RetentionDelete | Kind::Retention)
    }

    fn is_index(self) -> bool {
        matches!(self, Kind::IndexCreate | Kind::IndexBuild)
    }
}

fn transmissions_for(opts: &BenchOptions) -> u64 {
    if opts.smoke {
        3_000
    } else {
        71_000 * u64::from(opts.scale)
    }
}

/// The cached legacy file for this scale, generated on first use.
fn source_file(opts: &BenchOptions) -> anyhow::Result<PathBuf> {
    let n = transmissions_for(opts);
    std::fs::create_dir_all(&opts.cache)
        .with_context(|| format!("cannot create {}", opts.cache.display()))?;
    let path = opts.cache.join(format!("legacy-{n}-v1.db"));
    let marker = opts.cache.join(format!("legacy-{n}-v1.complete"));
    if path.exists() && marker.exists() {
        return Ok(path);
    }
    eprintln!(
        "bench: generating {n} transmissions into {} (once)",
        path.display()
    );
    seed::run(&SeedOptions {
        db: path.clone(),
        transmissions: n,
        obs_per_tx: 21,
        observers: 60,
        legacy: true,
        rng_seed: 1,
        force: true,
        end_unix: None,
        progress: true,
    })?;
    std::fs::write(&marker, b"ok")?;
    Ok(path)
}

/// The legacy file with every migration done (counts ready), cached: what
/// the retention strategies start from.
fn migrated_file(opts: &BenchOptions, src: &Path) -> anyhow::Result<PathBuf> {
    let n = transmissions_for(opts);
    let path = opts.cache.join(format!("migrated-{n}-v1.db"));
    let marker = opts.cache.join(format!("migrated-{n}-v1.complete"));
    if path.exists() && marker.exists() {
        return Ok(path);
    }
    super::reads::remove_db(&path);
    std::fs::copy(src, &path)
        .with_context(|| format!("cannot copy {} to {}", src.display(), path.display()))?;
    eprintln!("bench: running the migrations on {} (once)", path.display());
    super::migrate::migrate(&path, &[], false, EngineConfig::default())?;
    std::fs::write(&marker, b"ok")?;
    Ok(path)
}

/// What a retention run must leave of the rows present before it (by id),
/// and the cutoff that makes 10% of the sightings older.
struct RetentionPlan {
    cutoff: i64,
    obs_before: i64,
    max_obs: i64,
    max_tx: i64,
    obs_kept: i64,
    tx_kept: i64,
}

fn retention_plan(db: &Path) -> anyhow::Result<RetentionPlan> {
    let n = count(db, "SELECT COUNT(*) FROM observations")?;
    let cutoff = count(
        db,
        &format!(
            "SELECT timestamp FROM observations ORDER BY timestamp LIMIT 1 OFFSET {}",
            n / 10
        ),
    )?;
    Ok(RetentionPlan {
        cutoff,
        obs_before: n,
        max_obs: count(db, "SELECT COALESCE(MAX(id), 0) FROM observations")?,
        max_tx: count(db, "SELECT COALESCE(MAX(id), 0) FROM transmissions")?,
        obs_kept: count(
            db,
            &format!("SELECT COUNT(*) FROM observations WHERE timestamp >= {cutoff}"),
        )?,
        tx_kept: count(
            db,
            &format!(
                "SELECT COUNT(*) FROM transmissions t WHERE
                    EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id AND o.timestamp >= {cutoff})
                 OR NOT EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id)"
            ),
        )?,
    })
}

/// The baseline: both deletes as one writer command, one transaction.
const DELETE_OLD: &str = "
    CREATE TEMP TABLE IF NOT EXISTS bench_emptied (id INTEGER PRIMARY KEY);
    DELETE FROM bench_emptied;
    INSERT INTO bench_emptied SELECT DISTINCT transmission_id FROM observations WHERE timestamp < ?1;
    DELETE FROM observations WHERE timestamp < ?1;
    DELETE FROM transmissions WHERE id IN (SELECT id FROM bench_emptied)
        AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = transmissions.id);";

/// The maintained counts equal `COUNT(*)` (per packet and in total).
const WRONG_COUNTS: &str = "SELECT
    (SELECT COUNT(*) FROM transmissions t WHERE observation_count !=
        (SELECT COUNT(*) FROM observations o WHERE o.transmission_id = t.id))
  + ((SELECT n FROM _meshscope_counters WHERE name = 'observations') != (SELECT COUNT(*) FROM observations))
  + ((SELECT n FROM _meshscope_counters WHERE name = 'transmissions') != (SELECT COUNT(*) FROM transmissions))";

fn copy_fresh(src: &Path, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dst = dir.join(format!("{name}.db"));
    super::reads::remove_db(&dst);
    std::fs::copy(src, &dst)
        .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
    // On disk before the server starts, so the copy's writeback does not
    // stall the measured commits.
    std::fs::File::open(&dst)?.sync_all()?;
    Ok(dst)
}

fn count(db: &Path, sql: &str) -> anyhow::Result<i64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    c.busy_timeout(Duration::from_secs(30))?;
    Ok(c.query_row(sql, [], |r| r.get(0))?)
}

/// Every transmission's last_seen equals its newest sighting (0 without any).
const WRONG_LAST_SEEN: &str = "SELECT COUNT(*) FROM transmissions t
    WHERE t.last_seen != COALESCE((SELECT MAX(o.timestamp) FROM observations o WHERE o.transmission_id = t.id), 0)";
const ORPHANS_TOUCHED: &str = "SELECT COUNT(*) FROM transmissions t WHERE t.last_seen != 0
    AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id)";

/// Samples the WAL file's size until stopped; returns the peak.
fn wal_sampler(db: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(m) = std::fs::metadata(&wal) {
                peak = peak.max(m.len());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

struct Samples {
    ingest: Vec<(Instant, Duration)>,
    ingest_errors: u64,
    readers: Vec<(usize, Instant, Duration)>,
    reader_errors: u64,
}

/// Runs the load until `stop`; returns what every request saw.
async fn load(base: String, stop: Arc<AtomicBool>, seq: Arc<AtomicU64>) -> Samples {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let mut readers = Vec::new();
    for (ep, url) in READ_URLS.iter().enumerate() {
        for _ in 0..CLIENTS_PER_ENDPOINT {
            let (client, stop, url) = (client.clone(), stop.clone(), format!("{base}{url}"));
            readers.push(tokio::spawn(async move {
                let mut out = Vec::new();
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            out.push((ep, t, t.elapsed()));
                        }
                        _ => errors += 1,
                    }
                    tokio::time::sleep(READER_PAUSE).await;
                }
                (out, errors)
            }));
        }
    }
    let mut ingest = Vec::new();
    let mut tick = tokio::time::interval(INGEST_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let mut payload = n.to_le_bytes().to_vec();
        payload.extend_from_slice(b"meshscope bench ingest probe");
        let raw = hex::encode(meshscope::decoder::encode(1, 2, 0, None, 1, &[], &payload));
        let body = serde_json::json!({"observer": "be7c40", "raw": raw, "snr": 5.5});
        let (client, url) = (client.clone(), format!("{base}/api/ingest"));
        ingest.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = matches!(client.post(url).json(&body).send().await, Ok(r) if r.status().is_success());
            (t, t.elapsed(), ok)
        }));
    }
    let mut s = Samples {
        ingest: Vec::new(),
        ingest_errors: 0,
        readers: Vec::new(),
        reader_errors: 0,
    };
    for h in ingest {
        if let Ok((t, d, ok)) = h.await {
            if ok {
                s.ingest.push((t, d));
            } else {
                s.ingest_errors += 1;
            }
        }
    }
    for h in readers {
        if let Ok((v, e)) = h.await {
            s.readers.extend(v);
            s.reader_errors += e;
        }
    }
    s
}

/// The engine's defaults; `MESHSCOPE_WAL_LIMIT_MB` (the setting's
/// variable) changes the WAL bound, to measure what the bound costs.
fn engine_defaults() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    if let Some(mib) = std::env::var("MESHSCOPE_WAL_LIMIT_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        cfg.wal_limit_bytes = mib * 1024 * 1024;
    }
    cfg
}

struct Server {
    parts: serve::Parts,
    base: String,
    rt: tokio::runtime::Runtime,
}

/// A real meshscope server (the serve loop, router, writer and readers) on
/// its own runtime, on `db`.
fn start_server(
    db: &Path,
    durability: meshscope::db::Durability,
    engine: EngineConfig,
    migrations: Vec<Arc<dyn meshscope::migrate::Migration>>,
) -> anyhow::Result<Server> {
    start_server_with(db, durability, engine, migrations, &[])
}

/// [`start_server`] with more settings (`max_event_streams`, …).
fn start_server_with(
    db: &Path,
    durability: meshscope::db::Durability,
    engine: EngineConfig,
    migrations: Vec<Arc<dyn meshscope::migrate::Migration>>,
    settings: &[(&str, &str)],
) -> anyhow::Result<Server> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()?;
    let mut cli = CommandLine::default()
        .with("db", db.display().to_string())
        .with("listen", "127.0.0.1:0")
        .with("dist", "nonexistent-dist")
        .with("durability", durability.as_str());
    for (k, v) in settings {
        cli = cli.with(k, *v);
    }
    let mut cfg = ServeConfig::resolve(&ServeArgs(cli))?;
    cfg.engine = engine;
    let parts = serve::build_with(&cfg, migrations)?;
    let router = meshscope::api::app(parts.state.clone());
    let listener = rt.block_on(tokio::net::TcpListener::bind(cfg.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    let limits = cfg.limits.clone();
    rt.spawn(async move {
        meshscope::http::serve(listener, router, &limits, std::future::pending()).await;
    });
    Ok(Server { parts, base, rt })
}

fn run_strategy(
    durability: meshscope::db::Durability,
    kind: Kind,
    src: &Path,
    work: &Path,
    idle_for: Duration,
    client_rt: &tokio::runtime::Runtime,
) -> anyhow::Result<StrategyResult> {
    let db = copy_fresh(src, work, kind.name())?;
    if kind.is_index() {
        rusqlite::Connection::open(&db)?.execute_batch(&format!("DROP INDEX {BENCH_INDEX}"))?;
    }
    let max_id = count(&db, "SELECT COALESCE(MAX(id), 0) FROM transmissions")?;
    let filled_before = count(
        &db,
        &format!("SELECT COUNT(*) FROM transmissions WHERE last_seen > 0 AND id <= {max_id}"),
    )?;
    let migrations: Vec<Arc<dyn meshscope::migrate::Migration>> = match kind {
        Kind::Meshscope | Kind::MeshscopeGentle => vec![Arc::new(last_seen::TxLastSeenBackfill)],
        // Registered and done: retention needs the counts ready.
        Kind::Retention | Kind::RetentionDelete => meshscope::migrate::registry(),
        Kind::IndexBuild => vec![Arc::new(meshscope::migrate::index_build::IndexBuild::new(
            bench_index(),
        ))],
        _ => vec![],
    };
    let plan = if kind.is_retention() {
        Some(retention_plan(&db)?)
    } else {
        None
    };
    let engine = if kind == Kind::MeshscopeGentle {
        EngineConfig {
            duty: 0.1,
            ..engine_defaults()
        }
    } else {
        engine_defaults()
    };
    let server = start_server(&db, durability, engine, migrations)?;
    let stop_wal = Arc::new(AtomicBool::new(false));
    let wal = wal_sampler(&db, stop_wal.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(u64::from(kind as u8) << 40));
    let load_task = client_rt.spawn(load(server.base.clone(), stop.clone(), seq));
    std::thread::sleep(LEAD_IN);

    let writer = server.parts.writer.clone();
    let mut fixed_holds: Vec<Duration> = Vec::new();
    let mut estimated_sec = None;
    let mut refined_sec = None;
    let window_start = Instant::now();
    match kind {
        Kind::Idle => std::thread::sleep(idle_for),
        Kind::Naive => {
            server.rt.block_on(writer.exec(|c| {
                c.execute(last_seen::UPDATE_RANGE, [0, i64::MAX])?;
                Ok(())
            }))?;
        }
        Kind::FixedSleep => {
            let mut cursor = 0;
            while cursor < max_id {
                let upto = (cursor + FIXED_CHUNK).min(max_id);
                let held = server.rt.block_on(writer.exec(move |c| {
                    let t = Instant::now();
                    c.execute(last_seen::UPDATE_RANGE, [cursor, upto])?;
                    Ok(t.elapsed())
                }))?;
                fixed_holds.push(held);
                cursor = upto;
                if cursor < max_id {
                    std::thread::sleep(FIXED_SLEEP);
                }
            }
        }
        Kind::RetentionDelete => {
            let cutoff = plan.as_ref().map_or(0, |p| p.cutoff);
            server.rt.block_on(writer.exec(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                for stmt in DELETE_OLD.split(';').filter(|s| !s.trim().is_empty()) {
                    if stmt.contains("?1") {
                        tx.execute(stmt, [cutoff])?;
                    } else {
                        tx.execute_batch(stmt)?;
                    }
                }
                tx.commit()?;
                Ok(())
            }))?;
        }
        Kind::Retention => {
            let cutoffs = Cutoffs {
                packets: plan.as_ref().map(|p| p.cutoff),
                observers: None,
            };
            server.rt.block_on(server.parts.start_migrations())?;
            server.rt.block_on(
                writer.with_engine(move |_, e| e.set_retention(Schedule::Once(cutoffs))),
            )?;
            loop {
                use shared::migration::MigrationStatus as S;
                match server.parts.live.retention().map(|r| r.status) {
                    Some(S::Done) => break,
                    Some(s @ (S::Failed | S::Cancelled)) => {
                        bail!("the retention run ended as {}", s.as_str())
                    }
                    _ => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }
        Kind::IndexCreate => {
            server.rt.block_on(writer.exec(|c| {
                c.execute_batch(bench_index().create_sql)?;
                Ok(())
            }))?;
        }
        Kind::Meshscope | Kind::MeshscopeGentle | Kind::IndexBuild => {
            let job = if kind == Kind::IndexBuild {
                bench_index().job
            } else {
                last_seen::NAME
            };
            server.rt.block_on(server.parts.start_migrations())?;
            loop {
                let rec = server.parts.live.snapshot().get(job).cloned();
                if let Some(e) = rec.as_ref().and_then(|r| r.estimated_ms) {
                    estimated_sec.get_or_insert(e as f64 / 1000.0);
                    refined_sec = Some(e as f64 / 1000.0);
                }
                match rec.as_ref().map(|r| r.status.as_str()) {
                    Some("done") => break,
                    Some("failed") | Some("cancelled") => {
                        bail!("the engine's backfill ended as {:?}", rec)
                    }
                    _ => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }
    }
    let wall = window_start.elapsed();
    let window_end = Instant::now();
    let budget_ms = engine_defaults().budget.as_secs_f64() * 1000.0;
    let chunk_hold_ms = match kind {
        Kind::Meshscope | Kind::MeshscopeGentle | Kind::Retention | Kind::IndexBuild => {
            server.parts.live.chunk_holds().map(|h| ChunkHoldSummary {
                n: h.n,
                p50_ms: h.p50_ms,
                p99_ms: h.p99_ms,
                max_ms: h.max_ms,
                interrupted: h.interrupted,
                budget_ms,
            })
        }
        Kind::FixedSleep => {
            let s = Summary::of(&fixed_holds);
            Some(ChunkHoldSummary {
                n: s.n,
                p50_ms: s.p50_ms,
                p99_ms: s.p99_ms,
                max_ms: s.max_ms,
                interrupted: 0,
                budget_ms,
            })
        }
        Kind::Idle | Kind::Naive | Kind::RetentionDelete | Kind::IndexCreate => None,
    };
    std::thread::sleep(TAIL);
    stop.store(true, Ordering::Relaxed);
    let samples = client_rt.block_on(load_task)?;
    server.parts.writer.shutdown();
    drop(server);
    stop_wal.store(true, Ordering::Relaxed);
    let wal_peak = wal.join().unwrap_or(0);

    let in_window = |t: &Instant| *t >= window_start && *t <= window_end;
    let ingest: Vec<Duration> = samples
        .ingest
        .iter()
        .filter(|(t, _)| in_window(t))
        .map(|(_, d)| *d)
        .collect();
    let timeline = samples
        .ingest
        .iter()
        .map(|(t, d)| {
            let at = if *t >= window_start {
                t.duration_since(window_start).as_secs_f64()
            } else {
                -window_start.duration_since(*t).as_secs_f64()
            };
            (at, d.as_secs_f64() * 1000.0)
        })
        .collect();
    let mut readers = BTreeMap::new();
    for (i, ep) in READ_ENDPOINTS.iter().enumerate() {
        let v: Vec<Duration> = samples
            .readers
            .iter()
            .filter(|(e, t, _)| *e == i && in_window(t))
            .map(|(_, _, d)| *d)
            .collect();
        readers.insert((*ep).to_string(), Summary::of(&v));
    }
    let filled_after = count(
        &db,
        &format!("SELECT COUNT(*) FROM transmissions WHERE last_seen > 0 AND id <= {max_id}"),
    )?;
    let (wrong, orphans_touched, rows) = if kind.is_index() {
        let rows = count(&db, "SELECT COUNT(*) FROM observations")?;
        let indexed = count(
            &db,
            &format!("SELECT COUNT(*) FROM observations INDEXED BY {BENCH_INDEX} WHERE observer_idx IS NOT NULL OR observer_idx IS NULL"),
        )
        .unwrap_or(-1);
        (i64::from(indexed != rows), 0, rows)
    } else {
        match &plan {
            Some(p) => {
                let obs_left = count(
                    &db,
                    &format!(
                        "SELECT COUNT(*) FROM observations WHERE id <= {}",
                        p.max_obs
                    ),
                )?;
                let tx_left = count(
                    &db,
                    &format!(
                        "SELECT COUNT(*) FROM transmissions WHERE id <= {}",
                        p.max_tx
                    ),
                )?;
                let mut wrong = i64::from(obs_left != p.obs_kept) + i64::from(tx_left != p.tx_kept);
                if kind == Kind::Retention {
                    wrong += count(&db, WRONG_COUNTS)?;
                }
                (wrong, 0, p.obs_before - obs_left)
            }
            None => {
                let wrong = if kind == Kind::Idle {
                    0
                } else {
                    count(&db, WRONG_LAST_SEEN)?
                };
                (
                    wrong,
                    count(&db, ORPHANS_TOUCHED)?,
                    filled_after - filled_before,
                )
            }
        }
    };
    super::reads::remove_db(&db);
    Ok(StrategyResult {
        name: kind.name().to_string(),
        backfill_wall_sec: (kind != Kind::Idle).then_some(wall.as_secs_f64()),
        wall_ratio_to_naive: None,
        wall_ratio_to_delete: None,
        wall_ratio_to_create: None,
        rows_updated: rows,
        correct: wrong == 0 && orphans_touched == 0,
        orphans_touched,
        wal_peak_bytes: wal_peak,
        ingest: Summary::of(&ingest),
        ingest_errors: samples.ingest_errors,
        readers,
        reader_p99_ratio_to_idle: BTreeMap::new(),
        reader_errors: samples.reader_errors,
        chunk_hold_ms,
        estimated_sec,
        actual_to_estimate: estimated_sec
            .filter(|e| *e > 0.0)
            .map(|e| round2(wall.as_secs_f64() / e)),
        refined_estimate_sec: refined_sec,
        actual_to_refined: refined_sec
            .filter(|e| *e > 0.0)
            .map(|e| round2(wall.as_secs_f64() / e)),
        ingest_timeline: timeline,
    })
}

/// 500 clients on `/api/healthz` for a while, during a (slowed) backfill.
fn run_herd(
    src: &Path,
    work: &Path,
    seconds: f64,
    client_rt: &tokio::runtime::Runtime,
) -> anyhow::Result<HerdResult> {
    const CLIENTS: usize = 500;
    let db = copy_fresh(src, work, "herd")?;
    // Slow the backfill so it outlasts the herd.
    let engine = EngineConfig {
        duty: 0.02,
        ..engine_defaults()
    };
    let Server { parts, base, rt } = start_server(
        &db,
        meshscope::db::Durability::default(),
        engine,
        vec![Arc::new(last_seen::TxLastSeenBackfill)],
    )?;
    let url = format!("{base}/api/healthz");
    rt.block_on(parts.start_migrations())?;
    let status = parts.state.status.clone();
    let reads_before = status.db_reads();
    let external = super::reads::wrk_available();
    let measured = if external {
        super::reads::run_wrk(&url, CLIENTS, seconds)?
    } else {
        eprintln!(
            "bench: wrk is not installed (apt-get install wrk); the herd runs inside this process"
        );
        in_process_herd(&url, CLIENTS, seconds, client_rt)
    };
    let reads = status.db_reads() - reads_before;
    let still_running = parts
        .live
        .snapshot()
        .get(last_seen::NAME)
        .is_some_and(|r| r.status == shared::migration::MigrationStatus::Running);
    if !still_running {
        eprintln!("bench: warning: the backfill finished before the herd did");
    }
    parts.writer.shutdown();
    drop(rt);
    super::reads::remove_db(&db);
    // A run of S seconds touches floor(S / TTL) + 1 cache windows (the
    // cold read at the start, then one per expiry): at most one read each.
    let per_ttl =
        reads as f64 / ((seconds / meshscope::status::DEFAULT_TTL.as_secs_f64()).floor() + 1.0);
    Ok(HerdResult {
        generator: measured.generator,
        clients: CLIENTS,
        seconds,
        requests: measured.requests,
        errors: measured.errors,
        p50_ms: measured.p50_ms,
        p99_ms: measured.p99_ms,
        max_ms: measured.max_ms,
        status_db_reads: reads,
        status_db_reads_per_ttl: per_ttl,
        target_p99_ms: super::reads::HERD_TARGET_P99_MS,
        met: measured.errors == 0
            && still_running
            && measured.p99_ms <= super::reads::HERD_TARGET_P99_MS
            && per_ttl <= super::reads::HERD_TARGET_READS_PER_TTL,
        backfill_outlasted_herd: still_running,
    })
}

/// The herd from tasks of this process (when `wrk` is missing).
fn in_process_herd(
    url: &str,
    clients: usize,
    seconds: f64,
    client_rt: &tokio::runtime::Runtime,
) -> super::reads::External {
    let dur = Duration::from_secs_f64(seconds);
    let url = url.to_string();
    let results: Vec<(Vec<Duration>, u64)> = client_rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let end = Instant::now() + dur;
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0;
                    while Instant::now() < end {
                        let t = Instant::now();
                        match client.get(&url).send().await {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                lat.push(t.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                out.push(r);
            }
        }
        out
    });
    let all: Vec<Duration> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    let s = Summary::of(&all);
    super::reads::External {
        generator: "in-process (wrk not installed)".to_string(),
        requests: s.n,
        errors: results.iter().map(|(_, e)| e).sum(),
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
        max_ms: s.max_ms,
    }
}

/// The read path: every backfill run to completion on a fresh copy, then
/// the dashboard's reads one after another.
fn run_reads(
    src: &Path,
    work: &Path,
    per_case: usize,
) -> anyhow::Result<super::reads::ReadsResult> {
    let db = copy_fresh(src, work, "reads")?;
    let Server { parts, base, rt } = start_server(
        &db,
        meshscope::db::Durability::default(),
        engine_defaults(),
        meshscope::migrate::registry(),
    )?;
    let started = Instant::now();
    rt.block_on(parts.start_migrations())?;
    super::reads::wait_all_done(&parts, Duration::from_secs(3_600))?;
    let backfills_wall_sec = started.elapsed().as_secs_f64();
    let counts_backfill_sec = super::reads::elapsed_of(
        &parts,
        meshscope::migrate::counts::NAME,
        meshscope::clock::now_ms(),
    );
    // The backfills' WAL written back into the file first, so the reads
    // are not measured against the checkpoint that would follow.
    rusqlite::Connection::open(&db)?.query_row(
        "PRAGMA wal_checkpoint(TRUNCATE)",
        [],
        |_| Ok(()),
    )?;
    let (cases, stats_full_scans) = rt.block_on(super::reads::measure(&base, per_case))?;
    parts.writer.shutdown();
    drop(rt);
    super::reads::remove_db(&db);
    Ok(super::reads::ReadsResult {
        backfills_wall_sec: round2(backfills_wall_sec),
        counts_backfill_sec: round2(counts_backfill_sec),
        requests_per_case: per_case,
        cases,
        stats_full_scans,
    })
}

/// Concurrent clients of the durability burst.
const BURST_CLIENTS: usize = 16;
/// Sightings per burst request.
const BURST_ITEMS: usize = 10;

/// Ingest throughput and latency with `mode`, on a fresh empty file.
fn run_durability(
    mode: meshscope::db::Durability,
    counts: bool,
    work: &Path,
    seconds: f64,
    client_rt: &tokio::runtime::Runtime,
) -> anyhow::Result<DurabilityResult> {
    std::fs::create_dir_all(work)?;
    let db = work.join(format!("durability-{}-{counts}.db", mode.as_str()));
    super::reads::remove_db(&db);
    let migrations: Vec<Arc<dyn meshscope::migrate::Migration>> = if counts {
        vec![Arc::new(meshscope::migrate::counts::CountsBackfill)]
    } else {
        vec![]
    };
    let Server { parts, base, rt } = start_server(&db, mode, engine_defaults(), migrations)?;
    if counts {
        // On an empty file the counts are done at once; from then on
        // ingest keeps them.
        rt.block_on(parts.start_migrations())?;
        super::reads::wait_all_done(&parts, Duration::from_secs(60))?;
    }
    let url = format!("{base}/api/ingest");
    let dur = Duration::from_secs_f64(seconds);
    let seq = Arc::new(AtomicU64::new(
        (u64::from(mode == meshscope::db::Durability::Full) << 40) | (u64::from(counts) << 41),
    ));
    let body = move |seq: &AtomicU64, items: usize| {
        let list: Vec<serde_json::Value> = (0..items)
            .map(|_| {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let mut payload = n.to_le_bytes().to_vec();
                payload.extend_from_slice(b"durability probe");
                let raw = hex::encode(meshscope::decoder::encode(1, 2, 0, None, 1, &[], &payload));
                serde_json::json!({"observer": "d0ab1e", "raw": raw})
            })
            .collect();
        serde_json::Value::Array(list)
    };
    let (burst, trickle, errors) = client_rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let end = Instant::now() + dur;
        let burst: Vec<_> = (0..BURST_CLIENTS)
            .map(|_| {
                let (client, url, seq) = (client.clone(), url.clone(), seq.clone());
                tokio::spawn(async move {
                    let (mut lat, mut errors) = (Vec::new(), 0u64);
                    while Instant::now() < end {
                        let b = body(&seq, BURST_ITEMS);
                        let t = Instant::now();
                        match client.post(&url).json(&b).send().await {
                            Ok(r) if r.status().is_success() => lat.push(t.elapsed()),
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let (mut burst_lat, mut errors) = (Vec::new(), 0);
        for t in burst {
            if let Ok((l, e)) = t.await {
                burst_lat.extend(l);
                errors += e;
            }
        }
        // Then the trickle, alone.
        let mut tick = tokio::time::interval(INGEST_EVERY);
        let end = Instant::now() + dur;
        let mut trickle = Vec::new();
        while Instant::now() < end {
            tick.tick().await;
            let b = body(&seq, 1);
            let t = Instant::now();
            match client.post(&url).json(&b).send().await {
                Ok(r) if r.status().is_success() => trickle.push(t.elapsed()),
                _ => errors += 1,
            }
        }
        (burst_lat, trickle, errors)
    });
    parts.writer.shutdown();
    drop(rt);
    super::reads::remove_db(&db);
    let b = Summary::of(&burst);
    Ok(DurabilityResult {
        mode: mode.as_str().to_string(),
        counts_maintained: counts,
        burst_sightings_per_sec: round2(b.n as f64 * BURST_ITEMS as f64 / seconds),
        burst: b,
        trickle: Summary::of(&trickle),
        errors,
    })
}

/// Runs the whole benchmark for one scale and writes JSON + SVG into `out`.
pub(crate) fn run(opts: &BenchOptions) -> anyhow::Result<(Report, PathBuf)> {
    if opts.scale == 0 {
        bail!("--scale must be at least 1");
    }
    let src = source_file(opts)?;
    let transmissions = count(&src, "SELECT COUNT(*) FROM transmissions")?;
    let observations = count(&src, "SELECT COUNT(*) FROM observations")?;
    let work = opts.cache.join("work");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-load")
        .enable_all()
        .build()?;
    let kinds = [
        Kind::Naive,
        Kind::FixedSleep,
        Kind::Meshscope,
        Kind::MeshscopeGentle,
        Kind::RetentionDelete,
        Kind::Retention,
        Kind::IndexCreate,
        Kind::IndexBuild,
    ];
    if let Some(n) = opts
        .only
        .iter()
        .find(|n| !kinds.iter().any(|k| k.name() == n.as_str()))
    {
        let known: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        bail!("--only: no strategy {n:?}; known: {}", known.join(", "));
    }
    let wanted = |k: Kind| opts.only.is_empty() || opts.only.iter().any(|n| n == k.name());
    let mut results = Vec::new();
    for kind in [
        Kind::Naive,
        Kind::FixedSleep,
        Kind::Meshscope,
        Kind::MeshscopeGentle,
    ]
    .into_iter()
    .filter(|k| wanted(*k))
    {
        eprintln!("bench: scale {} strategy {}", opts.scale, kind.name());
        results.push(run_strategy(
            opts.durability,
            kind,
            &src,
            &work,
            Duration::ZERO,
            &client_rt,
        )?);
    }
    let migrated = migrated_file(opts, &src)?;
    // Retention and the index builds run on a migrated file.
    for kind in [
        Kind::RetentionDelete,
        Kind::Retention,
        Kind::IndexCreate,
        Kind::IndexBuild,
    ]
    .into_iter()
    .filter(|k| wanted(*k))
    {
        eprintln!("bench: scale {} strategy {}", opts.scale, kind.name());
        results.push(run_strategy(
            opts.durability,
            kind,
            &migrated,
            &work,
            Duration::ZERO,
            &client_rt,
        )?);
    }
    let create_wall = results
        .iter()
        .find(|r| r.name == Kind::IndexCreate.name())
        .and_then(|r| r.backfill_wall_sec);
    if let (Some(c), Some(r)) = (
        create_wall.filter(|c| *c > 0.0),
        results
            .iter_mut()
            .find(|r| r.name == Kind::IndexBuild.name()),
    ) {
        r.wall_ratio_to_create = r.backfill_wall_sec.map(|w| round2(w / c));
    }
    let slowest = results
        .iter()
        .filter_map(|r| r.backfill_wall_sec)
        .fold(0.0, f64::max);
    let idle_for = Duration::from_secs_f64(slowest.max(if opts.smoke { 0.5 } else { 2.0 }));
    eprintln!(
        "bench: scale {} strategy idle ({:.1} s)",
        opts.scale,
        idle_for.as_secs_f64()
    );
    let idle = run_strategy(
        opts.durability,
        Kind::Idle,
        &src,
        &work,
        idle_for,
        &client_rt,
    )?;
    results.insert(0, idle);

    let naive_wall = results
        .iter()
        .find(|r| r.name == "naive")
        .and_then(|r| r.backfill_wall_sec);
    let delete_wall = results
        .iter()
        .find(|r| r.name == Kind::RetentionDelete.name())
        .and_then(|r| r.backfill_wall_sec);
    let idle_p99: BTreeMap<String, f64> = results[0]
        .readers
        .iter()
        .map(|(k, v)| (k.clone(), v.p99_ms))
        .collect();
    for r in &mut results {
        let retention = r.name.starts_with("retention");
        let index = r.name.contains("index");
        r.wall_ratio_to_naive = match (r.backfill_wall_sec, naive_wall) {
            (Some(w), Some(n)) if n > 0.0 && !retention && !index => Some(round2(w / n)),
            _ => None,
        };
        r.wall_ratio_to_delete = match (r.backfill_wall_sec, delete_wall) {
            (Some(w), Some(d)) if d > 0.0 && retention => Some(round2(w / d)),
            _ => None,
        };
        r.reader_p99_ratio_to_idle = r
            .readers
            .iter()
            .filter_map(|(k, v)| {
                idle_p99
                    .get(k)
                    .filter(|b| **b > 0.0)
                    .map(|b| (k.clone(), round2(v.p99_ms / b)))
            })
            .collect();
    }
    let herd = if opts.herd {
        eprintln!("bench: herd");
        Some(run_herd(
            &src,
            &work,
            if opts.smoke { 2.0 } else { 10.0 },
            &client_rt,
        )?)
    } else {
        None
    };
    eprintln!("bench: read path");
    let reads = run_reads(&src, &work, if opts.smoke { 50 } else { 2_000 })?;
    let mut durability = Vec::new();
    // Both modes with the counts kept (as served), and `full` without them:
    // what keeping the counts costs ingest.
    for (mode, counts) in [
        (meshscope::db::Durability::Normal, true),
        (meshscope::db::Durability::Full, true),
        (meshscope::db::Durability::Full, false),
    ] {
        eprintln!(
            "bench: durability {} (counts kept: {counts})",
            mode.as_str()
        );
        durability.push(run_durability(
            mode,
            counts,
            &work,
            if opts.smoke { 1.0 } else { 4.0 },
            &client_rt,
        )?);
    }
    eprintln!("bench: live feed ({LIVE_READERS} reading clients, {LIVE_STALLED} stalled)");
    let live = run_live(&work, if opts.smoke { 1.0 } else { 10.0 }, &client_rt)?;
    let report = Report {
        live,
        scale: opts.scale,
        smoke: opts.smoke,
        transmissions,
        observations,
        sqlite_version: rusqlite::version().to_string(),
        machine_cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        strategies: results,
        herd,
        reads,
        strategies_durability: opts.durability.as_str().to_string(),
        durability,
    };
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let date = shared::timefmt::format_unix_ms(meshscope::clock::now_ms());
    let stem = format!(
        "{}-scale{}{}",
        &date[..10],
        opts.scale,
        if opts.smoke { "-smoke" } else { "" }
    );
    let json_path = opts.out.join(format!("{stem}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let svg_path = opts.out.join(format!("{stem}-ingest.svg"));
    plot(&report, &svg_path)?;
    Ok((report, json_path))
}

/// `/api/live` clients of the live bench: reading, and never reading.
const LIVE_READERS: usize = 100;
const LIVE_STALLED: usize = 10;

/// Resident memory of this process (Linux), MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| round2(kib / 1024.0))
}

/// The ingest trickle (one packet per [`INGEST_EVERY`], 50/s) alone, then
/// with [`LIVE_READERS`] clients reading `/api/live` and [`LIVE_STALLED`]
/// that never read: what the live feed costs ingest, and that a client
/// that never reads holds nothing back.
fn run_live(
    work: &Path,
    seconds: f64,
    client_rt: &tokio::runtime::Runtime,
) -> anyhow::Result<LiveResult> {
    std::fs::create_dir_all(work)?;
    let db = work.join("live.db");
    super::reads::remove_db(&db);
    // More streams than the default cap: the bench's clients are many.
    let streams = (LIVE_READERS + LIVE_STALLED + 8).to_string();
    let Server { parts, base, rt } = start_server_with(
        &db,
        meshscope::db::Durability::Full,
        engine_defaults(),
        vec![Arc::new(meshscope::migrate::counts::CountsBackfill)],
        &[("max_event_streams", &streams)],
    )?;
    rt.block_on(parts.start_migrations())?;
    super::reads::wait_all_done(&parts, Duration::from_secs(60))?;
    let dur = Duration::from_secs_f64(seconds);
    let result = client_rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let seq = Arc::new(AtomicU64::new(7 << 40));
        let trickle = |client: reqwest::Client, seq: Arc<AtomicU64>, url: String| async move {
            let mut tick = tokio::time::interval(INGEST_EVERY);
            let end = Instant::now() + dur;
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < end {
                tick.tick().await;
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let mut payload = n.to_le_bytes().to_vec();
                payload.extend_from_slice(b"live feed probe");
                let raw = hex::encode(meshscope::decoder::encode(1, 2, 0, None, 1, &[&[0x7c]], &payload));
                let body = serde_json::json!({"observer": "11fe00", "iata": "SJC", "raw": raw, "snr": 4.5});
                let t = Instant::now();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        };
        let ingest_url = format!("{base}/api/ingest");
        let (alone, mut errors) = trickle(client.clone(), seq.clone(), ingest_url.clone()).await;
        let rss_before = rss_mib();
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..LIVE_READERS {
            let (client, url, stop) = (client.clone(), format!("{base}/api/live"), stop.clone());
            readers.push(tokio::spawn(async move {
                let Ok(mut resp) = client.get(&url).send().await else {
                    return (0u64, 1u64);
                };
                let mut events = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(200), resp.chunk()).await {
                        Ok(Ok(Some(c))) => {
                            events += c.windows(13).filter(|w| *w == b"event: packet").count() as u64;
                        }
                        Ok(_) => return (events, 1),
                        Err(_) => {}
                    }
                }
                (events, 0)
            }));
        }
        let mut stalled = Vec::new();
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse()?;
        for _ in 0..LIVE_STALLED {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_recv_buffer_size(4096)?;
            let mut s = socket.connect(addr).await?;
            tokio::io::AsyncWriteExt::write_all(
                &mut s,
                b"GET /api/live HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n",
            )
            .await?;
            stalled.push(s);
        }
        // Every stream is open before the trickle starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = seq.load(Ordering::Relaxed);
        let (with, e) = trickle(client.clone(), seq.clone(), ingest_url).await;
        errors += e;
        let stored = seq.load(Ordering::Relaxed) - before;
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let mut received = 0;
        for r in readers {
            if let Ok((n, e)) = r.await {
                received += n;
                errors += e;
            }
        }
        let rss_after = rss_mib();
        drop(stalled);
        anyhow::Ok((alone, with, received, stored, rss_before, rss_after, errors))
    })?;
    parts.writer.shutdown();
    drop(rt);
    super::reads::remove_db(&db);
    let (alone, with, received, stored, rss_before, rss_after, errors) = result;
    let (alone, with) = (Summary::of(&alone), Summary::of(&with));
    Ok(LiveResult {
        readers: LIVE_READERS,
        stalled: LIVE_STALLED,
        packets_per_sec: round2(1.0 / INGEST_EVERY.as_secs_f64()),
        seconds,
        p99_delta_ms: round2(with.p99_ms - alone.p99_ms),
        ingest_alone: alone,
        ingest_with_clients: with,
        events_received: received,
        events_sent: stored * LIVE_READERS as u64,
        rss_before_mib: rss_before,
        rss_after_mib: rss_after,
        errors,
    })
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Ingest latency over time, one series per strategy.
fn plot(report: &Report, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    let x_max = report
        .strategies
        .iter()
        .flat_map(|s| s.ingest_timeline.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = report
        .strategies
        .iter()
        .flat_map(|s| s.ingest_timeline.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Ingest latency during backfill — scale {} ({} tx / {} obs)",
                report.scale, report.transmissions, report.observations
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.6..x_max, (0.1f64..y_max).log_scale())
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the backfill started")
        .y_desc("POST /api/ingest latency (ms, log)")
        .draw()
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    let colors = [
        RGBColor(120, 120, 120),
        RGBColor(200, 40, 40),
        RGBColor(230, 140, 20),
        RGBColor(20, 110, 200),
        RGBColor(120, 60, 160),
        RGBColor(30, 150, 90),
    ];
    for (i, s) in report.strategies.iter().enumerate() {
        let color = colors[i % colors.len()];
        let pts: Vec<(f64, f64)> = s
            .ingest_timeline
            .iter()
            .map(|(x, y)| (*x, y.max(0.1)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    Ok(())
}

/// The stdout table.
pub(crate) fn render(report: &Report) -> String {
    let mut out = format!(
        "scale {} — {} transmissions / {} observations — SQLite {} — {} cores{}\n",
        report.scale,
        shared::fmt::thousands(report.transmissions),
        shared::fmt::thousands(report.observations),
        report.sqlite_version,
        report.machine_cores,
        if report.smoke { " (smoke)" } else { "" }
    );
    out.push_str(&format!(
        "{:<12} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}\n",
        "strategy",
        "wall s",
        "x base",
        "rows",
        "ing p50",
        "ing p99",
        "ing max",
        "pkt p99",
        "stat p99",
        "hlth p99",
        "rd x idle",
        "WAL MB",
        "correct"
    ));
    for s in &report.strategies {
        let worst_ratio = s
            .reader_p99_ratio_to_idle
            .values()
            .fold(0.0f64, |a, b| a.max(*b));
        out.push_str(&format!(
            "{:<12} {:>9} {:>7} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7.1} {:>8}\n",
            s.name,
            s.backfill_wall_sec.map(|w| format!("{w:.2}")).unwrap_or_else(|| "-".into()),
            s.wall_ratio_to_naive.or(s.wall_ratio_to_delete).or(s.wall_ratio_to_create).map(|w| format!("{w:.2}")).unwrap_or_else(|| "-".into()),
            s.rows_updated,
            s.ingest.p50_ms,
            s.ingest.p99_ms,
            s.ingest.max_ms,
            s.readers.get("/api/packets").map_or(0.0, |r| r.p99_ms),
            s.readers.get("/api/stats").map_or(0.0, |r| r.p99_ms),
            s.readers.get("/api/healthz").map_or(0.0, |r| r.p99_ms),
            worst_ratio,
            s.wal_peak_bytes as f64 / 1_048_576.0,
            s.correct,
        ));
    }
    out.push_str(
        "(x base: wall time over naive for the backfills, over retention-delete for retention, \
         over create-index for index-build; rows: updated, sightings deleted, or indexed)\n",
    );
    for s in &report.strategies {
        if let Some(h) = &s.chunk_hold_ms {
            out.push_str(&format!(
                "  {} chunk holds: {} chunks, p50 {:.2} ms, p99 {:.2} ms ({:.2}x budget), max {:.2} ms ({:.2}x), {} stopped past budget\n",
                s.name, h.n, h.p50_ms, h.p99_ms, h.p99_ms / h.budget_ms, h.max_ms, h.max_ms / h.budget_ms, h.interrupted
            ));
        }
        if let (Some(e), Some(r)) = (s.estimated_sec, s.actual_to_estimate) {
            out.push_str(&format!(
                "  {} pre-flight estimate {:.1} s, actual {:.2} s ({:.2}x the estimate); refined {:.1} s ({:.2}x)\n",
                s.name,
                e,
                s.backfill_wall_sec.unwrap_or(0.0),
                r,
                s.refined_estimate_sec.unwrap_or(0.0),
                s.actual_to_refined.unwrap_or(0.0)
            ));
        }
    }
    out.push_str(&format!(
        "durability (empty file; strategies above ran with {}):\n",
        report.strategies_durability
    ));
    for d in &report.durability {
        out.push_str(&format!(
            "  {:<6} {:<15} burst {} clients x {} sightings: {:.0} sightings/s, p50 {:.2} ms, p99 {:.2} ms; \
             trickle 1 per 20 ms: p50 {:.2} ms, p99 {:.2} ms; {} errors\n",
            d.mode,
            if d.counts_maintained { "counts kept" } else { "no counts kept" },
            BURST_CLIENTS,
            BURST_ITEMS,
            d.burst_sightings_per_sec,
            d.burst.p50_ms,
            d.burst.p99_ms,
            d.trickle.p50_ms,
            d.trickle.p99_ms,
            d.errors
        ));
    }
    let r = &report.reads;
    out.push_str(&format!(
        "read path (idle, counts ready; backfills took {:.2} s, the counts {:.2} s; {} sequential requests per case):\n",
        r.backfills_wall_sec, r.counts_backfill_sec, r.requests_per_case
    ));
    out.push_str(&format!(
        "  {:<24} {:>8} {:>8} {:>8} {:>10} {:>6}\n",
        "read", "p50 ms", "p99 ms", "max ms", "target p99", "met"
    ));
    for c in &r.cases {
        out.push_str(&format!(
            "  {:<24} {:>8.2} {:>8.2} {:>8.2} {:>10.1} {:>6}\n",
            c.name, c.latency.p50_ms, c.latency.p99_ms, c.latency.max_ms, c.target_p99_ms, c.met
        ));
    }
    out.push_str(&format!(
        "  stats statements that walked a table while measured: {}\n",
        r.stats_full_scans
    ));
    let l = &report.live;
    out.push_str(&format!(
        "live feed: ingest {:.0}/s for {:.0} s alone p50 {:.2} ms p99 {:.2} ms; with {} reading + {} stalled /api/live clients p50 {:.2} ms p99 {:.2} ms (p99 {:+.2} ms); \
         {} of {} events received; memory {:.1} -> {:.1} MiB; {} errors\n",
        l.packets_per_sec, l.seconds, l.ingest_alone.p50_ms, l.ingest_alone.p99_ms, l.readers, l.stalled,
        l.ingest_with_clients.p50_ms, l.ingest_with_clients.p99_ms, l.p99_delta_ms,
        l.events_received, l.events_sent, l.rss_before_mib, l.rss_after_mib, l.errors
    ));
    if let Some(h) = &report.herd {
        out.push_str(&format!(
            "herd ({}): {} clients x {:.0} s on /api/healthz during a backfill: {} requests, p50 {:.2} ms, p99 {:.2} ms (target {:.0}), max {:.2} ms, {} errors; {} status DB reads ({:.2} per 1 s TTL); met: {}\n",
            h.generator, h.clients, h.seconds, h.requests, h.p50_ms, h.p99_ms, h.target_p99_ms, h.max_ms, h.errors, h.status_db_reads, h.status_db_reads_per_ttl, h.met
        ));
    }
    out
}
