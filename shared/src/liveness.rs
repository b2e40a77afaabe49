//! Banner rule for live-ingest sources (MQTT brokers): which sources deserve
//! a warning line, computed from `GET /api/healthz`'s `ingest_liveness` map.
//!
//! The rule, per source:
//! - connected and the last stored packet is more than [`SILENT_AFTER_SECS`]
//!   old: "No packets from <source> in N min" (N in whole minutes, rounded
//!   down, so 5 min 1 s says "5 min");
//! - connected but no packet stored since the server started: "No packets
//!   from <source> yet". There is no start time to measure silence from, and
//!   this is exactly the case of a subscription to the wrong topic, so it is
//!   shown at once rather than never; on a live network it clears within
//!   seconds of start;
//! - not connected: "Not connected to <source>" — a different problem (the
//!   broker is down or unreachable), so it never reads as "No packets";
//!   followed by ": <why>" when the server knows why (`lastError`, e.g. a
//!   TLS certificate it does not trust);
//! - storing its messages fails (`stalled`): "Cannot store packets from
//!   <source>: <error> — holding them at the broker and retrying", whatever
//!   else holds: the messages are safe, but not stored yet.
//!
//! A last packet time in the future (clock skew) counts as fresh.

use std::collections::BTreeMap;

use crate::api::SourceLiveness;

/// A connected source silent for longer than this gets a banner line.
pub const SILENT_AFTER_SECS: i64 = 5 * 60;

/// Banner lines for `sources` at `now_unix` (seconds), in source-name order.
pub fn banner_lines(sources: &BTreeMap<String, SourceLiveness>, now_unix: i64) -> Vec<String> {
    sources
        .iter()
        .filter_map(|(name, s)| line_for(name, s, now_unix))
        .collect()
}

fn line_for(name: &str, s: &SourceLiveness, now_unix: i64) -> Option<String> {
    if let Some(err) = &s.stalled {
        return Some(format!(
            "Cannot store packets from {name}: {err} — holding them at the broker and retrying"
        ));
    }
    if !s.connected {
        return Some(match &s.last_error {
            Some(why) => format!("Not connected to {name}: {why}"),
            None => format!("Not connected to {name}"),
        });
    }
    match s.last_message_unix {
        None => Some(format!("No packets from {name} yet")),
        Some(last) => {
            let silent = now_unix.saturating_sub(last);
            (silent > SILENT_AFTER_SECS)
                .then(|| format!("No packets from {name} in {} min", silent / 60))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(connected: bool, last_message_unix: Option<i64>) -> BTreeMap<String, SourceLiveness> {
        BTreeMap::from([(
            "broker".to_string(),
            SourceLiveness {
                connected,
                last_receipt_unix: last_message_unix,
                last_message_unix,
                messages: 1,
                rejected: 0,
                stalled: None,
                last_error: None,
                dated_at_receipt: Default::default(),
            },
        )])
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn exactly_five_minutes_is_not_silent_yet() {
        assert!(banner_lines(&one(true, Some(NOW - 300)), NOW).is_empty());
        assert!(banner_lines(&one(true, Some(NOW - 10)), NOW).is_empty());
    }

    #[test]
    fn just_over_five_minutes_is_reported_in_whole_minutes() {
        assert_eq!(
            banner_lines(&one(true, Some(NOW - 301)), NOW),
            ["No packets from broker in 5 min"]
        );
        assert_eq!(
            banner_lines(&one(true, Some(NOW - 3600)), NOW),
            ["No packets from broker in 60 min"]
        );
    }

    #[test]
    fn disconnected_source_is_not_reported_as_silent() {
        let lines = banner_lines(&one(false, Some(NOW - 3600)), NOW);
        assert_eq!(lines, ["Not connected to broker"]);
        assert!(!lines[0].contains("No packets"));
    }

    #[test]
    fn disconnected_source_says_why_when_known() {
        let mut m = one(false, None);
        m.get_mut("broker").unwrap().last_error = Some("TLS handshake failed".into());
        assert_eq!(
            banner_lines(&m, NOW),
            ["Not connected to broker: TLS handshake failed"]
        );
    }

    #[test]
    fn a_stalled_source_says_so_whatever_else_holds() {
        for (connected, last) in [
            (true, Some(NOW - 10)),
            (false, None),
            (true, Some(NOW - 900)),
        ] {
            let mut m = one(connected, last);
            m.get_mut("broker").unwrap().stalled = Some("the database disk is full".into());
            assert_eq!(
                banner_lines(&m, NOW),
                ["Cannot store packets from broker: the database disk is full — holding them at the broker and retrying"]
            );
        }
    }

    #[test]
    fn connected_source_that_never_delivered_says_yet() {
        assert_eq!(
            banner_lines(&one(true, None), NOW),
            ["No packets from broker yet"]
        );
    }

    #[test]
    fn future_timestamp_counts_as_fresh_and_order_is_by_name() {
        assert!(banner_lines(&one(true, Some(NOW + 900)), NOW).is_empty());
        let mut m = one(true, Some(NOW - 600));
        m.insert(
            "a-first".into(),
            SourceLiveness {
                connected: false,
                last_receipt_unix: None,
                last_message_unix: None,
                messages: 0,
                rejected: 0,
                stalled: None,
                last_error: None,
                dated_at_receipt: Default::default(),
            },
        );
        assert_eq!(
            banner_lines(&m, NOW),
            [
                "Not connected to a-first",
                "No packets from broker in 10 min"
            ]
        );
    }
}
