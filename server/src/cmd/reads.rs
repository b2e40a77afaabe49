//! The read path of `meshscope bench`: request latency of the dashboard's
//! reads on an idle server whose backfills (the maintained counts included)
//! are done, against the targets of the read path; and the herd's load
//! generator, outside the server process (Debian's `wrk`) when installed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use meshscope::latency::Summary;

/// The reads measured, as the dashboard sends them, with their target p99
/// (ms).
const CASES: [(&str, f64); 10] = [
    ("packets first page", 2.0),
    ("packets cursor pages", 2.0),
    ("packets by type", 5.0),
    ("packets by observer", 5.0),
    ("packets by hash prefix", 5.0),
    ("stats", 1.0),
    ("packets by region", 5.0),
    ("nodes by region", 5.0),
    ("observers by region", 5.0),
    ("stats by region", 5.0),
];
/// healthz p99 under the herd, and status reads per TTL window.
pub(crate) const HERD_TARGET_P99_MS: f64 = 10.0;
pub(crate) const HERD_TARGET_READS_PER_TTL: f64 = 1.0;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReadCase {
    pub(crate) name: String,
    pub(crate) latency: Summary,
    pub(crate) target_p99_ms: f64,
    pub(crate) met: bool,
    pub(crate) errors: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReadsResult {
    /// Wall time of all backfills on the fresh copy (the counts included),
    /// before the reads were measured.
    pub(crate) backfills_wall_sec: f64,
    /// Of which `counts_backfill_v1` (its own elapsed time).
    pub(crate) counts_backfill_sec: f64,
    /// Sequential requests per case, one client over loopback HTTP.
    pub(crate) requests_per_case: usize,
    pub(crate) cases: Vec<ReadCase>,
    /// `statsFullScans` of `/api/perf` grown while the cases ran (0: no
    /// table walked).
    pub(crate) stats_full_scans: u64,
}

/// Runs every case against a server at `base` whose counts are ready.
pub(crate) async fn measure(base: &str, per_case: usize) -> anyhow::Result<(Vec<ReadCase>, u64)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let t = Instant::now();
            let r = client.get(&url).send().await?;
            let ok = r.status().is_success();
            let body = r.bytes().await?;
            Ok::<_, reqwest::Error>((t.elapsed(), ok, body))
        }
    };
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap_or_default();
    let scans = |v: &serde_json::Value| v["statsFullScans"].as_u64().unwrap_or(0);

    // What the filters use: the observer with the most sightings, the
    // payload type of the newest packet, hash prefixes of two hex digits.
    let (_, _, obs) = get("/api/observers?limit=5000".into()).await?;
    let observer = json(&obs)
        .as_array()
        .and_then(|list| {
            list.iter()
                .max_by_key(|o| o["packetCount"].as_i64().unwrap_or(0))
                .and_then(|o| o["id"].as_str().map(str::to_string))
        })
        .context("the file has no observers")?;
    // The region of the busiest observer: the widest region filter.
    let region = json(&obs)
        .as_array()
        .and_then(|list| {
            list.iter()
                .max_by_key(|o| o["packetCount"].as_i64().unwrap_or(0))
                .and_then(|o| o["iata"].as_str().map(str::to_string))
        })
        .context("the busiest observer has no region")?;
    let (_, _, first) = get("/api/packets?limit=1".into()).await?;
    let kind = json(&first)["packets"][0]["payloadType"]
        .as_i64()
        .context("the file has no packets")?;
    let (_, _, perf) = get("/api/perf".into()).await?;
    let scans_before = scans(&json(&perf));

    let mut cases = Vec::new();
    let mut cursor: Option<String> = None;
    let warm_up = (per_case / 20).max(5);
    for (k, (name, target_p99_ms)) in CASES.into_iter().enumerate() {
        let mut lat = Vec::with_capacity(per_case);
        let mut errors = 0;
        // A few requests first, not counted: the page cache holds what
        // the case reads, as on a server that has been answering a while.
        for i in 0..per_case + warm_up {
            let path = match (k, &cursor) {
                (1, Some(c)) => format!("/api/packets?limit=50&cursor={c}"),
                (0 | 1, _) => "/api/packets?limit=50".to_string(),
                (2, _) => format!("/api/packets?limit=50&type={kind}"),
                (3, _) => format!("/api/packets?limit=50&observer={observer}"),
                (4, _) => format!("/api/packets?limit=50&hash={:02x}", i % 256),
                (5, _) => "/api/stats".to_string(),
                (6, _) => format!("/api/packets?limit=50&iata={region}"),
                (7, _) => format!("/api/nodes?limit=50&iata={region}"),
                (8, _) => format!("/api/observers?iata={region}"),
                _ => format!("/api/stats?iata={region}"),
            };
            let (took, ok, body) = get(path).await?;
            match (i < warm_up, ok) {
                (true, _) => {}
                (false, true) => lat.push(took),
                (false, false) => errors += 1,
            }
            if k == 1 {
                // Deeper and deeper; back to the first page at the end.
                cursor = json(&body)["nextCursor"].as_str().map(str::to_string);
            }
        }
        let latency = Summary::of(&lat);
        cases.push(ReadCase {
            name: name.to_string(),
            met: errors == 0 && latency.p99_ms <= target_p99_ms,
            target_p99_ms,
            latency,
            errors,
        });
    }
    let (_, _, perf) = get("/api/perf".into()).await?;
    Ok((cases, scans(&json(&perf)) - scans_before))
}

