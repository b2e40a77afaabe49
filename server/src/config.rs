//! `serve` configuration. Every setting can come from a flag, a
//! `MESHSCOPE_*` environment variable, or the TOML config file, in that
//! order of precedence; defaults fill in the rest. (The other commands'
//! arguments live with the binary, in `src/cmd/`.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::db::Durability;
use crate::health::HealthConfig;
use crate::migrate::retention::DaysError;
use crate::migrate::{EngineConfig, EngineConfigError, RetentionConfig};
use crate::mqtt::{MqttSource, SourceError, SourceSpec};

/// A setting that cannot be used, named as the operator gives it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("--migration-budget-ms: must be greater than 0, got {0}")]
    Budget(f64),
    #[error(transparent)]
    Engine(#[from] EngineConfigError),
    #[error(transparent)]
    Retention(#[from] DaysError),
    #[error("{option}: {source}")]
    Key {
        option: &'static str,
        source: KeyError,
    },
    #[error("{option}: cannot read {path}: {source}")]
    KeyFile {
        option: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refusing to serve ingest without a key on {listen}, a non-loopback address: anyone \
         who reaches it could write packets. Set an ingest key (MESHSCOPE_INGEST_KEY, \
         --ingest-key-file or `ingest_key_file`; or MESHSCOPE_API_KEY / --api-key-file for \
         both scopes), or pass --allow-open-ingest to serve it open on purpose"
    )]
    OpenIngest { listen: SocketAddr },
    #[error("{option}: must be from {min} to {max}, got {value}")]
    Range {
        option: &'static str,
        min: u64,
        max: u64,
        value: u64,
    },
    #[error("--readers: must be from 1 to 64, got {0}")]
    Readers(u32),
    #[error("--mqtt: {0}")]
    MqttUrl(SourceError),
    #[error("[[mqtt]] {label}: {source}")]
    MqttTable { label: String, source: SourceError },
    #[error(
        "two MQTT sources are named {0:?} (the same broker twice?); sources need distinct \
         names, set with `name` in [[mqtt]] tables"
    )]
    DuplicateSource(String),
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML config file (keys as the flags, with underscores: db, listen, dist, api_key, ...).
    #[arg(long, env = "MESHSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// SQLite database file; created (with its folder) if missing. [default: ./data/meshscope.db]
    #[arg(long, env = "MESHSCOPE_DB")]
    pub db: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port. [default: 127.0.0.1:8080]
    #[arg(long, env = "MESHSCOPE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder with the built dashboard (index.html). [default: ./dist]
    #[arg(long, env = "MESHSCOPE_DIST")]
    pub dist: Option<PathBuf>,
    /// A key for both scopes (ingest and operator controls), unless the
    /// scope has its own key. Give it by environment or file: a flag shows
    /// in `ps`. [env MESHSCOPE_API_KEY]
    #[arg(long, env = "MESHSCOPE_API_KEY", hide = true, hide_env_values = true)]
    pub api_key: Option<String>,
    /// File holding the key for both scopes (first line).
    #[arg(long, env = "MESHSCOPE_API_KEY_FILE", value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// The key `POST /api/ingest` requires. [env MESHSCOPE_INGEST_KEY]
    #[arg(
        long,
        env = "MESHSCOPE_INGEST_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub ingest_key: Option<String>,
    /// File holding the ingest key (first line).
    #[arg(long, env = "MESHSCOPE_INGEST_KEY_FILE", value_name = "PATH")]
    pub ingest_key_file: Option<PathBuf>,
    /// The key the operator controls (pause, resume, cancel, retry) require.
    /// [env MESHSCOPE_OPERATOR_KEY]
    #[arg(
        long,
        env = "MESHSCOPE_OPERATOR_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub operator_key: Option<String>,
    /// File holding the operator key (first line).
    #[arg(long, env = "MESHSCOPE_OPERATOR_KEY_FILE", value_name = "PATH")]
    pub operator_key_file: Option<PathBuf>,
    /// Serve ingest without a key on a non-loopback address (anyone who can
    /// reach the port can then write packets). Refused otherwise.
    #[arg(long, env = "MESHSCOPE_ALLOW_OPEN_INGEST")]
    pub allow_open_ingest: bool,
    /// Close a connection that has not sent a whole request head within this
    /// many seconds (also the idle time of a kept-alive connection). [default: 10]
    #[arg(long, env = "MESHSCOPE_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Fail a request whose body has not arrived within this many seconds.
    /// [default: 30]
    #[arg(long, env = "MESHSCOPE_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Connections served at once; more are answered 503 and closed. [default: 512]
    #[arg(long, env = "MESHSCOPE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// `/api/events` streams open at once; more are answered 503. [default: 64]
    #[arg(long, env = "MESHSCOPE_MAX_EVENT_STREAMS")]
    pub max_event_streams: Option<usize>,
    /// A database read taking longer is stopped and answered 503. [default: 2000]
    #[arg(long, env = "MESHSCOPE_QUERY_TIMEOUT_MS")]
    pub query_timeout_ms: Option<u64>,
    /// Read-only database connections in the reader pool. [default: 4]
    #[arg(long, env = "MESHSCOPE_READERS")]
    pub readers: Option<u32>,
    /// What an acknowledged write survives: `full` syncs every commit to disk
    /// (survives a power cut); `normal` syncs at checkpoints only (survives a
    /// crash of meshscope, not of the machine). [default: full]
    #[arg(long, env = "MESHSCOPE_DURABILITY", value_enum)]
    pub durability: Option<Durability>,
    /// MQTT broker to ingest live packets from, as mqtt://[USER:PASS@]HOST[:PORT]
    /// (repeatable; comma-separated in the env var). Given here, it replaces the
    /// config file's [[mqtt]] sources. [default: none]
    #[arg(
        long = "mqtt",
        env = "MESHSCOPE_MQTT",
        value_delimiter = ',',
        value_name = "URL",
        hide_env_values = true
    )]
    pub mqtt: Vec<String>,
    #[command(flatten)]
    pub migration: MigrationArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// Retention (`[retention]` in the config file); off unless set.
