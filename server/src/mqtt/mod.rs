//! Live ingest from MeshCore observers over MQTT: one subscriber per
//! configured broker ("source"), feeding the same validation and the same
//! writer queue as `POST /api/ingest`.
//!
//! - [`MqttSource`]: one broker, resolved from `--mqtt URL` or a `[[mqtt]]`
//!   table of the config file, validated at startup.
//! - [`payload`]: topics and JSON payloads into sightings, status reports,
//!   or counted refusals (pure).
//! - [`subscriber`]: the connection loop (QoS 1, persistent session,
//!   reconnect with backoff) and the batching consumer.
//! - [`liveness`]: per-source counters behind `ingest_liveness` in
//!   `GET /api/healthz` and the `meshscope_mqtt_*` metrics.

pub mod liveness;
pub mod payload;
pub mod subscriber;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use liveness::Liveness;
pub use subscriber::{start, Handle};

/// Subscriptions used when a source names none.
pub(crate) const DEFAULT_TOPICS: [&str; 2] = ["meshcore/+/+/packets", "meshcore/+/+/status"];

/// Port used when a URL names none.
pub(crate) const DEFAULT_PORT: u16 = 1883;

/// One broker to subscribe to, validated.
#[derive(Clone, PartialEq)]
pub struct MqttSource {
    /// Key in `ingest_liveness`, metrics label; defaults to `host:port`.
    pub name: String,
    pub(crate) host: String,
    pub port: u16,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub topics: Vec<String>,
    /// Regions to keep (uppercase); `None` keeps all.
    pub(crate) iata_filter: Option<Vec<String>>,
}

impl std::fmt::Debug for MqttSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSource")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .field("topics", &self.topics)
            .field("iata_filter", &self.iata_filter)
            .finish()
    }
}

/// The fields of a `[[mqtt]]` table, before validation.
#[derive(Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: Option<String>,
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub topics: Option<Vec<String>>,
    pub iata_filter: Option<Vec<String>>,
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password too, so only its presence is shown.
        f.debug_struct("SourceSpec")
            .field("name", &self.name)
            .field("url", &"..")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .field("topics", &self.topics)
            .field("iata_filter", &self.iata_filter)
            .finish()
    }
}

/// Why a source's settings are refused. Messages say what is wrong, not
/// where it came from (the caller adds the flag or table), and never show a
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// `url` is the URL with any password replaced by `***`.
    #[error("{url:?}: {problem}")]
    Url { url: String, problem: UrlProblem },
    #[error("name {0:?}: must be 1-64 characters without control characters")]
    Name(String),
    #[error("a password needs a username")]
    PasswordWithoutUser,
    #[error("topics: give at least one topic filter, or leave the key out for the defaults")]
    NoTopics,
    #[error("topic filter {filter:?}: {problem}")]
    Topic {
        filter: String,
        problem: &'static str,
    },
    #[error("iata_filter {code:?}: {message}")]
    Region { code: String, message: String },
}

/// What is wrong with a broker URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("not a broker URL; expected mqtt://HOST[:PORT]")]
    NotAUrl,
    #[error(
        "{0}:// (TLS or WebSocket) is not supported; use mqtt://HOST:PORT, through a \
         TLS-terminating proxy if the broker needs TLS"
    )]
    Unsupported(String),
    #[error("unknown scheme {0:?}; expected mqtt://HOST[:PORT]")]
    UnknownScheme(String),
    #[error("a broker URL has no path or query; topics go in the config file's `topics`")]
    HasPath,
    #[error("empty user name before '@'")]
    EmptyUser,
    #[error("unclosed '[' in the host")]
    UnclosedBracket,
    #[error("expected ':PORT' after ']'")]
    PortAfterBracket,
    #[error("missing host; expected mqtt://HOST[:PORT]")]
    NoHost,
    #[error("port {0:?} must be a number from 1 to 65535")]
    BadPort(String),
}

