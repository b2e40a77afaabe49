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
//! holds the rest. Nothing is dropped on our side; a write that fails is
//! counted as `store_failed` and logged.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode,
};
use rusqlite::{params, Connection};
use shared::timefmt::format_unix_secs;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::liveness::{Liveness, SourceHandle};
use super::payload::{parse_message, Parsed, Reject, StatusUpdate};
use super::MqttSource;
use crate::api::now_secs;
use crate::ratelimit::warn_limited;
use crate::writer::{WriteError, Writer};

/// Most messages in one writer request.
pub const BATCH: usize = 512;
/// Messages received but not yet taken by the consumer.
const CHANNEL: usize = 1024;
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
/// Incoming packet size limit. Generous on purpose: a message over the limit
/// breaks the connection, and on a persistent session it would come back
/// after every reconnect.
const MAX_INCOMING: usize = 16 * 1024 * 1024;

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
            tracing::info!(source = %src.name, broker = %format!("{}:{}", src.host, src.port),
                client_id = %client_id, topics = ?src.topics, "starting MQTT ingest");
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

fn options(src: &MqttSource, client_id: String) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, src.host.clone(), src.port);
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
    let (tx, rx) = mpsc::channel::<Publish>(CHANNEL);
    let mut consumer = tokio::spawn(consume(
        rx,
        client.clone(),
        writer,
        live.clone(),
        src.iata_filter.clone(),
    ));
    let broker = format!("{}:{}", src.host, src.port);
    let mut backoff = MIN_BACKOFF;
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
                live.set_connected(false);
                if connected_at.take().is_some_and(|t| t.elapsed() >= STABLE) {
                    backoff = MIN_BACKOFF;
                }
                warn_limited(
                    &format!("mqtt-conn:{}", src.name),
                    &format!(
                        "MQTT source {}: connection to {broker} failed or was lost: {}; \
                         retrying in {} ms",
                        src.name,
                        describe(&e),
                        backoff.as_millis()
                    ),
                );
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
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

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection ({code:?}); check username and password")
        }
        other => other.to_string(),
    }
}

async fn consume(
    mut rx: mpsc::Receiver<Publish>,
    client: AsyncClient,
    writer: Arc<Writer>,
    live: SourceHandle,
    iata_filter: Option<Vec<String>>,
) {
    let (ack_tx, ack_rx) = mpsc::unbounded_channel::<(u16, QoS)>();
    let acker = tokio::spawn(acknowledge(ack_rx, client));
    let mut batch: Vec<Publish> = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let now = now_secs();
        let mut sightings = Vec::new();
        let mut statuses = Vec::new();
        for p in &batch {
            match parse_message(&p.topic, &p.payload, iata_filter.as_deref()) {
                Parsed::Packet(s) => sightings.push(*s),
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
        if !sightings.is_empty() {
            let n = sightings.len() as u64;
            match writer.ingest(sightings, now).await {
                Ok(r) => live.stored(r.accepted, now),
                Err(e) => store_failed(&live, n, "packets", &e),
            }
        }
        if !statuses.is_empty() {
            let n = statuses.len() as u64;
            match writer
                .exec(move |conn| apply_status(conn, &statuses, now))
                .await
            {
                Ok(()) => live.status_applied(n),
                Err(e) => store_failed(&live, n, "status reports", &e),
            }
        }
        // In receipt order, as MQTT requires; refused messages too, or the
        // broker would send them again forever.
        for p in batch.drain(..) {
            let _ = ack_tx.send((p.pkid, p.qos));
        }
    }
    // Hand every acknowledgement to the client before reporting done, so
    // shutdown sends them ahead of DISCONNECT.
    drop(ack_tx);
    if let Err(e) = acker.await {
        tracing::error!(source = %live.name(), error = %e, "MQTT acknowledgement task failed");
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

fn store_failed(live: &SourceHandle, n: u64, what: &str, e: &WriteError) {
    live.rejected(Reject::StoreFailed, n);
    warn_limited(
        &format!("mqtt-store:{}", live.name()),
        &format!(
            "MQTT source {}: could not store {n} {what}, dropped: {e}",
            live.name()
        ),
    );
}

/// Applies status reports to the observers table in one transaction; an
/// observer not seen before gets its row. A field the report lacks keeps its
/// stored value.
pub fn apply_status(
    conn: &mut Connection,
    updates: &[StatusUpdate],
    now_secs: i64,
) -> Result<(), WriteError> {
    let now_text = format_unix_secs(now_secs);
    let tx = conn.transaction()?;
    for u in updates {
        // An "offline" report (a last will) must not move last_seen forward.
        let seen = (!u.offline).then_some(now_text.as_str());
        tx.prepare_cached(
            "INSERT INTO observers (id, name, iata, first_seen, last_seen, packet_count,
                model, firmware, battery_mv, uptime_secs, noise_floor)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET
                name = COALESCE(excluded.name, observers.name),
                iata = COALESCE(excluded.iata, observers.iata),
                last_seen = COALESCE(excluded.last_seen, observers.last_seen),
                model = COALESCE(excluded.model, observers.model),
                firmware = COALESCE(excluded.firmware, observers.firmware),
                battery_mv = COALESCE(excluded.battery_mv, observers.battery_mv),
                uptime_secs = COALESCE(excluded.uptime_secs, observers.uptime_secs),
                noise_floor = COALESCE(excluded.noise_floor, observers.noise_floor)",
        )?
        .execute(params![
            u.observer,
            u.name,
            u.iata,
            now_text,
            seen,
            u.model,
            u.firmware,
            u.battery_mv,
            u.uptime_secs,
            u.noise_floor
        ])?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_creates_then_updates_keeping_missing_fields() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE observers (id TEXT PRIMARY KEY, name TEXT, iata TEXT, last_seen TEXT,
                first_seen TEXT, packet_count INTEGER DEFAULT 0, model TEXT, firmware TEXT,
                battery_mv INTEGER, uptime_secs INTEGER, noise_floor REAL)",
        )
        .unwrap();
        let first = StatusUpdate {
            observer: "ab".into(),
            iata: Some("SEA".into()),
            name: Some("Roof".into()),
            model: Some("T-Beam".into()),
            battery_mv: Some(4000),
            ..Default::default()
        };
        apply_status(&mut conn, &[first], 1_000).unwrap();
        let later = StatusUpdate {
            observer: "ab".into(),
            firmware: Some("1.9".into()),
            battery_mv: Some(3900),
            offline: true,
            ..Default::default()
        };
        apply_status(&mut conn, &[later], 2_000).unwrap();
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
