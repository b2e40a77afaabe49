//! The mesh as the dashboard draws it: an in-memory index of the nodes by
//! public key (so a hop's prefix is a range lookup, [`resolve`]), and the
//! live feed of stored sightings (`GET /api/live`).
//!
//! The writer hands each sighting it committed to [`FeedSink::send`] (a
//! bounded queue, never waited on: when it is full the sighting is counted
//! as dropped, `meshscope_live_dropped_total`, and ingest goes on). One
//! feed thread takes them: a new ADVERT's node is read again into the index
//! (from a read-only connection, after the commit), the path is resolved
//! once, and the packet is broadcast. Each `/api/live` client reads the
//! broadcast ring at its own pace; one that falls [`LIVE_BUFFER`] events
//! behind is told how many it missed, so a client that never reads costs
//! one ring, not a growing queue. The whole index is read again every
//! [`RELOAD`], for the nodes other programs write, and within
//! [`RELOAD_CHANGED`] of a chunk of `nodes_backfill_v1`.

pub mod resolve;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use shared::api::{HopNode, LivePacket, ResolvedHop};
use shared::packet::{payload_type_name, PAYLOAD_ADVERT};
use shared::timefmt::format_unix_secs;

pub use resolve::NodeInfo;

/// Live events a client may fall behind before it is sent `missed`.
pub const LIVE_BUFFER: usize = 1024;
/// Stored sightings waiting for the feed thread.
const QUEUE: usize = 4096;
/// How often the whole node index is read again.
pub const RELOAD: Duration = Duration::from_secs(30);
/// How soon after a job wrote nodes (see [`Mesh::nodes_changed`]) the index
/// is read again, at most.
const RELOAD_CHANGED: Duration = Duration::from_secs(2);

/// One sighting the writer committed.
#[derive(Debug, Clone)]
pub struct Stored {
    pub hash: String,
    pub payload_type: i64,
    pub observer_id: String,
    pub observer_name: Option<String>,
    pub iata: Option<String>,
    pub snr: Option<f64>,
    pub rssi: Option<f64>,
    pub heard: i64,
    pub new_packet: bool,
    pub path_json: String,
    pub from_pubkey: Option<String>,
}

type Index = BTreeMap<String, Arc<NodeInfo>>;

/// One live event: the packet (for the clients' filters) and its JSON,
/// written once for every client.
#[derive(Debug)]
pub struct LiveEvent {
    pub packet: LivePacket,
    pub json: String,
}

struct Inner {
    nodes: RwLock<Index>,
    /// A job wrote nodes since the index was read.
    changed: AtomicBool,
    live: tokio::sync::broadcast::Sender<Arc<LiveEvent>>,
    queue: flume::Sender<Stored>,
    receiver: std::sync::Mutex<Option<flume::Receiver<Stored>>>,
}

/// The node index and the live feed. Cheap to clone.
#[derive(Clone)]
pub struct Mesh(Arc<Inner>);

impl Default for Mesh {
    fn default() -> Self {
        let (queue, rx) = flume::bounded(QUEUE);
        let (live, _) = tokio::sync::broadcast::channel(LIVE_BUFFER);
        Mesh(Arc::new(Inner {
            nodes: RwLock::new(BTreeMap::new()),
            changed: AtomicBool::new(false),
            live,
            queue,
            receiver: std::sync::Mutex::new(Some(rx)),
        }))
    }
}

/// Where the writer puts what it committed.
#[derive(Clone)]
pub struct FeedSink(Mesh);

impl FeedSink {
    /// Queues `s` for the feed, never waiting: a full queue drops it (and
    /// counts it) rather than slow ingest.
    pub fn send(&self, s: Stored) {
        if self.0 .0.queue.try_send(s).is_err() {
            ::metrics::counter!("meshscope_live_dropped_total").increment(1);
            crate::ratelimit::warn_limited(
                "live-feed-full",
                "the live feed is behind: sightings were left out of /api/live (they are stored)",
            );
        }
    }
}

const NODE_SQL: &str = "SELECT lower(public_key), name, role, lat, lon, COALESCE(last_seen, '')
    FROM nodes";

fn node_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeInfo> {
    Ok(NodeInfo {
        node: HopNode {
            public_key: r.get(0)?,
            name: r.get(1)?,
            role: r.get(2)?,
            lat: r.get(3)?,
            lon: r.get(4)?,
        },
        last_seen: r.get(5)?,
    })
}

