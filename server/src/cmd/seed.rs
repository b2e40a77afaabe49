//! `meshscope seed`: writes realistic demo / benchmark data — valid MeshCore
//! packets of mixed types, observations per packet varied around a mean,
//! about 1% orphan transmissions, timestamps spread over a week.
//!
//! Speed: one transaction, prepared statements, and the observation indexes
//! dropped during the bulk insert and rebuilt once at the end (building an
//! index once is several times cheaper than maintaining it row by row).

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};
use shared::packet::PAYLOAD_ADVERT;
use shared::timefmt::format_unix_secs;

use super::SeedArgs;
use meshscope::db::{self, schema};
use meshscope::decoder::{self, advert};

#[derive(Debug, Clone)]
pub(crate) struct SeedOptions {
    pub(crate) db: PathBuf,
    pub(crate) transmissions: u64,
    pub(crate) obs_per_tx: u32,
    pub(crate) observers: u32,
    pub(crate) legacy: bool,
    pub(crate) rng_seed: u64,
    pub(crate) force: bool,
    /// Unix seconds of the newest packet; defaults to now.
    pub(crate) end_unix: Option<i64>,
    pub(crate) progress: bool,
}

impl From<SeedArgs> for SeedOptions {
    fn from(a: SeedArgs) -> Self {
        SeedOptions {
            db: a.db,
            transmissions: a.transmissions,
            obs_per_tx: a.obs_per_tx,
            observers: a.observers,
            legacy: a.legacy,
            rng_seed: a.rng_seed,
            force: a.force,
            end_unix: a.end,
            progress: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeedReport {
    pub(crate) transmissions: u64,
    pub(crate) observations: u64,
    pub(crate) orphans: u64,
    pub(crate) observers: u64,
    pub(crate) millis: u128,
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seeded {} transmissions ({} orphans), {} observations, {} observers in {:.1} s",
            self.transmissions,
            self.orphans,
            self.observations,
            self.observers,
            self.millis as f64 / 1000.0
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SeedError {
    #[error("--transmissions must be at least 1")]
    NoTransmissions,
    #[error("--observers must be at least 1")]
    NoObservers,
    #[error("--obs-per-tx must be from 1 to 1000")]
    BadMean,
    #[error("{path} already holds {rows} transmissions; pass --force to replace it")]
    NotEmpty { path: PathBuf, rows: i64 },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("writing seed data failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

const REGIONS: &[&str] = &["SEA", "PDX", "SFO"];
const NAMES: &[&str] = &[
    "Ridge", "Harbor", "Summit", "Valley", "Beacon", "Cedar", "Falcon", "Orca", "Rainier", "Sound",
];

fn existing_rows(path: &Path) -> Option<i64> {
    if !path.exists() {
        return None;
    }
    let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.query_row("SELECT COUNT(*) FROM transmissions", [], |r| r.get(0))
        .ok()
}

fn remove_db_files(path: &Path) -> Result<(), SeedError> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SeedError::Remove { path: p, source }),
        }
    }
    Ok(())
}

/// Generates the database described by `opts`.
pub(crate) fn run(opts: &SeedOptions) -> Result<SeedReport, SeedError> {
    if opts.transmissions == 0 {
        return Err(SeedError::NoTransmissions);
    }
    if opts.observers == 0 {
        return Err(SeedError::NoObservers);
    }
    if !(1..=1000).contains(&opts.obs_per_tx) {
        return Err(SeedError::BadMean);
    }
    let _lock = db::WriterLock::acquire(&opts.db)?;
    if let Some(rows) = existing_rows(&opts.db).filter(|n| *n > 0) {
        if !opts.force {
            return Err(SeedError::NotEmpty {
                path: opts.db.clone(),
                rows,
            });
        }
    }
    if opts.force {
        remove_db_files(&opts.db)?;
    }
    let started = Instant::now();
    let mut conn = db::open_writer(&opts.db)?;
    // The file is new and ours alone: a rollback journal records almost
    // nothing for new pages, where WAL would write every page twice (once
    // to the WAL, once at checkpoint) — 2 GB extra at 10x scale.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    let report = generate(&mut conn, opts);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let report = report?;
    Ok(SeedReport {
        millis: started.elapsed().as_millis(),
        ..report
    })
}

fn progress_bar(len: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    // Hidden automatically when stderr is not a terminal.
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding {bar:40} {pos}/{len} transmissions ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

fn generate(conn: &mut Connection, opts: &SeedOptions) -> Result<SeedReport, SeedError> {
    let mut rng = SmallRng::seed_from_u64(opts.rng_seed);
    let end = opts.end_unix.unwrap_or_else(meshscope::clock::now_secs);
    let span: i64 = 7 * 86_400;
    let start = end - span;
    let n = opts.transmissions;
    let n_obs = opts.observers as usize;
    let mean = opts.obs_per_tx.min(opts.observers);
    let max_k = (2 * mean - 1).min(opts.observers) as usize;

    let tx = conn.transaction()?;
    // Bulk insert first, index once at the end.
    for spec in schema::INDEXES.iter().filter(|s| s.table == "observations") {
        if let Some(name) = spec
            .create_sql
            .split_whitespace()
            .skip_while(|w| *w != "EXISTS")
            .nth(1)
        {
            tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
    }

    let mut observer_idx = Vec::with_capacity(n_obs);
    {
        let mut ins = tx.prepare(
            "INSERT INTO observers (id, name, iata, first_seen, last_seen, packet_count, model, firmware)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, 'Heltec V3', 'v1.9.0') RETURNING rowid",
        )?;
        for i in 0..n_obs {
            let id: [u8; 32] = rng.random();
            let name = format!("{}-{:02}", NAMES[i % NAMES.len()], i);
            let iata = REGIONS[i % REGIONS.len()];
            let rowid: i64 = ins.query_row(
                params![
                    hex::encode(id),
                    name,
                    iata,
                    format_unix_secs(start),
                    format_unix_secs(end)
                ],
                |r| r.get(0),
            )?;
            observer_idx.push(rowid);
        }
    }
    // A population of nodes that advertise repeatedly.
    // Most are companions, some repeaters, a few room servers and sensors;
    // one in seven does not advertise a location.
    let nodes: Vec<SeedNode> = (0..500)
        .map(|i| {
            let key: [u8; 32] = rng.random();
            let lat = 47.0 + rng.random_range(-1.5..1.5);
            let lon = -122.3 + rng.random_range(-1.5..1.5);
            let node_type = match i % 10 {
                0..6 => 1,
                6 | 7 => 2,
                8 => 3,
                _ => 4,
            };
            SeedNode {
                key,
                name: format!(
                    "{}-{i:03}",
                    ["node", "rptr", "room", "sensor"][node_type as usize - 1]
                ),
                node_type,
                location: (i % 7 != 0).then_some((lat, lon)),
            }
        })
        .collect();

    let mut observations = 0u64;
    let mut orphans = 0u64;
    let mut counts = vec![0i64; n_obs];
    let pb = progress_bar(n, opts.progress);
    {
        let mut ins_tx = tx.prepare(
            "INSERT INTO transmissions (raw_hex, hash, first_seen, route_type, payload_type,
                payload_version, decoded_json, channel_hash, from_pubkey, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
        )?;
        let mut ins_obs = tx.prepare(
            "INSERT INTO observations (transmission_id, observer_idx, direction, snr, rssi, score,
                path_json, timestamp)
             VALUES (?1, ?2, 'rx', ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut pick: Vec<usize> = (0..n_obs).collect();
        for i in 0..n {
            let t = start + (i as i64 * span) / n as i64;
            let raw = random_packet(&mut rng, i, t, &nodes);
            let p = decoder::decode(&raw)
                .unwrap_or_else(|e| unreachable!("seed packets are valid: {e}"));
            // What CoreScope would store for it, as live ingest stores it.
            let stored = decoder::corescope::stored(&p, decoder::corescope::default_keys());
            let orphan = rng.random_range(0..100) == 0;
            let k = if orphan {
                orphans += 1;
                0
            } else {
                rng.random_range(1..=max_k)
            };
            // k distinct observers: a partial Fisher-Yates shuffle.
            let mut newest = t;
            let mut rows = Vec::with_capacity(k);
            for j in 0..k {
                let s = rng.random_range(j..n_obs);
                pick.swap(j, s);
                let ts = t + rng.random_range(0..90);
                newest = newest.max(ts);
                rows.push((pick[j], ts));
            }
            let last_seen = if opts.legacy { 0 } else { newest };
            let from_pubkey = if opts.legacy { None } else { p.advert_pubkey() };
            ins_tx.execute(params![
                hex::encode_upper(&raw),
                p.hash(),
                format_unix_secs(t),
                p.route_type as i64,
                i64::from(p.payload_type),
                stored.decoded_json,
                stored.channel_hash,
                from_pubkey,
                last_seen
            ])?;
            let tx_id = tx.last_insert_rowid();
            for (obs, ts) in rows {
                let hops = rng.random_range(0..5usize);
                let path: Vec<String> = (0..hops)
                    .map(|_| format!("{:02X}", rng.random::<u8>()))
                    .collect();
                let path_json = serde_json::to_string(&path).unwrap_or_else(|_| "[]".into());
                ins_obs.execute(params![
                    tx_id,
                    observer_idx[obs],
                    rng.random_range(-20.0..12.0f64),
                    rng.random_range(-120.0..-40.0f64),
                    rng.random_range(0..1000i64),
                    path_json,
                    ts
                ])?;
                counts[obs] += 1;
                observations += 1;
            }
            if i % 4096 == 0 {
                pb.set_position(i);
            }
        }
        let mut upd = tx.prepare("UPDATE observers SET packet_count = ?2 WHERE rowid = ?1")?;
        for (i, c) in counts.iter().enumerate() {
            upd.execute(params![observer_idx[i], c])?;
        }
    }
    for spec in schema::INDEXES.iter().filter(|s| s.table == "observations") {
        tx.execute_batch(spec.create_sql)?;
    }
    // meshscope wrote these rows: a server starting on the file must not
    // take them for another program's.
    meshscope::db::marks::record(&tx)?;
    tx.commit()?;
    pb.finish_and_clear();
    Ok(SeedReport {
        transmissions: n,
        observations,
        orphans,
        observers: n_obs as u64,
        millis: 0,
    })
}

/// A node of the seeded network.
struct SeedNode {
    key: [u8; 32],
    name: String,
    node_type: u8,
    location: Option<(f64, f64)>,
}

/// One valid packet. Payloads carry the packet's index so every packet
/// (and so every hash) is distinct.
fn random_packet(rng: &mut SmallRng, i: u64, t: i64, nodes: &[SeedNode]) -> Vec<u8> {
    let roll = rng.random_range(0..100);
    let payload_type: u8 = match roll {
        0..25 => PAYLOAD_ADVERT,
        25..55 => 5, // GRP_TXT
        55..70 => 2, // TXT_MSG
        70..80 => 3, // ACK
        80..85 => 8, // PATH
        85..90 => 0, // REQ
        90..95 => 1, // RESPONSE
        _ => 9,      // TRACE
    };
    let route: u8 = match rng.random_range(0..10) {
        0 => 0,
        1 | 2 => 2,
        _ => 1,
    };
    let transport = (route == 0).then(|| [rng.random(), rng.random()]);
    let hop_size = if rng.random_range(0..10) == 0 { 2 } else { 1 };
    let hop_bytes: Vec<Vec<u8>> = (0..rng.random_range(0..4))
        .map(|_| (0..hop_size).map(|_| rng.random()).collect())
        .collect();
    let hops: Vec<&[u8]> = hop_bytes.iter().map(Vec::as_slice).collect();
    let payload: Vec<u8> = if payload_type == PAYLOAD_ADVERT {
        let n = &nodes[rng.random_range(0..nodes.len())];
        let mut p = advert::encode(&n.key, t as u32, n.node_type, n.location, Some(&n.name));
        // The packet's index in the signature keeps every advert distinct.
        p[36..40].copy_from_slice(&(i as u32).to_le_bytes());
        p
    } else {
        let len = rng.random_range(8..100usize);
        let mut p = (i as u32).to_le_bytes().to_vec();
        p.extend((4..len).map(|_| rng.random::<u8>()));
        p
    };
    decoder::encode(route, payload_type, 0, transport, hop_size, &hops, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(db: PathBuf, n: u64, legacy: bool) -> SeedOptions {
        SeedOptions {
            db,
            transmissions: n,
            obs_per_tx: 5,
            observers: 12,
            legacy,
            rng_seed: 7,
            force: false,
            end_unix: Some(1_800_000_000),
            progress: false,
        }
    }

    #[test]
    fn seeds_valid_consistent_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let r = run(&opts(path.clone(), 2000, false)).unwrap();
        assert_eq!(r.transmissions, 2000);
        assert!(
            r.orphans > 0 && r.orphans < 60,
            "about 1% orphans, got {}",
            r.orphans
        );
        let mean = r.observations as f64 / 2000.0;
        assert!((4.0..6.0).contains(&mean), "mean {mean}");
        let c = Connection::open(&path).unwrap();
        // last_seen is the newest sighting for every observed transmission.
        let wrong: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM transmissions t WHERE EXISTS (SELECT 1 FROM observations o WHERE o.transmission_id = t.id)
                 AND t.last_seen != (SELECT MAX(timestamp) FROM observations o WHERE o.transmission_id = t.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(wrong, 0);
        // Every stored packet decodes and hashes to its stored hash.
        let mut stmt = c
            .prepare("SELECT raw_hex, hash FROM transmissions")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap();
        for row in rows {
            let (raw, hash) = row.unwrap();
            let bytes = decoder::parse_hex(&raw).unwrap();
            assert_eq!(decoder::decode(&bytes).unwrap().hash(), hash);
        }
        let adverts_with_key: i64 = c
            .query_row("SELECT COUNT(*) FROM transmissions WHERE payload_type = 4 AND from_pubkey IS NOT NULL", [], |r| r.get(0))
            .unwrap();
        assert!(adverts_with_key > 300, "{adverts_with_key}");
        for t in ["transmissions", "observations"] {
            assert!(schema::missing_indexes(&c, t).unwrap().is_empty());
        }
    }

    #[test]
    fn legacy_has_no_backfilled_columns_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        run(&opts(path.clone(), 500, true)).unwrap();
        let c = Connection::open(&path).unwrap();
        let filled: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM transmissions WHERE last_seen != 0 OR from_pubkey IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(filled, 0);
        drop(c);
        let err = run(&opts(path.clone(), 10, true)).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        let mut o = opts(path, 10, true);
        o.force = true;
        assert_eq!(run(&o).unwrap().transmissions, 10);
    }
}
