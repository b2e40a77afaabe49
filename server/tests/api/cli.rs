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
    // The file has every index, so no index build is registered.
    let all = meshscope::migrate::registry().len() - meshscope::db::schema::INDEXES.len();
    assert!(
        text(&o).contains(&format!("{all} migration(s) done")),
        "{}",
        text(&o)
    );

    let t = text(&run(&["migrations"], &db));
    for line in t.lines().skip(1) {
        assert!(line.contains(" done "), "{t}");
        assert!(line.contains("100%"), "{t}");
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
             build_idx_transmissions_hash, build_idx_transmissions_first_seen"
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

/// The one precedence, end to end through the real binary: a flag over its
/// environment variable over the config file, for a key and for a key file
/// alike (one setting given either way).
#[tokio::test(flavor = "multi_thread")]
async fn keys_follow_flag_over_environment_over_file_in_either_form() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let file_for = |name: &str, key: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{key}\n")).unwrap();
        p.display().to_string()
    };
    let (fa, fb) = (
        file_for("a.key", "key-in-file-a"),
        file_for("b.key", "key-in-file-b"),
    );
    let conf = dir.path().join("m.toml");
    /// What, file contents, environment, flags, the key that works.
    type Case<'a> = (
        &'a str,
        String,
        Vec<(&'a str, String)>,
        Vec<String>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "an env key file over a file key",
            "operator_key = \"key-in-the-toml\"".into(),
            vec![("MESHSCOPE_OPERATOR_KEY_FILE", fb.clone())],
            vec![],
            "key-in-file-b",
        ),
        (
            "a flag key file over a file key file",
            format!("operator_key_file = {fa:?}"),
            vec![],
            vec!["--operator-key-file".into(), fb.clone()],
            "key-in-file-b",
        ),
        (
            "a flag key file over an env key",
            String::new(),
            vec![("MESHSCOPE_OPERATOR_KEY", "key-in-the-env".into())],
            vec!["--operator-key-file".into(), fa.clone()],
            "key-in-file-a",
        ),
        (
            "an env key over a file key file",
            format!("operator_key_file = {fa:?}"),
            vec![("MESHSCOPE_OPERATOR_KEY", "key-in-the-env".into())],
            vec![],
            "key-in-the-env",
        ),
        (
            "the file when nothing else",
            "operator_key = \"key-in-the-toml\"".into(),
            vec![],
            vec![],
            "key-in-the-toml",
        ),
    ];
    let client = reqwest::Client::new();
    let all = [
        "key-in-file-a",
        "key-in-file-b",
        "key-in-the-env",
        "key-in-the-toml",
    ];
    for (what, toml, env, flags, works) in cases {
        std::fs::write(&conf, toml).unwrap();
        let db = dir.path().join(format!("{}.db", what.len()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshscope"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&conf)
            .arg("--db")
            .arg(&db)
            .args(&flags)
            .env("RUST_LOG", "warn")
            .env_remove("MESHSCOPE_API_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let base = crate::helpers::listening_base(&mut child);
        for key in all {
            let r = client
                .post(format!("{base}/api/migrations/no_such_v9/pause"))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            // The right key reaches the handler (no such migration: 404);
            // any other is refused.
            let want = if key == works { 404 } else { 401 };
            assert_eq!(r.status().as_u16(), want, "{what}: {key}");
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `migrate` and `prune` read the background jobs' settings from the same
/// config file as `serve` (a setting there is not silently ignored).
#[test]
fn migrate_and_prune_read_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let conf = dir.path().join("m.toml");
    std::fs::write(&conf, "migration_duty = 2.0\n").unwrap();
    for args in [
        vec!["migrate", "--dry-run"],
        vec!["prune", "--dry-run", "--packet-days", "30"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_meshscope"))
            .args(&args)
            .arg("--config")
            .arg(&conf)
            .arg("--db")
            .arg(&db)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out);
        assert!(
            err.contains(&format!("migration_duty in {}", conf.display())),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn migrate_offline_indexes_builds_a_missing_index_with_create_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let name = "idx_observations_observer_idx_timestamp";
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!("DROP INDEX {name}"))
        .unwrap();
    // Listed as a build the next start would run.
    let t = text(&run(&["migrations"], &db));
    assert!(t.contains(&format!("build_{name}")), "{t}");
    let o = run(&["migrate", "--offline-indexes"], &db);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{name}: built offline in")),
        "{}",
        text(&o)
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let sql: String = c
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        sql.contains("observations(observer_idx, timestamp)"),
        "{sql}"
    );
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // Nothing left for an online build to do, so none is listed.
    let t = text(&run(&["migrations"], &db));
    assert!(!t.contains(&format!("build_{name}")), "{t}");
}