impl MqttSource {
    /// A source from a bare URL (`--mqtt`): default name and topics.
    pub(crate) fn from_url(url: &str) -> Result<MqttSource, SourceError> {
        MqttSource::from_spec(SourceSpec {
            url: url.to_string(),
            ..SourceSpec::default()
        })
    }

    /// Validates a source. Errors say what is wrong, not where it came from;
    /// the caller adds the flag or table.
    pub fn from_spec(spec: SourceSpec) -> Result<MqttSource, SourceError> {
        let url = parse_url(&spec.url)?;
        let name = match spec.name {
            Some(n) => {
                let n = n.trim().to_string();
                if n.is_empty() || n.len() > 64 || n.chars().any(char::is_control) {
                    return Err(SourceError::Name(n));
                }
                n
            }
            None => format!("{}:{}", url.host, url.port),
        };
        let username = spec.username.or(url.username);
        let password = spec.password.or(url.password);
        if password.is_some() && username.is_none() {
            return Err(SourceError::PasswordWithoutUser);
        }
        let topics = match spec.topics {
            Some(t) if t.is_empty() => return Err(SourceError::NoTopics),
            Some(t) => t,
            None => DEFAULT_TOPICS.iter().map(|t| t.to_string()).collect(),
        };
        for t in &topics {
            validate_filter(t).map_err(|problem| SourceError::Topic {
                filter: t.clone(),
                problem,
            })?;
        }
        let iata_filter = spec
            .iata_filter
            .map(|codes| {
                codes
                    .iter()
                    .map(|c| {
                        crate::ingest::normalize_iata(c).map_err(|e| SourceError::Region {
                            code: c.clone(),
                            message: e.message,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(MqttSource {
            name,
            host: url.host,
            port: url.port,
            username,
            password,
            topics,
            iata_filter,
        })
    }

    /// The MQTT client id: stable across restarts, so the broker keeps this
    /// subscriber's persistent session (and queues packets while meshscope
    /// is down), and different between two deployments (host name and
    /// database path) that share a broker and a source name, so they do not
    /// take each other's session over.
    pub(crate) fn client_id(&self, db: &Path) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        let db = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
        let mut h = Sha256::new();
        h.update(host.trim().as_bytes());
        h.update([0]);
        h.update(db.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(self.name.as_bytes());
        let digest = h.finalize();
        let readable: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(20)
            .collect();
        format!("meshscope-{readable}-{}", hex::encode(&digest[..4]))
    }
}

#[derive(Debug, PartialEq)]
struct BrokerUrl {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
}

/// `url` with any password replaced, for error messages, whether or not it
/// has a scheme (`user:pass@host` is a likely typo of a URL).
fn redacted(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// `mqtt://[user[:password]@]host[:port][/]` (or `tcp://`).
fn parse_url(raw: &str) -> Result<BrokerUrl, SourceError> {
    let raw = raw.trim();
    // Errors quote the URL, never with its password.
    let fail = |problem: UrlProblem| SourceError::Url {
        url: redacted(raw),
        problem,
    };
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(fail(UrlProblem::NotAUrl));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => {}
        "mqtts" | "ssl" | "tls" | "ws" | "wss" => {
            return Err(fail(UrlProblem::Unsupported(scheme.to_string())))
        }
        other => return Err(fail(UrlProblem::UnknownScheme(other.to_string()))),
    }
    let authority = match rest.split_once(['/', '?', '#']) {
        Some((a, "")) if rest.ends_with('/') => a,
        Some(_) => return Err(fail(UrlProblem::HasPath)),
        None => rest,
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_string()), Some(pass.to_string())),
            None => (Some(u.to_string()), None),
        },
    };
    if username.as_deref() == Some("") {
        return Err(fail(UrlProblem::EmptyUser));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| fail(UrlProblem::UnclosedBracket))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| fail(UrlProblem::PortAfterBracket))?,
            ),
        };
        (h, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(fail(UrlProblem::NoHost));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| fail(UrlProblem::BadPort(p.to_string())))?,
    };
    Ok(BrokerUrl {
        host: host.to_string(),
        port,
        username,
        password,
    })
}