#[derive(Debug, Args, Default, Clone)]
pub struct RetentionArgs {
    /// Delete packet sightings older than this many days (and packets left
    /// without any), hourly, online. [default: keep everything]
    #[arg(
        long,
        env = "MESHSCOPE_RETENTION_PACKET_DAYS",
        allow_negative_numbers = true
    )]
    pub retention_packet_days: Option<i64>,
    /// Delete observers not heard for this many days (once none of their
    /// sightings is kept). [default: keep everything]
    #[arg(
        long,
        env = "MESHSCOPE_RETENTION_OBSERVER_DAYS",
        allow_negative_numbers = true
    )]
    pub retention_observer_days: Option<i64>,
}

impl RetentionArgs {
    /// Flags/env over the config file's `[retention]`, validated (whole days ≥ 1).
    pub fn resolve(&self, file: &RetentionFile) -> Result<RetentionConfig, ConfigError> {
        let packet = match self.retention_packet_days {
            Some(v) => RetentionConfig::days("--retention-packet-days", Some(v))?,
            None => RetentionConfig::days("[retention] packet_days", file.packet_days)?,
        };
        let observer = match self.retention_observer_days {
            Some(v) => RetentionConfig::days("--retention-observer-days", Some(v))?,
            None => RetentionConfig::days("[retention] observer_days", file.observer_days)?,
        };
        Ok(RetentionConfig {
            packet_days: packet,
            observer_days: observer,
        })
    }
}

/// The config file's `[retention]` table (CoreScope's `retention.packetDays`
/// and `retention.observerDays`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    pub packet_days: Option<i64>,
    pub observer_days: Option<i64>,
}

