//! JSON payloads of the HTTP API, shared by the server (which writes them)
//! and the dashboard (which reads them). Field names follow the API contract:
//! camelCase, except the `async_migrations*` / `ingest_liveness` healthz keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::migration::{MigrationInfo, MigrationStatus};

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /api/ingest` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IngestResponse {
    pub accepted: u64,
    pub new_transmissions: u64,
    pub duplicates: u64,
}

/// `GET /api/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// `null` until the counts are first computed (`countsReady`).
    pub total_transmissions: Option<i64>,
    /// `null` until the counts are first computed (`countsReady`).
    pub total_observations: Option<i64>,
    pub total_observers: i64,
    pub packets_last_hour: i64,
    pub packets_last24h: i64,
    /// `null` until the counts are first computed (`countsReady`).
    pub by_payload_type: Option<BTreeMap<String, i64>>,
    /// False while a file from before the maintained counts has them
    /// computed (online, by `counts_backfill_v1`): "counting", not zero.
    pub counts_ready: bool,
    /// The regions these figures are narrowed to (`?iata=`); empty: all.
    /// Narrowed, `totalObservations` is the sightings of the regions'
    /// observers, the packet figures count packets any of them heard, and
    /// `totalTransmissions` and `byPayloadType` are `null` (not kept per
    /// region).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iata: Vec<String>,
}

/// One transmission in `GET /api/packets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PacketRow {
    pub id: i64,
    pub hash: String,
    pub raw_hex: String,
    pub first_seen: String,
    /// `null` while the transmission has not been backfilled (`last_seen = 0`).
    pub last_seen: Option<String>,
    pub route_type: Option<i64>,
    pub payload_type: Option<i64>,
    pub observation_count: i64,
    pub from_pubkey: Option<String>,
}

/// `GET /api/packets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PacketsPage {
    pub packets: Vec<PacketRow>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// `total` is an estimate (a filtered view too large to count cheaply);
    /// show it as "about".
    #[serde(default)]
    pub total_estimated: bool,
}

/// One row of `GET /api/observers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ObserverRow {
    pub id: String,
    pub name: Option<String>,
    pub iata: Option<String>,
    pub last_seen: Option<String>,
    pub packet_count: i64,
    /// Live packets from this observer dated at receipt because their
    /// `timestamp` could not be used, by reason (`not_text`, `unparseable`,
    /// `ahead`, `too_far_ahead`, `too_old`, `naive_offset`), since this
    /// server started; absent when none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dated_at_receipt: std::collections::BTreeMap<String, u64>,
}

impl ObserverRow {
    /// What the Observers page says of this observer's timestamps, when
    /// some of its packets were dated at receipt: e.g. "sends unparseable
    /// timestamps; dated at receipt".
    pub fn time_note(&self) -> Option<String> {
        let words: Vec<&str> = self
            .dated_at_receipt
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(reason, _)| {
                Some(match reason.as_str() {
                    "not_text" => "sends timestamps that are not text",
                    "unparseable" => "sends unparseable timestamps",
                    "ahead" => "sends times ahead of this server's clock",
                    "too_far_ahead" => "sends times far in the future",
                    "too_old" => "sends times over 30 days old",
                    "naive_offset" => "sends local times without a zone",
                    _ => return None,
                })
            })
            .collect();
        (!words.is_empty()).then(|| format!("{}; dated at receipt", words.join(", ")))
    }
}

/// One node of the network, as its ADVERTs describe it (`GET /api/nodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    /// 64 lowercase hex characters.
    pub public_key: String,
    pub name: Option<String>,
    /// `companion`, `repeater`, `room` (a room server), `sensor`; `none` or
    /// `type-N` for the types MeshCore reserves; `null` for an advert
    /// without flags.
    pub role: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// ADVERT transmissions from the node in this file.
    pub advert_count: i64,
}

