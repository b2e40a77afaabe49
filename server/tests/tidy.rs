//! The tree's own rules, checked on the source text:
//! - the server library's modules use only modules of lower layers, in the
//!   order `ARCHITECTURE.md` declares (its "Layers" list), and the
//!   submodules of each folder module form no cycle;
//! - every Rust module (server, shared, app, xtask) opens with a `//!`
//!   header saying what it is;
//! - every file, folder and code name `ARCHITECTURE.md` cites in backticks
//!   exists;
//! - every setting is in `docs/configuration.md` and `meshscope.example.toml`.
//!
//! Comments and string literals are left out before looking for `crate::`
//! paths, so prose and SQL never count as an import.

#![allow(clippy::unwrap_used)] // a failed read of the tree is the test failing

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `src` with comments and the insides of string, char and raw-string
/// literals removed.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (i == 0 || !ident(b[i - 1]))
            && matches!(b.get(i + 1), Some(b'"' | b'#'))
        {
            let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let start = i + 2 + hashes;
            let end = b[start..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| start + p + close.len());
            out.push_str("\"\"");
            i = end;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A char literal ('a', '\n', '\u{..}'), not a lifetime.
            let rest = &src[i..];
            let len = if rest.starts_with("'\\") {
                rest[1..].find('\'').map(|p| p + 2)
            } else {
                rest.char_indices()
                    .nth(2)
                    .filter(|(_, c)| *c == '\'')
                    .map(|(p, _)| p + 1)
            };
            match len {
                Some(n) => i += n,
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = src[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The first path segments after each `prefix` (`crate::a::b` gives `a`,
/// `crate::{a, b::c}` gives `a` and `b`).
fn first_segments(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before_ok = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
        rest = &rest[at + prefix.len()..];
        if !before_ok {
            continue;
        }
        let word = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let end = group
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => return true,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    false
                })
                .map_or(group.len(), |(p, _)| p);
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain(std::iter::once(',')) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(word(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            out.insert(word(rest));
        }
    }
    out.retain(|w| !w.is_empty() && w != "self");
    out
}

/// The layers `ARCHITECTURE.md` declares, lowest first: the numbered
/// items of its "Layers" section, each naming its modules in backticks.
fn declared_layers(doc: &str) -> Vec<Vec<String>> {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("ARCHITECTURE.md has a \"## Layers\" section");
    section
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        })
        .map(|l| {
            l.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Top-level module of the library → the library's modules it uses.
fn library_edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("server/src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in rust_files(&src) {
        let rel = p.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The binary (`main.rs`, `cmd/`) uses the library as `meshscope::`.
        if top == "lib" || top == "main" || top == "cmd" {
            continue;
        }
        let used = first_segments(&code_only(&read(&p)), "crate::");
        let entry = edges.entry(top.clone()).or_default();
        entry.extend(used.into_iter().filter(|u| *u != top));
    }
    edges
}

/// A lower module that imports a higher one, or a module missing from
/// the layers: `(from, to, why)`.
fn layer_violations(
    layers: &[Vec<String>],
    edges: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let mut bad = Vec::new();
    for (from, tos) in edges {
        let Some(&lf) = layer_of.get(from.as_str()) else {
            bad.push(format!("`{from}` is in no layer of ARCHITECTURE.md"));
            continue;
        };
        for to in tos {
            match layer_of.get(to.as_str()) {
                None => bad.push(format!("`{from}` uses `{to}`, which is in no layer")),
                Some(&lt) if lt >= lf => bad.push(format!(
                    "`{from}` (layer {}) uses `{to}` (layer {})",
                    lf + 1,
                    lt + 1
                )),
                Some(_) => {}
            }
        }
    }
    bad
}

#[test]
fn library_modules_use_only_lower_layers() {
    let doc = read(&root().join("ARCHITECTURE.md"));
    let layers = declared_layers(&doc);
    assert!(
        layers.len() >= 5,
        "layers read from ARCHITECTURE.md: {layers:?}"
    );
    let edges = library_edges();
    let bad = layer_violations(&layers, &edges);
    assert!(bad.is_empty(), "layer order broken:\n{}", bad.join("\n"));
    // Every module of the library is placed (none forgotten by the doc).
    let lib = read(&root().join("server/src/lib.rs"));
    let placed: BTreeSet<&str> = layers.iter().flatten().map(String::as_str).collect();
    for line in code_only(&lib).lines() {
        let line = line.trim();
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
        {
            let m = m.trim_end_matches(';');
            assert!(placed.contains(m), "module `{m}` is in no layer");
        }
    }
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    // The check itself: an import from a lower layer to a higher one, in
    // a `use` group, is reported; one in a comment or a string is not.
    let code =
        code_only("use crate::{clock, writer::Writer};\n// crate::api\nlet s = \"crate::serve\";");
    let used = first_segments(&code, "crate::");
    assert_eq!(used, BTreeSet::from(["clock".into(), "writer".into()]));
    let layers = vec![
        vec!["clock".to_string()],
        vec!["db".into()],
        vec!["writer".into()],
    ];
    let edges = BTreeMap::from([("db".to_string(), used)]);
    let bad = layer_violations(&layers, &edges);
    assert_eq!(bad, ["`db` (layer 2) uses `writer` (layer 3)"]);
}

/// Submodule → sibling submodules it uses (`super::x`, `crate::dir::x`).
fn sibling_edges(dir: &Path, name: &str) -> BTreeMap<String, BTreeSet<String>> {
    let siblings: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let stem = p.file_stem()?.to_string_lossy().to_string();
            (p.is_dir() || p.extension().is_some_and(|x| x == "rs")).then_some(stem)
        })
        .filter(|s| s != "mod")
        .collect();
    let mut edges = BTreeMap::new();
    for s in &siblings {
        let file = dir.join(format!("{s}.rs"));
        let file = if file.is_file() {
            file
        } else {
            dir.join(s).join("mod.rs")
        };
        if !file.is_file() {
            continue;
        }
        let code = code_only(&read(&file));
        let mut used = first_segments(&code, "super::");
        used.extend(first_segments(&code, &format!("crate::{name}::")));
        used.retain(|u| siblings.contains(u) && u != s);
        edges.insert(s.clone(), used);
    }
    edges
}

