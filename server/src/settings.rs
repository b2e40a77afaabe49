//! Every setting of `meshscope serve` (and of the background jobs, which
//! `migrate` and `prune` run too) declared once, in [`SETTINGS`]: its config
//! file key, flag, environment variable, default, documentation and value
//! rule. The command line is built from the table ([`ServeArgs`],
//! [`JobArgs`]), the config file is read by it ([`Sources`]), and the docs'
//! settings table and `meshscope.example.toml` are generated from it
//! ([`markdown_table`], [`example_toml`]; a test keeps the committed files
//! equal to them).
//!
//! One precedence for everything: a flag over its environment variable over
//! the config file over the default. A setting given two ways (a key and a
//! key file) is one setting: the highest-precedence source that gives
//! either form wins. Every error names where the value came from (`--db`,
//! `MESHSCOPE_DB`, or `db in /etc/meshscope.toml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// How a setting is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// On or off: a bare flag, `true`/`false` in the file or environment.
    Switch,
    /// One value.
    Value,
    /// Several: the flag repeated, comma-separated in the environment, an
    /// array in the file.
    List,
}

/// Which commands take a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `serve` only.
    Serve,
    /// `serve`, and the background jobs `migrate` and `prune` run.
    Jobs,
    /// Where the other settings come from (`--config`): every command with
    /// settings; not a file key.
    File,
}

/// A value's rule, checked wherever it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Text,
    Path,
    /// A socket address (`127.0.0.1:8080`).
    Addr,
    Bool,
    /// A whole number in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A number above `min` (`open`: strictly) and at most `max`.
    Num {
        min: f64,
        max: f64,
        open: bool,
    },
    /// One of the words.
    OneOf(&'static [&'static str]),
}

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// The config file key (`retention.packet_days` is `packet_days` in the
    /// `[retention]` table); also what the docs call it. Empty for `config`.
    pub key: &'static str,
    /// The long flag, without its dashes.
    pub flag: &'static str,
    pub env: &'static str,
    /// What the value is, in the docs and `--help` (`PATH`, `N`).
    pub value: &'static str,
    /// The default as it is parsed (`None`: absent unless given).
    pub default: Option<&'static str>,
    /// What no value means, in the docs, when there is no default.
    pub unset: &'static str,
    pub doc: &'static str,
    pub kind: Kind,
    pub rule: Rule,
    /// A secret: the flag is hidden from `--help` and its value never shown.
    pub secret: bool,
    pub group: Group,
}

const fn setting(key: &'static str, flag: &'static str, env: &'static str) -> Setting {
    Setting {
        key,
        flag,
        env,
        value: "VALUE",
        default: None,
        unset: "",
        doc: "",
        kind: Kind::Value,
        rule: Rule::Text,
        secret: false,
        group: Group::Serve,
    }
}

/// The most MiB a size setting takes: as bytes it still fits an `i64`
/// (so a floor of "more than any disk", an EiB, is a valid setting).
const MAX_MIB: i64 = i64::MAX / (1024 * 1024);

macro_rules! settings {
    ($( $key:literal, $flag:literal, $env:literal { $($field:ident : $v:expr),* $(,)? } )*) => {
        /// Every setting, in the order the docs list them.
        pub const SETTINGS: &[Setting] = &[
            $( Setting { $($field: $v,)* ..setting($key, $flag, $env) }, )*
        ];
    };
}

