//! The mesh view: hops resolved to nodes (on CoreScope's own Bay Area file,
//! against CoreScope's `resolved_path`, and on hand-built collisions), the
//! live feed (`/api/live`), and region filters on every endpoint.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meshscope::decoder::{self, advert};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::corescope::fixture::fixture_copy;
use crate::helpers::{hash_of, spawn_app, spawn_with, Options, TestApp};

/// A FLOOD packet with 1-byte hops.
fn flood(payload_type: u8, hops: &[u8], payload: &[u8]) -> String {
    let hops: Vec<[u8; 1]> = hops.iter().map(|h| [*h]).collect();
    let refs: Vec<&[u8]> = hops.iter().map(|h| h.as_slice()).collect();
    hex::encode(decoder::encode(1, payload_type, 0, None, 1, &refs, payload))
}

fn key_of(first: u8, second: u8) -> [u8; 32] {
    let mut k = [0x5e; 32];
    k[0] = first;
    k[1] = second;
    k
}

/// An ADVERT of a repeater at `at`.
fn repeater(first: u8, second: u8, at: (f64, f64), name: &str) -> String {
    flood(
        4,
        &[],
        &advert::encode(
            &key_of(first, second),
            1_780_000_000,
            2,
            Some(at),
            Some(name),
        ),
    )
}

