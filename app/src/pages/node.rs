//! One node: what its adverts say, who hears it and how well, its packets.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::NodeDetail;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::facts::{facts, num, role_label};
use crate::components::message::{load_error, loading, muted};
use crate::components::packet_table::PacketTable;

#[component]
pub(crate) fn Node(key: String) -> impl IntoView {
    let detail = RwSignal::new(None::<Result<NodeDetail, String>>);
    spawn_local(async move {
        let url = format!("/api/nodes/{}", String::from(js_sys::encode_uri_component(&key)));
        detail.set(Some(get_json::<NodeDetail>(&url).await));
    });
    move || match detail.get() {
        None => loading(),
        Some(Err(e)) => load_error("this node", &e),
        Some(Ok(d)) => {
            let n = d.node;
            let time = |t: &Option<String>| t.as_deref().map(short_time).unwrap_or_else(|| "—".into());
            let about = facts(vec![
                ("Public key".into(), n.public_key.clone()),
                ("Role".into(), role_label(n.role.as_deref())),
                ("Location".into(), match (n.lat, n.lon) {
                    (Some(_), Some(_)) => format!("{}, {}", num(n.lat), num(n.lon)),
                    _ => "not advertised".into(),
                }),
                ("First seen".into(), time(&n.first_seen)),
                ("Last seen".into(), time(&n.last_seen)),
                ("Adverts".into(), thousands(n.advert_count)),
            ]);
            let heard = if d.observers.is_empty() {
                muted("No observer has heard its recent adverts.")
            } else {
                let rows = d
                    .observers
                    .into_iter()
                    .map(|o| {
                        view! {
                            <tr>
                                <td data-label="Observer">
                                    {o.observer_name.clone().unwrap_or_else(|| o.observer_id.clone())}
                                    <div class="muted mono small">{o.observer_id}</div>
                                </td>
                                <td data-label="Region">{o.iata.unwrap_or_else(|| "—".into())}</td>
                                <td data-label="Best SNR" class="num">{num(o.best_snr)}</td>
                                <td data-label="Best RSSI" class="num">{num(o.best_rssi)}</td>
                                <td data-label="Sightings" class="num">{thousands(o.sightings)}</td>
                                <td data-label="Last heard">{short_time(&o.last_heard)}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <div class="table-wrap">
                        <table class="rows" id="node-observers">
                            <thead>
                                <tr>
                                    <th>"Observer"</th>
                                    <th>"Region"</th>
                                    <th class="num">"Best SNR"</th>
                                    <th class="num">"Best RSSI"</th>
                                    <th class="num">"Sightings"</th>
                                    <th>"Last heard"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }
                .into_any()
            };
            let packets = if d.packets.is_empty() {
                muted("No packets from this node in the file.")
            } else {
                view! { <PacketTable rows=d.packets /> }.into_any()
            };
            view! {
                <h1>{n.name.unwrap_or_else(|| "(no name)".into())}</h1>
                {about}
                <h2>"Heard by"</h2>
                {heard}
                <h2>"Recent packets"</h2>
                {packets}
            }
            .into_any()
        }
    }
}