settings! {
    "", "config", "MESHSCOPE_CONFIG" {
        value: "FILE", rule: Rule::Path, group: Group::File,
        unset: "none",
        doc: "TOML file with any of the settings below (keys as in the first column; \
              `retention.*` in a `[retention]` table; MQTT brokers in `[[mqtt]]` tables).",
    }
    "db", "db", "MESHSCOPE_DB" {
        value: "PATH", rule: Rule::Path, default: Some("data/meshscope.db"),
        doc: "SQLite database file; created (with its folder) if missing.",
    }
    "listen", "listen", "MESHSCOPE_LISTEN" {
        value: "ADDR", rule: Rule::Addr, default: Some("127.0.0.1:8080"),
        doc: "Address to listen on; port 0 picks a free port.",
    }
    "dist", "dist", "MESHSCOPE_DIST" {
        value: "DIR", rule: Rule::Path, default: Some("dist"),
        doc: "Folder with the built dashboard (`index.html`).",
    }
    "map_tiles", "map-tiles", "MESHSCOPE_MAP_TILES" {
        value: "URL", rule: Rule::Text, default: Some("https://tile.openstreetmap.org/{z}/{x}/{y}.png"),
        doc: "Map tiles (a URL template with `{z}`, `{x}`, `{y}`) the Map page draws under the \
              nodes; `none` for a blank background (an offline site). The browser fetches them.",
    }
    "map_attribution", "map-attribution", "MESHSCOPE_MAP_ATTRIBUTION" {
        value: "TEXT", rule: Rule::Text, default: Some("© OpenStreetMap contributors"),
        doc: "The tiles' attribution, shown on the map.",
    }
    "api_key", "api-key", "MESHSCOPE_API_KEY" {
        secret: true, unset: "none",
        doc: "A key for both scopes (ingest and operator controls), used by a scope \
              without a key of its own. Give it by environment or file: a flag shows in `ps`.",
    }
    "api_key_file", "api-key-file", "MESHSCOPE_API_KEY_FILE" {
        value: "PATH", rule: Rule::Path, unset: "none",
        doc: "File holding the key for both scopes (its first line).",
    }
    "ingest_key", "ingest-key", "MESHSCOPE_INGEST_KEY" {
        secret: true, unset: "none: ingest is open (loopback only unless `allow_open_ingest`)",
        doc: "The key `POST /api/ingest` requires.",
    }
    "ingest_key_file", "ingest-key-file", "MESHSCOPE_INGEST_KEY_FILE" {
        value: "PATH", rule: Rule::Path, unset: "none",
        doc: "File holding the ingest key (its first line).",
    }
    "operator_key", "operator-key", "MESHSCOPE_OPERATOR_KEY" {
        secret: true, unset: "none: the controls are disabled",
        doc: "The key the operator controls (pause, resume, cancel, retry) require.",
    }
    "operator_key_file", "operator-key-file", "MESHSCOPE_OPERATOR_KEY_FILE" {
        value: "PATH", rule: Rule::Path, unset: "none",
        doc: "File holding the operator key (its first line).",
    }
    "allow_open_ingest", "allow-open-ingest", "MESHSCOPE_ALLOW_OPEN_INGEST" {
        kind: Kind::Switch, rule: Rule::Bool, default: Some("false"),
        doc: "Serve ingest without a key on a non-loopback address (anyone who can reach \
              the port can then write packets); refused otherwise.",
    }
    "header_timeout_secs", "header-timeout-secs", "MESHSCOPE_HEADER_TIMEOUT_SECS" {
        value: "SECS", rule: Rule::Int { min: 1, max: 3_600 }, default: Some("10"),
        doc: "A request head must arrive within this many seconds (also how long a \
              kept-alive connection may idle).",
    }
    "body_timeout_secs", "body-timeout-secs", "MESHSCOPE_BODY_TIMEOUT_SECS" {
        value: "SECS", rule: Rule::Int { min: 1, max: 3_600 }, default: Some("30"),
        doc: "A request body must arrive within this many seconds.",
    }
    "max_connections", "max-connections", "MESHSCOPE_MAX_CONNECTIONS" {
        value: "N", rule: Rule::Int { min: 1, max: 100_000 }, default: Some("512"),
        doc: "Connections served at once; more are answered 503 and closed.",
    }
    "max_event_streams", "max-event-streams", "MESHSCOPE_MAX_EVENT_STREAMS" {
        value: "N", rule: Rule::Int { min: 1, max: 100_000 }, default: Some("64"),
        doc: "`/api/events` streams open at once; more are answered 503.",
    }
    "query_timeout_ms", "query-timeout-ms", "MESHSCOPE_QUERY_TIMEOUT_MS" {
        value: "MS", rule: Rule::Int { min: 10, max: 600_000 }, default: Some("2000"),
        doc: "A database read taking longer is stopped and answered 503.",
    }
    "readers", "readers", "MESHSCOPE_READERS" {
        value: "N", rule: Rule::Int { min: 1, max: 64 }, default: Some("4"),
        doc: "Read-only database connections in the reader pool.",
    }
    "durability", "durability", "MESHSCOPE_DURABILITY" {
        value: "full|normal", rule: Rule::OneOf(&["full", "normal"]), default: Some("full"),
        doc: "What an acknowledged write survives: `full` syncs every commit (survives a \
              power cut); `normal` syncs at checkpoints only (survives a crash of meshscope, \
              not of the machine).",
    }
    "mqtt", "mqtt", "MESHSCOPE_MQTT" {
        value: "URL", kind: Kind::List, secret: true,
        unset: "none: no live MQTT ingest",
        doc: "MQTT broker to ingest live packets from (`mqtt://`, `mqtts://`, `ws://`, \
              `wss://`, credentials allowed); repeatable. Given as a flag or in the \
              environment it replaces the file's `[[mqtt]]` tables.",
    }
    "migration_budget_ms", "migration-budget-ms", "MESHSCOPE_MIGRATION_BUDGET_MS" {
        value: "MS", rule: Rule::Num { min: 0.0, max: 60_000.0, open: true },
        default: Some("10"), group: Group::Jobs,
        doc: "Writer time per background chunk, in milliseconds.",
    }
    "migration_duty", "migration-duty", "MESHSCOPE_MIGRATION_DUTY" {
        value: "F", rule: Rule::Num { min: 0.0, max: 1.0, open: true },
        default: Some("1.0"), group: Group::Jobs,
        doc: "Largest share of wall time background jobs may hold the writer, in (0, 1]; \
              1 runs flat out (yielding only to ingest), 0.1 runs gently.",
    }
    "migration_max_attempts", "migration-max-attempts", "MESHSCOPE_MIGRATION_MAX_ATTEMPTS" {
        value: "N", rule: Rule::Int { min: 1, max: 1_000 }, default: Some("3"),
        group: Group::Jobs,
        doc: "Automatic retries of a failed migration stop after this many attempts.",
    }
    "migration_min_batch", "migration-min-batch", "MESHSCOPE_MIGRATION_MIN_BATCH" {
        value: "N", rule: Rule::Int { min: 1, max: 100_000_000 }, default: Some("64"),
        group: Group::Jobs,
        doc: "Smallest chunk, in rows.",
    }
    "migration_max_batch", "migration-max-batch", "MESHSCOPE_MIGRATION_MAX_BATCH" {
        value: "N", rule: Rule::Int { min: 1, max: 100_000_000 }, default: Some("200000"),
        group: Group::Jobs,
        doc: "Largest chunk, in rows (at least the smallest).",
    }
    "wal_limit_mb", "wal-limit-mb", "MESHSCOPE_WAL_LIMIT_MB" {
        value: "MIB", rule: Rule::Int { min: 0, max: MAX_MIB }, default: Some("64"),
        group: Group::Jobs,
        doc: "Keep the WAL file under this many MiB while background jobs run: past half \
              of it the writer starts the WAL over between two units (waiting at most one \
              chunk budget for readers); 0 turns it off.",
    }
    "throttle_wal_mb", "throttle-wal-mb", "MESHSCOPE_THROTTLE_WAL_MB" {
        value: "MIB", rule: Rule::Int { min: 0, max: MAX_MIB }, default: Some("32"),
        group: Group::Jobs,
        doc: "Hold background jobs back while the WAL holds more than this many MiB not \
              yet checkpointed; 0 turns the signal off.",
    }
    "throttle_checkpoint_stuck_secs", "throttle-checkpoint-stuck-secs",
    "MESHSCOPE_THROTTLE_CHECKPOINT_STUCK_SECS" {
        value: "SECS", rule: Rule::Int { min: 0, max: 86_400 }, default: Some("30"),
        group: Group::Jobs,
        doc: "Hold background jobs back while a reader has kept the WAL checkpoint from \
              moving for this many seconds; 0 turns the signal off.",
    }
    "throttle_ingest_wait_ms", "throttle-ingest-wait-ms", "MESHSCOPE_THROTTLE_INGEST_WAIT_MS" {
        value: "MS", rule: Rule::Int { min: 0, max: 600_000 }, default: Some("200"),
        group: Group::Jobs,
        doc: "Hold background jobs back while ingest's wait for the writer has a p99 over \
              this many ms (last 5 s); 0 turns the signal off.",
    }
    "throttle_min_free_mb", "throttle-min-free-mb", "MESHSCOPE_THROTTLE_MIN_FREE_MB" {
        value: "MIB", rule: Rule::Int { min: 0, max: MAX_MIB }, default: Some("256"),
        group: Group::Jobs,
        doc: "Hold background jobs back while the database's disk has less than this many \
              MiB free; 0 turns the signal off.",
    }
    "retention.packet_days", "retention-packet-days", "MESHSCOPE_RETENTION_PACKET_DAYS" {
        value: "DAYS", rule: Rule::Int { min: 1, max: 1_000_000 },
        unset: "none: keep every packet",
        doc: "Delete sightings older than this many days (and packets left without any), \
              hourly, online.",
    }
    "retention.observer_days", "retention-observer-days", "MESHSCOPE_RETENTION_OBSERVER_DAYS" {
        value: "DAYS", rule: Rule::Int { min: 1, max: 1_000_000 },
        unset: "none: keep every observer",
        doc: "Delete observers not heard for this many days (once none of their sightings \
              is kept).",
    }
}

