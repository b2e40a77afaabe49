//! Home: stat cards from `/api/stats` and the latest packets, both re-read
//! every few seconds without reloading the page.

use leptos::prelude::*;
use shared::api::{PacketsPage, Stats};
use shared::fmt::thousands;

use crate::api::get_json;
use crate::components::message::{load_error, loading, muted};
use crate::components::packet_table::packet_table;
use crate::refresh;

const LATEST: usize = 15;

#[component]
pub(crate) fn Home() -> impl IntoView {
    let stats = RwSignal::new(None::<Result<Stats, String>>);
    let latest = RwSignal::new(None::<Result<PacketsPage, String>>);
    refresh::every(5_000, move || async move {
        let path = format!("/api/packets?limit={LATEST}&order=desc");
        stats.set(Some(get_json::<Stats>("/api/stats").await));
        latest.set(Some(get_json::<PacketsPage>(&path).await));
    });

    view! {
        <h1>"Network overview"</h1>
        {move || match stats.get() {
            None => loading(),
            Some(Err(e)) => load_error("stats", &e),
            Some(Ok(s)) => view! {
                <section class="cards">
                    <Card label="Packets" value=s.total_transmissions />
                    <Card label="Sightings" value=s.total_observations />
                    <Card label="Observers" value=Some(s.total_observers) />
                    <Card label="Last hour" value=Some(s.packets_last_hour) />
                    <Card label="Last 24 h" value=Some(s.packets_last24h) />
                </section>
            }
            .into_any(),
        }}
        <h2>"Latest packets"</h2>
        {move || match latest.get() {
            None => loading(),
            Some(Err(e)) => load_error("packets", &e),
            Some(Ok(p)) if p.packets.is_empty() => muted("No packets stored yet."),
            Some(Ok(p)) => packet_table(p.packets),
        }}
    }
}

/// A stat card; `None` while the server is still counting (a file from
/// before the maintained counts): "counting…", never a zero.
#[component]
fn Card(label: &'static str, value: Option<i64>) -> impl IntoView {
    let shown = value.map_or_else(|| "counting…".to_string(), thousands);
    view! {
        <div class="card">
            <div class="card-value" class:counting=value.is_none()>{shown}</div>
            <div class="card-label">{label}</div>
        </div>
    }
}
