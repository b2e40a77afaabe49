//! Retention: sightings strictly older than the cutoff go (one exactly at it
//! stays), newer rows are untouched, transmissions left without sightings
//! go, observers go only when silent and unreferenced, and the maintained
//! counts stay equal to `COUNT(*)`; on meshscope and CoreScope files. The
//! run shows as a `retention` line while it deletes and not after, and its
//! last run is in `/api/perf`. `meshscope prune --dry-run` writes nothing
//! and reports what a prune deletes; a SIGKILLed prune loses nothing that
//! should stay and the rerun finishes exactly.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshscope::migrate::{Cutoffs, RetentionConfig, Schedule};
use rusqlite::Connection;
use serde_json::{json, Value};
use shared::timefmt::{format_unix_secs, parse_time_ms};

use crate::counts::assert_counts_exact;
use crate::helpers::{packet, run_cli, spawn_app, spawn_with, Options, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_meshscope");

fn ids(c: &Connection, sql: &str) -> BTreeSet<i64> {
    c.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn one(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// What must be left after a run with packet cutoff `cp` and observer
/// cutoff `co`, from the file as it is before: (sightings, transmissions,
/// observers) by id.
struct Kept {
    sightings: BTreeSet<i64>,
    transmissions: BTreeSet<i64>,
    observers: BTreeSet<i64>,
}

fn expected(c: &Connection, cp: i64, co: Option<i64>) -> Kept {
    let sightings = ids(
        c,
        &format!("SELECT id FROM observations WHERE timestamp >= {cp}"),
    );
    // A transmission stays if a sighting of it stays, or it never had any.
    let transmissions = ids(
        c,
        &format!(
            "SELECT id FROM transmissions t WHERE
                EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id AND o.timestamp >= {cp})
             OR NOT EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id)"
        ),
    );
    let observers = match co {
        None => ids(c, "SELECT rowid FROM observers"),
        Some(co) => ids(
            c,
            &format!(
                "SELECT rowid FROM observers o WHERE NOT (
                    COALESCE(unixepoch(o.last_seen) < {co}, 0)
                    AND NOT EXISTS (SELECT 1 FROM observations s
                                    WHERE s.observer_idx = o.rowid AND s.timestamp >= {cp}))"
            ),
        ),
    };
    Kept {
        sightings,
        transmissions,
        observers,
    }
}

fn assert_kept(c: &Connection, want: &Kept) {
    for (what, sql, want) in [
        ("sightings", "SELECT id FROM observations", &want.sightings),
        (
            "transmissions",
            "SELECT id FROM transmissions",
            &want.transmissions,
        ),
        ("observers", "SELECT rowid FROM observers", &want.observers),
    ] {
        let got = ids(c, sql);
        let lost: Vec<_> = want.difference(&got).take(5).collect();
        let left: Vec<_> = got.difference(want).take(5).collect();
        assert!(
            lost.is_empty() && left.is_empty(),
            "{what}: {} that should stay are gone (e.g. {lost:?}), {} that should go are left (e.g. {left:?})",
            want.difference(&got).count(),
            got.difference(want).count()
        );
    }
}