/// The declared default of `key`, parsed. Every default is checked by its
/// rule in the tests, so for a declared key with a default this cannot fail.
pub fn default_of<T: std::str::FromStr>(key: &str) -> T {
    setting_of(key)
        .and_then(|s| s.default)
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| unreachable!("{key} has a declared default of this type"))
}

/// The setting with this file key (or `config`).
pub fn setting_of(key: &str) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .find(|s| s.key == key || (key == "config" && s.flag == "config"))
}

/// Where a value came from, as errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(&'static str),
    File { key: &'static str, path: PathBuf },
    Default(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "--{flag}"),
            Origin::Env(env) => f.write_str(env),
            Origin::File { key, path } => write!(f, "{key} in {}", path.display()),
            Origin::Default(key) => write!(f, "the default of {key}"),
        }
    }
}

impl Origin {
    /// Precedence: a flag over the environment over the file over the default.
    fn rank(&self) -> u8 {
        match self {
            Origin::Flag(_) => 3,
            Origin::Env(_) => 2,
            Origin::File { .. } => 1,
            Origin::Default(_) => 0,
        }
    }
}

/// A value as given, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Given {
    pub values: Vec<String>,
    pub origin: Origin,
}

/// A setting that cannot be used, named by where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct SettingError {
    pub origin: String,
    pub message: String,
}

