//! `serve`'s settings resolved into [`ServeConfig`], and the background
//! jobs' into [`EngineConfig`] (for `serve`, `migrate` and `prune` alike):
//! read from the command line, the environment and the config file by the
//! one table and precedence of [`crate::settings`], then checked together
//! (the keys of the two scopes, open ingest on a public address, the MQTT
//! sources). Every error names where the value came from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::Durability;
use crate::health::HealthConfig;
use crate::http::Limits;
use crate::keys::{ApiKey, KeyError, Keys};
use crate::migrate::{EngineConfig, EngineConfigError, RetentionConfig};
use crate::mqtt::{MqttSource, SourceError, SourceSpec};
use crate::settings::{FileError, Given, JobArgs, Origin, ServeArgs, SettingError, Sources};

/// A setting that cannot be used, named as the operator gives it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    Engine(#[from] EngineConfigError),
    #[error("{origin} (the {scope} key): {source}")]
    Key {
        origin: String,
        scope: &'static str,
        source: KeyError,
    },
    #[error("{origin} (the {scope} key): cannot read {path}: {source}")]
    KeyFile {
        origin: String,
        scope: &'static str,
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
    #[error("{origin}: {source}")]
    MqttUrl { origin: String, source: SourceError },
    #[error("[[mqtt]] {label}: {source}")]
    MqttTable { label: String, source: SourceError },
    #[error("config file {path}: [[mqtt]]: {message}")]
    MqttFile { path: PathBuf, message: String },
    #[error(
        "two MQTT sources are named {0:?} (the same broker twice?); sources need distinct \
         names, set with `name` in [[mqtt]] tables"
    )]
    DuplicateSource(String),
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
    /// What the Map page draws under the nodes.
    pub map: shared::api::MapConfig,
}

impl ServeConfig {
    /// Every source of settings merged by precedence, and validated.
    pub fn resolve(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        let src = Sources::load(&args.0)?;
        let engine = engine_config(&src)?;
        let retention = RetentionConfig {
            packet_days: src.get("retention.packet_days")?.map(|(d, _)| d),
            observer_days: src.get("retention.observer_days")?.map(|(d, _)| d),
        };
        let secs =
            |key| -> Result<Duration, SettingError> { Ok(Duration::from_secs(src.value(key)?)) };
        let limits = Limits {
            header_timeout: secs("header_timeout_secs")?,
            body_timeout: secs("body_timeout_secs")?,
            max_connections: src.value("max_connections")?,
            max_event_streams: src.value("max_event_streams")?,
            query_timeout: Duration::from_millis(src.value("query_timeout_ms")?),
        };
        let both = key(&src, "shared", ["api_key", "api_key_file"])?;
        let keys = Keys {
            ingest: key(&src, "ingest", ["ingest_key", "ingest_key_file"])?
                .or_else(|| both.clone()),
            operator: key(&src, "operator", ["operator_key", "operator_key_file"])?.or(both),
        };
        let listen: SocketAddr = src.value("listen")?;
        let allow_open_ingest: bool = src.value("allow_open_ingest")?;
        if keys.ingest.is_none() && !listen.ip().is_loopback() && !allow_open_ingest {
            return Err(ConfigError::OpenIngest { listen });
        }
        let durability = match src.value::<String>("durability")?.as_str() {
            "normal" => Durability::Normal,
            _ => Durability::Full,
        };
        let (tiles, origin) = src
            .get::<String>("map_tiles")?
            .unwrap_or_else(|| (String::new(), crate::settings::Origin::Default("map_tiles")));
        let tiles = tiles.trim();
        let map = shared::api::MapConfig {
            tiles: (!tiles.is_empty() && tiles != "none").then(|| tiles.to_string()),
            attribution: src.value("map_attribution")?,
        };
        if let Some(t) = &map.tiles {
            if !(t.starts_with("https://") || t.starts_with("http://") || t.starts_with('/')) {
                return Err(ConfigError::Setting(SettingError {
                    origin: origin.to_string(),
                    message: format!(
                        "{t:?} is not a tile URL: an http(s) URL template (or a path on this \
                         server) with {{z}}, {{x}} and {{y}}, or `none`"
                    ),
                }));
            }
        }
        Ok(ServeConfig {
            map,
            mqtt: mqtt_sources(&src)?,
            engine,
            retention,
            durability,
            db: src.value("db")?,
            listen,
            dist: src.value("dist")?,
            keys,
            limits,
            readers: src.value("readers")?,
        })
    }
}

