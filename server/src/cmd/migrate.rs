//! `meshscope migrations` (a status table of a file) and `meshscope migrate`
//! (run pending migrations in the foreground, with a progress bar each).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rusqlite::{Connection, OpenFlags};
use shared::fmt::{duration_approx, rate, thousands};
use shared::migration::{Control, MigrationInfo, MigrationRecord, MigrationStatus, Owner};

use meshscope::clock::now_ms;
use meshscope::db::{self, WriterLock};
use meshscope::migrate::{self, store, Engine, EngineConfig, LiveStatus, Progress};

fn require_file(db: &Path) -> anyhow::Result<()> {
    if !db.is_file() {
        bail!("no database file at {}", db.display());
    }
    Ok(())
}

/// Renders the status table of `db` without starting a server.
pub(crate) fn migrations_table(db: &Path) -> anyhow::Result<String> {
    require_file(db)?;
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", db.display()))?;
    conn.busy_timeout(db::BUSY_TIMEOUT)?;
    let has_table = !db::table_columns(&conn, "_async_migrations")?.is_empty();
    let records: Vec<MigrationRecord> = if has_table {
        store::read_all(&conn)
            .context("cannot read _async_migrations")?
            .into_iter()
            .map(|r| r.rec)
            .collect()
    } else {
        Vec::new()
    };
    let now = now_ms();
    let mut rows: Vec<(MigrationInfo, &str)> = records
        .iter()
        .map(|r| {
            let owner = if migrate::is_registered(&r.name) {
                Owner::Meshscope
            } else {
                Owner::Other
            };
            (meshscope::status::info_logged(r, now, owner), "")
        })
        .collect();
    // Migrations this build knows but the file has not registered yet (an
    // index build only while its index is missing).
    for m in migrate::registry() {
        let needed = m.needed(&conn).ok() != Some(migrate::Need::No);
        if needed && !records.iter().any(|r| r.name == m.name()) {
            let rec = MigrationRecord::new(m.name(), MigrationStatus::Pending);
            rows.push((
                MigrationInfo::from_record(&rec, now, Owner::Meshscope),
                " (not registered yet: starts with the next serve or migrate)",
            ));
        }
    }
    Ok(render_table(&rows))
}