/// The values the command line and the environment gave (clap reads both;
/// it knows which).
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    given: BTreeMap<&'static str, Given>,
}

impl CommandLine {
    /// As if `--flag value` was given (tests, the bench).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> CommandLine {
        let s = setting_of(key).unwrap_or_else(|| panic!("no setting {key}"));
        let entry = self.given.entry(s.key_or_config()).or_insert(Given {
            values: Vec::new(),
            origin: Origin::Flag(s.flag),
        });
        entry.values.push(value.into());
        self
    }

    fn add_args(cmd: Command, groups: &[Group]) -> Command {
        SETTINGS
            .iter()
            .filter(|s| groups.contains(&s.group))
            .fold(cmd, |cmd, s| cmd.arg(s.arg()))
    }

    fn from_matches(m: &ArgMatches, groups: &[Group]) -> CommandLine {
        let mut given = BTreeMap::new();
        for s in SETTINGS.iter().filter(|s| groups.contains(&s.group)) {
            let origin = match m.value_source(s.flag) {
                Some(ValueSource::CommandLine) => Origin::Flag(s.flag),
                Some(ValueSource::EnvVariable) => Origin::Env(s.env),
                _ => continue,
            };
            let values: Vec<String> = match s.kind {
                Kind::Switch => vec![m.get_flag(s.flag).to_string()],
                _ => m
                    .get_many::<String>(s.flag)
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default(),
            };
            given.insert(s.key_or_config(), Given { values, origin });
        }
        CommandLine { given }
    }
}

