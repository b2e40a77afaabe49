//! Observers: every observer with its region, last sighting and packet count.

use leptos::prelude::*;
use shared::api::ObserverRow;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::table::{loaded, muted_html, table, Cell, Loaded};
use crate::refresh;

fn render(list: Vec<ObserverRow>) -> String {
    if list.is_empty() {
        return muted_html("No observers have reported yet.");
    }
    let rows = list
        .into_iter()
        .map(|o| {
            let note = o.time_note().unwrap_or_default();
            vec![
                Cell::Two(o.name.clone().unwrap_or_else(|| o.id.clone()), o.id),
                Cell::Text(o.iata.unwrap_or_else(|| "—".into())),
                Cell::Text(
                    o.last_seen
                        .as_deref()
                        .map(short_time)
                        .unwrap_or_else(|| "never".into()),
                ),
                Cell::Num(thousands(o.packet_count)),
                Cell::Text(note),
            ]
        })
        .collect();
    table(
        "observers-table",
        &["Observer", "Region", "Last seen", "#Packets", "Timestamps"],
        rows,
    )
}

#[component]
pub(crate) fn Observers() -> impl IntoView {
    let list: Loaded = RwSignal::new(None);
    refresh::every(15_000, move || async move {
        list.set(Some(
            get_json::<Vec<ObserverRow>>("/api/observers")
                .await
                .map(render),
        ));
    });
    view! {
        <h1>"Observers"</h1>
        {loaded("observers", list)}
    }
}
