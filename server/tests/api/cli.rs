//! The `meshscope` binary's migration commands: `migrations` prints a
//! table, `migrate` runs to completion or fails with the error, and neither
//! `migrate` nor `seed` may take a file another process is serving.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_meshscope");

fn run(args: &[&str], db: &std::path::Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run meshscope")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn seeded(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("cli.db");
    let o = Command::new(BIN)
        .args([
            "seed",
            "--transmissions",
            "3000",
            "--obs-per-tx",
            "3",
            "--legacy",
            "--db",
        ])
        .arg(&db)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    db
}

#[test]
fn migrations_lists_then_migrate_runs_everything_to_done() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let o = run(&["migrations"], &db);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.starts_with("NAME"), "{t}");
    assert!(
        t.contains("tx_last_seen_backfill_v1") && t.contains("pending"),
        "{t}"
    );
    assert!(t.contains("not registered yet"), "{t}");

    let o = run(&["migrate"], &db);
    assert!(o.status.success(), "{}", text(&o));
    let all = meshscope::migrate::registry().len();
    assert!(
        text(&o).contains(&format!("{all} migration(s) done")),
        "{}",
        text(&o)
    );

    let t = text(&run(&["migrations"], &db));
    for line in t.lines().skip(1) {
        assert!(line.contains(" done "), "{t}");
        assert!(line.contains("100.0%"), "{t}");
    }
    assert!(t.contains("3,000 / 3,000"), "{t}");
    let c = rusqlite::Connection::open(&db).unwrap();
    crate::engine::assert_last_seen_correct(&c);
}

#[test]
fn migrate_rejects_unknown_names_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let o = run(&["migrate", "no_such_v9"], &db);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(
            "unknown migration \"no_such_v9\"; known: observations_dedup_v1, hash_rehash_v1, \
             tx_last_seen_backfill_v1"
        ),
        "{}",
        text(&o)
    );
    let o = run(&["migrations"], &dir.path().join("missing.db"));
    assert!(!o.status.success());
    assert!(text(&o).contains("no database file at"), "{}", text(&o));
}

#[test]
fn migrate_exits_non_zero_with_the_error_when_a_migration_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER frozen BEFORE UPDATE OF last_seen ON transmissions
             BEGIN SELECT RAISE(ABORT, 'frozen for the test'); END;",
        )
        .unwrap();
    let o = run(&["migrate", "tx_last_seen_backfill_v1"], &db);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("tx_last_seen_backfill_v1 is failed: frozen for the test"),
        "{t}"
    );
    let t = text(&run(&["migrations"], &db));
    assert!(
        t.contains("failed") && t.contains("frozen for the test"),
        "{t}"
    );
}

#[test]
fn migrate_and_seed_refuse_a_file_a_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let mut serve = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--migration-duty",
            "0.01",
            "--db",
        ])
        .arg(&db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");

    let o = run(&["migrate"], &db);
    assert!(!o.status.success());
    assert!(text(&o).contains("holds the writer role"), "{}", text(&o));
    let o = Command::new(BIN)
        .args(["seed", "--transmissions", "10", "--force", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("holds the writer role"), "{}", text(&o));

    serve.kill().unwrap();
    serve.wait().unwrap();
    // A killed server leaves no stale lock behind.
    let o = run(&["migrate"], &db);
    assert!(o.status.success(), "{}", text(&o));
}
