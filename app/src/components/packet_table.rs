//! A table of packets (transmissions), shared by Home, Packets and a node's
//! page; each hash links to the packet's page.

use shared::api::PacketRow;
use shared::fmt::thousands;
use shared::packet::payload_label;
use shared::timefmt::short_time;

use crate::components::table::{table, Cell};

/// The table as HTML text (see [`crate::components::table`]).
pub(crate) fn packet_rows(rows: Vec<PacketRow>) -> String {
    let rows = rows
        .into_iter()
        .map(|p| {
            let last = match &p.last_seen {
                Some(t) => short_time(t),
                None => "not backfilled yet".into(),
            };
            vec![
                Cell::Text(payload_label(p.payload_type)),
                Cell::Link(format!("/packets/{}", p.hash), p.hash, None),
                Cell::Num(thousands(p.observation_count)),
                Cell::Text(short_time(&p.first_seen)),
                Cell::Text(last),
            ]
        })
        .collect();
    table(
        "packets-table",
        &["Type", "Hash", "#Observations", "First seen", "Last seen"],
        rows,
    )
}