/// `GET /api/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodesPage {
    pub nodes: Vec<NodeRow>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    pub cursor: Option<String>,
    /// True while the list is still being built from the file's adverts
    /// (`nodes_backfill_v1`, or `node_regions_v1` for a region filter): the
    /// page holds what is known so far, not "no such nodes".
    #[serde(default)]
    pub building: bool,
}

/// An observer that heard a node's ADVERTs, with its best reception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeObserver {
    pub observer_id: String,
    pub observer_name: Option<String>,
    pub iata: Option<String>,
    pub best_snr: Option<f64>,
    pub best_rssi: Option<f64>,
    /// Sightings of the node's adverts by this observer.
    pub sightings: i64,
    pub last_heard: String,
}

/// `GET /api/nodes/{publicKey}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeDetail {
    pub node: NodeRow,
    /// Its newest packets (its ADVERTs), newest first.
    pub packets: Vec<PacketRow>,
    /// Who heard its recent adverts, best SNR first.
    pub observers: Vec<NodeObserver>,
}

/// A packet decoded (`GET /api/packets/{hash}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DecodedPacket {
    pub hash: String,
    /// The payload type's name (`ADVERT`, `GRP_TXT`, …).
    #[serde(rename = "type")]
    pub kind: String,
    pub payload_type: i64,
    /// The route type's name (`FLOOD`, `DIRECT`, …).
    pub route: String,
    pub route_type: i64,
    pub payload_version: i64,
    /// The two transport codes (hex), on transport routes only.
    pub transport_codes: Option<Vec<String>>,
    /// Bytes per hop in the header path.
    pub hop_size: i64,
    /// The header path's hops (uppercase hex), first hop first.
    pub path: Vec<String>,
    /// The payload's fields as text, sorted by name, for people
    /// (the server's answer also has them typed, as the `payload` object).
    pub fields: Vec<(String, String)>,
    pub raw_hex: String,
    pub first_seen: String,
    pub last_seen: Option<String>,
    pub observation_count: i64,
}

/// One sighting of a packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PacketObservation {
    pub observer_id: Option<String>,
    pub observer_name: Option<String>,
    pub iata: Option<String>,
    pub timestamp: String,
    pub snr: Option<f64>,
    pub rssi: Option<f64>,
    pub score: Option<i64>,
    pub direction: Option<String>,
    /// The hops this observer heard it over (uppercase hex).
    pub path: Vec<String>,
    /// Each hop of `path` matched to a node (see `docs/mesh.md`).
    #[serde(default)]
    pub resolved_path: Vec<ResolvedHop>,
    /// The observer as a node (an observer's id is its node's public key),
    /// when the nodes table knows it: where the route ends.
    #[serde(default)]
    pub observer_node: Option<HopNode>,
}

/// How a hop was matched to a node (the rule is in `docs/mesh.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HopConfidence {
    /// One node's key starts with the hop.
    Unique,
    /// Several did, and only one of them relays (a repeater), or is not the
    /// packet's sender or observer.
    Role,
    /// Several did; the one nearest the hops beside it (or the sender, or
    /// the observer) was chosen.
    Nearest,
    /// Several did and nothing located them: the one heard most recently.
    Recent,
    /// No known node's key starts with the hop.
    Unknown,
}

impl HopConfidence {
    /// Whether the node was chosen among several.
    pub fn is_choice(self) -> bool {
        matches!(
            self,
            HopConfidence::Role | HopConfidence::Nearest | HopConfidence::Recent
        )
    }
}

/// The node a hop resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HopNode {
    pub public_key: String,
    pub name: Option<String>,
    pub role: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl HopNode {
    /// Its location, when it advertised one (CoreScope stores 0,0 for none).
    pub fn location(&self) -> Option<(f64, f64)> {
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) if lat != 0.0 || lon != 0.0 => Some((lat, lon)),
            _ => None,
        }
    }
}