impl Setting {
    fn key_or_config(&self) -> &'static str {
        if self.key.is_empty() {
            "config"
        } else {
            self.key
        }
    }

    /// The clap argument (help text with the default or what unset means).
    fn arg(&self) -> Arg {
        let help = match (self.default, self.unset) {
            (Some(d), _) => format!("{} [default: {d}]", self.doc),
            (None, "") => self.doc.to_string(),
            (None, u) => format!("{} [default: {u}]", self.doc),
        };
        let arg = Arg::new(self.flag)
            .long(self.flag)
            .env(self.env)
            .help(help)
            .hide(self.secret && self.kind != Kind::List)
            .hide_env_values(self.secret);
        match self.kind {
            Kind::Switch => arg.action(ArgAction::SetTrue),
            Kind::Value => arg
                .value_name(self.value)
                .action(ArgAction::Set)
                .allow_negative_numbers(true),
            Kind::List => arg
                .value_name(self.value)
                .action(ArgAction::Append)
                .value_delimiter(','),
        }
    }

    /// Checks `text` (one value) by the setting's rule.
    pub fn check(&self, text: &str) -> Result<(), String> {
        match self.rule {
            Rule::Text | Rule::Path => Ok(()),
            Rule::Addr => text
                .parse::<std::net::SocketAddr>()
                .map(|_| ())
                .map_err(|_| format!("{text:?} is not an address such as 127.0.0.1:8080")),
            Rule::Bool => match text {
                "true" | "false" => Ok(()),
                _ => Err(format!("must be true or false, got {text:?}")),
            },
            Rule::Int { min, max } => match text.trim().parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(()),
                _ => Err(format!(
                    "must be a whole number from {min} to {max}, got {text:?}"
                )),
            },
            Rule::Num { min, max, open } => match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v <= max && (v > min || (!open && v == min)) => Ok(()),
                _ => Err(format!(
                    "must be a number {} {min} and at most {max}, got {text:?}",
                    if open { "above" } else { "from" }
                )),
            },
            Rule::OneOf(words) => {
                if words.contains(&text) {
                    Ok(())
                } else {
                    Err(format!("must be one of {}, got {text:?}", words.join(", ")))
                }
            }
        }
    }
}

macro_rules! args_type {
    ($name:ident, $groups:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Default)]
        pub struct $name(pub CommandLine);

        impl clap::FromArgMatches for $name {
            fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
                Ok($name(CommandLine::from_matches(m, $groups)))
            }
            fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
                *self = $name(CommandLine::from_matches(m, $groups));
                Ok(())
            }
        }

        impl clap::Args for $name {
            fn augment_args(cmd: Command) -> Command {
                CommandLine::add_args(cmd, $groups)
            }
            fn augment_args_for_update(cmd: Command) -> Command {
                CommandLine::add_args(cmd, $groups)
            }
        }
    };
}

args_type!(
    ServeArgs,
    &[Group::File, Group::Serve, Group::Jobs],
    "`serve`'s settings as given on the command line and in the environment."
);
args_type!(
    JobArgs,
    &[Group::File, Group::Jobs],
    "The background jobs' settings (`migrate`, `prune`), with the config file they may come from."
);

/// Every source of settings: the command line and environment, then the
/// config file (when one is named).
#[derive(Debug, Clone)]
pub struct Sources {
    given: BTreeMap<&'static str, Given>,
    /// The file's tables other than settings (`[[mqtt]]`).
    pub(crate) mqtt: Option<toml::Value>,
    pub(crate) file: Option<PathBuf>,
}

/// The config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
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
    #[error("config file {path}: {message}")]
    Key { path: PathBuf, message: String },
}