/// The background jobs' settings of `migrate` and `prune` (the same keys
/// as `serve`'s, from the same sources, the config file included).
pub fn resolve_jobs(args: &JobArgs) -> Result<EngineConfig, ConfigError> {
    engine_config(&Sources::load(&args.0)?)
}

/// The engine's knobs from `src`, validated together.
fn engine_config(src: &Sources) -> Result<EngineConfig, ConfigError> {
    let mib = |n: u64| n.saturating_mul(1024 * 1024);
    let cfg = EngineConfig {
        budget: Duration::from_secs_f64(src.value::<f64>("migration_budget_ms")? / 1000.0),
        duty: src.value("migration_duty")?,
        max_attempts: src.value("migration_max_attempts")?,
        min_batch: src.value("migration_min_batch")?,
        max_batch: src.value("migration_max_batch")?,
        wal_limit_bytes: mib(src.value("wal_limit_mb")?),
        health: HealthConfig {
            wal_max_bytes: mib(src.value("throttle_wal_mb")?),
            checkpoint_stuck: Duration::from_secs(src.value("throttle_checkpoint_stuck_secs")?),
            ingest_wait_p99: Duration::from_millis(src.value("throttle_ingest_wait_ms")?),
            min_free_bytes: mib(src.value("throttle_min_free_mb")?),
        },
    };
    cfg.validate()?;
    Ok(cfg)
}