/// Starts a one-off run with `cutoffs` on the app's engine and waits for
/// its end; returns `/api/perf`'s `retention` and the statuses the
/// `retention` healthz line went through.
async fn run_once(app: &TestApp, cutoffs: Cutoffs) -> (Value, Vec<Value>) {
    app.writer
        .with_engine(move |_, e| e.set_retention(Schedule::Once(cutoffs)))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let (_, h) = app.get("/api/healthz").await;
        if let Some(line) = h["async_migrations"]
            .as_array()
            .and_then(|l| l.iter().find(|m| m["name"] == "retention"))
        {
            if seen.last() != Some(line) {
                seen.push(line.clone());
            }
        }
        let (_, perf) = app.get("/api/perf").await;
        let st = perf["retention"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if st == "done" || st == "failed" {
            // One more healthz read: the line as the run left it.
            let (_, h) = app.get("/api/healthz").await;
            if let Some(line) = h["async_migrations"]
                .as_array()
                .and_then(|l| l.iter().find(|m| m["name"] == "retention"))
            {
                seen.push(line.clone());
            }
            return (perf["retention"].clone(), seen);
        }
        assert!(Instant::now() < deadline, "retention never ended: {perf}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A seeded meshscope file (about 3,000 packets, 5 sightings each over the
/// week before now) with placed sightings around the cutoff `C` it returns:
/// one packet with a sighting exactly at `C` and older ones, one with all
/// its sightings one second before `C`, one with all of them after; and
/// three extra observers: silent since before `C`, never heard (NULL), and
/// heard now.
fn seeded_with_placed_rows(db: &Path) -> i64 {
    let end = meshscope::clock::now_secs();
    run_cli(
        db,
        &[
            "seed",
            "--transmissions",
            "3000",
            "--obs-per-tx",
            "5",
            "--end",
            &end.to_string(),
        ],
    );
    let c = Connection::open(db).unwrap();
    let n = one(&c, "SELECT COUNT(*) FROM observations");
    let cutoff = one(
        &c,
        &format!(
            "SELECT timestamp FROM observations ORDER BY timestamp LIMIT 1 OFFSET {}",
            n / 3
        ),
    );
    let multi: Vec<i64> = ids(
        &c,
        "SELECT transmission_id FROM observations GROUP BY transmission_id HAVING COUNT(*) >= 2",
    )
    .into_iter()
    .take(3)
    .collect();
    let (at, gone, after) = (multi[0], multi[1], multi[2]);
    c.execute_batch(&format!(
        "UPDATE observations SET timestamp = {cutoff} - 10 WHERE transmission_id = {at};
         UPDATE observations SET timestamp = {cutoff}
            WHERE id = (SELECT MIN(id) FROM observations WHERE transmission_id = {at});
         UPDATE observations SET timestamp = {cutoff} - 1 WHERE transmission_id = {gone};
         UPDATE observations SET timestamp = {cutoff} + 5 WHERE transmission_id = {after};
         INSERT INTO observers (id, name, last_seen, first_seen, packet_count)
            VALUES ('old-silent', 'old', '{old}', '{old}', 0),
                   ('never-heard', 'null', NULL, NULL, 0),
                   ('recent-silent', 'new', '{new}', '{new}', 0);",
        old = format_unix_secs(cutoff - 3600),
        new = format_unix_secs(end),
    ))
    .unwrap();
    cutoff
}

#[tokio::test]
async fn deletes_exactly_what_is_older_than_the_cutoff_keeping_counts_exact() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("seeded.db");
    let cutoff = seeded_with_placed_rows(&src);
    let src2 = src.clone();
    // Small chunks, gently: the run lasts long enough to be seen.
    let app = spawn_with(Options {
        prepare: Some(Box::new(move |db| {
            std::fs::copy(&src2, db).unwrap();
        })),
        engine: Some(crate::engine::engine_cfg(16, 64, 0.3)),
        ..Default::default()
    })
    .await;
    app.wait_counts_ready().await;
    // A new packet arrives before the run: it is newer than every cutoff.
    let raw = packet(2, &[], b"retention-fresh");
    let (s, _) = app
        .post_json("/api/ingest", &json!({"observer": "f00d", "raw": raw}))
        .await;
    assert_eq!(s, 200);
    let before = app.sql();
    let want = expected(&before, cutoff, Some(cutoff));
    let at_cutoff = one(
        &before,
        &format!("SELECT id FROM observations WHERE timestamp = {cutoff} ORDER BY id LIMIT 1"),
    );
    let deleted_obs =
        one(&before, "SELECT COUNT(*) FROM observations") - want.sightings.len() as i64;
    let deleted_tx =
        one(&before, "SELECT COUNT(*) FROM transmissions") - want.transmissions.len() as i64;
    let deleted_observers =
        one(&before, "SELECT COUNT(*) FROM observers") - want.observers.len() as i64;
    assert!(
        deleted_obs > 1000 && deleted_tx > 100,
        "{deleted_obs} {deleted_tx}"
    );
    let old_silent = one(
        &before,
        "SELECT rowid FROM observers WHERE id = 'old-silent'",
    );
    assert!(
        !want.observers.contains(&old_silent),
        "the silent observer goes"
    );
    assert!(deleted_observers >= 1);
    drop(before);

    let (last, lines) = run_once(
        &app,
        Cutoffs {
            packets: Some(cutoff),
            observers: Some(cutoff),
        },
    )
    .await;

    let c = app.sql();
    assert_kept(&c, &want);
    assert!(want.sightings.contains(&at_cutoff));
    assert_eq!(
        one(
            &c,
            &format!("SELECT COUNT(*) FROM observations WHERE id = {at_cutoff}")
        ),
        1,
        "a sighting exactly at the cutoff stays"
    );
    assert_eq!(
        one(
            &c,
            "SELECT COUNT(*) FROM observers WHERE id IN ('never-heard', 'recent-silent')"
        ),
        2
    );
    assert_counts_exact(&c);

    // The last run, in /api/perf.
    assert_eq!(last["status"], "done", "{last}");
    assert_eq!(last["deleted"]["observations"], deleted_obs, "{last}");
    assert_eq!(last["deleted"]["transmissions"], deleted_tx, "{last}");
    assert_eq!(last["deleted"]["observers"], deleted_observers, "{last}");
    assert_eq!(last["packetCutoff"], format_unix_secs(cutoff));
    assert!(
        last["startedAt"].is_string() && last["endedAt"].is_string(),
        "{last}"
    );

    // The line: running with a total while it deleted, then done, which the
    // banner does not show.
    let running = lines
        .iter()
        .find(|l| l["status"] == "running")
        .unwrap_or_else(|| panic!("no running retention line seen: {lines:?}"));
    assert!(
        running["rowsTotal"].as_i64().unwrap() >= deleted_obs,
        "{running}"
    );
    let done = lines.last().unwrap();
    assert_eq!(done["status"], "done", "{lines:?}");
    assert_eq!(done["rowsProcessed"], deleted_obs + deleted_observers);
    let info: shared::migration::MigrationInfo = serde_json::from_value(done.clone()).unwrap();
    assert!(shared::banner::migration_line(&info, 0, &Default::default()).is_none());
    // Never a bookkeeping row (CoreScope reads that table).
    assert_eq!(
        one(
            &c,
            "SELECT COUNT(*) FROM _async_migrations WHERE name = 'retention'"
        ),
        0
    );
}

#[tokio::test]
async fn off_by_default_and_quiet_when_nothing_is_old() {
    let app = spawn_app().await;
    app.wait_counts_ready().await;
    let (_, perf) = app.get("/api/perf").await;
    assert!(perf["retention"].is_null(), "{perf}");

    let app = spawn_with(Options {
        retention: Some(RetentionConfig {
            packet_days: Some(30),
            observer_days: Some(30),
        }),
        ..Default::default()
    })
    .await;
    let raw = packet(2, &[], b"retention-new");
    let (s, _) = app
        .post_json("/api/ingest", &json!({"observer": "f00d", "raw": raw}))
        .await;
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = loop {
        let (_, perf) = app.get("/api/perf").await;
        if perf["retention"]["status"] == "done" {
            break perf["retention"].clone();
        }
        assert!(Instant::now() < deadline, "retention never ran: {perf}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        last["deleted"],
        json!({"observations": 0, "transmissions": 0, "observers": 0})
    );
    let (_, h) = app.get("/api/healthz").await;
    assert!(
        !h["async_migrations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "retention"),
        "a run with nothing to delete shows no line: {h}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM observations"), 1);
}

#[tokio::test]
async fn corescope_files_keep_their_constraints_and_exact_counts() {
    let app = spawn_with(Options {
        prepare: Some(Box::new(|db| crate::corescope::write_file(db, 600))),
        ..Default::default()
    })
    .await;
    app.wait_counts_ready().await;
    let cutoff = crate::corescope::END - 3 * 86_400;
    let observer_cutoff = crate::corescope::END + 86_400;
    let want = expected(&app.sql(), cutoff, Some(observer_cutoff));
    let before = app.count("SELECT COUNT(*) FROM observations");
    assert!(want.sightings.len() as i64 > before / 4 && (want.sightings.len() as i64) < before);
    let (last, _) = run_once(
        &app,
        Cutoffs {
            packets: Some(cutoff),
            observers: Some(observer_cutoff),
        },
    )
    .await;
    assert_eq!(last["status"], "done", "{last}");
    let c = app.sql();
    assert_kept(&c, &want);
    // Every CoreScope observer still has kept sightings, so none goes.
    assert_eq!(one(&c, "SELECT COUNT(*) FROM observers"), 8);
    assert_counts_exact(&c);
    crate::corescope::assert_constraints_hold(&c);
    crate::corescope::assert_corescope_still_works(&c);
    assert_eq!(
        one(
            &c,
            "SELECT COUNT(*) FROM _async_migrations WHERE name = 'retention'"
        ),
        0
    );
}

fn prune(db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("prune")
        .args(args)
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run meshscope prune")
}

/// The number after `label:` in a prune report.
fn field(out: &str, label: &str) -> i64 {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

/// The cutoff (unix seconds) after `label:` in a prune report.
fn cutoff_in(out: &str, label: &str) -> i64 {
    let text = out
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label} in {out}"));
    parse_time_ms(text).unwrap_or_else(|| panic!("{text}")) / 1000
}

/// The file's length and a hash of its bytes, and the folder's file names.
fn file_state(db: &Path) -> (usize, u64, HashSet<String>) {
    use std::hash::{Hash, Hasher};
    let names = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let bytes = std::fs::read(db).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    (bytes.len(), h.finish(), names)
}

#[test]
fn prune_dry_run_writes_nothing_and_reports_what_prune_deletes() {
    let _heavy = crate::helpers::HEAVY.blocking_lock();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    run_cli(
        &db,
        &["seed", "--transmissions", "3000", "--obs-per-tx", "5"],
    );
    run_cli(&db, &["migrate"]);
    let before = file_state(&db);

    let out = prune(
        &db,
        &["--packet-days", "3", "--observer-days", "2", "--dry-run"],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("nothing was written"), "{text}");
    assert_eq!(
        file_state(&db),
        before,
        "the dry run changed the file or its folder"
    );
    let cp = cutoff_in(&text, "packet cutoff:");
    let co = cutoff_in(&text, "observer cutoff:");
    let c = Connection::open(&db).unwrap();
    let want = expected(&c, cp, Some(co));
    let (obs, tx, observers) = (
        one(&c, "SELECT COUNT(*) FROM observations"),
        one(&c, "SELECT COUNT(*) FROM transmissions"),
        one(&c, "SELECT COUNT(*) FROM observers"),
    );
    drop(c);
    assert_eq!(
        field(&text, "sightings:"),
        obs - want.sightings.len() as i64
    );
    assert_eq!(
        field(&text, "transmissions:"),
        tx - want.transmissions.len() as i64
    );
    assert_eq!(
        field(&text, "observers:"),
        observers - want.observers.len() as i64
    );
    assert!(field(&text, "sightings:") > 1000, "{text}");

    // The prune itself deletes what its own cutoffs say, counts exact.
    let snapshot = dir.path().join("before.db");
    std::fs::copy(&db, &snapshot).unwrap();
    let out = prune(&db, &["--packet-days", "3", "--observer-days", "2"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cp = cutoff_in(&text, "packet cutoff:");
    let co = cutoff_in(&text, "observer cutoff:");
    let want = expected(&Connection::open(&snapshot).unwrap(), cp, Some(co));
    let c = Connection::open(&db).unwrap();
    assert_kept(&c, &want);
    assert_eq!(
        field(&text, "sightings:"),
        obs - want.sightings.len() as i64
    );
    assert_counts_exact(&c);

    // Bad input: a clear message and a non-zero exit, nothing written.
    let before = file_state(&db);
    for (args, want) in [
        (vec!["--packet-days", "0"], "--packet-days"),
        (vec!["--observer-days", "-2"], "--observer-days"),
        (vec!["--dry-run"], "nothing to prune"),
    ] {
        let out = prune(&db, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = prune(&dir.path().join("missing.db"), &["--packet-days", "3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database file"));
    assert_eq!(file_state(&db), before);
}

#[test]
fn sigkill_during_prune_loses_nothing_and_the_rerun_finishes_exactly() {
    let _heavy = crate::helpers::HEAVY.blocking_lock();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    run_cli(
        &db,
        &["seed", "--transmissions", "12000", "--obs-per-tx", "8"],
    );
    run_cli(&db, &["migrate"]);
    // No sighting within an hour after the cutoff of 3 days, so every run
    // in the next hour has the same rows to delete.
    let now = meshscope::clock::now_secs();
    let cutoff = now - 3 * 86_400;
    let c = Connection::open(&db).unwrap();
    c.execute_batch(&format!(
        "UPDATE observations SET timestamp = timestamp - 7200
            WHERE timestamp >= {cutoff} - 3600 AND timestamp < {cutoff} + 3600"
    ))
    .unwrap();
    let want = expected(&c, cutoff + 3600, None);
    let total = one(&c, "SELECT COUNT(*) FROM observations");
    drop(c);
    let slow = [
        "--packet-days",
        "3",
        "--migration-budget-ms",
        "1",
        "--migration-max-batch",
        "200",
    ];
    let mut interrupted = 0;
    for delay_ms in [150u64, 250, 350, 450, 550] {
        let mut child = Command::new(BIN)
            .arg("prune")
            .args(slow)
            .arg("--db")
            .arg(&db)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let c = Connection::open(&db).unwrap();
        let left = one(&c, "SELECT COUNT(*) FROM observations");
        if left > want.sightings.len() as i64 && left < total {
            interrupted += 1;
        }
        // Each chunk commits its rows with their counts: exact at any kill.
        assert_counts_exact(&c);
        // Nothing that should stay went.
        assert!(ids(&c, "SELECT id FROM observations").is_superset(&want.sightings));
        assert!(ids(&c, "SELECT id FROM transmissions").is_superset(&want.transmissions));
    }
    assert!(interrupted >= 1, "no kill landed mid-prune");
    let out = prune(&db, &["--packet-days", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = Connection::open(&db).unwrap();
    assert_kept(&c, &want);
    assert_counts_exact(&c);
}
