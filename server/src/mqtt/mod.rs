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
//! - [`tls`]: the rustls configuration of `mqtts://` and `wss://` sources.
//!
//! Transports: `mqtt://` (TCP, port 1883), `mqtts://` (TLS, 8883; `ssl://`
//! and `tls://` are aliases), `ws://` (WebSocket, 80) and `wss://`
//! (WebSocket over TLS, 443). A WebSocket URL may carry the HTTP path the
//! broker serves MQTT on; without one the request goes to `/` (mosquitto
//! ignores the path; EMQX and HiveMQ want `/mqtt`, which must then be
//! written).

pub mod liveness;
pub mod payload;
pub mod subscriber;
pub mod tls;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use liveness::Liveness;
pub use subscriber::{start, Handle};

/// Subscriptions used when a source names none.
pub(crate) const DEFAULT_TOPICS: [&str; 2] = ["meshcore/+/+/packets", "meshcore/+/+/status"];

/// What a broker URL's scheme asks for, before any TLS is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `mqtt://` (or `tcp://`).
    Tcp,
    /// `mqtts://` (or `ssl://`, `tls://`).
    Tls,
    /// `ws://`, with the HTTP path (and query) of the upgrade request.
    Ws { path: String },
    /// `wss://`, as `Ws`.
    Wss { path: String },
}

impl Scheme {
    /// The scheme's port when a URL names none.
    pub fn default_port(&self) -> u16 {
        match self {
            Scheme::Tcp => 1883,
            Scheme::Tls => 8883,
            Scheme::Ws { .. } => 80,
            Scheme::Wss { .. } => 443,
        }
    }
}

/// How a source reaches its broker: a TLS transport carries its TLS
/// configuration, so one cannot be had without the other.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Tcp,
    Tls(tls::TlsClient),
    Ws { path: String },
    Wss { path: String, tls: tls::TlsClient },
}

impl Transport {
    /// The canonical scheme, for logs and default names.
    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Tcp => "mqtt",
            Transport::Tls(_) => "mqtts",
            Transport::Ws { .. } => "ws",
            Transport::Wss { .. } => "wss",
        }
    }

    /// The TLS configuration, for the two TLS transports.
    pub(crate) fn tls(&self) -> Option<&tls::TlsClient> {
        match self {
            Transport::Tls(t) | Transport::Wss { tls: t, .. } => Some(t),
            Transport::Tcp | Transport::Ws { .. } => None,
        }
    }

    /// The WebSocket upgrade path, for the two WebSocket transports.
    pub(crate) fn path(&self) -> Option<&str> {
        match self {
            Transport::Ws { path } | Transport::Wss { path, .. } => Some(path),
            Transport::Tcp | Transport::Tls(_) => None,
        }
    }
}

