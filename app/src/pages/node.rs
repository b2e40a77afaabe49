//! One node: what its adverts say, who hears it and how well, its packets.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::NodeDetail;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::facts::{facts, num, role_label};
use crate::components::message::{load_error, loading, muted};
use crate::components::packet_table::packet_table;
use crate::components::table::{table, Cell};

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
                        vec![
                            Cell::Two(o.observer_name.clone().unwrap_or_else(|| o.observer_id.clone()), o.observer_id),
                            Cell::Text(o.iata.unwrap_or_else(|| "—".into())),
                            Cell::Num(num(o.best_snr)),
                            Cell::Num(num(o.best_rssi)),
                            Cell::Num(thousands(o.sightings)),
                            Cell::Text(short_time(&o.last_heard)),
                        ]
                    })
                    .collect();
                table(
                    "node-observers",
                    &["Observer", "Region", "#Best SNR", "#Best RSSI", "#Sightings", "Last heard"],
                    rows,
                )
            };
            let packets = if d.packets.is_empty() {
                muted("No packets from this node in the file.")
            } else {
                packet_table(d.packets)
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