/// One hop of a path with the node it names, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ResolvedHop {
    /// The hop as heard (uppercase hex, 1-3 bytes).
    pub hop: String,
    pub node: Option<HopNode>,
    /// Nodes whose key starts with the hop.
    pub candidates: u32,
    pub confidence: HopConfidence,
}

/// How a hop's node was found, in words (a tooltip, a legend).
pub fn hop_note(h: &ResolvedHop) -> String {
    match h.confidence {
        HopConfidence::Unique => format!("hop {}: the only known node with this prefix", h.hop),
        HopConfidence::Role => format!(
            "hop {}: {} nodes share this prefix; the only one that relays",
            h.hop, h.candidates
        ),
        HopConfidence::Nearest => format!(
            "hop {}: {} nodes share this prefix; the nearest to the hops beside it",
            h.hop, h.candidates
        ),
        HopConfidence::Recent => format!(
            "hop {}: {} nodes share this prefix and none is located; the one heard most recently",
            h.hop, h.candidates
        ),
        HopConfidence::Unknown => format!("hop {}: no known node", h.hop),
    }
}

/// `GET /api/map`: what the Map page draws under the nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MapConfig {
    /// A tile URL template (`{z}/{x}/{y}`); `null`: a blank background.
    pub tiles: Option<String>,
    pub attribution: String,
}

/// `GET /api/resolve-hops`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPath {
    pub hops: Vec<ResolvedHop>,
}

/// One stored sighting on `GET /api/live` (event `packet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LivePacket {
    pub hash: String,
    /// The payload type's name (`ADVERT`, `GRP_TXT`, ...).
    pub kind: String,
    pub payload_type: i64,
    pub observer_id: String,
    pub observer_name: Option<String>,
    pub iata: Option<String>,
    pub snr: Option<f64>,
    pub rssi: Option<f64>,
    /// When the observer heard it (RFC 3339, UTC).
    pub heard_at: String,
    /// Whether this sighting stored a new packet (not one heard before).
    pub new_packet: bool,
    /// The sender, when the packet names it (an ADVERT) and it is known.
    pub sender: Option<HopNode>,
    pub hops: u32,
    pub path: Vec<ResolvedHop>,
}

/// `GET /api/live` event `missed`: packets this client fell too far behind
/// to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveMissed {
    pub count: u64,
}

/// `GET /api/packets/{hash}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PacketDetail {
    pub packet: DecodedPacket,
    /// Every sighting, oldest first.
    pub observations: Vec<PacketObservation>,
}

/// Liveness of one live-ingest source (e.g. an MQTT broker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SourceLiveness {
    pub connected: bool,
    pub last_receipt_unix: Option<i64>,
    pub last_message_unix: Option<i64>,
    pub messages: u64,
    pub rejected: u64,
    /// Set while storing this source's messages fails (a full disk, a lock
    /// held elsewhere): the error. The messages stay unacknowledged at the
    /// broker and are retried; absent when storing works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled: Option<String>,
    /// Set while disconnected: why the last connection attempt failed or the
    /// connection was lost (e.g. a TLS certificate the server does not
    /// trust); absent once connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Packets dated at receipt because their `timestamp` could not be used,
    /// by reason (`missing`, `not_text`, `unparseable`, `ahead`,
    /// `too_far_ahead`, `too_old`, `naive_offset`); absent when none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dated_at_receipt: std::collections::BTreeMap<String, u64>,
}

/// `GET /api/healthz`.
///
/// The migration fields are optional so that a dashboard can tell an older
/// server (field absent) from a server with no migrations (`[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Healthz {
    pub ready: bool,
    pub version: String,
    #[serde(rename = "uptimeSec")]
    pub uptime_sec: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_migrations: Option<Vec<MigrationInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_migrations_running: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_migrations_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_liveness: Option<BTreeMap<String, SourceLiveness>>,
}