/// One broker to subscribe to, validated.
#[derive(Clone, PartialEq)]
pub struct MqttSource {
    /// Key in `ingest_liveness`, metrics label; defaults to `host:port`.
    pub name: String,
    pub(crate) host: String,
    pub port: u16,
    pub transport: Transport,
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
            .field("transport", &self.transport)
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
    /// PEM bundle trusted in addition to the system roots (TLS only).
    pub ca_file: Option<PathBuf>,
    /// Accept any broker certificate (TLS only); logged as a warning.
    pub insecure_skip_verify: Option<bool>,
    /// PEM certificate chain and key for mutual TLS: both or neither.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
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
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
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
    #[error(
        "{0} only applies to a TLS broker URL (mqtts:// or wss://); remove it or change the URL"
    )]
    TlsWithoutTls(&'static str),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// What is wrong with a broker URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("not a broker URL; expected SCHEME://HOST[:PORT] with mqtt, mqtts, ws or wss")]
    NotAUrl,
    #[error("unknown scheme {0:?}; expected mqtt://, mqtts://, ws:// or wss://")]
    UnknownScheme(String),
    #[error(
        "an mqtt:// or mqtts:// URL has no path or query (topics go in the config file's \
         `topics`; only ws:// and wss:// URLs take a path)"
    )]
    HasPath,
    #[error("a URL fragment ('#') is not allowed")]
    HasFragment,
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
        let settings = tls::TlsSettings {
            ca_file: spec.ca_file,
            insecure_skip_verify: spec.insecure_skip_verify.unwrap_or(false),
            client_cert: spec.client_cert,
            client_key: spec.client_key,
        };
        let plain = |transport: Transport| {
            if settings.ca_file.is_some() {
                return Err(SourceError::TlsWithoutTls("ca_file"));
            }
            if settings.insecure_skip_verify {
                return Err(SourceError::TlsWithoutTls("insecure_skip_verify"));
            }
            if settings.is_set() {
                return Err(SourceError::TlsWithoutTls("client_cert/client_key"));
            }
            Ok(transport)
        };
        let transport = match url.scheme {
            Scheme::Tcp => plain(Transport::Tcp)?,
            Scheme::Ws { path } => plain(Transport::Ws { path })?,
            Scheme::Tls => Transport::Tls(tls::TlsClient::new(settings)?),
            Scheme::Wss { path } => Transport::Wss {
                path,
                tls: tls::TlsClient::new(settings)?,
            },
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
            transport,
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
    scheme: Scheme,
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

/// `SCHEME://[user[:password]@]host[:port][/]`, where SCHEME is `mqtt` (or
/// `tcp`) or `mqtts` (or `ssl`, `tls`); `ws` and `wss` also take a path and
/// query (`/` when absent).
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
    let scheme = scheme.to_ascii_lowercase();
    let web = matches!(scheme.as_str(), "ws" | "wss");
    if !matches!(
        scheme.as_str(),
        "mqtt" | "tcp" | "mqtts" | "ssl" | "tls" | "ws" | "wss"
    ) {
        return Err(fail(UrlProblem::UnknownScheme(scheme)));
    }
    // The authority ends at the first '/', '?' or '#'; what follows is the
    // WebSocket path (and query), which only ws:// and wss:// have.
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !web && !path.is_empty() && path != "/" {
        return Err(fail(UrlProblem::HasPath));
    }
    if path.contains('#') {
        return Err(fail(UrlProblem::HasFragment));
    }
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    let parsed = match scheme.as_str() {
        "mqtts" | "ssl" | "tls" => Scheme::Tls,
        "ws" => Scheme::Ws { path },
        "wss" => Scheme::Wss { path },
        _ => Scheme::Tcp,
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
        None => parsed.default_port(),
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| fail(UrlProblem::BadPort(p.to_string())))?,
    };
    Ok(BrokerUrl {
        scheme: parsed,
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
            ("quic://b", "unknown scheme"),
            ("mqtts://b/mqtt", "no path"),
            ("wss://b/mqtt#frag", "fragment"),
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
    fn each_scheme_has_its_default_port_and_path() {
        let ws = |path: &str| Scheme::Ws { path: path.into() };
        let wss = |path: &str| Scheme::Wss { path: path.into() };
        for (url, transport, port) in [
            ("mqtt://b", Scheme::Tcp, 1883),
            ("tcp://b/", Scheme::Tcp, 1883),
            ("mqtts://b", Scheme::Tls, 8883),
            ("MQTTS://b:1", Scheme::Tls, 1),
            ("ssl://b", Scheme::Tls, 8883),
            ("tls://b", Scheme::Tls, 8883),
            ("ws://b", ws("/"), 80),
            ("ws://b:9001/", ws("/"), 9001),
            ("ws://b?token=x", ws("/?token=x"), 80),
            ("wss://b/mqtt", wss("/mqtt"), 443),
            ("wss://u:p@[::1]:8443/a/b?c=d", wss("/a/b?c=d"), 8443),
        ] {
            let u = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((u.scheme, u.port), (transport, port), "{url}");
        }
        let u = parse_url("wss://user:hunter2@broker.example/mqtt").unwrap();
        assert_eq!(u.host, "broker.example");
        assert_eq!(
            (u.username.as_deref(), u.password.as_deref()),
            (Some("user"), Some("hunter2"))
        );
    }

    #[test]
    fn passwords_are_redacted_for_every_scheme() {
        for scheme in ["mqtt", "mqtts", "ssl", "ws", "wss", "bogus"] {
            // A bad port makes each of these an error that quotes the URL.
            let err = MqttSource::from_url(&format!("{scheme}://user:hunter2@b:x/p"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("user:***@") && !err.contains("hunter2"),
                "{scheme}: {err}"
            );
        }
        let s = MqttSource::from_url("wss://user:hunter2@b/mqtt").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn tls_settings_need_a_tls_url_and_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        let spec = |url: &str, f: fn(&mut SourceSpec, &Path)| {
            let mut s = SourceSpec {
                url: url.into(),
                ..Default::default()
            };
            f(&mut s, dir.path());
            MqttSource::from_spec(s)
        };
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
        for (url, f, want) in [
            (
                "mqtt://b",
                (|s: &mut SourceSpec, _: &Path| s.ca_file = Some("x.pem".into()))
                    as fn(&mut SourceSpec, &Path),
                "ca_file only applies to a TLS broker URL",
            ),
            (
                "ws://b",
                |s, _| s.insecure_skip_verify = Some(true),
                "insecure_skip_verify only applies",
            ),
            (
                "mqtts://b",
                |s, d| s.ca_file = Some(d.join("missing.pem")),
                "missing.pem\": cannot read it",
            ),
            (
                "wss://b",
                |s, d| s.ca_file = Some(d.join("junk.pem")),
                "junk.pem\": holds no certificate",
            ),
            (
                "mqtts://b",
                |s, d| s.client_cert = Some(d.join("junk.pem")),
                "give both for mutual TLS",
            ),
            (
                "mqtts://b",
                |s, d| {
                    s.insecure_skip_verify = Some(true);
                    s.client_cert = Some(d.join("missing.pem"));
                    s.client_key = Some(d.join("junk.pem"));
                },
                "client_cert",
            ),
        ] {
            let err = spec(url, f).unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
        let ok = spec("mqtts://b", |s, _| s.insecure_skip_verify = Some(true)).unwrap();
        assert!(ok
            .transport
            .tls()
            .is_some_and(|t| t.settings.insecure_skip_verify));
        assert!(spec("mqtt://b", |_, _| {})
            .unwrap()
            .transport
            .tls()
            .is_none());
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
