//! The benchmark's smoke mode (`meshscope bench --smoke`): every field of
//! the JSON contract is present and the correctness check passed for every
//! strategy. No timing assertions.

use serde_json::Value;

#[test]
fn smoke_bench_writes_the_full_json_and_every_strategy_is_correct() {
    let _heavy = crate::helpers::HEAVY.blocking_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshscope"))
        .args(["bench", "--smoke", "--herd", "--scale", "1", "--out"])
        .arg(dir.path().join("results"))
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run meshscope bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("meshscope") && stdout.contains("durability"),
        "{stdout}"
    );
    let path = std::path::PathBuf::from(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("results: "))
            .unwrap_or_else(|| panic!("no results line in {stdout}")),
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for k in [
        "scale",
        "transmissions",
        "observations",
        "sqliteVersion",
        "strategies",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["scale"], 1);
    assert!(v["observations"].as_i64().unwrap() > v["transmissions"].as_i64().unwrap());
    let names: Vec<&str> = v["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "idle",
            "naive",
            "fixed-sleep",
            "meshscope",
            "meshscope-duty-0.1",
            "retention-delete",
            "retention",
            "create-index",
            "index-build"
        ]
    );
    let observations = v["observations"].as_i64().unwrap();
    let eligible = v["transmissions"].as_i64().unwrap();
    for s in v["strategies"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["correct"], true, "{name}: correctness check");
        for k in [
            "backfillWallSec",
            "rowsUpdated",
            "walPeakBytes",
            "ingest",
            "readers",
        ] {
            assert!(s.get(k).is_some(), "{name}: missing {k}");
        }
        for k in ["n", "p50Ms", "p95Ms", "p99Ms", "maxMs"] {
            assert!(s["ingest"][k].is_number(), "{name}: ingest.{k}");
        }
        for ep in ["/api/packets", "/api/stats", "/api/healthz"] {
            for k in ["n", "p50Ms", "p95Ms", "p99Ms", "maxMs"] {
                assert!(s["readers"][ep][k].is_number(), "{name}: readers.{ep}.{k}");
            }
        }
        if name.starts_with("retention") {
            // 10% of the sightings are older than the cutoff.
            let rows = s["rowsUpdated"].as_i64().unwrap();
            assert!(
                rows >= observations * 9 / 100 && rows <= observations * 11 / 100,
                "{name}: {rows} of {observations}"
            );
            if name == "retention" {
                assert!(s["wallRatioToDelete"].as_f64().unwrap() > 0.0, "{name}");
            }
        } else if name.contains("index") {
            // Every sighting, the ones ingested meanwhile too, is in the
            // index (its check is `correct`).
            let rows = s["rowsUpdated"].as_i64().unwrap();
            assert!(
                rows >= observations * 99 / 100,
                "{name}: {rows} of {observations}"
            );
            if name == "index-build" {
                assert!(s["wallRatioToCreate"].as_f64().unwrap() > 0.0, "{name}");
                assert!(s["chunkHoldMs"]["n"].as_u64().unwrap() > 0, "{name}");
            }
        } else if name == "idle" {
            assert!(s["backfillWallSec"].is_null());
            assert_eq!(s["rowsUpdated"], 0);
        } else {
            assert!(s["backfillWallSec"].as_f64().unwrap() > 0.0);
            // About 1% of the file are orphans, which stay 0.
            let rows = s["rowsUpdated"].as_i64().unwrap();
            assert!(
                rows > eligible * 95 / 100 && rows < eligible,
                "{name}: {rows} of {eligible}"
            );
        }
    }
    let herd = &v["herd"];
    assert_eq!(herd["clients"], 500);
    assert!(herd["requests"].as_u64().unwrap() > 0);
    assert!(herd["statusDbReads"].as_u64().unwrap() >= 1);
    // The herd comes from outside the server process when wrk is installed
    // (`cargo xtask setup` installs it).
    let wrk = std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok();
    let generator = herd["generator"].as_str().unwrap();
    assert_eq!(generator.starts_with("wrk"), wrk, "{generator}");
    for k in ["targetP99Ms", "met", "backfillOutlastedHerd"] {
        assert!(herd.get(k).is_some(), "herd: missing {k}");
    }
    // The read path: every case measured, none failed, no table walked by
    // stats once the counts were ready.
    let reads = &v["reads"];
    assert!(reads["backfillsWallSec"].as_f64().unwrap() > 0.0, "{reads}");
    let cases: Vec<&str> = reads["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cases,
        [
            "packets first page",
            "packets cursor pages",
            "packets by type",
            "packets by observer",
            "packets by hash prefix",
            "stats",
            "packets by region",
            "nodes by region",
            "observers by region",
            "stats by region"
        ]
    );
    for c in reads["cases"].as_array().unwrap() {
        assert_eq!(c["errors"], 0, "{c}");
        assert_eq!(c["latency"]["n"], reads["requestsPerCase"], "{c}");
        assert!(c["targetP99Ms"].as_f64().unwrap() > 0.0 && c["met"].is_boolean());
    }
    assert_eq!(reads["statsFullScans"], 0, "{reads}");
    // Both durability modes measured side by side, with no errors, and
    // what keeping the counts costs.
    let modes: Vec<(&str, bool)> = v["durability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["mode"].as_str().unwrap(),
                d["countsMaintained"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(modes, [("normal", true), ("full", true), ("full", false)]);
    for d in v["durability"].as_array().unwrap() {
        assert!(d["burstSightingsPerSec"].as_f64().unwrap() > 0.0, "{d}");
        assert!(
            d["burst"]["p99Ms"].is_number() && d["trickle"]["n"].as_u64().unwrap() > 0,
            "{d}"
        );
        assert_eq!(d["errors"], 0, "{d}");
    }
    assert_eq!(v["strategiesDurability"], "full", "serve's default");
    // The live feed: reading clients got the sightings, the stalled ones
    // held nothing back (ingest ran without errors beside them).
    let live = &v["live"];
    assert_eq!(
        (live["readers"].as_u64(), live["stalled"].as_u64()),
        (Some(100), Some(10))
    );
    assert_eq!(live["errors"], 0, "{live}");
    assert!(live["ingestAlone"]["n"].as_u64().unwrap() > 0, "{live}");
    assert!(
        live["ingestWithClients"]["n"].as_u64().unwrap() > 0,
        "{live}"
    );
    let (got, sent) = (
        live["eventsReceived"].as_u64().unwrap(),
        live["eventsSent"].as_u64().unwrap(),
    );
    assert!(
        sent > 0 && got * 10 >= sent * 9,
        "live events {got} of {sent}"
    );
    for k in ["p99DeltaMs", "rssBeforeMib", "rssAfterMib"] {
        assert!(live[k].is_number(), "live: missing {k}");
    }
    let svg = path
        .with_file_name(path.file_stem().unwrap().to_string_lossy().to_string() + "-ingest.svg");
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("meshscope"));
}