/// MQTT topic filter rules: not empty, `#` only as the whole last level,
/// `+` only as a whole level.
fn validate_filter(f: &str) -> Result<(), &'static str> {
    if f.is_empty() || f.len() > 65_535 || f.contains('\0') {
        return Err("must be 1-65535 bytes without NUL");
    }
    let levels: Vec<&str> = f.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("'#' must be the whole last level");
        }
        if level.contains('+') && *level != "+" {
            return Err("'+' must be a whole level");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults() {
        let s = MqttSource::from_url("mqtt://broker.example:1884").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("broker.example", 1884));
        assert_eq!(s.name, "broker.example:1884");
        assert_eq!(s.topics, DEFAULT_TOPICS);
        assert_eq!(s.iata_filter, None);
        let s = MqttSource::from_url("tcp://u:p%w@10.0.0.1/").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("10.0.0.1", 1883));
        assert_eq!(
            (s.username.as_deref(), s.password.as_deref()),
            (Some("u"), Some("p%w"))
        );
        assert!(!format!("{s:?}").contains("p%w"), "password is not logged");
        let err = MqttSource::from_url("mqtt://user:hunter2@:1883")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user:***@") && !err.contains("hunter2"),
            "{err}"
        );
        // Without a scheme too (a likely typo): the password is never shown.
        let err = MqttSource::from_url("user:hunter2@broker.example:1883")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user:***@") && !err.contains("hunter2"),
            "{err}"
        );
        let s = MqttSource::from_url("mqtt://[::1]:1999").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 1999));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, want) in [
            ("broker:1883", "not a broker URL"),
            ("http://b", "unknown scheme"),
            ("mqtts://b", "not supported"),
            ("mqtt://", "missing host"),
            ("mqtt://:1883", "missing host"),
            ("mqtt://b:0", "port"),
            ("mqtt://b:99999", "port"),
            ("mqtt://b:x", "port"),
            ("mqtt://b/meshcore/#", "no path"),
            ("mqtt://b?client_id=x", "no path"),
            ("mqtt://@b", "empty user"),
        ] {
            let err = MqttSource::from_url(url).unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn specs_validate_topics_filters_and_names() {
        let spec = |f: fn(&mut SourceSpec)| {
            let mut s = SourceSpec {
                url: "mqtt://b".into(),
                ..Default::default()
            };
            f(&mut s);
            MqttSource::from_spec(s)
        };
        let ok = spec(|s| {
            s.name = Some(" west ".into());
            s.iata_filter = Some(vec!["sea".into(), "PDX".into()]);
            s.topics = Some(vec!["meshcore/SEA/#".into()]);
            s.username = Some("u".into());
        })
        .unwrap();
        assert_eq!(ok.name, "west");
        assert_eq!(ok.iata_filter, Some(vec!["SEA".into(), "PDX".into()]));
        for (f, want) in [
            (
                (|s: &mut SourceSpec| s.topics = Some(vec![])) as fn(&mut SourceSpec),
                "at least one",
            ),
            (|s| s.topics = Some(vec!["a/#/b".into()]), "'#'"),
            (|s| s.topics = Some(vec!["a/b+".into()]), "'+'"),
            (|s| s.iata_filter = Some(vec!["x".into()]), "iata_filter"),
            (|s| s.name = Some(" ".into()), "name"),
            (|s| s.password = Some("p".into()), "needs a username"),
        ] {
            let err = spec(f).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn client_id_is_stable_and_distinct() {
        let a = MqttSource::from_url("mqtt://b").unwrap();
        let id = a.client_id(Path::new("/x/a.db"));
        assert!(id.starts_with("meshscope-b-1883-"), "{id}");
        assert!(id.len() <= 40, "{id}");
        assert_eq!(id, a.client_id(Path::new("/x/a.db")));
        assert_ne!(id, a.client_id(Path::new("/x/b.db")));
    }
}
