//! Nodes from ADVERTs: kept at ingest, built online for existing files by
//! `nodes_backfill_v1` (equal to what ingest keeps), served by `/api/nodes`;
//! and one packet decoded with every sighting (`/api/packets/{hash}`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshscope::decoder::{self, advert};
use rusqlite::Connection;
use serde_json::{json, Value};
use shared::timefmt::format_unix_secs;

use crate::helpers::{hash_of, packet, spawn_app, spawn_with, strings, Options, TestApp};

const NODES: &str = meshscope::migrate::nodes::NAME;

fn key(n: u8) -> [u8; 32] {
    let mut k = [n; 32];
    k[0] = 0xc0;
    k
}

fn advert_hex(n: u8, ts: u32, role: u8, loc: Option<(f64, f64)>, name: &str) -> String {
    packet(4, &[n], &advert::encode(&key(n), ts, role, loc, Some(name)))
}

/// One row of `nodes` as compared: every column a reader sees.
type NodeTuple = (
    String,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    Option<String>,
    i64,
);

fn node_rows(c: &Connection) -> Vec<NodeTuple> {
    c.prepare(
        "SELECT public_key, name, role, lat, lon, first_seen, last_seen, advert_count
         FROM nodes ORDER BY public_key",
    )
    .unwrap()
    .query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The nodes a file's ADVERT transmissions describe, computed here from
/// scratch: count per key, earliest first seen, latest sighting, name and
/// role of the newest advert, location of the newest advert with one.
fn recount(c: &Connection) -> Vec<NodeTuple> {
    let rows: Vec<(i64, String, String, i64, Option<i64>)> = c
        .prepare(
            "SELECT t.id, t.raw_hex, t.first_seen, t.last_seen,
                    (SELECT MAX(timestamp) FROM observations o WHERE o.transmission_id = t.id)
             FROM transmissions t WHERE t.payload_type = 4 ORDER BY t.id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut nodes: BTreeMap<String, NodeTuple> = BTreeMap::new();
    for (_, raw, first, last, newest_obs) in rows {
        let bytes = decoder::parse_hex(&raw).unwrap();
        let p = decoder::decode(&bytes).unwrap();
        let Ok(a) = advert::decode(p.payload) else {
            continue;
        };
        let last = if last > 0 { Some(last) } else { newest_obs };
        let last = last.map(format_unix_secs).unwrap_or_else(|| first.clone());
        let n = nodes.entry(a.public_key.clone()).or_insert_with(|| {
            (
                a.public_key.clone(),
                None,
                None,
                None,
                None,
                Some(first.clone()),
                Some(last.clone()),
                0,
            )
        });
        // Rows come in id order: each advert is newer than the ones before.
        n.1 = a.name.clone();
        n.2 = a.role();
        if a.lat.is_some() {
            n.3 = a.lat;
            n.4 = a.lon;
        }
        n.5 = n.5.clone().min(Some(first));
        n.6 = n.6.clone().max(Some(last));
        n.7 += 1;
    }
    nodes.into_values().collect()
}

async fn wait_done(app: &TestApp, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = app.migration(name).await;
        if m["status"] == "done" {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never finished: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ingest_keeps_nodes_and_the_api_lists_them() {
    let app = spawn_app().await;
    // From here on ingest keeps the table (the backfill of the empty file is done).
    wait_done(&app, NODES).await;
    let first = advert_hex(1, 100, 2, Some((47.5, -122.25)), "Ridge");
    let (s, b) = app
        .post_json(
            "/api/ingest",
            &json!([
                {"observer": "aa01", "raw": first, "snr": 5.5},
                {"observer": "aa02", "raw": first, "snr": -3.0},
                {"observer": "aa01", "raw": advert_hex(2, 100, 1, None, "alice")},
                {"observer": "aa01", "raw": advert_hex(3, 100, 3, Some((1.0, 2.0)), "Hall")},
                {"observer": "aa01", "raw": advert_hex(4, 100, 4, Some((-33.5, 151.25)), "tank")},
                {"observer": "aa01", "raw": packet(2, &[], b"not an advert")},
            ]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, page) = app.get("/api/nodes").await;
    assert_eq!(s, 200, "{page}");
    let nodes = page["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{page}");
    let ridge = nodes.iter().find(|n| n["name"] == "Ridge").unwrap();
    assert_eq!(ridge["publicKey"], hex::encode(key(1)));
    assert_eq!(ridge["role"], "repeater");
    assert_eq!(
        (ridge["lat"].clone(), ridge["lon"].clone()),
        (json!(47.5), json!(-122.25))
    );
    // One advert heard twice is one advert.
    assert_eq!(ridge["advertCount"], 1, "{ridge}");
    assert!(ridge["firstSeen"].is_string() && ridge["lastSeen"].is_string());
    let alice = nodes.iter().find(|n| n["name"] == "alice").unwrap();
    assert_eq!(
        (alice["role"].clone(), alice["lat"].clone()),
        (json!("companion"), Value::Null)
    );
    assert_eq!(page["cursor"], Value::Null);

    // A newer advert renames the node; without a location it keeps the known one.
    let (s, b) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "aa03", "raw": advert_hex(1, 200, 2, None, "Ridge2")}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, d) = app
        .get(&format!("/api/nodes/{}", hex::encode(key(1))))
        .await;
    assert_eq!(d["node"]["name"], "Ridge2", "{d}");
    assert_eq!(d["node"]["lat"], json!(47.5));
    assert_eq!(d["node"]["advertCount"], 2);
    // Its packets, newest first, and who heard them with the best SNR first.
    let packets = d["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 2, "{d}");
    assert_eq!(packets[1]["hash"], hash_of(&first));
    let obs: Vec<(&str, Value)> = d["observers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["observerId"].as_str().unwrap(), o["bestSnr"].clone()))
        .collect();
    assert_eq!(
        obs,
        vec![
            ("aa01", json!(5.5)),
            ("aa02", json!(-3.0)),
            ("aa03", Value::Null)
        ]
    );

    // Search by name (any case) and key prefix, filter by role.
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&app.get("/api/nodes?q=ALI").await.1), ["alice"]);
    assert_eq!(
        names(
            &app.get(&format!("/api/nodes?q={}", &hex::encode(key(3))[..10]))
                .await
                .1
        ),
        ["Hall"]
    );
    assert_eq!(names(&app.get("/api/nodes?role=sensor").await.1), ["tank"]);
    assert_eq!(names(&app.get("/api/nodes?role=room").await.1), ["Hall"]);
    assert_eq!(
        names(&app.get("/api/nodes?q=%25").await.1),
        Vec::<String>::new()
    );
    // Bad input names the parameter.
    for (q, field) in [
        ("role=admin", "role"),
        ("limit=0", "limit"),
        ("order=up", "order"),
        ("cursor=xyz", "cursor"),
    ] {
        let (s, b) = app.get(&format!("/api/nodes?{q}")).await;
        assert_eq!(s, 400, "{q}: {b}");
        assert!(b["error"].as_str().unwrap().starts_with(field), "{q}: {b}");
    }
    let (s, b) = app.get(&format!("/api/nodes/{}", "ab".repeat(32))).await;
    assert_eq!((s, b["error"].is_string()), (404, true), "{b}");
    let (s, b) = app.get("/api/nodes/abc").await;
    assert_eq!((s, b["error"].is_string()), (400, true), "{b}");
}

#[tokio::test]
async fn node_pages_follow_last_seen_without_repeats_or_gaps() {
    let app = spawn_app().await;
    // From here on ingest keeps the table (the backfill of the empty file is done).
    wait_done(&app, NODES).await;
    // Nine nodes; their last sightings set apart in the file.
    let items: Vec<Value> = (1..=9u8)
        .map(|n| json!({"observer": "aa01", "raw": advert_hex(n, 100, 1 + n % 4, None, &format!("p{n}"))}))
        .collect();
    let (s, b) = app.post_json("/api/ingest", &json!(items)).await;
    assert_eq!(s, 200, "{b}");
    {
        let c = app.sql();
        for n in 1..=9u8 {
            c.execute(
                "UPDATE nodes SET last_seen = ?2 WHERE public_key = ?1",
                rusqlite::params![
                    hex::encode(key(n)),
                    format_unix_secs(1_800_000_000 + i64::from(n % 5) * 60)
                ],
            )
            .unwrap();
        }
    }
    for order in ["desc", "asc"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let q = match &cursor {
                Some(c) => format!("/api/nodes?limit=4&order={order}&cursor={c}"),
                None => format!("/api/nodes?limit=4&order={order}"),
            };
            let (s, page) = app.get(&q).await;
            assert_eq!(s, 200, "{page}");
            for n in page["nodes"].as_array().unwrap() {
                seen.push((
                    n["lastSeen"].as_str().unwrap().to_string(),
                    n["publicKey"].as_str().unwrap().to_string(),
                ));
            }
            match page["cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let mut want = seen.clone();
        want.sort_by(|a, b| {
            if order == "desc" {
                b.0.cmp(&a.0).then(a.1.cmp(&b.1))
            } else {
                a.cmp(b)
            }
        });
        want.dedup();
        assert_eq!(seen.len(), 9, "{order}: {seen:?}");
        assert_eq!(seen, want, "{order}");
    }
}

/// A file whose nodes were kept at ingest, and a copy of it without them:
/// `nodes_backfill_v1` rebuilds the copy's table equal to the original,
/// which equals a recount from the transmissions.
#[tokio::test]
async fn the_backfill_equals_what_ingest_keeps() {
    let app = spawn_app().await;
    // From here on ingest keeps the table (the backfill of the empty file is done).
    wait_done(&app, NODES).await;
    for round in 0..4u32 {
        let items: Vec<Value> = (1..=12u8)
            .map(|n| {
                let loc = (!(n + round as u8).is_multiple_of(3))
                    .then(|| (f64::from(n), f64::from(round)));
                let raw = advert_hex(
                    n,
                    1000 + round,
                    1 + (n + round as u8) % 4,
                    loc,
                    &format!("n{n}r{round}"),
                );
                json!({"observer": format!("ab{:02}", n % 3), "raw": raw, "snr": f64::from(n)})
            })
            .collect();
        let (s, b) = app.post_json("/api/ingest", &json!(items)).await;
        assert_eq!(s, 200, "{b}");
    }
    let kept = node_rows(&app.sql());
    assert_eq!(kept.len(), 12);
    assert_eq!(
        kept,
        recount(&app.sql()),
        "ingest keeps what a recount finds"
    );

    let copy = app.db.with_file_name("copy.db");
    app.sql()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let c = Connection::open(&copy).unwrap();
    c.execute_batch(&format!(
        "DELETE FROM nodes; DELETE FROM _async_migrations WHERE name = '{NODES}';"
    ))
    .unwrap();
    drop(c);
    let rebuilt = spawn_with(Options {
        prepare: Some(Box::new(move |p| {
            std::fs::copy(&copy, p).unwrap();
        })),
        ..Default::default()
    })
    .await;
    wait_done(&rebuilt, NODES).await;
    assert_eq!(node_rows(&rebuilt.sql()), kept);
}

/// Sightings of new adverts of the same nodes, and of old ones, until `stop`.
async fn feed(app: Arc<TestApp>, old: Vec<String>, stop: Arc<AtomicBool>) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let k = (n % 200) as u8 + 1;
        let loc = n.is_multiple_of(2).then_some((10.0 + f64::from(k), 20.0));
        let fresh = packet(
            4,
            &[],
            &advert::encode(
                &[k; 32],
                2_000_000 + n as u32,
                2,
                loc,
                Some(&format!("fed{n}")),
            ),
        );
        let old = &old[(n as usize * 37) % old.len()];
        let items = json!([
            {"observer": "fe01", "raw": fresh},
            {"observer": "fe02", "raw": old},
        ]);
        let (s, b) = app.post_json("/api/ingest", &items).await;
        assert_eq!(s, 200, "{b}");
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    n
}

/// A CoreScope file's nodes built online while new adverts of the same
/// nodes (and new sightings of old ones) arrive: the result equals a
/// recount of the final file.
#[tokio::test(flavor = "multi_thread")]
async fn a_corescope_file_gets_its_nodes_online_while_adverts_arrive() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let app = Arc::new(
        spawn_with(Options {
            prepare: Some(Box::new(|p| crate::corescope::write_file(p, 6_000))),
            migrations: Some(vec![Arc::new(
                meshscope::migrate::nodes::NodesBackfill::default(),
            )]),
            engine: Some(crate::engine::engine_cfg(10, 60, 0.05)),
            ..Default::default()
        })
        .await,
    );
    let old = strings(
        &app.sql(),
        "SELECT raw_hex FROM transmissions WHERE payload_type = 4",
    );
    assert!(old.len() > 1000, "{}", old.len());
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = tokio::spawn(feed(app.clone(), old, stop.clone()));
    let mut fed_while_running = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = app.migration(NODES).await;
        if m["status"] == "running" || m["status"] == "throttled" {
            fed_while_running |= m["rowsProcessed"].as_i64().unwrap_or(0) > 0;
        }
        if m["status"] == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill never finished: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A few more after it is done: ingest keeps the table alone now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let requests = feeder.await.unwrap();
    assert!(fed_while_running && requests > 20, "{requests} requests");
    let c = app.sql();
    let got = node_rows(&c);
    // The fixture's 50 advertisers, and the ones only the feeder's adverts named.
    assert!(got.len() > 50, "{}", got.len());
    assert_eq!(got, recount(&c));
    crate::corescope::assert_constraints_hold(&c);
}

#[tokio::test]
async fn packet_detail_decodes_each_type_and_lists_every_sighting() {
    let app = spawn_app().await;
    // From here on ingest keeps the table (the backfill of the empty file is done).
    wait_done(&app, NODES).await;
    let mut anon = vec![0x33];
    anon.extend_from_slice(&[0xee; 32]);
    anon.extend_from_slice(&[1, 2, 3]);
    // (payload type, payload, a field the decoded payload must carry)
    let cases: Vec<(u8, Vec<u8>, &str, Value)> = vec![
        (0, vec![0x11, 0x22, 0xaa, 0xbb, 1], "destHash", json!("11")),
        (1, vec![0x11, 0x22, 0xaa, 0xbb, 2], "srcHash", json!("22")),
        (2, vec![0x11, 0x22, 0xaa, 0xbb, 3], "mac", json!("aabb")),
        (
            3,
            vec![0x78, 0x56, 0x34, 0x12],
            "checksum",
            json!("12345678"),
        ),
        (
            4,
            advert::encode(&key(9), 5, 2, Some((1.5, 2.5)), Some("R9")),
            "name",
            json!("R9"),
        ),
        (5, vec![0xd9, 1, 2, 0xff], "channelHash", json!("D9")),
        (6, vec![0x0a, 1, 2, 0xfe], "channelHash", json!("0A")),
        (7, anon, "ephemeralPubKey", json!("ee".repeat(32))),
        (8, vec![1, 2, 3, 4, 5], "pathData", json!("05")),
        (
            9,
            vec![1, 0, 0, 0, 2, 0, 0, 0, 0, 0xaa, 0xbb],
            "traceHops",
            json!(["AA", "BB"]),
        ),
        (
            10,
            vec![0x23, 0x78, 0x56, 0x34, 0x12],
            "innerType",
            json!("ACK"),
        ),
        (
            11,
            vec![0x80, 3, 1, 0, 0, 0],
            "subtype",
            json!("DISCOVER_REQ"),
        ),
        (15, vec![0x7e, 1], "firstByte", json!("7E")),
    ];
    for (t, payload, field, want) in cases {
        let raw = packet(t, &[0xa1, 0xb2], &payload);
        let (s, b) = app
            .post_json(
                "/api/ingest",
                &json!([
                    {"observer": "bb01", "raw": raw, "snr": 4.25, "rssi": -90.0, "score": 7, "direction": "rx"},
                    {"observer": "bb02", "raw": packet(t, &[0xa1], &payload), "snr": -1.5},
                ]),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, d) = app
            .get(&format!("/api/packets/{}", hash_of(&raw).to_uppercase()))
            .await;
        assert_eq!(s, 200, "type {t}: {d}");
        let p = &d["packet"];
        assert_eq!(p["payloadType"], t, "{d}");
        assert_eq!(p["type"], shared::packet::payload_type_name(t));
        assert_eq!(p["route"], "FLOOD");
        assert_eq!(p["path"], json!(["A1", "B2"]));
        assert_eq!(p["rawHex"], raw.to_uppercase());
        assert_eq!(p["payload"][field], want, "type {t}: {d}");
        assert!(p["payload"].get("error").is_none(), "type {t}: {d}");
        let obs = d["observations"].as_array().unwrap();
        let seen: Vec<(&str, Value, Value)> = obs
            .iter()
            .map(|o| {
                (
                    o["observerId"].as_str().unwrap(),
                    o["snr"].clone(),
                    o["path"].clone(),
                )
            })
            .collect();
        // A TRACE's sighting path is the route its payload carries (its
        // header hops are SNRs), as CoreScope stores it.
        let path = if t == 9 {
            json!(["AA", "BB"])
        } else {
            json!(["A1", "B2"])
        };
        let mut want_seen = vec![("bb01", json!(4.25), path)];
        // A TRACE's hash covers its path length: over one hop it is another packet.
        if t != 9 {
            want_seen.push(("bb02", json!(-1.5), json!(["A1"])));
        }
        assert_eq!(seen, want_seen, "type {t}");
        assert_eq!(
            (
                obs[0]["rssi"].clone(),
                obs[0]["score"].clone(),
                obs[0]["direction"].clone()
            ),
            (json!(-90.0), json!(7), json!("rx"))
        );
        assert!(obs[0]["timestamp"].is_string());
    }
    let (s, b) = app.get("/api/packets/00112233aabbccdd").await;
    assert_eq!((s, b["error"].is_string()), (404, true), "{b}");
    for bad in ["0011", "zz112233aabbccdd", "00112233aabbccddee"] {
        let (s, b) = app.get(&format!("/api/packets/{bad}")).await;
        assert_eq!(
            (s, b["error"].as_str().unwrap_or("").starts_with("hash")),
            (400, true),
            "{bad}: {b}"
        );
    }
}
