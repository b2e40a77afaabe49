//! Home: stat cards from `/api/stats` and the latest packets, both re-read
//! every few seconds without reloading the page.

use leptos::prelude::*;
use shared::api::{PacketsPage, Stats};
use shared::fmt::thousands;

use crate::api::get_json;
use crate::components::packet_table::packet_rows;
use crate::components::table::{esc, loaded, muted_html, Loaded};
use crate::refresh;

const LATEST: usize = 15;

#[component]
pub(crate) fn Home() -> impl IntoView {
    let stats: Loaded = RwSignal::new(None);
    let latest: Loaded = RwSignal::new(None);
    refresh::every(5_000, move || async move {
        let path = format!("/api/packets?limit={LATEST}&order=desc");
        stats.set(Some(
            get_json::<Stats>("/api/stats").await.map(|s| cards(&s)),
        ));
        let page = get_json::<PacketsPage>(&path).await;
        latest.set(Some(page.map(|p| {
            if p.packets.is_empty() {
                muted_html("No packets stored yet.")
            } else {
                packet_rows(p.packets)
            }
        })));
    });

    view! {
        <h1>"Network overview"</h1>
        {loaded("stats", stats)}
        <h2>"Latest packets"</h2>
        {loaded("packets", latest)}
    }
}

/// The stat cards; a total still being counted (a file from before the
/// maintained counts) reads "counting…", never a zero.
fn cards(s: &Stats) -> String {
    let mut out = String::from("<section class=\"cards\">");
    for (label, value) in [
        ("Packets", s.total_transmissions),
        ("Sightings", s.total_observations),
        ("Observers", Some(s.total_observers)),
        ("Last hour", Some(s.packets_last_hour)),
        ("Last 24 h", Some(s.packets_last24h)),
    ] {
        let (class, shown) = match value {
            Some(n) => ("card-value", thousands(n)),
            // Narrowed to a region: totals are not kept per region.
            None if !s.iata.is_empty() => ("card-value", "—".to_string()),
            None => ("card-value counting", "counting…".to_string()),
        };
        out.push_str(&format!(
            "<div class=\"card\"><div class=\"{class}\">{shown}</div><div class=\"card-label\">{}</div></div>",
            esc(label)
        ));
    }
    out.push_str("</section>");
    if !s.iata.is_empty() {
        out.push_str(&muted_html(&format!(
            "Narrowed to {}: observers of the region, and packets they heard. \
             Totals are kept for the whole network only.",
            s.iata.join(", ")
        )));
    }
    out
}