impl Mesh {
    pub fn sink(&self) -> FeedSink {
        FeedSink(self.clone())
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<LiveEvent>> {
        self.0.live.subscribe()
    }

    /// Open `/api/live` streams.
    pub fn listeners(&self) -> usize {
        self.0.live.receiver_count()
    }

    /// A job wrote nodes (`nodes_backfill_v1`'s chunks): the index is read
    /// again within [`RELOAD_CHANGED`].
    pub fn nodes_changed(&self) {
        self.0.changed.store(true, Ordering::Release);
    }

    /// Reads every node into the index; returns how many.
    pub fn load(&self, conn: &Connection) -> rusqlite::Result<usize> {
        let mut index = Index::new();
        let mut stmt = conn.prepare(NODE_SQL)?;
        for n in stmt.query_map([], node_info)? {
            let n = n?;
            index.insert(n.node.public_key.clone(), Arc::new(n));
        }
        let len = index.len();
        if let Ok(mut nodes) = self.0.nodes.write() {
            *nodes = index;
        }
        Ok(len)
    }

    /// Reads one node again (after its advert was stored).
    pub fn refresh(&self, conn: &Connection, key: &str) -> rusqlite::Result<()> {
        let key = key.to_ascii_lowercase();
        let row = conn
            .prepare_cached(&format!(
                "{NODE_SQL} WHERE public_key = ?1 OR public_key = upper(?1)"
            ))?
            .query_row([&key], node_info)
            .optional()?;
        if let (Some(n), Ok(mut nodes)) = (row, self.0.nodes.write()) {
            nodes.insert(key, Arc::new(n));
        }
        Ok(())
    }

    /// The node with this public key.
    pub fn node(&self, key: &str) -> Option<HopNode> {
        let nodes = self.0.nodes.read().ok()?;
        nodes.get(&key.to_ascii_lowercase()).map(|n| n.node.clone())
    }

    /// Resolves `hops` (sender's end first) by [`resolve::resolve`].
    pub fn resolve(
        &self,
        hops: &[String],
        sender: Option<&str>,
        observer: Option<&str>,
    ) -> Vec<ResolvedHop> {
        let Ok(nodes) = self.0.nodes.read() else {
            return resolve::resolve(hops, |_| Vec::new(), None, None);
        };
        let get = |k: Option<&str>| {
            k.and_then(|k| nodes.get(&k.to_ascii_lowercase()))
                .map(|n| &**n)
        };
        resolve::resolve(
            hops,
            |prefix| {
                nodes
                    .range::<str, _>((
                        std::ops::Bound::Included(prefix),
                        std::ops::Bound::Unbounded,
                    ))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(_, n)| &**n)
                    .collect()
            },
            get(sender),
            get(observer),
        )
    }

    /// The feed thread: takes what the writer stored, keeps the index
    /// current, resolves and broadcasts. Ends when every sink is gone.
    pub fn start(&self, readers: crate::db::ReaderPool) -> std::io::Result<()> {
        let Some(rx) = self.0.receiver.lock().ok().and_then(|mut r| r.take()) else {
            return Ok(());
        };
        let mesh = self.clone();
        std::thread::Builder::new()
            .name("meshscope-feed".into())
            .spawn(move || mesh.run(&rx, &readers))?;
        Ok(())
    }

    fn run(&self, rx: &flume::Receiver<Stored>, readers: &crate::db::ReaderPool) {
        let reload = |mesh: &Mesh| match readers.get() {
            Ok(c) => {
                if let Err(e) = mesh.load(&c) {
                    crate::ratelimit::warn_limited(
                        "mesh-load",
                        &format!("cannot read the nodes for path names: {e}"),
                    );
                }
            }
            Err(e) => crate::ratelimit::warn_limited(
                "mesh-load",
                &format!("cannot read the nodes for path names: {e}"),
            ),
        };
        reload(self);
        let mut loaded_at = Instant::now();
        loop {
            match rx.recv_timeout(RELOAD_CHANGED / 4) {
                Ok(s) => self.publish(s, readers),
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => return,
            }
            let since = loaded_at.elapsed();
            let changed = since >= RELOAD_CHANGED && self.0.changed.swap(false, Ordering::AcqRel);
            if changed || since >= RELOAD {
                reload(self);
                loaded_at = Instant::now();
            }
        }
    }

    fn publish(&self, s: Stored, readers: &crate::db::ReaderPool) {
        // A new advert may change its node; another sighting of it only its
        // last-seen time, which the periodic reload brings.
        if s.new_packet && s.payload_type == i64::from(PAYLOAD_ADVERT) {
            if let Some(key) = &s.from_pubkey {
                let read = readers
                    .get()
                    .map_err(|e| e.to_string())
                    .and_then(|c| self.refresh(&c, key).map_err(|e| e.to_string()));
                if let Err(e) = read {
                    crate::ratelimit::warn_limited(
                        "mesh-refresh",
                        &format!("cannot read node {key} for path names: {e}"),
                    );
                }
            }
        }
        if self.listeners() == 0 {
            return;
        }
        let hops: Vec<String> = serde_json::from_str(&s.path_json).unwrap_or_default();
        let path = self.resolve(&hops, s.from_pubkey.as_deref(), Some(&s.observer_id));
        let code = u8::try_from(s.payload_type).unwrap_or(u8::MAX);
        let packet = LivePacket {
            hash: s.hash,
            kind: payload_type_name(code),
            payload_type: s.payload_type,
            observer_id: s.observer_id,
            observer_name: s.observer_name,
            iata: s.iata,
            snr: s.snr,
            rssi: s.rssi,
            heard_at: format_unix_secs(s.heard),
            new_packet: s.new_packet,
            sender: s.from_pubkey.as_deref().and_then(|k| self.node(k)),
            hops: hops.len() as u32,
            path,
        };
        let json = match serde_json::to_string(&packet) {
            Ok(j) => j,
            Err(e) => {
                crate::ratelimit::warn_limited(
                    "live-serialise",
                    &format!("cannot serialise a live event: {e}"),
                );
                return;
            }
        };
        // No receiver left is not an error: nobody is watching.
        let _ = self.0.live.send(Arc::new(LiveEvent { packet, json }));
    }
}