/// A cycle in `edges`, if there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut c = path[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_folder_module_has_an_import_cycle() {
    let src = root().join("server/src");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if !p.is_dir() {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let edges = sibling_edges(&p, &name);
        if let Some(c) = cycle(&edges) {
            panic!("import cycle in {name}/: {}", c.join(" → "));
        }
    }
    let looped = BTreeMap::from([
        (
            "engine".to_string(),
            BTreeSet::from(["retention".to_string()]),
        ),
        (
            "retention".to_string(),
            BTreeSet::from(["engine".to_string()]),
        ),
    ]);
    assert!(cycle(&looped).is_some(), "the cycle check sees a cycle");
}

#[test]
fn every_module_opens_with_a_header() {
    let mut missing = Vec::new();
    for dir in [
        "server/src",
        "server/tests",
        "shared/src",
        "app/src",
        "xtask/src",
    ] {
        for p in rust_files(&root().join(dir)) {
            let text = read(&p);
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(p.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` header:\n{}",
        missing.join("\n")
    );
}

/// Every identifier written anywhere in the Rust sources (and SQL inside
/// them: table and column names count).
fn all_words() -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for dir in ["server", "shared", "app", "xtask"] {
        for p in rust_files(&root().join(dir)) {
            let text = read(&p);
            words.extend(
                text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .map(str::to_string),
            );
        }
    }
    words
}

/// Every file and folder of the project (not `target/`, `node_modules/`
/// or dot folders), relative to its root with `/` separators.
fn repo_paths(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if p.is_dir() {
                todo.push(p);
            }
            out.push(rel);
        }
    }
    out
}

#[test]
fn every_name_architecture_cites_exists() {
    let root = root();
    let doc = read(&root.join("ARCHITECTURE.md"));
    let words = all_words();
    let paths = repo_paths(&root);
    let mut missing = Vec::new();
    // Text in backticks, outside fenced blocks.
    let prose: String = doc.split("```").step_by(2).collect::<Vec<_>>().join("\n");
    for cited in prose.split('`').skip(1).step_by(2) {
        let c = cited.trim();
        if c.contains(' ') || c.is_empty() {
            continue; // a command line or a phrase
        }
        let path_like = c.contains('/') || c.ends_with(".rs") || c.ends_with(".md");
        if path_like {
            let rel = c.trim_end_matches('/');
            let found = paths
                .iter()
                .any(|p| p == rel || p.ends_with(&format!("/{rel}")));
            if !found && !c.starts_with("/api") {
                missing.push(c.to_string());
            }
            continue;
        }
        // Code names: each `::` or `.` segment that is an identifier.
        for seg in c.split("::").flat_map(|s| s.split('.')) {
            let seg = seg.trim_end_matches("()").trim_end_matches('!');
            if seg.is_empty()
                || !seg.chars().all(|ch| ch.is_alphanumeric() || ch == '_')
                || seg.chars().all(|ch| ch.is_ascii_digit())
            {
                continue;
            }
            if !words.contains(seg) {
                missing.push(c.to_string());
                break;
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md cites names the code does not have:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_setting_is_documented() {
    let root = root();
    let docs = read(&root.join("docs/configuration.md"));
    let example = read(&root.join("meshscope.example.toml"));
    for s in meshscope::settings::SETTINGS {
        if !s.flag.is_empty() {
            assert!(
                docs.contains(&format!("--{}", s.flag)),
                "--{} is not in docs/configuration.md",
                s.flag
            );
        }
        if !s.key.is_empty() && s.key != "mqtt" {
            let key = s.key.rsplit('.').next().unwrap();
            assert!(
                example.contains(&format!("{key} =")),
                "{} is not in meshscope.example.toml",
                s.key
            );
        }
    }
}
