//! `spawn_app()`: the real router on 127.0.0.1:0 over a temp database file.

use std::path::PathBuf;
use std::sync::{Arc, Once};

use meshscope::config::ServeConfig;
use meshscope::decoder;
use meshscope::mqtt::{self, Liveness, MqttSource};
use meshscope::serve;
use meshscope::settings::{CommandLine, ServeArgs};
use meshscope::writer::Writer;
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: PathBuf,
    #[allow(dead_code)] // kept so tests can reach the writer directly
    pub writer: Arc<Writer>,
    pub status: Arc<meshscope::status::StatusSource>,
    /// Counters of the MQTT sources (empty without any).
    #[allow(dead_code)] // used by the MQTT tests
    pub liveness: Liveness,
    /// Running MQTT subscribers; dropping the app stops them.
    #[allow(dead_code)] // used by the MQTT tests
    pub mqtt: Option<mqtt::Handle>,
    pub _dir: tempfile::TempDir,
}

static LOG: Once = Once::new();

/// Serialises the tests that measure time or run child servers, so they do
/// not load the two cores at once.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Logs only when TEST_LOG is set.
pub fn init_log() {
    LOG.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        }
    });
}

/// Prepares the database file before the server opens it.
pub type Prepare = Box<dyn FnOnce(&std::path::Path)>;

#[derive(Default)]
pub struct Options {
    pub api_key: Option<String>,
    pub dist: Option<PathBuf>,
    pub prepare: Option<Prepare>,
    /// Keep online migrations from starting (to look at the file as boot left it).
    pub hold_migrations: bool,
    /// Migrations to register instead of the shipped registry.
    pub migrations: Option<Vec<Arc<dyn meshscope::migrate::Migration>>>,
    /// Engine settings instead of the defaults.
    pub engine: Option<meshscope::migrate::EngineConfig>,
    /// MQTT brokers to ingest from, started like `serve` does.
    pub mqtt: Vec<MqttSource>,
    /// The database file, when it must live somewhere special (a small
    /// filesystem); by default a file in the app's temp folder.
    pub db_path: Option<PathBuf>,
    pub ingest_key_file: Option<PathBuf>,
    pub operator_key: Option<String>,
    pub query_timeout_ms: Option<u64>,
    pub readers: Option<u32>,
    /// Retention settings (off by default, as served).
    pub retention: Option<meshscope::migrate::RetentionConfig>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    try_spawn(opts).await.expect("server starts")
}