/// Online-migration knobs, shared by `serve` and `migrate`.
#[derive(Debug, Args, Default, Clone)]
pub struct MigrationArgs {
    /// Writer time per migration chunk, in milliseconds. [default: 10]
    #[arg(long, env = "MESHSCOPE_MIGRATION_BUDGET_MS")]
    pub(crate) migration_budget_ms: Option<f64>,
    /// Largest fraction of wall time migrations may hold the writer, in (0, 1];
    /// 1 runs flat out (yielding only to ingest), 0.1 runs gently. [default: 1.0]
    #[arg(long, env = "MESHSCOPE_MIGRATION_DUTY")]
    pub(crate) migration_duty: Option<f64>,
    /// Automatic retries of a failed migration stop after this many attempts. [default: 3]
    #[arg(long, env = "MESHSCOPE_MIGRATION_MAX_ATTEMPTS")]
    pub(crate) migration_max_attempts: Option<i64>,
    /// Smallest chunk, in rows. [default: 64]
    #[arg(long, env = "MESHSCOPE_MIGRATION_MIN_BATCH")]
    pub(crate) migration_min_batch: Option<i64>,
    /// Largest chunk, in rows. [default: 200000]
    #[arg(long, env = "MESHSCOPE_MIGRATION_MAX_BATCH")]
    pub(crate) migration_max_batch: Option<i64>,
    /// Throttle migrations while the WAL holds more than this many MiB not
    /// yet checkpointed; 0 turns the signal off. [default: 32]
    #[arg(long, env = "MESHSCOPE_THROTTLE_WAL_MB")]
    pub(crate) throttle_wal_mb: Option<u64>,
    /// Throttle migrations while a reader has kept the WAL checkpoint from
    /// moving for this many seconds; 0 turns the signal off. [default: 30]
    #[arg(long, env = "MESHSCOPE_THROTTLE_CHECKPOINT_STUCK_SECS")]
    pub(crate) throttle_checkpoint_stuck_secs: Option<u64>,
    /// Throttle migrations while ingest's wait for the writer has a p99 over
    /// this many ms (last 5 s); 0 turns the signal off. [default: 200]
    #[arg(long, env = "MESHSCOPE_THROTTLE_INGEST_WAIT_MS")]
    pub(crate) throttle_ingest_wait_ms: Option<u64>,
    /// Throttle migrations while the database's disk has less than this
    /// many MiB free; 0 turns the signal off. [default: 256]
    #[arg(long, env = "MESHSCOPE_THROTTLE_MIN_FREE_MB")]
    pub(crate) throttle_min_free_mb: Option<u64>,
}