/// Waits until `/api/resolve-hops` names `hop` (the feed thread reads the
/// nodes after their adverts are stored).
async fn until_known(app: &TestApp, hops: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, b) = app.get(&format!("/api/resolve-hops?hops={hops}")).await;
        assert_eq!(s, 200, "{b}");
        if b["hops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["confidence"] != "unknown")
        {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "hops {hops} never resolved: {b}; nodes {:?}",
            crate::helpers::strings(&app.sql(), "SELECT public_key FROM nodes")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two repeaters share the hop 7C, one in San Jose and one in Sacramento;
/// the location rule picks the one near the hops beside it, both ways, on
/// the packet page and on `/api/resolve-hops`.
#[tokio::test]
async fn a_collision_is_resolved_by_the_neighbours_locations() {
    let app = spawn_app().await;
    let adverts = [
        repeater(0x7c, 0x01, (37.33, -121.89), "San Jose"),
        repeater(0x7c, 0x02, (38.58, -121.49), "Sacramento"),
        repeater(0x11, 0x01, (37.40, -121.95), "Santa Clara"),
        repeater(0x22, 0x01, (37.25, -121.80), "South SJ"),
        repeater(0x33, 0x01, (38.60, -121.50), "Natomas"),
    ];
    let items: Vec<Value> = adverts
        .iter()
        .map(|raw| json!({"observer": "ab01", "iata": "SJC", "raw": raw}))
        .collect();
    let (s, b) = app.post_json("/api/ingest", &json!(items)).await;
    assert_eq!(s, 200, "{b}");
    until_known(&app, "7C,11,22,33").await;

    let south = flood(5, &[0x11, 0x7c, 0x22], b"\x99south bay text");
    let north = flood(5, &[0x33, 0x7c], b"\x99north text");
    for raw in [&south, &north] {
        let (s, b) = app
            .post_json(
                "/api/ingest",
                &json!({"observer": "ab01", "iata": "SJC", "raw": raw}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, page) = app.get(&format!("/api/packets/{}", hash_of(&south))).await;
    assert_eq!(s, 200, "{page}");
    let hops = page["observations"][0]["resolvedPath"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(hops.len(), 3, "{page}");
    assert_eq!(hops[0]["node"]["name"], "Santa Clara");
    assert_eq!(hops[0]["confidence"], "unique");
    assert_eq!(hops[1]["candidates"], 2);
    assert_eq!(hops[1]["confidence"], "nearest");
    assert_eq!(hops[1]["node"]["name"], "San Jose", "{page}");
    assert_eq!(hops[1]["node"]["publicKey"], hex::encode(key_of(0x7c, 1)));
    assert!(hops[1]["node"]["lat"].is_number());

    let (_, page) = app.get(&format!("/api/packets/{}", hash_of(&north))).await;
    let hops = &page["observations"][0]["resolvedPath"];
    assert_eq!(hops[1]["node"]["name"], "Sacramento", "{page}");

    let (_, b) = app.get("/api/resolve-hops?hops=11,7c,22").await;
    assert_eq!(b["hops"][1]["node"]["name"], "San Jose");
    let (_, b) = app.get("/api/resolve-hops?hops=33,7C").await;
    assert_eq!(b["hops"][1]["node"]["name"], "Sacramento");
    // Without neighbours: the most recent advert wins, and it says so.
    let (_, b) = app.get("/api/resolve-hops?hops=7C").await;
    assert_eq!(b["hops"][0]["confidence"], "recent");
    let (_, b) = app.get("/api/resolve-hops?hops=EE").await;
    assert_eq!(b["hops"][0]["confidence"], "unknown");
    assert!(b["hops"][0]["node"].is_null());

    for (bad, param) in [
        ("hops=7G", "hops"),
        ("hops=7C1", "hops"),
        ("", "hops"),
        ("hops=7C&from=abc", "from"),
        ("hops=7C&observer=xyz", "observer"),
    ] {
        let (s, b) = app.get(&format!("/api/resolve-hops?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {b}");
        assert!(
            b["error"].as_str().unwrap().starts_with(param),
            "{bad}: {b}"
        );
    }
}

/// CoreScope's own file: every sighting's hops resolved by meshscope, and
/// compared with CoreScope's `resolved_path` for the same sighting.
#[tokio::test]
async fn corescope_paths_resolve_and_agree_with_corescope() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture_copy(dir.path());
    let app = spawn_with(Options {
        prepare: Some(Box::new(move |db| {
            std::fs::copy(&src, db).unwrap();
        })),
        ..Options::default()
    })
    .await;
    // CoreScope's view of each sighting, read before meshscope changes
    // anything (the fixture itself, read-only).
    let cs = rusqlite::Connection::open_with_flags(
        crate::corescope::fixture::fixture(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    type Row = (String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = cs
        .prepare(
            "SELECT o.path_json, o.resolved_path, t.from_pubkey, obs.id
             FROM observations o JOIN transmissions t ON t.id = o.transmission_id
             LEFT JOIN observers obs ON obs.rowid = o.observer_idx
             WHERE o.path_json IS NOT NULL AND o.path_json <> '[]' ORDER BY o.id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        rows.len() > 300,
        "the fixture's sightings with paths: {}",
        rows.len()
    );
    // The index is read at boot, off the request path.
    let one: String = cs
        .query_row(
            "SELECT substr(public_key, 1, 4) FROM nodes LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    until_known(&app, &one).await;

    let mut tally: BTreeMap<&str, i64> = BTreeMap::new();
    let mut agree: BTreeMap<(&str, bool), i64> = BTreeMap::new();
    for (path, resolved, from, observer) in &rows {
        let hops: Vec<String> = serde_json::from_str(path).unwrap();
        let theirs: Vec<Option<String>> = resolved
            .as_deref()
            .map(|r| serde_json::from_str(r).unwrap())
            .unwrap_or_default();
        let mut url = format!("/api/resolve-hops?hops={}", hops.join(","));
        if let Some(f) = from {
            url.push_str(&format!("&from={f}"));
        }
        if let Some(o) = observer {
            url.push_str(&format!("&observer={o}"));
        }
        let (s, b) = app.get(&url).await;
        assert_eq!(s, 200, "{url}: {b}");
        let ours = b["hops"].as_array().unwrap();
        assert_eq!(ours.len(), hops.len());
        for (i, h) in ours.iter().enumerate() {
            let conf = match h["confidence"].as_str().unwrap() {
                "unique" => "unique",
                "unknown" => "unknown",
                _ => "choice",
            };
            *tally.entry(conf).or_default() += 1;
            // A one-candidate hop's node has the hop as its key's start.
            if conf != "unknown" {
                let key = h["node"]["publicKey"].as_str().unwrap();
                assert!(key.starts_with(&hops[i].to_ascii_lowercase()), "{h}");
            } else {
                assert_eq!(h["candidates"], 0, "{h}");
            }
            if let Some(Some(t)) = theirs.get(i) {
                let same = h["node"]["publicKey"].as_str() == Some(t.to_ascii_lowercase().as_str());
                *agree.entry((conf, same)).or_default() += 1;
            }
        }
    }
    let total: i64 = tally.values().sum();
    let share = |n: i64| 100.0 * n as f64 / total as f64;
    let pair = |c: &'static str| {
        (
            agree.get(&(c, true)).copied().unwrap_or(0),
            agree.get(&(c, false)).copied().unwrap_or(0),
        )
    };
    let (u_same, u_diff) = pair("unique");
    let (c_same, c_diff) = pair("choice");
    let (n_same, n_diff) = pair("unknown");
    println!(
        "corescope fixture: {total} hops: unique {} ({:.1}%), chosen {} ({:.1}%), unknown {} ({:.1}%); \
         against CoreScope's resolved_path: unique {u_same}/{} agree, chosen {c_same}/{} agree, \
         unknown to meshscope but named by CoreScope {}",
        tally["unique"],
        share(tally["unique"]),
        tally.get("choice").copied().unwrap_or(0),
        share(tally.get("choice").copied().unwrap_or(0)),
        tally["unknown"],
        share(tally["unknown"]),
        u_same + u_diff,
        c_same + c_diff,
        n_same + n_diff
    );
    // A hop only one node can be is that node, for both programs.
    assert_eq!(u_diff, 0, "unique hops CoreScope named otherwise");
    // Every hop CoreScope named has a candidate here (same nodes table).
    assert_eq!(
        n_same + n_diff,
        0,
        "hops CoreScope named that meshscope cannot"
    );
    // The choices: CoreScope chose these with its older geographic resolver;
    // the two rules agree on most (82% when measured), never by accident.
    assert!(c_same + c_diff > 100, "chosen hops CoreScope also named");
    assert!(
        c_same * 100 >= (c_same + c_diff) * 70,
        "chosen hops agreeing with CoreScope: {c_same} of {}",
        c_same + c_diff
    );

    // The packet page carries the same resolution per sighting.
    let hash: String = app
        .sql()
        .query_row(
            "SELECT t.hash FROM transmissions t JOIN observations o ON o.transmission_id = t.id
             WHERE o.path_json LIKE '[\"__\",%' ORDER BY t.id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (s, page) = app
        .get(&format!("/api/packets/{}", hash.to_ascii_lowercase()))
        .await;
    assert_eq!(s, 200, "{page}");
    let o = &page["observations"][0];
    assert_eq!(
        o["resolvedPath"].as_array().unwrap().len(),
        o["path"].as_array().unwrap().len(),
        "{o}"
    );
}

/// Reads an SSE response until `want` appears in it (or the deadline).
async fn read_until(resp: &mut reqwest::Response, want: &str, within: Duration) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while !seen.contains(want) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => seen.push_str(&String::from_utf8_lossy(&c)),
            Ok(Ok(None)) => panic!("stream ended before {want:?}: {seen}"),
            Ok(Err(e)) => panic!("stream failed before {want:?}: {e}"),
            Err(_) => panic!("no {want:?} within {within:?}: {seen}"),
        }
    }
    seen
}

/// `/api/live` sends each stored sighting with names, honours its filters,
/// and a client that never reads is told what it missed instead of
/// holding ingest or memory.
#[tokio::test]
async fn the_live_feed_streams_filters_and_drops_for_slow_clients() {
    let app = spawn_app().await;
    let (s, b) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "ab01", "iata": "SJC", "raw": repeater(0x7c, 1, (37.3, -121.9), "Hilltop")}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    until_known(&app, "7C").await;

    let open = |q: &str| app.client.get(app.url(&format!("/api/live{q}"))).send();
    let mut all = open("").await.unwrap();
    assert_eq!(all.status(), 200);
    assert!(all.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut oak = open("?iata=oak").await.unwrap();
    let mut adverts = open("?type=ADVERT").await.unwrap();

    let sjc_text = flood(5, &[0x7c], b"\x42sjc text");
    let oak_text = flood(5, &[0x7c], b"\x42oak text");
    let started = Instant::now();
    for (raw, iata) in [(&sjc_text, "SJC"), (&oak_text, "OAK")] {
        let (s, b) = app
            .post_json(
                "/api/ingest",
                &json!({"observer": "ab02", "iata": iata, "raw": raw, "snr": 7.5}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let got = read_until(&mut all, &hash_of(&oak_text), Duration::from_secs(5)).await;
    println!(
        "live: both sightings on the stream {:?} after the first post",
        started.elapsed()
    );
    let first = got
        .lines()
        .find(|l| l.starts_with("data:") && l.contains(&hash_of(&sjc_text)))
        .unwrap_or_else(|| panic!("the SJC sighting: {got}"));
    let p: Value = serde_json::from_str(first.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(p["kind"], "GRP_TXT");
    assert_eq!(p["iata"], "SJC");
    assert_eq!(p["observerId"], "ab02");
    assert_eq!(p["snr"], 7.5);
    assert_eq!(p["hops"], 1);
    assert_eq!(p["newPacket"], true);
    assert_eq!(p["path"][0]["node"]["name"], "Hilltop", "{p}");

    let got = read_until(&mut oak, &hash_of(&oak_text), Duration::from_secs(5)).await;
    assert!(
        !got.contains(&hash_of(&sjc_text)),
        "the OAK stream got SJC's sighting: {got}"
    );
    // Only adverts: the next advert arrives, the texts before it did not.
    let (s, _) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "ab02", "iata": "OAK", "raw": repeater(0x7d, 1, (37.8, -122.2), "Oakland")}),
        )
        .await;
    assert_eq!(s, 200);
    let got = read_until(&mut adverts, "Oakland", Duration::from_secs(5)).await;
    assert!(!got.contains(&hash_of(&sjc_text)), "{got}");

    for (q, param) in [("?iata=S!C", "iata"), ("?type=NOPE", "type")] {
        let (s, b) = app.get(&format!("/api/live{q}")).await;
        assert_eq!(s, 400, "{q}: {b}");
        assert!(b["error"].as_str().unwrap().starts_with(param), "{b}");
    }

    // A client that reads nothing, with a small receive window.
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /api/live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Far more than the ring holds, as fast as ingest takes them.
    let sent = meshscope::mesh::LIVE_BUFFER * 6;
    let posting = Instant::now();
    for batch in 0..sent / 1000 + 1 {
        let items: Vec<Value> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                json!({"observer": "ab03", "iata": "SJC",
                       "raw": flood(5, &[0x7c, 0x11], format!("\x42 burst {n} {}", "x".repeat(60)).as_bytes())})
            })
            .collect();
        let (s, b) = app.post_json("/api/ingest", &json!(items)).await;
        assert_eq!(s, 200, "{b}");
    }
    println!(
        "live: {} sightings stored in {:?} with a stalled client",
        sent,
        posting.elapsed()
    );
    // Now read it: somewhere in the stream it was told how many it missed.
    let mut buf = vec![0u8; 64 * 1024];
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text.contains("event: missed") {
        assert!(
            Instant::now() < deadline,
            "no `missed` event reached the slow client"
        );
        let n = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
            .await
            .expect("the stream keeps sending")
            .unwrap();
        assert!(n > 0, "the stream closed");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.len() > 8_000_000 {
            panic!("8 MB read and no `missed` event");
        }
    }
    let missed = text
        .split("event: missed")
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| l.starts_with("data:")))
        .unwrap();
    let m: Value = serde_json::from_str(missed.trim_start_matches("data:").trim()).unwrap();
    assert!(m["count"].as_u64().unwrap() > 0, "{m}");
    println!("live: the stalled client missed {} sightings", m["count"]);
    // The clients that kept reading are still served.
    let last = flood(5, &[], b"\x42 after the burst");
    let (s, _) = app
        .post_json(
            "/api/ingest",
            &json!({"observer": "ab02", "iata": "OAK", "raw": last}),
        )
        .await;
    assert_eq!(s, 200);
    read_until(&mut oak, &hash_of(&last), Duration::from_secs(10)).await;
}

/// Waits until every migration of a fresh file is done, so ingest keeps
/// the nodes and regions itself.
async fn settled(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, b) = app.get("/api/nodes?iata=SJC").await;
        if b["building"] == false {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the migrations of a fresh file never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `iata` narrows packets, observers, nodes, stats (and the live feed,
/// above) to regions; counts stay consistent with the unfiltered ones; a
/// malformed region is a 400 naming it.
#[tokio::test]
async fn regions_narrow_every_endpoint_consistently() {
    let app = spawn_app().await;
    settled(&app).await;
    let sjc = repeater(0x61, 1, (37.3, -121.9), "SJ hill");
    let oak = repeater(0x62, 1, (37.8, -122.2), "Oak hill");
    let both = repeater(0x63, 1, (37.5, -122.0), "Bay bridge");
    let mut items = vec![
        json!({"observer": "aa01", "iata": "SJC", "raw": sjc}),
        json!({"observer": "aa01", "iata": "SJC", "raw": both}),
        json!({"observer": "bb01", "iata": "OAK", "raw": oak}),
        json!({"observer": "bb01", "iata": "OAK", "raw": both}),
        json!({"observer": "cc01", "raw": flood(5, &[], b"\x01 no region")}),
    ];
    for i in 0..30 {
        let iata = if i % 3 == 0 { "OAK" } else { "SJC" };
        let obs = if iata == "OAK" { "bb02" } else { "aa02" };
        items.push(json!({"observer": obs, "iata": iata, "raw": flood(5, &[0x61], format!("\x01 text {i}").as_bytes())}));
    }
    let (s, b) = app.post_json("/api/ingest", &json!(items)).await;
    assert_eq!(s, 200, "{b}");

    let total = |b: &Value| b["total"].as_i64().unwrap();
    let (_, all) = app.get("/api/packets?limit=500").await;
    let (_, s_page) = app.get("/api/packets?iata=SJC&limit=500").await;
    let (_, o_page) = app.get("/api/packets?iata=oak&limit=500").await;
    let (_, so_page) = app.get("/api/packets?iata=SJC,OAK&limit=500").await;
    // 2 SJC adverts + 20 texts; 2 OAK adverts + 10 texts; one advert both.
    assert_eq!(total(&s_page), 22, "{s_page}");
    assert_eq!(total(&o_page), 12);
    assert_eq!(total(&so_page), 22 + 12 - 1);
    assert_eq!(
        total(&all),
        22 + 12 - 1 + 1,
        "plus the sighting without a region"
    );
    assert_eq!(s_page["packets"].as_array().unwrap().len(), 22);
    let (_, page) = app.get("/api/packets?iata=SJC&type=ADVERT").await;
    assert_eq!(total(&page), 2);
    let (_, page) = app.get("/api/packets?iata=SJC&observer=bb01").await;
    assert_eq!(total(&page), 0, "an observer outside the region");
    let (_, page) = app.get("/api/packets?iata=LAX").await;
    assert_eq!(total(&page), 0);

    let ids = |b: &Value| -> Vec<String> {
        let mut v: Vec<String> = b
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let (s, obs) = app.get("/api/observers?iata=SJC").await;
    assert_eq!(s, 200, "{obs}");
    assert_eq!(ids(&obs), ["aa01", "aa02"]);
    let (_, obs) = app.get("/api/observers?iata=SJC,OAK").await;
    assert_eq!(ids(&obs), ["aa01", "aa02", "bb01", "bb02"]);
    let (_, obs) = app.get("/api/observers").await;
    assert_eq!(obs.as_array().unwrap().len(), 5);

    let names = |b: &Value| -> Vec<String> {
        let mut v: Vec<String> = b["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap_or("?").to_string())
            .collect();
        v.sort();
        v
    };
    let (_, nodes) = app.get("/api/nodes?iata=SJC").await;
    assert_eq!(names(&nodes), ["Bay bridge", "SJ hill"], "{nodes}");
    assert_eq!(nodes["building"], false);
    let (_, nodes) = app.get("/api/nodes?iata=OAK").await;
    assert_eq!(names(&nodes), ["Bay bridge", "Oak hill"]);
    let (_, nodes) = app.get("/api/nodes?located=true").await;
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 3);

    let (_, st) = app.get("/api/stats").await;
    let (_, st_s) = app.get("/api/stats?iata=SJC").await;
    let (_, st_o) = app.get("/api/stats?iata=OAK").await;
    assert_eq!(st_s["iata"], json!(["SJC"]));
    assert_eq!(st_s["totalObservers"], 2);
    assert_eq!(st_s["packetsLastHour"], 22);
    assert_eq!(st_o["packetsLast24h"], 12);
    assert!(
        st_s["totalTransmissions"].is_null(),
        "not kept per region: {st_s}"
    );
    assert_eq!(
        st_s["totalObservers"].as_i64().unwrap() + st_o["totalObservers"].as_i64().unwrap() + 1,
        st["totalObservers"].as_i64().unwrap()
    );
    assert!(st_s["packetsLastHour"].as_i64() <= st["packetsLastHour"].as_i64());

    for path in ["/api/packets", "/api/nodes", "/api/observers", "/api/stats"] {
        for bad in ["S", "TOOLONGCODE", "S%20C", "SJC,,%21"] {
            let (s, b) = app.get(&format!("{path}?iata={bad}")).await;
            assert_eq!(s, 400, "{path}?iata={bad}: {b}");
            let e = b["error"].as_str().unwrap();
            assert!(e.starts_with("iata:"), "{e}");
        }
    }
}

/// A file whose nodes are not built yet says so (`building`), and stops
/// saying it once `nodes_backfill_v1` has run.
#[tokio::test]
async fn the_node_list_says_when_it_is_still_being_built() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture_copy(dir.path());
    let src2 = src.clone();
    let app = spawn_with(Options {
        prepare: Some(Box::new(move |db| {
            std::fs::copy(&src, db).unwrap();
        })),
        hold_migrations: true,
        ..Options::default()
    })
    .await;
    let (s, b) = app.get("/api/nodes").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["building"], true, "{b}");
    drop(app);
    let app = spawn_with(Options {
        prepare: Some(Box::new(move |db| {
            std::fs::copy(&src2, db).unwrap();
        })),
        ..Options::default()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, b) = app.get("/api/nodes?iata=SJC").await;
        if b["building"] == false {
            assert!(
                !b["nodes"].as_array().unwrap().is_empty(),
                "SJC heard adverts: {b}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node list was never built: {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
