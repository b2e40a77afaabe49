//! A table of packets (transmissions), shared by Home and Packets.

use leptos::prelude::*;
use shared::api::PacketRow;
use shared::fmt::thousands;
use shared::packet::payload_label;
use shared::timefmt::short_time;

use crate::components::link::NavLink;

#[component]
pub(crate) fn PacketTable(rows: Vec<PacketRow>) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|p| {
            let kind = payload_label(p.payload_type);
            let last = match &p.last_seen {
                Some(t) => short_time(t),
                None => "not backfilled yet".into(),
            };
            view! {
                <tr>
                    <td data-label="Type">{kind}</td>
                    <td data-label="Hash" class="mono">
                        <NavLink href=format!("/packets/{}", p.hash)>{p.hash}</NavLink>
                    </td>
                    <td data-label="Observations" class="num">{thousands(p.observation_count)}</td>
                    <td data-label="First seen">{short_time(&p.first_seen)}</td>
                    <td data-label="Last seen">{last}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="rows">
                <thead>
                    <tr>
                        <th>"Type"</th>
                        <th>"Hash"</th>
                        <th class="num">"Observations"</th>
                        <th>"First seen"</th>
                        <th>"Last seen"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