impl MigrationArgs {
    /// Flags/env over the config file over defaults, validated.
    pub fn resolve(&self, file: &FileConfig) -> Result<EngineConfig, ConfigError> {
        let d = EngineConfig::default();
        let budget_ms = self
            .migration_budget_ms
            .or(file.migration_budget_ms)
            .unwrap_or(d.budget.as_secs_f64() * 1000.0);
        if !budget_ms.is_finite() || budget_ms <= 0.0 {
            return Err(ConfigError::Budget(budget_ms));
        }
        let cfg = EngineConfig {
            budget: std::time::Duration::from_secs_f64(budget_ms / 1000.0),
            duty: self
                .migration_duty
                .or(file.migration_duty)
                .unwrap_or(d.duty),
            max_attempts: self
                .migration_max_attempts
                .or(file.migration_max_attempts)
                .unwrap_or(d.max_attempts),
            min_batch: self
                .migration_min_batch
                .or(file.migration_min_batch)
                .unwrap_or(d.min_batch),
            max_batch: self
                .migration_max_batch
                .or(file.migration_max_batch)
                .unwrap_or(d.max_batch),
            health: HealthConfig {
                wal_max_bytes: self
                    .throttle_wal_mb
                    .or(file.throttle_wal_mb)
                    .map_or(d.health.wal_max_bytes, mib),
                checkpoint_stuck: self
                    .throttle_checkpoint_stuck_secs
                    .or(file.throttle_checkpoint_stuck_secs)
                    .map_or(d.health.checkpoint_stuck, Duration::from_secs),
                ingest_wait_p99: self
                    .throttle_ingest_wait_ms
                    .or(file.throttle_ingest_wait_ms)
                    .map_or(d.health.ingest_wait_p99, Duration::from_millis),
                min_free_bytes: self
                    .throttle_min_free_mb
                    .or(file.throttle_min_free_mb)
                    .map_or(d.health.min_free_bytes, mib),
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// MiB to bytes, saturating.
fn mib(n: u64) -> u64 {
    n.saturating_mul(1024 * 1024)
}

/// The TOML config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub db: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub dist: Option<PathBuf>,
    pub api_key: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub ingest_key: Option<String>,
    pub ingest_key_file: Option<PathBuf>,
    pub operator_key: Option<String>,
    pub operator_key_file: Option<PathBuf>,
    pub allow_open_ingest: Option<bool>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_event_streams: Option<usize>,
    pub query_timeout_ms: Option<u64>,
    pub readers: Option<u32>,
    pub durability: Option<Durability>,
    pub(crate) migration_budget_ms: Option<f64>,
    pub(crate) migration_duty: Option<f64>,
    pub(crate) migration_max_attempts: Option<i64>,
    pub(crate) migration_min_batch: Option<i64>,
    pub(crate) throttle_wal_mb: Option<u64>,
    pub(crate) throttle_checkpoint_stuck_secs: Option<u64>,
    pub(crate) throttle_ingest_wait_ms: Option<u64>,
    pub(crate) throttle_min_free_mb: Option<u64>,
    pub(crate) migration_max_batch: Option<i64>,
    /// `[[mqtt]]` tables: name, url, username, password, topics, iata_filter.
    #[serde(default)]
    pub mqtt: Vec<SourceSpec>,
    /// `[retention]`: packet_days, observer_days.
    #[serde(default)]
    pub retention: RetentionFile,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Settings for `serve`, resolved and validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: PathBuf,
    pub listen: SocketAddr,
    pub dist: PathBuf,
    pub keys: Keys,
    pub limits: Limits,
    pub readers: u32,
    pub durability: Durability,
    pub engine: EngineConfig,
    /// What the retention job deletes; off by default.
    pub retention: RetentionConfig,
    /// Brokers to subscribe to; empty means no live MQTT ingest.
    pub mqtt: Vec<MqttSource>,
}

impl ServeConfig {
    /// Merges flags/env over the config file over defaults, and validates.
    pub fn resolve(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let engine = args.migration.resolve(&file)?;
        let retention = args.retention.resolve(&file.retention)?;
        let limits = Limits::resolve(&args, &file)?;
        let both = key(
            "the API key (MESHSCOPE_API_KEY / api_key_file)",
            args.api_key.or(file.api_key),
            args.api_key_file.or(file.api_key_file),
        )?;
        let keys = Keys {
            ingest: key(
                "the ingest key (MESHSCOPE_INGEST_KEY / ingest_key_file)",
                args.ingest_key.or(file.ingest_key),
                args.ingest_key_file.or(file.ingest_key_file),
            )?
            .or_else(|| both.clone()),
            operator: key(
                "the operator key (MESHSCOPE_OPERATOR_KEY / operator_key_file)",
                args.operator_key.or(file.operator_key),
                args.operator_key_file.or(file.operator_key_file),
            )?
            .or(both),
        };

        let readers = args.readers.or(file.readers).unwrap_or(4);
        if !(1..=64).contains(&readers) {
            return Err(ConfigError::Readers(readers));
        }
        let mqtt = resolve_mqtt(&args.mqtt, file.mqtt)?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let allow_open_ingest = args.allow_open_ingest || file.allow_open_ingest.unwrap_or(false);
        if keys.ingest.is_none() && !listen.ip().is_loopback() && !allow_open_ingest {
            return Err(ConfigError::OpenIngest { listen });
        }
        Ok(ServeConfig {
            mqtt,
            engine,
            retention,
            durability: args.durability.or(file.durability).unwrap_or_default(),
            db: args
                .db
                .or(file.db)
                .unwrap_or_else(|| PathBuf::from("data/meshscope.db")),
            listen,
            dist: args
                .dist
                .or(file.dist)
                .unwrap_or_else(|| PathBuf::from("dist")),
            keys,
            limits,
            readers,
        })
    }
}

/// A configured API key. Only its SHA-256 is kept, so comparisons take the
/// same time whatever the presented key's length or content.
#[derive(Clone)]
pub struct ApiKey([u8; 32]);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// Why a configured key is refused (the key itself is never shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("API key must be 8 to 256 characters long")]
    Length,
    #[error("API key must be visible ASCII without spaces")]
    Characters,
}

impl ApiKey {
    /// Keys are 8-256 visible ASCII characters.
    pub fn parse(s: &str) -> Result<ApiKey, KeyError> {
        if s.len() < 8 || s.len() > 256 {
            return Err(KeyError::Length);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::Characters);
        }
        Ok(ApiKey(
            <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()).into(),
        ))
    }

    /// Whether `presented` is this key (constant time).
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(presented.as_bytes()).into();
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &digest[..]).into()
    }
}

