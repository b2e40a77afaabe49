//! Fairness: ingest write latency while a backfill runs, against a baseline
//! with no migration, for the engine and — as the negative control — for the
//! one-statement backfill executed as a single writer command.
//!
//! The bound: the median ingest latency during the backfill may be at most
//! `MEDIAN_RATIO_MAX` times the baseline median, and the best at most
//! `BEST_RATIO_MAX` times the baseline best. Why these numbers: by design an
//! ingest request waits for at most one chunk (the 10 ms budget), so the
//! engine's median wait is a few ms over a sub-ms baseline — a ratio of
//! roughly 5-20 on this machine — while the one-statement UPDATE makes every
//! request issued during it wait for the rest of the statement (hundreds of
//! ms here), a median ratio in the hundreds. The bounds sit between the two
//! with room for a noisy shared machine, and the test checks that the
//! control really fails them, so a regression to an unyielded write cannot pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshscope::ingest::RawSighting;
use meshscope::migrate::{last_seen, EngineConfig};
use meshscope::writer::Writer;

use crate::engine::{assert_last_seen_correct, build, legacy_file};

const MEDIAN_RATIO_MAX: f64 = 60.0;
const BEST_RATIO_MAX: f64 = 10.0;

/// How long the one-statement UPDATE must take on the file, as measured
/// when the file is sized, for the comparison to mean something: well over
/// a few chunk budgets, and over the 200 ms the test asserts in its run.
const NAIVE_MIN: Duration = Duration::from_millis(400);
/// The largest file tried (transmissions); the sizing doubles up to it.
const MAX_TRANSMISSIONS: u64 = 1_280_000;

/// A legacy file without the composite index (as CoreScope files in the
/// field are), of `n` transmissions, generated once per target dir.
pub fn legacy_of(n: u64) -> std::path::PathBuf {
    let cache =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fairness-legacy-{n}-v1"));
    let db = cache.join("legacy.db");
    if !db.exists() {
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&cache).unwrap();
        let built = legacy_file(&cache, n, 21);
        let c = rusqlite::Connection::open(&built).unwrap();
        c.execute_batch("DROP INDEX idx_observations_tx_ts; PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    db
}

/// The one-statement UPDATE's time on a copy of `src`.
fn naive_update_time(src: &std::path::Path) -> Duration {
    let (_dir, db) = copy_of(src);
    let c = rusqlite::Connection::open(&db).unwrap();
    let t = Instant::now();
    c.execute(last_seen::UPDATE_RANGE, [0, i64::MAX]).unwrap();
    t.elapsed()
}

/// A legacy file big enough that, on this machine, the unyielded UPDATE
/// takes at least [`NAIVE_MIN`]: starting from 80,000 transmissions, the
/// size doubles until it does (a faster or quieter machine gets a bigger file).
fn big_legacy_file() -> std::path::PathBuf {
    let mut n = 80_000;
    loop {
        let db = legacy_of(n);
        let took = naive_update_time(&db);
        eprintln!("fairness: {n} transmissions: one-statement UPDATE {took:?}");
        if took >= NAIVE_MIN || n >= MAX_TRANSMISSIONS {
            return db;
        }
        n *= 2;
    }
}

pub fn copy_of(src: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("copy.db");
    std::fs::copy(src, &db).unwrap();
    (dir, db)
}

fn sighting(i: u64) -> meshscope::ingest::Sighting {
    let mut payload = i.to_le_bytes().to_vec();
    payload.extend_from_slice(b"fairness probe");
    let raw = hex::encode(meshscope::decoder::encode(1, 2, 0, None, 1, &[], &payload));
    RawSighting {
        observer: "fa1e".into(),
        raw,
        ..Default::default()
    }
    .validate(meshscope::clock::now_secs())
    .unwrap()
}

/// Starts one ingest request every 4 ms, whether or not earlier ones have
/// been answered (open loop: a stalled writer shows as many slow requests,
/// not as one), until `until` says stop; returns every request's latency.
async fn probe(writer: Arc<Writer>, start: u64, until: impl Fn(usize) -> bool) -> Vec<Duration> {
    let mut pending = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(4));
    let mut i = start;
    while !until(pending.len()) {
        tick.tick().await;
        let w = writer.clone();
        let s = sighting(i);
        pending.push(tokio::spawn(async move {
            let t = Instant::now();
            w.ingest(vec![s], 1_800_000_000).await.unwrap();
            t.elapsed()
        }));
        i += 1;
    }
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        out.push(p.await.unwrap());
    }
    out
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Verdict {
    median_ratio: f64,
    best_ratio: f64,
    median: Duration,
    samples: usize,
}

