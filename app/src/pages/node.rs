//! One node: what its adverts say, who hears it and how well, its packets.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::NodeDetail;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::packet_table::packet_rows;
use crate::components::table::{esc, facts, heading, loaded, num, role_label, table, Cell, Loaded};

fn render(d: NodeDetail) -> String {
    let n = d.node;
    let time = |t: &Option<String>| t.as_deref().map(short_time).unwrap_or_else(|| "—".into());
    let place = match (n.lat, n.lon) {
        (Some(_), Some(_)) => format!("{}, {}", num(n.lat), num(n.lon)),
        _ => "not advertised".into(),
    };
    let mut out = heading(1, n.name.as_deref().unwrap_or("(no name)"));
    out.push_str(&facts(&[
        ("Public key", n.public_key.clone()),
        ("Role", role_label(n.role.as_deref())),
        ("Location", place),
        ("First seen", time(&n.first_seen)),
        ("Last seen", time(&n.last_seen)),
        ("Adverts", thousands(n.advert_count)),
    ]));
    if n.lat.zip(n.lon).is_some_and(|(a, b)| a != 0.0 || b != 0.0) {
        out.push_str(&format!(
            "<p><a href=\"/map?node={}\" data-nav>Show on the map</a></p>",
            esc(&n.public_key)
        ));
    }
    out.push_str(&heading(2, "Heard by"));
    if d.observers.is_empty() {
        out.push_str("<p class=\"muted\">No observer has heard its recent adverts.</p>");
    } else {
        let rows = d
            .observers
            .into_iter()
            .map(|o| {
                vec![
                    Cell::Two(
                        o.observer_name
                            .clone()
                            .unwrap_or_else(|| o.observer_id.clone()),
                        o.observer_id,
                    ),
                    Cell::Text(o.iata.unwrap_or_else(|| "—".into())),
                    Cell::Num(num(o.best_snr)),
                    Cell::Num(num(o.best_rssi)),
                    Cell::Num(thousands(o.sightings)),
                    Cell::Text(short_time(&o.last_heard)),
                ]
            })
            .collect();
        out.push_str(&table(
            "node-observers",
            &[
                "Observer",
                "Region",
                "#Best SNR",
                "#Best RSSI",
                "#Sightings",
                "Last heard",
            ],
            rows,
        ));
    }
    out.push_str(&heading(2, "Recent packets"));
    if d.packets.is_empty() {
        out.push_str("<p class=\"muted\">No packets from this node in the file.</p>");
    } else {
        out.push_str(&packet_rows(d.packets));
    }
    out
}

#[component]
pub(crate) fn Node(key: String) -> impl IntoView {
    let text: Loaded = RwSignal::new(None);
    spawn_local(async move {
        let url = format!(
            "/api/nodes/{}",
            String::from(js_sys::encode_uri_component(&key))
        );
        text.set(Some(get_json::<NodeDetail>(&url).await.map(render)));
    });
    loaded("this node", text)
}
