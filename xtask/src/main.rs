//! Chores for meshscope, run as `cargo xtask <command>`:
//!
//! - `setup`: install what a fresh machine lacks, skipping whatever is
//!   already present at the right version: the dashboard's build tools
//!   (wasm32 target, trunk, wasm-bindgen-cli, npm packages incl. the pinned
//!   wasm-opt) and the test suites' Debian packages (mosquitto, chromium,
//!   sqlite3, wrk).
//! - `dist`: build the dashboard into `dist/` with Trunk (release, offline).
//! - `run`: the build tools and dist when missing, while the server builds
//!   and a pre-backfill demo database is seeded when missing beside them;
//!   then serve on 127.0.0.1:8080 with a slow backfill to watch (extra
//!   arguments go to `meshscope serve`).
//! - `test`: setup, then every check (fmt, clippy, `shared` on wasm32, the
//!   dashboard's downloaded size against its budget) and test suite; ends with
//!   one `N passed, N failed` line summing all suites.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

const TRUNK_VERSION: &str = "0.21.14";
const WASM_BINDGEN_VERSION: &str = "0.2.129";
const DEMO_DB: &str = "data/meshscope.db";
/// The dashboard's size budget: its wasm as a browser downloads it (brotli,
/// which the server sends to every browser that takes it) may not exceed
/// this.
/// Over it, `cargo xtask test` fails: find the bytes (e.g. `twiggy top`)
/// rather than raising the budget.
const WASM_BROTLI_BUDGET: u64 = 150 * 1024;
/// Where Debian's `mosquitto` package puts the broker; the MQTT integration
/// tests start their own instance of it on a free port.
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = root()?;
    std::env::set_current_dir(&root)?;
    match cmd.as_str() {
        "setup" => setup(),
        "dist" => {
            setup_build()?;
            dist()
        }
        "run" => run(&rest),
        "test" => test(),
        _ => {
            eprintln!(
                "usage: cargo xtask <setup|dist|run|test>\n\
                 \n  setup  install missing tools (trunk, wasm-bindgen-cli, wasm32 target, npm packages)\
                 \n  dist   build the dashboard into dist/ (precompressed; fails over the wasm budget)\
                 \n  run    build what is needed, seed a demo database if none exists, serve on 127.0.0.1:8080\
                 \n  test   set up and run every check and test"
            );
            bail!("unknown command {cmd:?}")
        }
    }
}

fn root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask lives in a subfolder of the workspace")?
        .to_path_buf())
}

fn status(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed with {st}");
    }
    Ok(())
}

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// PATH with the npm-installed wasm-opt first, so Trunk never sees another one.
fn tool_path() -> Result<std::ffi::OsString> {
    let bin = root()?.join("end2end/node_modules/.bin");
    let mut paths = vec![bin];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    Ok(std::env::join_paths(paths)?)
}

fn setup() -> Result<()> {
    setup_build()?;
    setup_test()
}

/// `cargo install` of a pinned tool, unoptimised and without debug info:
/// the tools only orchestrate (Trunk spawns cargo and wasm-opt), so an
/// optimised build (trunk's release profile is fat LTO on one codegen
/// unit) costs minutes on a fresh machine and saves nothing measurable.
fn install_tool(name: &str, version: &str) -> Result<()> {
    status(
        cargo()
            .args(["install", "--locked", "--debug", name, "--version", version])
            .env("CARGO_PROFILE_DEV_DEBUG", "0"),
    )
}

