//! The benchmark's smoke mode: every field of the JSON contract is present
//! and the correctness check passed for every strategy. No timing assertions.

use meshscope::bench::{self, BenchOptions};
use serde_json::Value;

#[test]
fn smoke_bench_writes_the_full_json_and_every_strategy_is_correct() {
    let _heavy = crate::helpers::HEAVY.blocking_lock();
    let dir = tempfile::tempdir().unwrap();
    let (report, path) = bench::run(&BenchOptions {
        scale: 1,
        smoke: true,
        herd: true,
        out: dir.path().join("results"),
        cache: dir.path().join("cache"),
    })
    .unwrap();
    assert!(bench::render(&report).contains("meshscope"));
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
    assert_eq!(names, ["idle", "naive", "fixed-sleep", "meshscope"]);
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
        if name == "idle" {
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
    let svg = path
        .with_file_name(path.file_stem().unwrap().to_string_lossy().to_string() + "-ingest.svg");
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("meshscope"));
}