/// A scope's key from the highest-precedence source that gives it, as a
/// value or as a file (`keys` = [value key, file key]); `None` when neither
/// is given or the value is empty.
fn key(
    src: &Sources,
    scope: &'static str,
    keys: [&'static str; 2],
) -> Result<Option<ApiKey>, ConfigError> {
    let Some((which, Given { values, origin })) = src.first_of(&keys) else {
        return Ok(None);
    };
    let text = values.last().cloned().unwrap_or_default();
    let origin_text = origin.to_string();
    let text = if which == keys[1] {
        let path = PathBuf::from(&text);
        let content = std::fs::read_to_string(&path).map_err(|source| ConfigError::KeyFile {
            origin: origin_text.clone(),
            scope,
            path: path.clone(),
            source,
        })?;
        content.lines().next().unwrap_or("").trim().to_string()
    } else if text.is_empty() {
        return Ok(None);
    } else {
        text
    };
    ApiKey::parse(&text)
        .map(Some)
        .map_err(|source| ConfigError::Key {
            origin: origin_text,
            scope,
            source,
        })
}

/// `--mqtt` URLs (flag or environment) when given, else the file's
/// `[[mqtt]]` tables; names must be unique (they key `ingest_liveness` and
/// the metrics).
fn mqtt_sources(src: &Sources) -> Result<Vec<MqttSource>, ConfigError> {
    let urls: Vec<(String, Origin)> = match src.given("mqtt") {
        Some(g) if !matches!(g.origin, Origin::File { .. }) => g
            .values
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .map(|u| (u, g.origin.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let sources = if urls.is_empty() {
        let tables: Vec<SourceSpec> = match (&src.mqtt, &src.file) {
            (Some(v), Some(path)) => {
                v.clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| ConfigError::MqttFile {
                        path: path.clone(),
                        message: e.message().to_string(),
                    })?
            }
            _ => Vec::new(),
        };
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
            .map(|(u, origin)| {
                MqttSource::from_url(u).map_err(|source| ConfigError::MqttUrl {
                    origin: origin.to_string(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut names = std::collections::BTreeSet::new();
    for s in &sources {
        if !names.insert(s.name.as_str()) {
            return Err(ConfigError::DuplicateSource(s.name.clone()));
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::CommandLine;

    fn serve(cli: CommandLine) -> Result<ServeConfig, ConfigError> {
        ServeConfig::resolve(&ServeArgs(cli))
    }

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        let file = cfg.display().to_string();
        std::fs::write(&cfg, "db = \"from-file.db\"\nreaders = 2\n").unwrap();
        let c = serve(
            CommandLine::default()
                .with("config", &*file)
                .with("readers", "7"),
        )
        .unwrap();
        assert_eq!(c.db, PathBuf::from("from-file.db"));
        assert_eq!(c.readers, 7);
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.engine.budget, Duration::from_millis(10));

        std::fs::write(&cfg, "dbb = \"typo.db\"\n").unwrap();
        let err = serve(CommandLine::default().with("config", &*file))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dbb"), "{err}");
        let err = serve(CommandLine::default().with("readers", "0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--readers"), "{err}");
        for (key, value, want) in [
            ("migration_duty", "0", "--migration-duty"),
            ("migration_budget_ms", "-1", "--migration-budget-ms"),
            ("migration_min_batch", "0", "--migration-min-batch"),
        ] {
            let err = serve(CommandLine::default().with(key, value))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err}");
        }
        let c = serve(CommandLine::default().with("migration_duty", "0.25")).unwrap();
        assert_eq!(c.engine.duty, 0.25);
        // A value from the file is named as the file's.
        std::fs::write(&cfg, "migration_duty = 2.0\n").unwrap();
        let err = serve(CommandLine::default().with("config", &*file))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("migration_duty in {file}")),
            "{err}"
        );
    }

    #[test]
    fn a_key_file_by_flag_beats_a_key_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        let key = dir.path().join("k");
        std::fs::write(&cfg, "operator_key = \"file-key-12345\"\n").unwrap();
        std::fs::write(&key, "flag-key-67890\n").unwrap();
        let c = serve(
            CommandLine::default()
                .with("config", cfg.display().to_string())
                .with("operator_key_file", key.display().to_string()),
        )
        .unwrap();
        let k = c.keys.operator.unwrap();
        assert!(k.matches("flag-key-67890") && !k.matches("file-key-12345"));
        // A missing key file is named by where it was given.
        let err = serve(CommandLine::default().with("api_key_file", "/no/such/key"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--api-key-file (the shared key): cannot read /no/such/key"),
            "{err}"
        );
    }

    #[test]
    fn retention_is_off_by_default_and_days_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        let file = cfg.display().to_string();
        assert!(!serve(CommandLine::default()).unwrap().retention.is_on());
        std::fs::write(&cfg, "[retention]\npacket_days = 30\nobserver_days = 60\n").unwrap();
        let c = serve(CommandLine::default().with("config", &*file)).unwrap();
        assert_eq!(c.retention.packet_days, Some(30));
        assert_eq!(c.retention.observer_days, Some(60));
        // A flag wins over the file.
        let c = serve(
            CommandLine::default()
                .with("config", &*file)
                .with("retention.packet_days", "7"),
        )
        .unwrap();
        assert_eq!(c.retention.packet_days, Some(7));
        for (text, want) in [
            ("[retention]\npacket_days = 0\n", "retention.packet_days in"),
            (
                "[retention]\nobserver_days = -3\n",
                "retention.observer_days in",
            ),
            ("[retention]\npacket_day = 3\n", "retention.packet_day"),
        ] {
            std::fs::write(&cfg, text).unwrap();
            let err = serve(CommandLine::default().with("config", &*file))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = serve(CommandLine::default().with("retention.observer_days", "0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--retention-observer-days"), "{err}");
    }

    #[test]
    fn the_example_config_file_is_valid_and_holds_the_defaults() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../meshscope.example.toml");
        let c = serve(CommandLine::default().with("config", path.display().to_string())).unwrap();
        let d = serve(CommandLine::default()).unwrap();
        assert_eq!((c.db, c.readers, c.limits), (d.db, d.readers, d.limits));
        assert!(c.mqtt.is_empty());
    }

    #[test]
    fn mqtt_sources_from_flags_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        let file = cfg.display().to_string();
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
        let c = serve(CommandLine::default().with("config", &*file)).unwrap();
        assert_eq!(c.mqtt.len(), 2);
        assert_eq!(c.mqtt[0].name, "west");
        assert_eq!(c.mqtt[0].password.as_deref(), Some("secret"));
        assert_eq!(c.mqtt[0].iata_filter, Some(vec!["SEA".to_string()]));
        assert_eq!(c.mqtt[1].name, "10.0.0.2:1883");
        assert_eq!(c.mqtt[1].topics, crate::mqtt::DEFAULT_TOPICS);

        // Flags replace the file's sources.
        let c = serve(
            CommandLine::default()
                .with("config", &*file)
                .with("mqtt", "mqtt://a:1")
                .with("mqtt", "mqtt://b"),
        )
        .unwrap();
        let names: Vec<_> = c.mqtt.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a:1", "b:1883"]);

        for (urls, want) in [
            (vec!["http://a"], "--mqtt: "),
            (vec!["mqtt://a", "mqtt://a:1883"], "two MQTT sources"),
        ] {
            let cli = urls
                .into_iter()
                .fold(CommandLine::default(), |c, u| c.with("mqtt", u));
            let err = serve(cli).unwrap_err().to_string();
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
            let err = serve(CommandLine::default().with("config", &*file))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{toml}: {err}");
        }
    }
}