/// A file value as the text a flag would give.
fn text_of(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Sources {
    /// The command line's values, over the config file's (the file named by
    /// `config`, if any), each checked by its rule.
    pub fn load(cli: &CommandLine) -> Result<Sources, FileError> {
        let mut given = cli.given.clone();
        let file = given
            .get("config")
            .and_then(|g| g.values.first())
            .map(PathBuf::from);
        let mut mqtt = None;
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
                path: path.clone(),
                source,
            })?;
            let table: toml::Table = toml::from_str(&text).map_err(|source| FileError::Parse {
                path: path.clone(),
                source,
            })?;
            for (key, value) in &table {
                if key == "mqtt" {
                    mqtt = Some(value.clone());
                    continue;
                }
                let entries: Vec<(String, &toml::Value)> = match (key.as_str(), value) {
                    ("retention", toml::Value::Table(t)) => t
                        .iter()
                        .map(|(k, v)| (format!("retention.{k}"), v))
                        .collect(),
                    _ => vec![(key.clone(), value)],
                };
                for (key, value) in entries {
                    Self::file_value(&mut given, path, &key, value)?;
                }
            }
        }
        Ok(Sources { given, mqtt, file })
    }

    fn file_value(
        given: &mut BTreeMap<&'static str, Given>,
        path: &Path,
        key: &str,
        value: &toml::Value,
    ) -> Result<(), FileError> {
        let bad = |message: String| FileError::Key {
            path: path.to_path_buf(),
            message,
        };
        let Some(s) = SETTINGS.iter().find(|s| s.key == key && !s.key.is_empty()) else {
            let known: Vec<&str> = SETTINGS
                .iter()
                .map(|s| s.key)
                .filter(|k| !k.is_empty())
                .collect();
            return Err(bad(format!(
                "unknown key `{key}` (known: {}, [[mqtt]])",
                known.join(", ")
            )));
        };
        let values: Vec<String> = match (s.kind, value) {
            (Kind::List, toml::Value::Array(items)) => items.iter().filter_map(text_of).collect(),
            (_, v) => match text_of(v) {
                Some(t) => vec![t],
                None => return Err(bad(format!("`{key}` must be a single value"))),
            },
        };
        // The file only fills what the command line did not give.
        given.entry(s.key).or_insert(Given {
            values,
            origin: Origin::File {
                key: s.key,
                path: path.to_path_buf(),
            },
        });
        Ok(())
    }

    /// The value of `key` as given (without its default).
    pub fn given(&self, key: &str) -> Option<&Given> {
        self.given.get(key)
    }

    /// The values of `key`, or its default; checked by its rule.
    pub fn values(&self, key: &str) -> Result<Option<(Vec<String>, Origin)>, SettingError> {
        let s = setting_of(key).unwrap_or_else(|| unreachable!("{key} is declared"));
        let (values, origin) = match self.given.get(key) {
            Some(g) => (g.values.clone(), g.origin.clone()),
            None => match s.default {
                Some(d) => (vec![d.to_string()], Origin::Default(s.key)),
                None => return Ok(None),
            },
        };
        for v in &values {
            s.check(v).map_err(|message| SettingError {
                origin: origin.to_string(),
                message,
            })?;
        }
        Ok(Some((values, origin)))
    }

    /// The one value of `key`, or its default, parsed.
    pub fn get<T: std::str::FromStr>(&self, key: &str) -> Result<Option<(T, Origin)>, SettingError>
    where
        T::Err: std::fmt::Display,
    {
        let Some((values, origin)) = self.values(key)? else {
            return Ok(None);
        };
        let text = values.last().cloned().unwrap_or_default();
        text.trim()
            .parse::<T>()
            .map(|v| Some((v, origin.clone())))
            .map_err(|e| SettingError {
                origin: origin.to_string(),
                message: format!("{text:?}: {e}"),
            })
    }

    /// Like [`Sources::get`] for a setting that has a default.
    pub fn value<T: std::str::FromStr>(&self, key: &str) -> Result<T, SettingError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)?.map(|(v, _)| v).ok_or_else(|| SettingError {
            origin: key.to_string(),
            message: "has no value".into(),
        })
    }

    /// Of settings that are one setting given two ways (a key and its
    /// file), the one given with the highest precedence (the first listed
    /// on a tie), with its key.
    pub fn first_of(&self, keys: &[&'static str]) -> Option<(&'static str, &Given)> {
        keys.iter()
            .filter_map(|k| self.given.get(k).map(|g| (*k, g)))
            .fold(
                None,
                |best: Option<(&'static str, &Given)>, (k, g)| match best {
                    Some((_, b)) if b.origin.rank() >= g.origin.rank() => best,
                    _ => Some((k, g)),
                },
            )
    }
}

/// The settings table of the docs (`docs/configuration.md`), in markdown.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| file key | flag | environment | default | what it does |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let key = if s.key.is_empty() {
            "—".to_string()
        } else {
            format!("`{}`", s.key)
        };
        let flag = match s.kind {
            Kind::Switch => format!("`--{}`", s.flag),
            Kind::List => format!("`--{} {}` (repeatable)", s.flag, s.value),
            Kind::Value => format!("`--{} {}`", s.flag, s.value),
        };
        let default = match (s.default, s.unset) {
            (Some(d), _) => format!("`{d}`"),
            (None, u) => u.to_string(),
        };
        let doc = if s.secret && s.kind != Kind::List {
            format!("{} (The flag is hidden from `--help`.)", s.doc)
        } else {
            s.doc.to_string()
        };
        out.push_str(&format!(
            "| {key} | {flag} | `{}` | {default} | {doc} |\n",
            s.env
        ));
    }
    out
}