pub async fn try_spawn(opts: Options) -> anyhow::Result<TestApp> {
    init_log();
    let dir = tempfile::tempdir()?;
    let db = opts.db_path.unwrap_or_else(|| dir.path().join("test.db"));
    if let Some(prepare) = opts.prepare {
        prepare(&db);
    }
    let mut cli = CommandLine::default()
        .with("db", db.display().to_string())
        .with("listen", "127.0.0.1:0")
        .with(
            "dist",
            opts.dist
                .unwrap_or_else(|| dir.path().join("no-dist"))
                .display()
                .to_string(),
        );
    for (key, value) in [
        ("api_key", opts.api_key),
        (
            "ingest_key_file",
            opts.ingest_key_file.map(|p| p.display().to_string()),
        ),
        ("operator_key", opts.operator_key),
        (
            "query_timeout_ms",
            opts.query_timeout_ms.map(|v| v.to_string()),
        ),
        ("readers", opts.readers.map(|v| v.to_string())),
    ] {
        if let Some(v) = value {
            cli = cli.with(key, v);
        }
    }
    let mut cfg = ServeConfig::resolve(&ServeArgs(cli))?;
    cfg.mqtt = opts.mqtt;
    if let Some(engine) = opts.engine {
        cfg.engine = engine;
    }
    if let Some(r) = opts.retention {
        cfg.retention = r;
    }
    let parts = match opts.migrations {
        Some(m) => serve::build_with(&cfg, m)?,
        None => serve::build(&cfg)?,
    };
    if !opts.hold_migrations {
        parts.start_migrations().await?;
    }
    let mqtt = (!cfg.mqtt.is_empty()).then(|| parts.start_mqtt(&cfg));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let router = meshscope::api::app(parts.state.clone());
    let status = parts.state.status.clone();
    let limits = cfg.limits.clone();
    tokio::spawn(async move {
        meshscope::http::serve(listener, router, &limits, std::future::pending()).await;
    });
    Ok(TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        db,
        writer: parts.writer,
        status,
        liveness: parts.state.ingest_liveness.clone(),
        mqtt,
        _dir: dir,
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The body of `GET path` as text (e.g. `/metrics`).
    pub async fn get_text(&self, path: &str) -> String {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        r.text().await.expect("a text body")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string(), &[]).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).body(body);
        // JSON unless the test says otherwise (ingest refuses anything else).
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until `/api/stats` reports maintained counts (`countsReady`),
    /// then past the stats cache, so the next `/api/stats` is read fresh.
    pub async fn wait_counts_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (s, st) = self.get("/api/stats").await;
            assert_eq!(s, 200, "{st}");
            if st["countsReady"] == true {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "counts never became ready: {st}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }

    /// The migration `name` as `/api/healthz` lists it (`null` when absent).
    pub async fn migration(&self, name: &str) -> Value {
        let (_, h) = self.get("/api/healthz").await;
        h["async_migrations"]
            .as_array()
            .and_then(|l| l.iter().find(|m| m["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// A direct connection to the file, for checks the API does not expose.
    pub fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.db).expect("open test db");
        c.busy_timeout(std::time::Duration::from_secs(5))
            .expect("busy timeout");
        c
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.sql().query_row(sql, [], |r| r.get(0)).expect(sql)
    }
}

/// A FLOOD packet of `payload_type` with the given one-byte hops and payload, as hex.
pub fn packet(payload_type: u8, hops: &[u8], payload: &[u8]) -> String {
    let hops: Vec<[u8; 1]> = hops.iter().map(|h| [*h]).collect();
    let hop_refs: Vec<&[u8]> = hops.iter().map(|h| h.as_slice()).collect();
    hex::encode(decoder::encode(
        1,
        payload_type,
        0,
        None,
        1,
        &hop_refs,
        payload,
    ))
}

/// The hash meshscope stores for a hex packet.
pub fn hash_of(raw_hex: &str) -> String {
    let bytes = decoder::parse_hex(raw_hex).expect("hex");
    decoder::decode(&bytes).expect("decodes").hash()
}

/// An ADVERT payload for the 32-byte key `key`, as MeshCore sends them:
/// named `n<key>`, one of the four roles by `key`, and located unless
/// `key` is a multiple of 3 (the name is last, so appending bytes
/// lengthens the name).
pub fn advert_payload(key: u8) -> Vec<u8> {
    let location = (!key.is_multiple_of(3)).then(|| {
        (
            47.0 + f64::from(key) / 100.0,
            -122.0 - f64::from(key) / 100.0,
        )
    });
    meshscope::decoder::advert::encode(
        &[key; 32],
        1_700_000_000 + u32::from(key),
        1 + key % 4,
        location,
        Some(&format!("n{key:02x}")),
    )
}

/// The base URL a `meshscope serve` child prints on its first stdout line
/// (started with `--listen 127.0.0.1:0` and a piped stdout).
/// `meshscope serve` as a child process.
pub struct ChildServer {
    pub child: std::process::Child,
    pub base: String,
}

/// Starts `meshscope serve` on `db` (port 0). `duty` slows the backfills
/// on purpose; chunks are capped at 100 ids, so however fast the machine,
/// a run at a small duty takes many chunks, each followed by a pause
/// `1/duty - 1` times its length.
pub fn serve_child(db: &std::path::Path, duty: &str) -> ChildServer {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meshscope"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--migration-duty",
            duty,
            "--migration-budget-ms",
            "5",
            "--migration-max-batch",
            "100",
        ])
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start meshscope serve");
    let base = listening_base(&mut child);
    ChildServer { child, base }
}

/// Runs `meshscope ARGS --db DB` to completion; panics when it fails.
pub fn run_cli(db: &std::path::Path, args: &[&str]) {
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_meshscope"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .status()
        .expect("run meshscope");
    assert!(st.success(), "meshscope {args:?}: {st}");
}

/// A pre-backfill ("legacy") file of 20,000 packets with about 8 sightings
/// each, seeded by `meshscope seed`.
pub fn seed_legacy_20k(db: &std::path::Path) {
    run_cli(
        db,
        &[
            "seed",
            "--transmissions",
            "20000",
            "--obs-per-tx",
            "8",
            "--legacy",
        ],
    );
}

/// The first column of every row `sql` returns, as text.
pub fn strings(c: &rusqlite::Connection, sql: &str) -> Vec<String> {
    c.prepare(sql)
        .expect(sql)
        .query_map([], |r| r.get(0))
        .expect(sql)
        .map(|r| r.expect(sql))
        .collect()
}

pub fn listening_base(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("read the first line");
    line.trim()
        .strip_prefix("meshscope listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string()
}