/// The keys of the two scopes. A key given for both (`api_key`) covers a
/// scope that has no key of its own.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Required by `POST /api/ingest`; `None`: ingest is open.
    pub ingest: Option<ApiKey>,
    /// Required by the operator controls; `None`: controls are disabled.
    pub operator: Option<ApiKey>,
}

/// A key from its value or its file (the value wins); `None` when neither
/// is given or the value is empty.
fn key(
    option: &'static str,
    value: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<ApiKey>, ConfigError> {
    let text = match (value.filter(|v| !v.is_empty()), file) {
        (Some(v), _) => v,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::KeyFile {
                option,
                path: path.clone(),
                source,
            })?;
            text.lines().next().unwrap_or("").trim().to_string()
        }
        (None, None) => return Ok(None),
    };
    ApiKey::parse(&text)
        .map(Some)
        .map_err(|source| ConfigError::Key { option, source })
}

/// What a client may take of the server: time, connections, streams, reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub max_connections: usize,
    pub max_event_streams: usize,
    pub query_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            max_connections: 512,
            max_event_streams: 64,
            query_timeout: std::time::Duration::from_millis(2_000),
        }
    }
}

impl Limits {
    fn resolve(args: &ServeArgs, file: &FileConfig) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let range = |option: &'static str, v: Option<u64>, min: u64, max: u64, default: u64| {
            let value = v.unwrap_or(default);
            if (min..=max).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError::Range {
                    option,
                    min,
                    max,
                    value,
                })
            }
        };
        let secs = std::time::Duration::from_secs;
        Ok(Limits {
            header_timeout: secs(range(
                "--header-timeout-secs",
                args.header_timeout_secs.or(file.header_timeout_secs),
                1,
                3_600,
                d.header_timeout.as_secs(),
            )?),
            body_timeout: secs(range(
                "--body-timeout-secs",
                args.body_timeout_secs.or(file.body_timeout_secs),
                1,
                3_600,
                d.body_timeout.as_secs(),
            )?),
            max_connections: range(
                "--max-connections",
                args.max_connections
                    .or(file.max_connections)
                    .map(|v| v as u64),
                1,
                100_000,
                d.max_connections as u64,
            )? as usize,
            max_event_streams: range(
                "--max-event-streams",
                args.max_event_streams
                    .or(file.max_event_streams)
                    .map(|v| v as u64),
                1,
                100_000,
                d.max_event_streams as u64,
            )? as usize,
            query_timeout: std::time::Duration::from_millis(range(
                "--query-timeout-ms",
                args.query_timeout_ms.or(file.query_timeout_ms),
                10,
                600_000,
                d.query_timeout.as_millis() as u64,
            )?),
        })
    }
}