/// `meshscope.example.toml`: every file key with its default, commented.
pub fn example_toml() -> String {
    let mut out = String::from(
        "# meshscope.example.toml: every setting, with its default (generated from the\n\
         # settings table; docs/configuration.md explains each). Copy it, uncomment\n\
         # what you change, and run\n#\n#     meshscope serve --config meshscope.toml\n#\n\
         # Flags and MESHSCOPE_* environment variables win over this file.\n",
    );
    let mut in_retention = false;
    for s in SETTINGS
        .iter()
        .filter(|s| !s.key.is_empty() && s.key != "mqtt")
    {
        let key = match s.key.strip_prefix("retention.") {
            Some(k) => {
                if !in_retention {
                    out.push_str("\n[retention]\n");
                    in_retention = true;
                }
                k
            }
            None => s.key,
        };
        out.push('\n');
        for line in wrap(&strip_ticks(s.doc), 76) {
            out.push_str(&format!("# {line}\n"));
        }
        let value = match (s.default, s.rule) {
            (Some(d), Rule::Text | Rule::Path | Rule::Addr | Rule::OneOf(_)) => format!("{d:?}"),
            (Some(d), _) => d.to_string(),
            (None, Rule::Int { min, .. }) => format!("{}  # unset: {}", min.max(30), s.unset),
            (None, Rule::Path) => {
                format!("\"/etc/meshscope/{}\"", s.key.replace("_key_file", ".key"))
            }
            (None, _) => "\"…\"".to_string(),
        };
        out.push_str(&format!("# {key} = {value}\n"));
    }
    out.push_str(
        "\n# Live ingest: one [[mqtt]] table per broker (docs/mqtt.md has every key).\n\
         # [[mqtt]]\n# name = \"home-broker\"\n# url = \"mqtt://broker.example.net:1883\"\n\
         # username = \"meshscope\"\n# password = \"change-me\"\n",
    );
    out
}

fn strip_ticks(s: &str) -> String {
    s.replace('`', "")
}