impl Verdict {
    fn fair(&self) -> bool {
        self.median_ratio <= MEDIAN_RATIO_MAX && self.best_ratio <= BEST_RATIO_MAX
    }
}

fn verdict(base: &mut [Duration], during: &mut [Duration]) -> Verdict {
    let (bm, dm) = (median(base), median(during));
    let (bb, db) = (base[0], during[0]);
    Verdict {
        median_ratio: dm.as_secs_f64() / bm.as_secs_f64(),
        best_ratio: db.as_secs_f64() / bb.as_secs_f64(),
        median: dm,
        samples: during.len(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_barely_notices_the_engine_but_waits_for_a_one_statement_backfill() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let src = big_legacy_file();

    // Baseline: same file, no migration running.
    let (dir, db) = copy_of(&src);
    let h = build(dir, db, EngineConfig::default(), vec![]);
    let mut base = probe(h.parts.writer.clone(), 0, |n| n >= 150).await;
    drop(h);

    // The engine with its defaults.
    let (dir, db) = copy_of(&src);
    let h = build(
        dir,
        db,
        EngineConfig::default(),
        vec![Arc::new(last_seen::TxLastSeenBackfill)],
    );
    let live = h.parts.live.clone();
    let started = Instant::now();
    h.parts.start_migrations().await.unwrap();
    let running = move |_| {
        live.snapshot()
            .get(last_seen::NAME)
            .is_some_and(|r| r.status == shared::migration::MigrationStatus::Done)
    };
    let mut during = probe(h.parts.writer.clone(), 1_000_000, running).await;
    let engine_wall = started.elapsed();
    assert_last_seen_correct(&h.sql());
    drop(h);

    // Negative control: the one-statement UPDATE as one writer command.
    let (dir, db) = copy_of(&src);
    let h = build(dir, db, EngineConfig::default(), vec![]);
    let writer = h.parts.writer.clone();
    let t0 = Instant::now();
    let update = tokio::spawn(async move {
        writer
            .exec(|c| {
                c.execute(last_seen::UPDATE_RANGE, [0, i64::MAX])?;
                Ok(())
            })
            .await
            .unwrap();
    });
    let naive_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = naive_done.clone();
    let watcher = tokio::spawn(async move {
        update.await.unwrap();
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let stop = naive_done.clone();
    let mut control = probe(h.parts.writer.clone(), 2_000_000, move |_| {
        stop.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    watcher.await.unwrap();
    let naive_wall = t0.elapsed();
    assert_last_seen_correct(&h.sql());

    let mut base2 = base.clone();
    let engine = verdict(&mut base, &mut during);
    let naive = verdict(&mut base2, &mut control);
    eprintln!(
        "fairness: baseline median {:?} best {:?}; engine {:.2}s wall, {} samples, median {:?} (x{:.1}), best x{:.1}; \
         one-statement {:.2}s wall, {} samples, median {:?} (x{:.1}), best x{:.1}",
        median(&mut base),
        base[0],
        engine_wall.as_secs_f64(),
        engine.samples,
        engine.median,
        engine.median_ratio,
        engine.best_ratio,
        naive_wall.as_secs_f64(),
        naive.samples,
        naive.median,
        naive.median_ratio,
        naive.best_ratio,
    );
    assert!(
        naive_wall > Duration::from_millis(200),
        "the file must be big enough to matter"
    );
    assert!(
        engine.samples >= 10,
        "the backfill must overlap enough ingest"
    );
    assert!(
        engine.fair(),
        "engine: median x{:.1}, best x{:.1}",
        engine.median_ratio,
        engine.best_ratio
    );
    assert!(
        !naive.fair(),
        "the negative control must fail the bound: median x{:.1}",
        naive.median_ratio
    );
}
