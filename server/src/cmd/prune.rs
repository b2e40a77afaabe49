//! `meshscope prune`: the retention job on a file, without a server.
//! `--dry-run` reports what would go (per table, with the cutoffs) on a
//! read-only connection and writes nothing; otherwise the same chunked job
//! `serve` runs hourly runs once to completion, with a progress bar.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rusqlite::{Connection, OpenFlags};
use shared::migration::MigrationStatus;
use shared::timefmt::format_unix_secs;

use meshscope::clock::now_secs;
use meshscope::db::{self, WriterLock};
use meshscope::migrate::retention::{self, Cutoffs, Deleted};
use meshscope::migrate::{self, Engine, EngineConfig, LiveStatus, Progress, RetentionConfig};

pub(crate) struct PruneOptions {
    pub(crate) packet_days: Option<i64>,
    pub(crate) observer_days: Option<i64>,
    pub(crate) dry_run: bool,
    pub(crate) engine: EngineConfig,
}

/// Runs (or, dry, previews) retention on `db`; returns the report.
pub(crate) fn prune(db: &Path, opts: &PruneOptions) -> anyhow::Result<String> {
    let cfg = RetentionConfig {
        packet_days: RetentionConfig::days("--packet-days", opts.packet_days)?,
        observer_days: RetentionConfig::days("--observer-days", opts.observer_days)?,
    };
    if !cfg.is_on() {
        bail!("nothing to prune: give --packet-days N and/or --observer-days N (whole days, at least 1)");
    }
    if !db.is_file() {
        bail!("no database file at {}", db.display());
    }
    let cutoffs = cfg.cutoffs(now_secs());
    if opts.dry_run {
        let conn = open_untouched(db)?;
        conn.busy_timeout(db::BUSY_TIMEOUT)?;
        for table in ["observations", "transmissions", "observers"] {
            if db::table_columns(&conn, table)?.is_empty() {
                bail!(
                    "{} has no {table} table: not a meshscope or CoreScope database",
                    db.display()
                );
            }
        }
        let would = retention::preview(&conn, cutoffs).context("cannot count the old rows")?;
        return Ok(report(
            "dry run: nothing was written; a prune now would delete",
            cutoffs,
            would,
        ));
    }
    run(db, cutoffs, opts.engine.clone())
}

/// Opens `db` read-only without creating anything next to it. A file
/// closed cleanly (no `-wal` beside it) holds everything in its main file
/// and is opened `immutable` (no `-wal`/`-shm` created); with a WAL present
/// (a server running, or one that crashed) the WAL must be read too, and
/// the files it needs already exist.
fn open_untouched(db: &Path) -> anyhow::Result<Connection> {
    let wal = Path::new(&format!("{}-wal", db.display())).exists();
    let conn = if wal {
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
    } else {
        let path = db.to_string_lossy();
        let escaped = path
            .replace('%', "%25")
            .replace('?', "%3f")
            .replace('#', "%23");
        Connection::open_with_flags(
            format!("file:{escaped}?immutable=1"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
    }
    .with_context(|| format!("cannot open {}", db.display()))?;
    Ok(conn)
}

fn run(db: &Path, cutoffs: Cutoffs, engine_cfg: EngineConfig) -> anyhow::Result<String> {
    let lock = WriterLock::acquire(db)?;
    let mut conn = db::open_writer(db)?;
    let live = LiveStatus::default();
    let mut engine = Engine::boot(&conn, migrate::registry(), engine_cfg, None, live.clone())?;
    let pending: Vec<String> = engine
        .records()
        .into_iter()
        .filter(|r| r.status.is_in_progress())
        .map(|r| r.name)
        .collect();
    if !pending.is_empty() {
        eprintln!(
            "finishing online migrations first ({}): retention keeps the counts they compute",
            pending.join(", ")
        );
    }
    engine.set_retention(migrate::Schedule::Once(cutoffs));

    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:28} {bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let by_name: Arc<Mutex<HashMap<String, ProgressBar>>> = Arc::default();
    let observed = by_name.clone();
    engine.add_observer(Box::new(move |p: &Progress| {
        let mut map = observed.lock().unwrap_or_else(|e| e.into_inner());
        let pb = map.entry(p.name.clone()).or_insert_with(|| {
            let pb = bars.add(ProgressBar::new(0));
            pb.set_style(style.clone());
            pb.set_prefix(p.name.clone());
            pb
        });
        pb.set_length(p.rows_total.max(0) as u64);
        pb.set_position(p.rows_processed.max(0) as u64);
        pb.set_message(p.status.as_str());
    }));

    let stop = Arc::new(AtomicBool::new(false));
    super::migrate::watch_ctrl_c(stop.clone());
    engine.set_enabled(true);
    let started = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            engine.shutdown(&mut conn);
            bail!(
                "interrupted: what was deleted stays deleted (each chunk commits whole); \
                 run prune again to finish"
            );
        }
        let Some(due) = engine.run_due(&mut conn) else {
            break;
        };
        let now = Instant::now();
        if due > now {
            std::thread::sleep((due - now).min(std::time::Duration::from_millis(50)));
        }
    }
    for pb in by_name.lock().unwrap_or_else(|e| e.into_inner()).values() {
        pb.finish();
    }
    drop(conn);
    drop(lock);
    let Some(last) = live.retention() else {
        let blocking = super::migrate::not_done(&engine.records());
        bail!(
            "retention did not run: it needs every online migration done ({}); \
             see `meshscope migrations --db {}`",
            blocking.join("; "),
            db.display()
        );
    };
    if last.status != MigrationStatus::Done {
        bail!(
            "retention ended as {}: {}",
            last.status.as_str(),
            last.error.unwrap_or_default()
        );
    }
    let d = last.deleted;
    Ok(report(
        &format!("deleted in {:.1} s", started.elapsed().as_secs_f64()),
        cutoffs,
        Deleted {
            observations: d.observations,
            transmissions: d.transmissions,
            observers: d.observers,
        },
    ))
}

/// The report: the cutoffs, then one line per table (plain numbers, for scripts).
fn report(head: &str, c: Cutoffs, d: Deleted) -> String {
    let cutoff = |v: Option<i64>, what: &str| match v {
        Some(s) => format!("{} ({what} before it go; at it, stay)", format_unix_secs(s)),
        None => "none (all kept)".to_string(),
    };
    format!(
        "{head}\n\
         packet cutoff:   {}\n\
         observer cutoff: {}\n\
         sightings:       {}\n\
         transmissions:   {}\n\
         observers:       {}",
        cutoff(c.packets, "sightings"),
        cutoff(c.observers, "observers last heard"),
        d.observations,
        d.transmissions,
        d.observers
    )
}