/// `text` in lines of at most `width` characters, on word boundaries.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_declared_once_and_whole() {
        let mut keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        let mut flags: Vec<&str> = SETTINGS.iter().map(|s| s.flag).collect();
        let mut envs: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
        for v in [&mut keys, &mut flags, &mut envs] {
            let n = v.len();
            v.sort_unstable();
            v.dedup();
            assert_eq!(v.len(), n, "a name used twice: {v:?}");
        }
        for s in SETTINGS {
            assert!(!s.doc.is_empty(), "{}: no doc", s.flag);
            assert!(s.env.starts_with("MESHSCOPE_"), "{}", s.env);
            let key = if s.key.is_empty() { "config" } else { s.key };
            assert_eq!(s.flag, key.replace(['.', '_'], "-"), "the flag is the key");
            if let Some(d) = s.default {
                s.check(d)
                    .unwrap_or_else(|e| panic!("{}: default {d}: {e}", s.key));
            } else {
                assert!(!s.unset.is_empty(), "{}: say what no value means", s.key);
            }
        }
    }

    #[test]
    fn every_default_parses_as_its_type() {
        for key in [
            "header_timeout_secs",
            "body_timeout_secs",
            "query_timeout_ms",
        ] {
            let _: u64 = default_of(key);
        }
        let _: usize = default_of("max_connections");
        let _: f64 = default_of("migration_duty");
        let _: std::net::SocketAddr = default_of("listen");
    }

    #[test]
    fn rules_name_what_is_wrong() {
        let readers = setting_of("readers").unwrap();
        assert!(readers.check("4").is_ok());
        assert!(readers.check("0").unwrap_err().contains("from 1 to 64"));
        let duty = setting_of("migration_duty").unwrap();
        assert!(duty.check("1").is_ok() && duty.check("0.5").is_ok());
        assert!(duty.check("0").is_err() && duty.check("1.5").is_err());
        assert!(setting_of("durability").unwrap().check("fast").is_err());
        assert!(setting_of("listen").unwrap().check("nowhere").is_err());
    }

    #[test]
    fn precedence_is_flag_then_environment_then_file_for_a_key_and_its_file_alike() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "api_key = \"from-the-file\"\nreaders = 7\n").unwrap();
        let path = file.display().to_string();
        let env = |key: &'static str, v: &str| Given {
            values: vec![v.into()],
            origin: Origin::Env(setting_of(key).unwrap().env),
        };
        let mut cli = CommandLine::default().with("config", path.clone());
        // The key file by flag beats the key in the file.
        cli = cli.with("api_key_file", "/run/key");
        let s = Sources::load(&cli).unwrap();
        let (k, g) = s.first_of(&["api_key", "api_key_file"]).unwrap();
        assert_eq!((k, g.values[0].as_str()), ("api_key_file", "/run/key"));
        // The environment beats the file, for a key and for a key file.
        let mut cli = CommandLine::default().with("config", path.clone());
        cli.given
            .insert("api_key_file", env("api_key_file", "/env/key"));
        let s = Sources::load(&cli).unwrap();
        assert_eq!(
            s.first_of(&["api_key", "api_key_file"]).unwrap().0,
            "api_key_file"
        );
        // A flag beats the environment.
        let mut cli = CommandLine::default()
            .with("config", path.clone())
            .with("api_key", "flag-key-1");
        cli.given
            .insert("api_key_file", env("api_key_file", "/env/key"));
        let s = Sources::load(&cli).unwrap();
        assert_eq!(
            s.first_of(&["api_key", "api_key_file"]).unwrap().0,
            "api_key"
        );
        // With nothing else, the file's.
        let s = Sources::load(&CommandLine::default().with("config", path.clone())).unwrap();
        let (k, g) = s.first_of(&["api_key", "api_key_file"]).unwrap();
        assert_eq!(
            (k, &g.origin),
            (
                "api_key",
                &Origin::File {
                    key: "api_key",
                    path: file.clone()
                }
            )
        );
        assert_eq!(s.value::<u32>("readers").unwrap(), 7);
        assert_eq!(s.value::<u32>("max_connections").unwrap(), 512);
    }

    #[test]
    fn errors_name_where_the_value_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "readers = 99\n[retention]\npacket_days = 0\n").unwrap();
        let cli = CommandLine::default().with("config", file.display().to_string());
        let s = Sources::load(&cli).unwrap();
        let e = s.value::<u32>("readers").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("readers in {}", file.display())),
            "{e}"
        );
        let e = s
            .get::<u32>("retention.packet_days")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retention.packet_days in"), "{e}");
        let s = Sources::load(&CommandLine::default().with("readers", "0")).unwrap();
        let e = s.value::<u32>("readers").unwrap_err().to_string();
        assert!(e.starts_with("--readers: "), "{e}");
        std::fs::write(&file, "no_such = 1\n").unwrap();
        let e = Sources::load(&cli).unwrap_err().to_string();
        assert!(e.contains("unknown key `no_such`"), "{e}");
    }
}

#[cfg(test)]
mod docs {
    use super::*;

    const BEGIN: &str = "<!-- settings: generated from server/src/settings.rs; do not edit -->\n";
    const END: &str = "<!-- settings end -->";

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// `path` must hold `want` (between the markers, for a markdown file);
    /// with `UPDATE_DOCS=1` it is rewritten instead.
    fn check(path: &Path, want: &str, between_markers: bool) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let expected = if between_markers {
            let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) else {
                panic!("{} has no generated settings section", path.display());
            };
            format!("{}{BEGIN}{want}{}", &text[..a], &text[b..])
        } else {
            want.to_string()
        };
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &expected).unwrap();
            return;
        }
        assert!(
            text == expected,
            "{} is not what the settings table says; run `UPDATE_DOCS=1 cargo test -p meshscope --lib settings` and commit it",
            path.display()
        );
    }

    #[test]
    fn the_example_file_and_the_docs_table_are_the_settings() {
        check(
            &root().join("meshscope.example.toml"),
            &example_toml(),
            false,
        );
        check(
            &root().join("docs/configuration.md"),
            &markdown_table(),
            true,
        );
    }
}