/// Latency summary of one route in `GET /api/perf`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EndpointStats {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// How long migration chunks held the writer since boot (committed and
/// interrupted ones alike), in `GET /api/perf` and the bench report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChunkHold {
    pub n: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Chunks stopped past their budget while ingest waited (rolled back,
    /// retried smaller).
    pub interrupted: u64,
}

/// `GET /api/perf`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Perf {
    pub uptime_sec: u64,
    pub total_requests: u64,
    pub endpoints: BTreeMap<String, EndpointStats>,
    #[serde(
        rename = "async_migrations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub async_migrations: Option<Vec<MigrationInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_migrations_error: Option<String>,
    /// Statements `/api/stats` ran since boot that walked a whole table (by
    /// their query plan or SQLite's full-scan step count): does not grow
    /// once the counts are ready.
    #[serde(default)]
    pub stats_full_scans: u64,
    /// Migration chunks' writer hold times since boot; null before the first chunk.
    #[serde(default)]
    pub chunk_hold_ms: Option<ChunkHold>,
    /// The retention job's last (or current) run; `null` when retention is
    /// off or has not run since the server started.
    #[serde(default)]
    pub retention: Option<RetentionRun>,
    /// The WAL file since boot: its size, its peak and the writer's restarts.
    #[serde(default)]
    pub wal: Option<WalStats>,
}

/// The WAL file as `/api/perf` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WalStats {
    /// Its size at the last look, in bytes.
    pub bytes: u64,
    /// The largest size seen since boot.
    pub peak_bytes: u64,
    /// WAL restarts the writer ran between background units.
    pub restarts: u64,
    /// Of those, the ones a reader on old frames kept from restarting it.
    pub restarts_busy: u64,
    pub restart_hold_p99_ms: Option<f64>,
    pub restart_hold_max_ms: Option<f64>,
}

/// Rows a retention run deleted (or, in a preview, would), per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RetentionDeleted {
    pub observations: i64,
    pub transmissions: i64,
    pub observers: i64,
}

impl std::ops::AddAssign for RetentionDeleted {
    fn add_assign(&mut self, o: RetentionDeleted) {
        self.observations += o.observations;
        self.transmissions += o.transmissions;
        self.observers += o.observers;
    }
}

/// One run of the retention job (`/api/perf`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RetentionRun {
    /// `running` (or `paused` while held back), `done`, `failed` or `cancelled`.
    pub status: MigrationStatus,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// Sightings strictly older than this went (RFC3339); `null`: packets are kept.
    pub packet_cutoff: Option<String>,
    /// Observers not heard since before this went; `null`: observers are kept.
    pub observer_cutoff: Option<String>,
    pub deleted: RetentionDeleted,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_without_migration_fields_parses() {
        let h: Healthz =
            serde_json::from_str(r#"{"ready":true,"version":"0.1.0","uptimeSec":3}"#).unwrap();
        assert!(h.async_migrations.is_none());
        assert!(h.async_migrations_error.is_none());
    }

    #[test]
    fn healthz_keys_follow_the_contract() {
        let h = Healthz {
            ready: true,
            version: "x".into(),
            uptime_sec: 1,
            async_migrations: Some(vec![]),
            async_migrations_running: Some(false),
            async_migrations_error: None,
            ingest_liveness: None,
        };
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["uptimeSec"], 1);
        assert_eq!(v["async_migrations"], serde_json::json!([]));
        assert_eq!(v["async_migrations_running"], false);
    }

    #[test]
    fn stats_keys_follow_the_contract() {
        let s = Stats {
            total_transmissions: Some(1),
            total_observations: Some(2),
            total_observers: 3,
            packets_last_hour: 4,
            packets_last24h: 5,
            by_payload_type: Some(BTreeMap::new()),
            counts_ready: true,
            iata: Vec::new(),
        };
        let v = serde_json::to_value(&s).unwrap();
        for k in [
            "totalTransmissions",
            "totalObservations",
            "totalObservers",
            "packetsLastHour",
            "packetsLast24h",
            "byPayloadType",
            "countsReady",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
