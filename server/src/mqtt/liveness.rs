//! Per-source liveness and counters of live ingest, shared between the MQTT
//! subscriber tasks (which update it) and `GET /api/healthz` (which shows
//! it). Every update also goes to the `metrics` facade, so a Prometheus
//! recorder, once installed, sees the same numbers.
//!
//! Definitions (also in the README):
//! - `lastReceiptUnix`: when the source last delivered any MQTT message
//!   (packet, status, ignored or malformed) — "the broker is talking to us";
//! - `lastMessageUnix`: when a packet from the source was last stored —
//!   "the mesh is being heard";
//! - `messages`: packets stored (a repeat the store merged as a duplicate
//!   counts: it was accepted);
//! - `rejected`: messages refused, whatever the reason (per-reason counts in
//!   [`SourceCounters::rejected`] and the `meshscope_mqtt_rejected_total`
//!   metric).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use shared::api::SourceLiveness;

use super::payload::{Ignore, Reject};

/// Everything counted for one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceCounters {
    pub connected: bool,
    /// The broker granted at least one subscription on this connection.
    pub subscribed: bool,
    pub(crate) last_receipt_unix: Option<i64>,
    pub(crate) last_message_unix: Option<i64>,
    /// MQTT messages received, of any kind.
    pub received: u64,
    /// Packets stored (the healthz `messages`).
    pub stored: u64,
    /// Status reports applied to the observers table.
    pub status_updates: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub ignored: BTreeMap<&'static str, u64>,
    /// Successful connections (the first one and every reconnect).
    pub connects: u64,
    /// Text fields cut to [`super::payload::MAX_TEXT_CHARS`], by field.
    pub truncated: BTreeMap<&'static str, u64>,
    /// Packets dated at receipt, by why their `timestamp` was not used
    /// ([`crate::heard::AtReceipt`]).
    pub dated_at_receipt: BTreeMap<&'static str, u64>,
    /// While storing fails: the error (messages held at the broker, retried).
    pub stalled: Option<String>,
    /// While disconnected: why the last connection attempt failed or the
    /// connection was lost (cleared on connecting).
    pub last_error: Option<String>,
}

