//! One task pair per broker: a connection loop that polls the MQTT client
//! and a consumer that validates messages and hands them to the writer.
//!
//! Delivery: subscriptions are QoS 1 on a persistent session (clean session
//! off, a stable client id), and a message is acknowledged to the broker
//! only after the writer has committed it (or it was refused). A message in
//! flight when meshscope stops or the connection drops is therefore
//! delivered again, and the store's dedup merges the repeat; messages
//! published while meshscope was away are queued by the broker (within its
//! own limits: mosquitto's `max_queued_messages`, 1000 by default).
//!
//! Backpressure: the loop hands messages over a bounded channel; when the
//! writer queue is full, `Writer::ingest` waits, the consumer stops taking,
//! the channel fills, and the loop stops reading the socket, so the broker
//! holds the rest. Nothing is dropped on our side.
//!
//! Store failures: a message is acknowledged only once stored or
//! deliberately refused. When storing fails with a condition that clears by
//! itself (a full disk, the write lock held by another process), the batch
//! stays unacknowledged and is retried with backoff (0.1 s doubling to 15 s)
//! until it is stored, while the source shows as stalled with the error. Any
//! other store error is retried a few times, then message by message, and a
//! message that still fails is refused (`store_failed`) so one poisoned
//! message cannot hold up the source for good.
//!
//! Size: a message larger than [`MAX_MESSAGE_BYTES`] is refused unparsed
//! (`too_large`) and acknowledged, so the broker does not deliver it again
//! at every reconnect. The transport accepts packets up to the MQTT maximum,
//! so no message can break the connection by its size.
//!
//! Acknowledgements go through a third task with an unbounded queue of
//! packet ids (4 bytes each). They must not be sent by the consumer itself:
//! the MQTT client sends them from the connection loop, one per turn, while
//! a turn may read ten messages, and brokers do not all cap unacknowledged
//! deliveries (mosquitto 2.0 sent thousands ahead in our measurements). A
//! consumer waiting on a full acknowledgement queue, while the loop waits on
//! the consumer's full channel, would stall for good; the ack task's queue
//! only grows during a burst and drains as soon as the socket is quiet.
//!
//! Batching: the consumer takes whatever has arrived (up to [`BATCH`]
//! messages), validates each on its own — so one bad message never refuses
//! good ones — and sends all packets as one ingest request.

use crate::backoff::Backoff;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode,
};
use rusqlite::Connection;
use shared::timefmt::format_unix_secs;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::liveness::{Liveness, SourceHandle};
use super::payload::{parse_message, Parsed, Reject, StatusUpdate, MAX_MESSAGE_BYTES};
use super::{MqttSource, Transport};
use crate::clock::now_secs;
use crate::ingest::Sighting;
use crate::ratelimit::warn_limited;
use crate::writer::{WriteError, Writer};

/// Most messages in one writer request.
pub(crate) const BATCH: usize = 512;
/// Messages received but not yet taken by the consumer.
const CHANNEL: usize = 1024;
/// Payload bytes received but not yet stored and acknowledged, per source:
/// with the 256 KiB message limit, what bounds the messages a source holds;
/// when full, the loop stops reading the socket and the broker holds the
/// rest (its messages stay unacknowledged). The transport still reads one
/// packet whole before the size rule can refuse it ([`MAX_INCOMING`]), so
/// one oversized message costs its size once, briefly.
const IN_FLIGHT_BYTES: usize = 8 * 1024 * 1024;
/// Requests (acks, subscriptions) waiting for the connection loop. Larger
/// than everything the consumer can hold (channel plus one batch), so an
/// ack never waits on a loop that is itself waiting on the consumer.
const REQUESTS: usize = 4 * CHANNEL;
/// First wait before reconnecting; doubled after each failure.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// A connection that lasted this long resets the backoff; a broker that
/// accepts and then drops us at once is retried ever more slowly.
const STABLE: Duration = Duration::from_secs(10);
/// How long shutdown waits for the consumer to store what it holds.
const DRAIN: Duration = Duration::from_secs(5);
/// Incoming packet size limit of the transport: the MQTT maximum. A packet
/// over rumqttc's limit breaks the connection, and on a persistent session
/// it would come back after every reconnect, so the size rule is applied to
/// the payload instead ([`MAX_MESSAGE_BYTES`]), where it can be refused.
const MAX_INCOMING: usize = 268_435_455;
/// First wait before storing a batch again after a failure; doubled per try.
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest wait between tries.
const RETRY_MAX: Duration = Duration::from_secs(15);
/// Tries of a batch that fails with an error that does not clear by itself,
/// before it is stored message by message.
const PERMANENT_TRIES: u32 = 3;