/// What building the dashboard needs: the wasm32 target, trunk,
/// wasm-bindgen-cli, the npm packages (the pinned wasm-opt), every crate
/// fetched (Trunk runs cargo offline).
fn setup_build() -> Result<()> {
    let targets = output_of("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !targets
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        status(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let trunk = output_of("trunk", &["--version"]).unwrap_or_default();
    if !trunk.contains(TRUNK_VERSION) {
        install_tool("trunk", TRUNK_VERSION)?;
    }
    let wb = output_of("wasm-bindgen", &["--version"]).unwrap_or_default();
    if !wb.contains(WASM_BINDGEN_VERSION) {
        install_tool("wasm-bindgen-cli", WASM_BINDGEN_VERSION)?;
    }
    if !Path::new("end2end/node_modules/.bin/wasm-opt").exists()
        || !Path::new("end2end/node_modules/@playwright/test").exists()
        || !MAP_JS.iter().all(|f| Path::new(f).exists())
    {
        let mut npm = Command::new("npm");
        npm.current_dir("end2end")
            .args(["install", "--no-audit", "--no-fund"]);
        if Path::new("end2end/package-lock.json").exists() {
            npm.args(["--prefer-offline"]);
        }
        status(&mut npm)?;
    }
    // Trunk runs cargo offline; make sure every crate is in the local registry.
    status(cargo().args(["fetch"]))
}

/// What the test suites need besides the build tools.
fn setup_test() -> Result<()> {
    // Debian packages the suites need: the MQTT broker, for the browser
    // tests Chromium and the sqlite3 CLI (which plants failing triggers),
    // and wrk, the herd's load generator outside the server process.
    let mut missing = Vec::new();
    if !Path::new(MOSQUITTO).exists() && !on_path("mosquitto") {
        missing.push("mosquitto");
    }
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("chromium");
    }
    if !Path::new("/usr/bin/sqlite3").exists() {
        missing.push("sqlite3");
    }
    if !on_path("wrk") {
        missing.push("wrk");
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Installs Debian packages with apt (the tests never use a system service:
/// they start and stop their own processes).
fn apt_install(packages: &[&str]) -> Result<()> {
    #[cfg(unix)]
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    #[cfg(not(unix))]
    let root = false;
    if output_of("apt-get", &["--version"]).is_none() || !root {
        bail!(
            "the tests need these Debian packages: {}; install them \
             (`sudo apt-get install {}`) and run again",
            packages.join(", "),
            packages.join(" ")
        );
    }
    status(
        Command::new("sh")
            .args([
                "-c",
                &format!(
                    "apt-get update && apt-get install -y {}",
                    packages.join(" ")
                ),
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn dist() -> Result<()> {
    status(
        Command::new("trunk")
            .args(["build", "--release"])
            .env("PATH", tool_path()?)
            .env("TRUNK_SKIP_VERSION_CHECK", "true"),
    )?;
    bundle_map()?;
    precompress()?;
    check_wasm_budget()?;
    check_map_budget()
}

/// The Map page's script: Leaflet and Leaflet.markercluster (npm, pinned in
/// `end2end/package.json`), then meshscope's drawing code.
const MAP_JS: [&str; 3] = [
    "end2end/node_modules/leaflet/dist/leaflet.js",
    "end2end/node_modules/leaflet.markercluster/dist/leaflet.markercluster.js",
    "app/map/glue.js",
];
const MAP_CSS: [&str; 4] = [
    "end2end/node_modules/leaflet/dist/leaflet.css",
    "end2end/node_modules/leaflet.markercluster/dist/MarkerCluster.css",
    "end2end/node_modules/leaflet.markercluster/dist/MarkerCluster.Default.css",
    "app/map/glue.css",
];
/// Where the Map page loads them from (not `dist/map/`: `/map` is the page).
const MAP_DIR: &str = "dist/leaflet";
/// The map's script as a browser downloads it (brotli), measured on its own:
/// only the Map page loads it.
const MAP_BROTLI_BUDGET: u64 = 60 * 1024;

/// Writes the Map page's script and styles, each one file, into [`MAP_DIR`].
fn bundle_map() -> Result<()> {
    std::fs::create_dir_all(MAP_DIR)?;
    for (files, out) in [(&MAP_JS[..], "map.js"), (&MAP_CSS[..], "map.css")] {
        let mut all = Vec::new();
        for f in files {
            let bytes = std::fs::read(f).with_context(|| {
                format!("{f} is missing; run `cargo xtask setup` (npm installs Leaflet)")
            })?;
            all.extend_from_slice(&bytes);
            all.push(b'\n');
        }
        std::fs::write(Path::new(MAP_DIR).join(out), all)?;
    }
    Ok(())
}

/// Fails when the map's script, as a browser downloads it, is over its budget.
fn check_map_budget() -> Result<()> {
    let path = Path::new(MAP_DIR).join("map.js");
    let bytes = std::fs::read(&path).with_context(|| format!("{} is missing", path.display()))?;
    let br = brotlied(&bytes)?.len() as u64;
    eprintln!(
        "xtask: {} (Map page only): {} bytes, {br} bytes brotli (budget {MAP_BROTLI_BUDGET}), {} bytes gzip -9",
        path.display(),
        bytes.len(),
        gzipped_len(&bytes)?
    );
    if br > MAP_BROTLI_BUDGET {
        bail!(
            "{} is {br} bytes as browsers download it (brotli), over the {MAP_BROTLI_BUDGET}-byte budget",
            path.display()
        );
    }
    Ok(())
}

/// The dashboard's files, compressed once at build time (brotli quality 11,
/// gzip -9) beside the originals, so the server sends `.br` / `.gz` to
/// browsers that take them instead of compressing on every request.
fn precompress() -> Result<()> {
    let mut paths = Vec::new();
    for dir in ["dist", MAP_DIR] {
        for entry in std::fs::read_dir(dir).with_context(|| format!("{dir}/ is missing"))? {
            paths.push(entry?.path());
        }
    }
    for path in paths {
        let compressible = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "wasm" | "js" | "css" | "html"));
        if !compressible {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let name = path.display().to_string();
        std::fs::write(format!("{name}.gz"), gzipped(&bytes)?)?;
        std::fs::write(format!("{name}.br"), brotlied(&bytes)?)?;
    }
    Ok(())
}

/// `bytes`, gzip -9.
fn gzipped(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// `bytes`, brotli at quality 11 with a 4 MiB window.
fn brotlied(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

fn run(serve_args: &[String]) -> Result<()> {
    let bin = target_dir()?.join("debug/meshscope");
    // The server and its demo file on one thread, the dashboard's tools and
    // build on this one: on a fresh machine the tools compile in their own
    // target folders, so the two overlap (Trunk's cargo then waits for the
    // server build's lock on the workspace's target folder).
    let server = {
        let bin = bin.clone();
        std::thread::spawn(move || -> Result<()> {
            status(cargo().args(["build", "-p", "meshscope"]))?;
            if !Path::new(DEMO_DB).exists() {
                // A pre-backfill file at operator scale, so the first start
                // shows the product's heart: the online backfill, live in the
                // warm-up banner.
                status(Command::new(&bin).args([
                    "seed",
                    "--db",
                    DEMO_DB,
                    "--transmissions",
                    "71000",
                    "--legacy",
                ]))?;
            }
            Ok(())
        })
    };
    let dashboard = if Path::new("dist/index.html").exists() {
        Ok(())
    } else {
        setup_build().and_then(|()| dist())
    };
    let server = server
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the server build thread panicked")));
    dashboard?;
    server?;
    let mut serve = Command::new(&bin);
    // A 1% duty stretches the demo's backfill to about half a minute.
    serve.args([
        "serve",
        "--db",
        DEMO_DB,
        "--dist",
        "dist",
        "--migration-duty",
        "0.01",
    ]);
    serve.args(serve_args);
    status(&mut serve)
}

/// Counts from a runner's summary lines.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    passed: u64,
    failed: u64,
    skipped: u64,
}

/// Adds up cargo's `test result: ok. N passed; M failed; K ignored` lines.
fn tally_cargo(output: &str) -> Tally {
    let mut t = Tally::default();
    for line in output.lines().filter(|l| l.starts_with("test result:")) {
        let num = |word: &str| -> u64 {
            line.split(';')
                .find(|part| part.trim_end().ends_with(word))
                .and_then(|part| part.split_whitespace().rev().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        t.passed += num("passed");
        t.failed += num("failed");
        t.skipped += num("ignored");
    }
    t
}

/// Runs `cmd`, echoing its output, and returns the output for tallying.
fn run_captured(cmd: &mut Command) -> Result<(bool, String)> {
    eprintln!("xtask: running {cmd:?}");
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    print!("{stdout}");
    eprint!("{stderr}");
    Ok((out.status.success(), format!("{stdout}\n{stderr}")))
}

fn test() -> Result<()> {
    setup()?;
    status(cargo().args(["fmt", "--all", "--", "--check"]))?;
    status(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    // shared must stay pure: it builds for the browser target.
    status(cargo().args([
        "build",
        "-p",
        "shared",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    status(cargo().args([
        "clippy",
        "-p",
        "app",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    dist()?;

    let mut total = Tally::default();
    let (ok, out) = run_captured(cargo().args(["test", "--workspace", "--exclude", "app"]))?;
    let t = tally_cargo(&out);
    total.passed += t.passed;
    total.failed += t.failed;
    total.skipped += t.skipped;
    if !ok && t.failed == 0 {
        total.failed += 1; // a build failure counts as a failure
    }

    // Browser tests: Debian's Chromium against a real `meshscope serve`.
    status(cargo().args(["build", "-p", "meshscope"]))?;
    let e2e = end2end()?;
    total.passed += e2e.passed;
    total.failed += e2e.failed;
    total.skipped += e2e.skipped;
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    if total.failed > 0 {
        bail!("{} test(s) failed", total.failed);
    }
    Ok(())
}

/// The gzip -9 size of `bytes`.
fn gzipped_len(bytes: &[u8]) -> Result<u64> {
    Ok(gzipped(bytes)?.len() as u64)
}

/// Fails when the built dashboard's wasm, as a browser downloads it
/// (brotli), is over its budget; prints the gzip size beside it.
fn check_wasm_budget() -> Result<()> {
    let mut found = false;
    for entry in std::fs::read_dir("dist").context("dist/ is missing; run `cargo xtask dist`")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            found = true;
            let bytes = std::fs::read(&path)?;
            let br = brotlied(&bytes)?.len() as u64;
            eprintln!(
                "xtask: {}: {} bytes, {} bytes brotli (budget {WASM_BROTLI_BUDGET}), {} bytes gzip -9",
                path.display(),
                bytes.len(),
                br,
                gzipped_len(&bytes)?
            );
            if br > WASM_BROTLI_BUDGET {
                bail!(
                    "{} is {br} bytes as browsers download it (brotli), over the \
                     {WASM_BROTLI_BUDGET}-byte budget; find the bytes (twiggy top) rather than \
                     raising the budget",
                    path.display()
                );
            }
        }
    }
    if !found {
        bail!("no .wasm file in dist/; the dashboard build did not produce one");
    }
    Ok(())
}

fn target_dir() -> Result<PathBuf> {
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => root()?.join("target"),
    })
}

/// Runs the Playwright suite; its counts come from the JSON reporter.
fn end2end() -> Result<Tally> {
    let report = Path::new("end2end/test-results/e2e-results.json");
    let _ = std::fs::remove_file(report);
    let bin = target_dir()?.join("debug/meshscope");
    eprintln!("xtask: running the Playwright suite (end2end/)");
    let ok = Command::new("node_modules/.bin/playwright")
        .arg("test")
        .current_dir("end2end")
        .env("MESHSCOPE_BIN", &bin)
        .status()
        .context("cannot start Playwright (run `cargo xtask setup`)")?
        .success();
    let text = std::fs::read_to_string(report).unwrap_or_default();
    let mut t = tally_playwright(&text);
    if !ok && t.failed == 0 {
        t.failed += 1; // the suite could not run at all
    }
    Ok(t)
}

/// Counts from Playwright's JSON reporter (`stats.expected/unexpected/flaky/skipped`).
fn tally_playwright(json: &str) -> Tally {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let n = |k: &str| v["stats"][k].as_u64().unwrap_or(0);
    Tally {
        passed: n("expected") + n("flaky"),
        failed: n("unexpected"),
        skipped: n("skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_playwright_json() {
        let t =
            tally_playwright(r#"{"stats":{"expected":7,"unexpected":1,"flaky":1,"skipped":2}}"#);
        assert_eq!((t.passed, t.failed, t.skipped), (8, 1, 2));
        let none = tally_playwright("not json");
        assert_eq!((none.passed, none.failed), (0, 0));
    }

    #[test]
    fn precompressed_files_decompress_to_the_original() {
        use std::io::Read;
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzipped(&text).unwrap()[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, text);
        let br = brotlied(&text).unwrap();
        assert!(br.len() < text.len() / 4, "{}", br.len());
        let mut back = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn gzip_size_is_measured_not_guessed() {
        let zeros = vec![0u8; 100_000];
        let small = gzipped_len(&zeros).unwrap();
        assert!(small < 1_000, "{small}");
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(gzipped_len(&noise).unwrap() > small * 10);
    }

    #[test]
    fn tallies_cargo_summaries() {
        let out = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n\
                   noise\n\
                   test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        let t = tally_cargo(out);
        assert_eq!((t.passed, t.failed, t.skipped), (15, 2, 1));
    }
}