impl SourceCounters {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Most observers whose timestamp oddities are kept (the rest are counted
/// under [`OTHER_OBSERVERS`]), so a flood of made-up observer ids cannot
/// grow memory.
pub const MAX_TIMED_OBSERVERS: usize = 10_000;
/// The key under which observers past [`MAX_TIMED_OBSERVERS`] are counted.
pub const OTHER_OBSERVERS: &str = "(others)";

/// Per observer id: packets dated at receipt, by reason.
pub type ObserverTimes = BTreeMap<String, BTreeMap<&'static str, u64>>;

/// The registry of all configured sources. Cheap to clone.
#[derive(Clone, Default)]
pub struct Liveness {
    map: Arc<Mutex<BTreeMap<String, SourceCounters>>>,
    /// Per observer: packets dated at receipt by reason (not `missing`,
    /// which is how most observers send).
    observer_times: Arc<Mutex<ObserverTimes>>,
    /// Bumped on every change, so a cached healthz knows it is stale.
    version: Arc<std::sync::atomic::AtomicU64>,
    /// Bumped when a source's state changes (connected, subscribed,
    /// stalled), not per packet: what wakes the event stream.
    state: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Liveness {
    /// A registry holding `names`, all disconnected and silent.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Liveness {
        let map = names
            .into_iter()
            .map(|n| (n.to_string(), SourceCounters::default()))
            .collect();
        Liveness {
            map: Arc::new(Mutex::new(map)),
            observer_times: Arc::default(),
            version: Arc::default(),
            state: Arc::default(),
        }
    }

    /// Wakes on every change of a source's state (see `state`).
    pub fn subscribe_state(&self) -> tokio::sync::watch::Receiver<u64> {
        self.state.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, SourceCounters>> {
        // Counters stay meaningful even if a holder panicked mid-update.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes so far (any source, any counter).
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The `ingest_liveness` map of `GET /api/healthz`.
    pub fn snapshot(&self) -> BTreeMap<String, SourceLiveness> {
        self.lock()
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    SourceLiveness {
                        connected: c.connected,
                        last_receipt_unix: c.last_receipt_unix,
                        last_message_unix: c.last_message_unix,
                        messages: c.stored,
                        rejected: c.rejected_total(),
                        stalled: c.stalled.clone(),
                        last_error: c.last_error.clone(),
                        dated_at_receipt: c
                            .dated_at_receipt
                            .iter()
                            .map(|(k, v)| ((*k).to_string(), *v))
                            .collect(),
                    },
                )
            })
            .collect()
    }

    /// Per observer: packets dated at receipt by reason (`missing` left
    /// out), for the Observers page.
    pub fn observer_times(&self) -> ObserverTimes {
        self.observer_times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// All counters of one source, including per-reason counts.
    pub fn counters(&self, name: &str) -> Option<SourceCounters> {
        self.lock().get(name).cloned()
    }

    /// The updating side for one source (registered if it was not).
    pub fn source(&self, name: &str) -> SourceHandle {
        self.lock().entry(name.to_string()).or_default();
        SourceHandle {
            reg: self.clone(),
            name: name.to_string(),
        }
    }
}

/// Updates one source's counters and the matching metrics.
#[derive(Clone)]
pub struct SourceHandle {
    reg: Liveness,
    name: String,
}

impl SourceHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An update that changes the source's state: wakes the event stream.
    fn update_state(&self, f: impl FnOnce(&mut SourceCounters)) {
        self.update(f);
        self.reg.state.send_modify(|v| *v += 1);
    }

    fn update(&self, f: impl FnOnce(&mut SourceCounters)) {
        let mut map = self.reg.lock();
        if let Some(c) = map.get_mut(&self.name) {
            f(c);
        }
        self.reg
            .version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.update_state(|c| {
            if connected && !c.connected {
                c.connects += 1;
            }
            c.connected = connected;
            if connected {
                c.last_error = None;
            } else {
                c.subscribed = false;
            }
        });
        metrics::gauge!("meshscope_mqtt_connected", "source" => self.name.clone())
            .set(if connected { 1.0 } else { 0.0 });
        if connected {
            metrics::counter!("meshscope_mqtt_connects_total", "source" => self.name.clone())
                .increment(1);
        }
    }

    /// Disconnected because of `error` (a failed attempt or a lost link).
    pub(crate) fn set_disconnected(&self, error: String) {
        self.set_connected(false);
        self.update_state(|c| c.last_error = Some(error));
    }

    pub(crate) fn set_subscribed(&self) {
        self.update_state(|c| c.subscribed = true);
    }

    pub fn received(&self, now_unix: i64) {
        self.update(|c| {
            c.received += 1;
            c.last_receipt_unix = Some(now_unix);
        });
        metrics::counter!("meshscope_mqtt_messages_total", "source" => self.name.clone())
            .increment(1);
    }

    pub fn stored(&self, n: u64, now_unix: i64) {
        if n == 0 {
            return;
        }
        self.update(|c| {
            c.stored += n;
            c.last_message_unix = Some(now_unix);
        });
        metrics::counter!("meshscope_mqtt_stored_total", "source" => self.name.clone())
            .increment(n);
    }

    pub(crate) fn status_applied(&self, n: u64) {
        self.update(|c| c.status_updates += n);
        metrics::counter!("meshscope_mqtt_status_updates_total", "source" => self.name.clone())
            .increment(n);
    }

    pub fn rejected(&self, reason: Reject, n: u64) {
        self.update(|c| *c.rejected.entry(reason.as_str()).or_default() += n);
        metrics::counter!(
            "meshscope_mqtt_rejected_total",
            "source" => self.name.clone(),
            "reason" => reason.as_str()
        )
        .increment(n);
    }

    /// Storing fails with `error` (`None`: it works again).
    pub(crate) fn set_stalled(&self, error: Option<String>) {
        let on = error.is_some();
        self.update_state(|c| c.stalled = error);
        metrics::gauge!("meshscope_mqtt_stalled", "source" => self.name.clone()).set(if on {
            1.0
        } else {
            0.0
        });
    }

    /// A text field was cut to the documented length.
    pub fn truncated(&self, field: &'static str) {
        self.update(|c| *c.truncated.entry(field).or_default() += 1);
        metrics::counter!(
            "meshscope_mqtt_truncated_total",
            "source" => self.name.clone(),
            "field" => field
        )
        .increment(1);
    }

    /// A packet from `observer` was dated at receipt because of `why`.
    pub fn dated_at_receipt(&self, observer: &str, why: crate::heard::AtReceipt) {
        let reason = why.as_str();
        self.update(|c| *c.dated_at_receipt.entry(reason).or_default() += 1);
        if why != crate::heard::AtReceipt::Missing {
            let mut per = self
                .reg
                .observer_times
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let key = if per.contains_key(observer) || per.len() < MAX_TIMED_OBSERVERS {
                observer
            } else {
                OTHER_OBSERVERS
            };
            *per.entry(key.to_string())
                .or_default()
                .entry(reason)
                .or_default() += 1;
        }
        metrics::counter!(
            "meshscope_mqtt_dated_at_receipt_total",
            "source" => self.name.clone(),
            "reason" => reason
        )
        .increment(1);
    }

    pub fn ignored(&self, reason: Ignore) {
        self.update(|c| *c.ignored.entry(reason.as_str()).or_default() += 1);
        metrics::counter!(
            "meshscope_mqtt_ignored_total",
            "source" => self.name.clone(),
            "reason" => reason.as_str()
        )
        .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_shows_the_healthz_view() {
        let reg = Liveness::new(["b", "a"]);
        assert!(!reg.is_empty());
        let a = reg.source("a");
        a.set_connected(true);
        a.received(100);
        a.received(105);
        a.stored(1, 105);
        a.rejected(Reject::BadHex, 2);
        a.rejected(Reject::NotJson, 1);
        a.ignored(Ignore::OtherTopic);
        let snap = reg.snapshot();
        assert_eq!(snap.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            snap["a"],
            SourceLiveness {
                connected: true,
                last_receipt_unix: Some(105),
                last_message_unix: Some(105),
                messages: 1,
                rejected: 3,
                stalled: None,
                last_error: None,
                dated_at_receipt: Default::default(),
            }
        );
        assert!(!snap["b"].connected && snap["b"].last_receipt_unix.is_none());
        let c = reg.counters("a").unwrap();
        assert_eq!(
            (c.received, c.connects, c.ignored["other_topic"]),
            (2, 1, 1)
        );
        assert_eq!(c.rejected["bad_hex"], 2);
        assert!(Liveness::default().is_empty());
    }
}
