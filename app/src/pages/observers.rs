//! Observers: every observer with its region, last sighting and packet count.

use leptos::prelude::*;
use shared::api::ObserverRow;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::message::{load_error, loading, muted};
use crate::components::table::{table, Cell};
use crate::refresh;

#[component]
pub(crate) fn Observers() -> impl IntoView {
    let list = RwSignal::new(None::<Result<Vec<ObserverRow>, String>>);
    refresh::every(15_000, move || async move {
        list.set(Some(get_json::<Vec<ObserverRow>>("/api/observers").await));
    });
    view! {
        <h1>"Observers"</h1>
        {move || match list.get() {
            None => loading(),
            Some(Err(e)) => load_error("observers", &e),
            Some(Ok(l)) if l.is_empty() => muted("No observers have reported yet."),
            Some(Ok(l)) => {
                let rows = l
                    .into_iter()
                    .map(|o| {
                        vec![
                            Cell::Two(o.name.clone().unwrap_or_else(|| o.id.clone()), o.id),
                            Cell::Text(o.iata.unwrap_or_else(|| "—".into())),
                            Cell::Text(o.last_seen.as_deref().map(short_time).unwrap_or_else(|| "never".into())),
                            Cell::Num(thousands(o.packet_count)),
                        ]
                    })
                    .collect();
                table("observers-table", &["Observer", "Region", "Last seen", "#Packets"], rows)
            }
        }}
    }
}