/// What the connection loop hands the consumer, in receipt order.
enum Incoming {
    /// A message, with its share of [`IN_FLIGHT_BYTES`] (freed once it is
    /// stored or refused).
    Message {
        publish: Publish,
        _share: tokio::sync::OwnedSemaphorePermit,
    },
    /// Over [`MAX_MESSAGE_BYTES`]: only what is needed to refuse and
    /// acknowledge it (its payload is dropped at once).
    TooLarge {
        pkid: u16,
        qos: QoS,
        topic: String,
        bytes: usize,
    },
}

impl Incoming {
    fn ack(&self) -> (u16, QoS) {
        match self {
            Incoming::Message { publish: p, .. } => (p.pkid, p.qos),
            Incoming::TooLarge { pkid, qos, .. } => (*pkid, *qos),
        }
    }
}

/// The running subscribers; [`Handle::shutdown`] stops them.
pub struct Handle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Handle {
    /// Stops every source: stores what has been received, acknowledges it,
    /// disconnects. Call before the writer shuts down.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "MQTT subscriber task failed");
            }
        }
    }
}

/// Starts one subscriber per source. `db` only seeds the client ids.
pub fn start(
    sources: &[MqttSource],
    db: &std::path::Path,
    writer: &Arc<Writer>,
    liveness: &Liveness,
) -> Handle {
    let (stop, _) = watch::channel(false);
    let tasks = sources
        .iter()
        .map(|src| {
            let client_id = src.client_id(db);
            tracing::info!(source = %src.name, broker = %broker_label(src),
                client_id = %client_id, topics = ?src.topics, "starting MQTT ingest");
            if let Some(tls) = src.transport.tls() {
                if tls.settings.insecure_skip_verify {
                    tracing::warn!(source = %src.name, broker = %broker_label(src),
                        "insecure_skip_verify is on: the broker's TLS certificate is NOT \
                         checked, so anyone on the network path can impersonate the broker \
                         and feed this source; use ca_file instead");
                }
                if let Some(w) = &tls.system_roots_warning {
                    tracing::warn!(source = %src.name, error = %w,
                        "could not load all of the system's trusted certificates; \
                         ca_file is trusted regardless");
                }
            }
            tokio::spawn(run_source(
                src.clone(),
                client_id,
                writer.clone(),
                liveness.source(&src.name),
                stop.subscribe(),
            ))
        })
        .collect();
    Handle { stop, tasks }
}

/// `scheme://host:port` (and the path of a WebSocket), for logs.
fn broker_label(src: &MqttSource) -> String {
    match src.transport.path() {
        Some(path) => format!("{}{path}", host_port(src)),
        None => host_port(src),
    }
}

/// `scheme://host:port`, with an IPv6 host in brackets.
fn host_port(src: &MqttSource) -> String {
    let host = if src.host.contains(':') {
        format!("[{}]", src.host)
    } else {
        src.host.clone()
    };
    format!("{}://{host}:{}", src.transport.scheme(), src.port)
}

