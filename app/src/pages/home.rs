//! Home: stat cards from `/api/stats`.

use leptos::prelude::*;
use shared::api::Stats;

use crate::api::get_json;

#[component]
pub(crate) fn Home() -> impl IntoView {
    let stats = LocalResource::new(|| get_json::<Stats>("/api/stats"));
    view! {
        <h1>"Network overview"</h1>
        {move || match stats.get() {
            None => view! { <p class="muted">"Loading…"</p> }.into_any(),
            Some(Err(e)) => view! { <p class="error">"Could not read stats: " {e}</p> }.into_any(),
            Some(Ok(s)) => view! {
                <section class="cards">
                    <Card label="Packets" value=s.total_transmissions />
                    <Card label="Sightings" value=s.total_observations />
                    <Card label="Observers" value=s.total_observers />
                    <Card label="Last hour" value=s.packets_last_hour />
                    <Card label="Last 24 h" value=s.packets_last24h />
                </section>
            }
            .into_any(),
        }}
    }
}

#[component]
fn Card(label: &'static str, value: i64) -> impl IntoView {
    view! {
        <div class="card">
            <div class="card-value">{value}</div>
            <div class="card-label">{label}</div>
        </div>
    }
}