/// One line per migration; `note` follows the status.
fn render_table(infos: &[(MigrationInfo, &str)]) -> String {
    let header = [
        "NAME",
        "STATUS",
        "PROCESSED / TOTAL",
        "PERCENT",
        "RATE",
        "ETA",
        "ERROR",
    ];
    let rows: Vec<[String; 7]> = infos
        .iter()
        .map(|(m, note)| {
            [
                m.name.clone(),
                format!("{}{note}", m.status.as_str()),
                format!(
                    "{} / {}",
                    thousands(m.rows_processed),
                    thousands(m.rows_total)
                ),
                m.percent_text(),
                format!("{}/s", rate(m.rate_per_sec)),
                m.eta_text().unwrap_or_else(|| "-".into()),
                m.error
                    .clone()
                    .or_else(|| {
                        m.throttle_reason
                            .as_ref()
                            .map(|r| format!("throttled: {r}"))
                    })
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `meshscope migrate --dry-run`: what the chosen (default: all unfinished)
/// migrations would do, with their pre-flight estimates. Everything runs in
/// one transaction that is rolled back (schema steps an older file needs
/// included), so the file is left exactly as it was.
pub(crate) fn dry_run(db: &Path, names: &[String], cfg: &EngineConfig) -> anyhow::Result<String> {
    require_file(db)?;
    let known: Vec<&'static str> = migrate::registry().iter().map(|m| m.name()).collect();
    for n in names {
        if !known.contains(&n.as_str()) {
            bail!("unknown migration {n:?}; known: {}", known.join(", "));
        }
    }
    let _lock = WriterLock::acquire(db)?;
    let mut conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", db.display()))?;
    conn.busy_timeout(db::BUSY_TIMEOUT)?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > db::schema::CURRENT_VERSION {
        bail!(
            "{} is schema version {found}, newer than this meshscope ({}); upgrade meshscope",
            db.display(),
            db::schema::CURRENT_VERSION
        );
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    db::schema::upgrade_in(&tx, found).context("cannot apply the schema steps (rolled back)")?;
    let stored = store::read_all(&tx).context("cannot read _async_migrations")?;
    let mut lines = vec![format!(
        "{:<28}  {:<9}  {:>12}  ESTIMATE",
        "NAME", "STATUS", "ROWS LEFT"
    )];
    let started = Instant::now();
    for m in migrate::registry() {
        if !names.is_empty() && !names.iter().any(|n| n == m.name()) {
            continue;
        }
        let row = stored.iter().find(|r| r.rec.name == m.name());
        let status = row.map_or(MigrationStatus::Pending, |r| r.rec.status);
        let named = names.iter().any(|n| n == m.name());
        let runs = match status {
            MigrationStatus::Pending | MigrationStatus::Running | MigrationStatus::Paused => true,
            // `serve` and `migrate` retry a failed run by themselves up to
            // the attempt limit; named ones are retried explicitly.
            MigrationStatus::Failed => {
                named || row.is_some_and(|r| r.rec.attempts < cfg.max_attempts)
            }
            MigrationStatus::Cancelled => named,
            _ => false,
        };
        if !runs {
            lines.push(format!(
                "{:<28}  {:<9}  {:>12}  -",
                m.name(),
                status.as_str(),
                "-"
            ));
            continue;
        }
        // A run in progress continues from its cursor; anything else starts over.
        let resumes = matches!(status, MigrationStatus::Running | MigrationStatus::Paused)
            && row.is_some_and(|r| r.cursor.is_some());
        let (after, max_id, left) = match row.filter(|_| resumes) {
            Some(r) => {
                let max_id = match r.max_id {
                    Some(v) => v,
                    None => m.max_id(&tx)?,
                };
                let left = (r.rec.rows_total - r.rec.rows_processed).max(0);
                (r.cursor.unwrap_or(0), max_id, left)
            }
            None => {
                let max_id = m.max_id(&tx)?;
                (0, max_id, m.count(&tx, max_id)?)
            }
        };
        let est = migrate::preflight(&tx, &*m, cfg, after, max_id, migrate::Upkeep::ALL)
            .with_context(|| format!("{}: the sample chunks failed", m.name()))?;
        lines.push(format!(
            "{:<28}  {:<9}  {:>12}  {} ({:.2} s)",
            m.name(),
            status.as_str(),
            thousands(left),
            if est < 1.0 {
                "under 1 s".to_string()
            } else {
                format!("about {}", duration_approx(est))
            },
            est
        ));
    }
    drop(tx);
    lines.push(format!(
        "dry run: nothing was written (estimated in {:.1} s; the sample chunks were rolled back)",
        started.elapsed().as_secs_f64()
    ));
    Ok(lines.join("\n"))
}

/// Runs the chosen (default: all) migrations on `db` in the foreground.
/// Named migrations that failed or were cancelled are retried explicitly.
pub(crate) fn migrate(
    db: &Path,
    names: &[String],
    offline_indexes: bool,
    cfg: EngineConfig,
) -> anyhow::Result<String> {
    require_file(db)?;
    let known: Vec<&'static str> = migrate::registry().iter().map(|m| m.name()).collect();
    for n in names {
        if !known.contains(&n.as_str()) {
            bail!("unknown migration {n:?}; known: {}", known.join(", "));
        }
    }
    let lock = WriterLock::acquire(db)?;
    let mut conn = db::open_writer(db)?;
    let mut built = Vec::new();
    if offline_indexes {
        for table in ["transmissions", "observations"] {
            for spec in db::schema::missing_indexes(&conn, table)? {
                let t = Instant::now();
                conn.execute_batch(spec.create_sql)
                    .with_context(|| format!("building {} with CREATE INDEX", spec.name))?;
                built.push(format!(
                    "{}: built offline in {:.1} s",
                    spec.name,
                    t.elapsed().as_secs_f64()
                ));
            }
        }
    }
    let chosen: Vec<_> = migrate::registry()
        .into_iter()
        .filter(|m| names.is_empty() || names.iter().any(|n| n == m.name()))
        .collect();
    let mut engine = Engine::boot(&conn, chosen, cfg, None, LiveStatus::default())?;
    for n in names {
        let st = engine
            .info(n)
            .map(|i| i.status)
            .unwrap_or(MigrationStatus::Unknown);
        if Control::Retry.applies_to(st) {
            engine.control(&conn, n, Control::Retry)?;
        }
    }

    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:28} {bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut by_name: HashMap<String, ProgressBar> = HashMap::new();
    for r in engine.records() {
        let pb = bars.add(ProgressBar::new(r.rows_total.max(0) as u64));
        pb.set_style(style.clone());
        pb.set_prefix(r.name.clone());
        pb.set_position(r.rows_processed.max(0) as u64);
        pb.set_message(r.status.as_str());
        by_name.insert(r.name, pb);
    }
    let observer_bars = by_name.clone();
    engine.add_observer(Box::new(move |p: &Progress| {
        if let Some(pb) = observer_bars.get(&p.name) {
            pb.set_length(p.rows_total.max(0) as u64);
            pb.set_position(p.rows_processed.max(0) as u64);
            pb.set_message(p.status.as_str());
        }
    }));

    let stop = Arc::new(AtomicBool::new(false));
    watch_ctrl_c(stop.clone());
    engine.set_enabled(true);
    let started = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            engine.shutdown(&mut conn);
            bail!("interrupted: progress is saved and the next `migrate` or `serve` resumes it");
        }
        let Some(due) = engine.run_due(&mut conn) else {
            break;
        };
        let now = Instant::now();
        if due > now {
            std::thread::sleep((due - now).min(std::time::Duration::from_millis(50)));
        }
    }
    for pb in by_name.values() {
        pb.finish();
    }
    drop(conn);
    drop(lock);
    let records = engine.records();
    let failed = not_done(&records);
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    built.push(format!(
        "{} migration(s) done in {:.1} s",
        records.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(built.join("\n"))
}

/// "NAME is STATUS: error" for each record that is not done.
pub(crate) fn not_done(records: &[MigrationRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.status != MigrationStatus::Done)
        .map(|r| {
            format!(
                "{} is {}{}",
                r.name,
                r.status.as_str(),
                r.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Sets `stop` on Ctrl-C, from a small runtime on its own thread.
pub(crate) fn watch_ctrl_c(stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => rt.block_on(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }),
                Err(e) => tracing::warn!(error = %e, "cannot watch for Ctrl-C"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch for Ctrl-C");
    }
}
