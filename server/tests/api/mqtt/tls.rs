//! Live ingest over `mqtts://`, `ws://` and `wss://`, against one mosquitto
//! with a TLS listener, a WebSocket listener and a TLS WebSocket listener
//! besides its plain one (where the test publisher connects: mosquitto
//! hands every message to subscribers on all listeners). The certificates
//! are made here: a throwaway CA and a server certificate for `localhost`
//! and 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use meshscope::mqtt::{MqttSource, SourceSpec};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::{json, Value};

use super::{free_port, topic, Broker, Publisher};
use crate::helpers::{packet, spawn_with, Options, TestApp};

/// A broker with TLS and WebSocket listeners, and the CA that signed its
/// certificate.
struct TlsBroker {
    broker: Broker,
    mqtts: u16,
    ws: u16,
    wss: u16,
    ca_file: PathBuf,
}

/// Writes `ca.pem`, `server.pem` and `server.key` into `dir`.
fn make_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "meshscope test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &ca_cert, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

impl TlsBroker {
    fn start() -> TlsBroker {
        let ports = std::cell::Cell::new((0, 0, 0));
        let broker = Broker::start_with(&|dir| {
            make_certificates(dir);
            let (mqtts, ws, wss) = (free_port(), free_port(), free_port());
            ports.set((mqtts, ws, wss));
            let files = format!(
                "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n",
                d = dir.display()
            );
            let conf = format!(
                "listener {mqtts} 127.0.0.1\n{files}\
                 listener {ws} 127.0.0.1\nprotocol websockets\n\
                 listener {wss} 127.0.0.1\nprotocol websockets\n{files}"
            );
            (conf, vec![mqtts, ws, wss])
        });
        let (mqtts, ws, wss) = ports.get();
        let ca_file = broker_dir(&broker).join("ca.pem");
        TlsBroker {
            broker,
            mqtts,
            ws,
            wss,
            ca_file,
        }
    }
}

fn broker_dir(b: &Broker) -> PathBuf {
    b.dir.path().to_path_buf()
}

fn spec(name: &str, url: String) -> SourceSpec {
    SourceSpec {
        name: Some(name.into()),
        url,
        ..Default::default()
    }
}

fn source(spec: SourceSpec) -> MqttSource {
    MqttSource::from_spec(spec).unwrap()
}

async fn app_with(sources: Vec<MqttSource>) -> TestApp {
    spawn_with(Options {
        mqtt: sources,
        ..Default::default()
    })
    .await
}

async fn source_state(app: &TestApp, name: &str) -> Value {
    let (s, body) = app.get("/api/healthz").await;
    assert_eq!(s, 200);
    body["ingest_liveness"][name].clone()
}

async fn wait_subscribed(app: &TestApp, names: &[&str], b: &TlsBroker) {
    for name in names {
        eventually!(
            format!("{name} subscribed; broker log:\n{}", b.broker.log()),
            20,
            {
                app.liveness
                    .counters(name)
                    .filter(|c| c.subscribed)
                    .map(|_| ())
            }
        );
    }
}

/// Publishes `n` distinct packets on the plain listener.
async fn publish(b: &TlsBroker, n: u8) {
    let mut p = Publisher::connect(b.broker.port);
    for i in 0..n {
        p.send(
            &topic("SEA", "ab01"),
            json!({"raw": packet(5, &[], format!("tls test {i}").as_bytes())}).to_string(),
        )
        .await;
    }
    p.flush().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_arrive_over_mqtts_ws_and_wss() {
    let b = TlsBroker::start();
    let ca = || Some(b.ca_file.clone());
    let app = app_with(vec![
        source(SourceSpec {
            ca_file: ca(),
            ..spec("tls", format!("mqtts://127.0.0.1:{}", b.mqtts))
        }),
        source(spec("ws", format!("ws://127.0.0.1:{}/mqtt", b.ws))),
        source(SourceSpec {
            ca_file: ca(),
            ..spec("wss", format!("wss://localhost:{}/", b.wss))
        }),
    ])
    .await;
    wait_subscribed(&app, &["tls", "ws", "wss"], &b).await;
    publish(&b, 5).await;
    for name in ["tls", "ws", "wss"] {
        let l = eventually!(format!("5 packets over {name}"), 20, {
            let l = source_state(&app, name).await;
            (l["messages"] == 5).then_some(l)
        });
        assert_eq!(l["connected"], true, "{name}: {l}");
        assert!(l.get("lastError").is_none(), "{name}: {l}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM transmissions"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_error_until_verification_is_skipped() {
    let b = TlsBroker::start();
    // No ca_file: the test CA is in no system store.
    let app = app_with(vec![
        source(spec("tls", format!("mqtts://127.0.0.1:{}", b.mqtts))),
        source(spec("wss", format!("wss://127.0.0.1:{}/mqtt", b.wss))),
    ])
    .await;
    for name in ["tls", "wss"] {
        let l = eventually!(format!("a connection error for {name}"), 20, {
            let l = source_state(&app, name).await;
            l.get("lastError").is_some().then_some(l)
        });
        assert_eq!(l["connected"], false, "{name}: {l}");
        let err = l["lastError"].as_str().unwrap();
        assert!(
            err.contains("TLS") && err.contains("certificate is not trusted"),
            "{name}: {err}"
        );
    }
    // It keeps retrying (with backoff), and keeps failing the same way.
    let before = app.liveness.counters("tls").unwrap();
    assert_eq!(before.connects, 0);
    publish(&b, 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM observations"), 0);
    for name in ["tls", "wss"] {
        let c = app.liveness.counters(name).unwrap();
        assert!(!c.connected && c.received == 0, "{name}: {c:?}");
    }

    // The same broker, verification skipped: connects and ingests.
    let insecure = app_with(vec![source(SourceSpec {
        insecure_skip_verify: Some(true),
        ..spec("tls", format!("mqtts://127.0.0.1:{}", b.mqtts))
    })])
    .await;
    wait_subscribed(&insecure, &["tls"], &b).await;
    publish(&b, 3).await;
    eventually!("3 packets with verification skipped", 20, {
        (insecure.count("SELECT COUNT(*) FROM observations") == 3).then_some(())
    });
    let l = source_state(&insecure, "tls").await;
    assert_eq!(l["connected"], true, "{l}");
    assert!(l.get("lastError").is_none(), "{l}");
}