pub(crate) fn options(src: &MqttSource, client_id: String) -> MqttOptions {
    // Over WebSocket the client takes host, port and path from a URL.
    let addr = match src.transport.path() {
        None => src.host.clone(),
        Some(_) => broker_label(src),
    };
    let mut o = MqttOptions::new(client_id, addr, src.port);
    let tls =
        |client: &super::tls::TlsClient| rumqttc::TlsConfiguration::Rustls(client.config.clone());
    o.set_transport(match &src.transport {
        Transport::Tcp => rumqttc::Transport::Tcp,
        Transport::Tls(t) => rumqttc::Transport::Tls(tls(t)),
        Transport::Ws { .. } => rumqttc::Transport::Ws,
        Transport::Wss { tls: t, .. } => rumqttc::Transport::Wss(tls(t)),
    });
    o.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_INCOMING, 64 * 1024);
    if let Some(user) = &src.username {
        o.set_credentials(user.clone(), src.password.clone().unwrap_or_default());
    }
    o
}

async fn run_source(
    src: MqttSource,
    client_id: String,
    writer: Arc<Writer>,
    live: SourceHandle,
    mut stop: watch::Receiver<bool>,
) {
    let (client, mut events) = AsyncClient::new(options(&src, client_id), REQUESTS);
    let (tx, rx) = mpsc::channel::<Incoming>(CHANNEL);
    let budget = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_BYTES));
    let mut consumer = tokio::spawn(consume(
        rx,
        client.clone(),
        writer,
        live.clone(),
        src.iata_filter.clone(),
        stop.clone(),
    ));
    let broker = broker_label(&src);
    let mut backoff = Backoff::new(MIN_BACKOFF, MAX_BACKOFF);
    let mut connected_at: Option<Instant> = None;
    loop {
        let event = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            e = events.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                live.received(now_secs());
                let p = if p.payload.len() > MAX_MESSAGE_BYTES {
                    Incoming::TooLarge {
                        pkid: p.pkid,
                        qos: p.qos,
                        topic: p.topic.chars().take(200).collect(),
                        bytes: p.payload.len(),
                    }
                } else {
                    let bytes = p.payload.len().max(1) as u32;
                    let share = tokio::select! {
                        biased;
                        _ = stop.wait_for(|s| *s) => break,
                        share = budget.clone().acquire_many_owned(bytes) => match share {
                            Ok(share) => share,
                            Err(_) => break,
                        },
                    };
                    Incoming::Message {
                        publish: p,
                        _share: share,
                    }
                };
                tokio::select! {
                    biased;
                    // A message not handed over is not acknowledged either:
                    // the broker delivers it again next time.
                    _ = stop.wait_for(|s| *s) => break,
                    sent = tx.send(p) => if sent.is_err() {
                        tracing::error!(source = %src.name, "MQTT consumer stopped; closing the source");
                        break;
                    },
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected_at = Some(Instant::now());
                live.set_connected(true);
                tracing::info!(source = %src.name, %broker, session_present = ack.session_present,
                    "connected to MQTT broker");
                // Subscribing again on a resumed session is harmless, and
                // needed when the broker lost the session (no persistence).
                let filters = src
                    .topics
                    .iter()
                    .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(filters) {
                    tracing::error!(source = %src.name, error = %e, "cannot queue the MQTT subscription");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Success(_)))
                {
                    live.set_subscribed();
                }
                for (topic, code) in src.topics.iter().zip(&ack.return_codes) {
                    if matches!(code, SubscribeReasonCode::Failure) {
                        warn_limited(
                            &format!("mqtt-suback:{}:{topic}", src.name),
                            &format!(
                                "MQTT source {}: the broker refused the subscription to {topic:?} \
                                 (check its ACL for this user)",
                                src.name
                            ),
                        );
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                live.set_disconnected(describe(&e));
                if connected_at.take().is_some_and(|t| t.elapsed() >= STABLE) {
                    backoff.reset();
                }
                let wait = backoff.next_wait();
                warn_limited(
                    &format!("mqtt-conn:{}", src.name),
                    &format!(
                        "MQTT source {}: connection to {broker} failed or was lost: {}; \
                         retrying in {} ms",
                        src.name,
                        describe(&e),
                        wait.as_millis()
                    ),
                );
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    // Shutdown: let the consumer store and acknowledge what it holds, while
    // polling so those acknowledgements reach the broker. Without a
    // connection they cannot: the client is closed at once, which ends the
    // ack task instead of leaving it waiting for room.
    drop(tx);
    let mut events = connected_at.is_some().then_some(events);
    let deadline = tokio::time::sleep(DRAIN);
    tokio::pin!(deadline);
    let finished = loop {
        tokio::select! {
            biased;
            r = &mut consumer => break Some(r),
            () = &mut deadline => break None,
            e = poll_if_open(&mut events) => {
                // Messages arriving now are not acknowledged: redelivered later.
                if e.is_err() {
                    events = None;
                }
            }
        }
    };
    match finished {
        Some(Err(e)) => tracing::error!(source = %src.name, error = %e, "MQTT consumer failed"),
        Some(Ok(())) => {}
        None => {
            consumer.abort();
            tracing::warn!(source = %src.name, "MQTT consumer did not finish in time; \
                unacknowledged messages will be delivered again at the next start");
        }
    }
    if let Some(mut ev) = events {
        disconnect(&client, &mut ev).await;
    }
    live.set_connected(false);
    tracing::info!(source = %src.name, "MQTT ingest stopped");
}

async fn poll_if_open(events: &mut Option<EventLoop>) -> Result<Event, ConnectionError> {
    match events {
        Some(ev) => ev.poll().await,
        None => std::future::pending().await,
    }
}

/// Sends DISCONNECT (so the broker keeps the session without waiting for a
/// keep-alive timeout) and flushes it, briefly.
async fn disconnect(client: &AsyncClient, events: &mut EventLoop) {
    if client.try_disconnect().is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// A connection failure in words a user can act on: a TLS failure says so,
/// whichever layer (TLS, WebSocket, I/O) reported it.
fn describe(e: &ConnectionError) -> String {
    if let Some(t) = super::tls::tls_cause(e) {
        return super::tls::describe_tls(t);
    }
    match e {
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection ({code:?}); check username and password")
        }
        other => other.to_string(),
    }
}

async fn consume(
    mut rx: mpsc::Receiver<Incoming>,
    client: AsyncClient,
    writer: Arc<Writer>,
    live: SourceHandle,
    iata_filter: Option<Vec<String>>,
    stop: watch::Receiver<bool>,
) {
    let (ack_tx, ack_rx) = mpsc::unbounded_channel::<(u16, QoS)>();
    let acker = tokio::spawn(acknowledge(ack_rx, client));
    let mut batch: Vec<Incoming> = Vec::with_capacity(BATCH);
    let store = Store {
        writer,
        live: live.clone(),
        stop,
    };
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let now = now_secs();
        let mut sightings = Vec::new();
        let mut statuses = Vec::new();
        for m in &batch {
            let p = match m {
                Incoming::Message { publish: p, .. } => p,
                Incoming::TooLarge { topic, bytes, .. } => {
                    live.rejected(Reject::TooLarge, 1);
                    warn_limited(
                        &format!("mqtt-reject:{}:too_large", live.name()),
                        &format!(
                            "MQTT source {}: refused a message of {bytes} bytes on {topic} \
                             (the limit is {MAX_MESSAGE_BYTES} bytes); acknowledged so it is \
                             not delivered again",
                            live.name()
                        ),
                    );
                    continue;
                }
            };
            let (parsed, cut) = parse_message(&p.topic, &p.payload, iata_filter.as_deref(), now);
            for field in cut {
                live.truncated(field);
            }
            match parsed {
                Parsed::Packet(s, at_receipt) => {
                    if let Some(why) = at_receipt {
                        live.dated_at_receipt(&s.observer, why);
                    }
                    sightings.push(*s);
                }
                Parsed::Status(s) => statuses.push(s),
                Parsed::Ignored(why) => live.ignored(why),
                Parsed::Rejected(r) => {
                    live.rejected(r.reason, 1);
                    warn_limited(
                        &format!("mqtt-reject:{}:{}", live.name(), r.reason.as_str()),
                        &format!(
                            "MQTT source {}: refused a message on {}: {r}",
                            live.name(),
                            p.topic
                        ),
                    );
                }
            }
        }
        let stored = store.packets(sightings, now).await && store.statuses(statuses, now).await;
        if !stored {
            // Stopping while storing fails: nothing of this batch is
            // acknowledged, so the broker delivers it again next time.
            break;
        }
        // In receipt order, as MQTT requires; refused messages too, or the
        // broker would send them again forever.
        for m in batch.drain(..) {
            let _ = ack_tx.send(m.ack());
        }
    }
    // Hand every acknowledgement to the client before reporting done, so
    // shutdown sends them ahead of DISCONNECT.
    drop(ack_tx);
    if let Err(e) = acker.await {
        tracing::error!(source = %live.name(), error = %e, "MQTT acknowledgement task failed");
    }
}

/// Stores a source's batches, retrying until they are stored or refused.
struct Store {
    writer: Arc<Writer>,
    live: SourceHandle,
    stop: watch::Receiver<bool>,
}

impl Store {
    /// Stores `sightings` (one ingest request); false when the source is
    /// stopping before they could be stored.
    async fn packets(&self, sightings: Vec<Sighting>, now: i64) -> bool {
        if sightings.is_empty() {
            return true;
        }
        let n = sightings.len() as u64;
        let all = self
            .until_stored("packets", n, || {
                let (w, s) = (self.writer.clone(), sightings.clone());
                async move {
                    let r = w.ingest(s, now).await?;
                    Ok(r.accepted)
                }
            })
            .await;
        match all {
            Some(Ok(accepted)) => {
                self.live.stored(accepted, now);
                true
            }
            None => false,
            // A batch that keeps failing for a reason of its own: store its
            // messages one by one, so only the bad ones are refused.
            Some(Err(_)) => {
                for s in sightings {
                    let one = self
                        .until_stored("a packet", 1, || {
                            let (w, s) = (self.writer.clone(), s.clone());
                            async move { Ok(w.ingest(vec![s], now).await?.accepted) }
                        })
                        .await;
                    match one {
                        Some(Ok(accepted)) => self.live.stored(accepted, now),
                        Some(Err(e)) => self.refuse(1, "packet", &e),
                        None => return false,
                    }
                }
                true
            }
        }
    }

    /// Applies status reports (one transaction); false when stopping first.
    async fn statuses(&self, statuses: Vec<StatusUpdate>, now: i64) -> bool {
        if statuses.is_empty() {
            return true;
        }
        let n = statuses.len() as u64;
        let res = self
            .until_stored("status reports", n, || {
                let (w, s) = (self.writer.clone(), statuses.clone());
                async move {
                    let notice = w.foreign_notice();
                    w.exec(move |conn| apply_status(conn, &s, now, &notice))
                        .await?;
                    Ok(0)
                }
            })
            .await;
        match res {
            Some(Ok(_)) => {
                self.live.status_applied(n);
                true
            }
            Some(Err(e)) => {
                self.refuse(n, "status reports", &e);
                true
            }
            None => false,
        }
    }

    /// Runs `attempt` until it succeeds (`Some(Ok)`), fails
    /// [`PERMANENT_TRIES`] times with an error that does not clear by itself
    /// (`Some(Err)`), or the source stops (`None`). Transient errors are
    /// retried for as long as they last, with the source shown as stalled.
    async fn until_stored<F, Fut>(
        &self,
        what: &str,
        n: u64,
        attempt: F,
    ) -> Option<Result<u64, WriteError>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<u64, WriteError>>,
    {
        let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
        let mut permanent = 0;
        let mut stop = self.stop.clone();
        loop {
            let error = match attempt().await {
                Ok(v) => {
                    self.live.set_stalled(None);
                    return Some(Ok(v));
                }
                Err(e @ WriteError::Stopped(_)) => {
                    // The writer is gone: nothing can be stored; leave the
                    // messages unacknowledged.
                    tracing::error!(source = %self.live.name(), error = %e, "MQTT ingest cannot store any more");
                    return None;
                }
                Err(e) => e,
            };
            // A full disk or a lock held elsewhere clears by itself.
            let transient = error.whole_database();
            let wait = backoff.next_wait();
            warn_limited(
                &format!("mqtt-store:{}", self.live.name()),
                &format!(
                    "MQTT source {}: could not store {n} {what} ({error}); they stay \
                     unacknowledged and are tried again in {} ms",
                    self.live.name(),
                    wait.as_millis()
                ),
            );
            if transient {
                self.live.set_stalled(Some(error.to_string()));
            } else {
                permanent += 1;
                if permanent >= PERMANENT_TRIES {
                    return Some(Err(error));
                }
            }
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return None,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn refuse(&self, n: u64, what: &str, e: &WriteError) {
        self.live.rejected(Reject::StoreFailed, n);
        warn_limited(
            &format!("mqtt-store-refused:{}", self.live.name()),
            &format!(
                "MQTT source {}: refused {n} {what} that could not be stored after retries: {e}",
                self.live.name()
            ),
        );
    }
}

/// Sends acknowledgements in order. Waiting here (the client's request queue
/// is full) never holds up the consumer.
async fn acknowledge(mut rx: mpsc::UnboundedReceiver<(u16, QoS)>, client: AsyncClient) {
    let mut ids = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut ids, BATCH).await > 0 {
        for (pkid, qos) in ids.drain(..) {
            // Only the id and QoS matter to an acknowledgement.
            let mut p = Publish::new("", qos, Vec::new());
            p.pkid = pkid;
            if client.ack(&p).await.is_err() {
                // The connection loop has ended: the broker delivers the
                // unacknowledged messages again, and dedup merges them.
                return;
            }
        }
    }
}

/// Applies status reports to the observers table in one transaction; an
/// observer not seen before gets its row. A field the report lacks keeps its
/// stored value.
pub(crate) fn apply_status(
    conn: &mut Connection,
    updates: &[StatusUpdate],
    now_secs: i64,
    foreign: &crate::db::marks::Notice,
) -> Result<(), WriteError> {
    let now_text = format_unix_secs(now_secs);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    crate::db::marks::check(&tx, foreign)?;
    for u in updates {
        // An "offline" report (a last will) must not move last_seen forward.
        let seen = (!u.offline).then_some(now_text.as_str());
        crate::ingest::upsert_observer(
            &tx,
            &crate::ingest::ObserverUpdate {
                id: &u.observer,
                name: u.name.as_deref(),
                iata: u.iata.as_deref(),
                seen_at: seen,
                model: u.model.as_deref(),
                firmware: u.firmware.as_deref(),
                client_version: u.client_version.as_deref(),
                radio: u.radio.as_deref(),
                packet_at: None,
                battery_mv: u.battery_mv,
                uptime_secs: u.uptime_secs,
                noise_floor: u.noise_floor,
            },
            &now_text,
        )?;
    }
    crate::db::marks::record(&tx)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_creates_then_updates_keeping_missing_fields() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::schema::upgrade(&mut conn, std::path::Path::new(":memory:")).unwrap();
        let first = StatusUpdate {
            observer: "ab".into(),
            iata: Some("SEA".into()),
            name: Some("Roof".into()),
            model: Some("T-Beam".into()),
            battery_mv: Some(4000),
            ..Default::default()
        };
        let notice = crate::db::marks::Notice::default();
        apply_status(&mut conn, &[first], 1_000, &notice).unwrap();
        let later = StatusUpdate {
            observer: "ab".into(),
            firmware: Some("1.9".into()),
            battery_mv: Some(3900),
            offline: true,
            ..Default::default()
        };
        apply_status(&mut conn, &[later], 2_000, &notice).unwrap();
        let row: (String, String, String, String, i64, String) = conn
            .query_row(
                "SELECT name, iata, model, firmware, battery_mv, last_seen FROM observers",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            row,
            (
                "Roof".into(),
                "SEA".into(),
                "T-Beam".into(),
                "1.9".into(),
                3900,
                format_unix_secs(1_000)
            )
        );
    }
}