/// `--mqtt` URLs when given, else the file's `[[mqtt]]` tables; names must
/// be unique (they key `ingest_liveness` and the metrics).
fn resolve_mqtt(urls: &[String], tables: Vec<SourceSpec>) -> Result<Vec<MqttSource>, ConfigError> {
    let urls: Vec<&str> = urls
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .collect();
    let sources = if urls.is_empty() {
        tables
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let label = match &spec.name {
                    Some(n) => format!("{n:?}"),
                    None => format!("#{}", i + 1),
                };
                MqttSource::from_spec(spec)
                    .map_err(|source| ConfigError::MqttTable { label, source })
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        urls.iter()
            .map(|u| MqttSource::from_url(u).map_err(ConfigError::MqttUrl))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut names = std::collections::BTreeSet::new();
    for src in &sources {
        if !names.insert(src.name.as_str()) {
            return Err(ConfigError::DuplicateSource(src.name.clone()));
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        std::fs::write(&cfg, "db = \"from-file.db\"\nreaders = 2\n").unwrap();
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            readers: Some(7),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.db, PathBuf::from("from-file.db"));
        assert_eq!(c.readers, 7);
        assert_eq!(c.listen.port(), 8080);

        std::fs::write(&cfg, "dbb = \"typo.db\"\n").unwrap();
        let err = ServeConfig::resolve(ServeArgs {
            config: Some(cfg),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("dbb"), "{err}");
        let err = ServeConfig::resolve(ServeArgs {
            readers: Some(0),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("--readers"), "{err}");
        for (args, want) in [
            (
                MigrationArgs {
                    migration_duty: Some(0.0),
                    ..Default::default()
                },
                "--migration-duty",
            ),
            (
                MigrationArgs {
                    migration_budget_ms: Some(-1.0),
                    ..Default::default()
                },
                "--migration-budget-ms",
            ),
            (
                MigrationArgs {
                    migration_min_batch: Some(0),
                    ..Default::default()
                },
                "--migration-min-batch",
            ),
        ] {
            let err = ServeConfig::resolve(ServeArgs {
                migration: args,
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{err}");
        }
        let c = ServeConfig::resolve(ServeArgs {
            migration: MigrationArgs {
                migration_duty: Some(0.25),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.engine.duty, 0.25);
    }

    #[test]
    fn retention_is_off_by_default_and_days_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        assert!(!ServeConfig::resolve(ServeArgs::default())
            .unwrap()
            .retention
            .is_on());
        std::fs::write(&cfg, "[retention]\npacket_days = 30\nobserver_days = 60\n").unwrap();
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.retention.packet_days, Some(30));
        assert_eq!(c.retention.observer_days, Some(60));
        // A flag wins over the file.
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            retention: RetentionArgs {
                retention_packet_days: Some(7),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.retention.packet_days, Some(7));
        for (text, want) in [
            ("[retention]\npacket_days = 0\n", "[retention] packet_days"),
            (
                "[retention]\nobserver_days = -3\n",
                "[retention] observer_days",
            ),
            ("[retention]\npacket_day = 3\n", "packet_day"),
        ] {
            std::fs::write(&cfg, text).unwrap();
            let err = ServeConfig::resolve(ServeArgs {
                config: Some(cfg.clone()),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = ServeConfig::resolve(ServeArgs {
            retention: RetentionArgs {
                retention_observer_days: Some(0),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("--retention-observer-days"), "{err}");
    }

    #[test]
    fn the_example_config_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../meshscope.example.toml");
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.mqtt.len(), 1);
        assert_eq!(c.mqtt[0].name, "home-broker");
        assert_eq!(c.mqtt[0].topics, crate::mqtt::DEFAULT_TOPICS);
    }

    #[test]
    fn mqtt_sources_from_flags_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        std::fs::write(
            &cfg,
            r#"
[[mqtt]]
name = "west"
url = "mqtt://broker.example:1884"
username = "meshscope"
password = "secret"
topics = ["meshcore/SEA/+/packets"]
iata_filter = ["sea"]

[[mqtt]]
url = "mqtt://10.0.0.2"
"#,
        )
        .unwrap();
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.mqtt.len(), 2);
        assert_eq!(c.mqtt[0].name, "west");
        assert_eq!(c.mqtt[0].password.as_deref(), Some("secret"));
        assert_eq!(c.mqtt[0].iata_filter, Some(vec!["SEA".to_string()]));
        assert_eq!(c.mqtt[1].name, "10.0.0.2:1883");
        assert_eq!(c.mqtt[1].topics, crate::mqtt::DEFAULT_TOPICS);

        // Flags replace the file's sources.
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(cfg.clone()),
            mqtt: vec!["mqtt://a:1".into(), "mqtt://b".into()],
            ..Default::default()
        })
        .unwrap();
        let names: Vec<_> = c.mqtt.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a:1", "b:1883"]);

        for (args, want) in [
            (vec!["http://a"], "--mqtt: "),
            (vec!["mqtt://a", "mqtt://a:1883"], "two MQTT sources"),
        ] {
            let err = ServeConfig::resolve(ServeArgs {
                mqtt: args.into_iter().map(String::from).collect(),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{err}");
        }
        for (toml, want) in [
            ("[[mqtt]]\nname = \"x\"\n", "missing field `url`"),
            (
                "[[mqtt]]\nurl = \"mqtt://a\"\nhost = \"b\"\n",
                "unknown field `host`",
            ),
            ("[[mqtt]]\nurl = \"mqtt://\"\n", "[[mqtt]] #1: "),
            (
                "[[mqtt]]\nname = \"w\"\nurl = \"mqtt://a\"\niata_filter = [\"x\"]\n",
                "[[mqtt]] \"w\": iata_filter",
            ),
        ] {
            std::fs::write(&cfg, toml).unwrap();
            let err = ServeConfig::resolve(ServeArgs {
                config: Some(cfg.clone()),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{toml}: {err}");
        }
    }
}
