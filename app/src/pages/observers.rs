//! Observers: every observer with its region, last sighting and packet count.

use leptos::prelude::*;
use shared::api::ObserverRow;
use shared::fmt::thousands;

use crate::api::get_json;
use crate::components::message::{load_error, loading, muted};
use crate::refresh;
use shared::timefmt::short_time;

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
                        view! {
                            <tr>
                                <td data-label="Observer">
                                    {o.name.clone().unwrap_or_else(|| o.id.clone())}
                                    <div class="muted mono small">{o.id}</div>
                                </td>
                                <td data-label="Region">{o.iata.unwrap_or_else(|| "—".into())}</td>
                                <td data-label="Last seen">{o.last_seen.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                                <td data-label="Packets" class="num">{thousands(o.packet_count)}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <div class="table-wrap">
                        <table class="rows">
                            <thead>
                                <tr>
                                    <th>"Observer"</th>
                                    <th>"Region"</th>
                                    <th>"Last seen"</th>
                                    <th class="num">"Packets"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }
                .into_any()
            }
        }}
    }
}