/// What an external load generator measured.
pub(crate) struct External {
    pub(crate) generator: String,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// Whether Debian's `wrk` is installed (`apt-get install wrk`).
pub(crate) fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wrk"))
}

/// `wrk` with `clients` connections on `url` for `seconds`, in its own
/// process (two threads: the machine's cores are shared with the server).
pub(crate) fn run_wrk(url: &str, clients: usize, seconds: f64) -> anyhow::Result<External> {
    let out = Command::new("wrk")
        .args([
            "--latency",
            "-t",
            "2",
            "-c",
            &clients.to_string(),
            "-d",
            &format!("{}s", seconds.ceil() as u64),
            "--timeout",
            "10s",
            url,
        ])
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// Reads wrk's `--latency` report.
fn parse_wrk(text: &str) -> Option<External> {
    let mut dist = BTreeMap::new();
    let mut requests = None;
    let mut errors = 0;
    let mut max_ms = None;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [p, v] if p.ends_with('%') => {
                dist.insert(p.trim_end_matches('%').to_string(), wrk_ms(v)?);
            }
            // "Latency   1.00ms  2.00ms  30.00ms  90.00%"
            ["Latency", _avg, _stdev, max, _] => max_ms = wrk_ms(max),
            [n, "requests", "in", ..] => requests = n.parse::<u64>().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                for pair in rest.chunks(2) {
                    if let [_, n] = pair {
                        errors += n.trim_end_matches(',').parse::<u64>().ok()?;
                    }
                }
            }
            _ => {}
        }
    }
    Some(External {
        generator: "wrk (external process)".to_string(),
        requests: requests?,
        errors,
        p50_ms: *dist.get("50")?,
        p99_ms: *dist.get("99")?,
        max_ms: max_ms?,
    })
}

/// "812.00us", "1.25ms", "2.01s", "1.00m" as milliseconds.
fn wrk_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// Seconds `name` has run, from its live record (0 when unknown).
pub(crate) fn elapsed_of(parts: &meshscope::serve::Parts, name: &str, now_ms: i64) -> f64 {
    parts
        .live
        .snapshot()
        .get(name)
        .map(|r| {
            meshscope::status::info_logged(r, now_ms, shared::migration::Owner::Meshscope)
                .elapsed_sec
        })
        .unwrap_or(0.0)
}

/// Waits until every migration of `parts` is done.
pub(crate) fn wait_all_done(
    parts: &meshscope::serve::Parts,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let live = parts.live.snapshot();
        if let Some(bad) = live.values().find(|r| {
            matches!(
                r.status,
                shared::migration::MigrationStatus::Failed
                    | shared::migration::MigrationStatus::Cancelled
            )
        }) {
            bail!("{} ended as {}", bad.name, bad.status.as_str());
        }
        if !live.is_empty()
            && live
                .values()
                .all(|r| r.status == shared::migration::MigrationStatus::Done)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the backfills did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes a database file and its companions.
pub(crate) fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_latency_report() {
        let text = "Running 10s test @ http://127.0.0.1:8080/api/healthz
  2 threads and 500 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  45.50ms   90.00%
    Req/Sec    80.00k     5.00k   90.00k    70.00%
  Latency Distribution
     50%    2.90ms
     75%    3.50ms
     90%    4.20ms
     99%  812.00us
  1600000 requests in 10.00s, 500.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec: 160000.00
Transfer/sec:     50.00MB
";
        let e = parse_wrk(text).unwrap();
        assert_eq!(e.requests, 1_600_000);
        assert_eq!(e.p50_ms, 2.9);
        assert_eq!(e.p99_ms, 0.812);
        assert_eq!(e.max_ms, 45.5);
        assert_eq!(e.errors, 12);
        assert!(parse_wrk("garbage").is_none());
        assert!((wrk_ms("2.01s").unwrap() - 2010.0).abs() < 1e-9);
        assert_eq!(wrk_ms("1.5x"), None);
    }
}
