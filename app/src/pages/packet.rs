//! One packet: its header and payload decoded, and every sighting with
//! the observer, reception and the path it came over.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::PacketDetail;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::table::{esc, facts, heading, hops, loaded, num, table, Cell, Loaded};
use crate::pages::route::{named_path, route};

fn render(d: PacketDetail) -> String {
    let p = d.packet;
    let mut out = heading(1, &format!("{} packet", p.kind));
    let mut header = vec![
        ("Hash", p.hash.clone()),
        ("Route", p.route.clone()),
        ("Version", p.payload_version.to_string()),
        ("Path", hops(&p.path)),
        ("First seen", short_time(&p.first_seen)),
        ("Sightings", thousands(p.observation_count)),
    ];
    if let Some(codes) = &p.transport_codes {
        header.push(("Transport codes", codes.join(" ")));
    }
    out.push_str(&facts(&header));
    out.push_str(&heading(2, "Payload"));
    let fields: Vec<(&str, String)> = p
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    out.push_str(&facts(&fields));
    out.push_str(&heading(2, "Sightings"));
    let drawn = route(&d.observations);
    let rows = d
        .observations
        .into_iter()
        .map(|o| {
            let who = o
                .observer_name
                .clone()
                .or_else(|| o.observer_id.clone())
                .unwrap_or_else(|| "unknown observer".into());
            vec![
                Cell::Two(who, o.observer_id.unwrap_or_default()),
                Cell::Text(o.iata.unwrap_or_else(|| "—".into())),
                Cell::Text(short_time(&o.timestamp)),
                Cell::Num(num(o.snr)),
                Cell::Num(num(o.rssi)),
                if o.resolved_path.len() == o.path.len() && !o.path.is_empty() {
                    Cell::Html(named_path(&o.resolved_path))
                } else {
                    Cell::Mono(hops(&o.path))
                },
            ]
        })
        .collect();
    out.push_str(&table(
        "packet-sightings",
        &["Observer", "Region", "Heard", "#SNR", "#RSSI", "Path"],
        rows,
    ));
    if let Some((i, svg)) = drawn {
        out.push_str(&heading(2, "Route"));
        out.push_str(&svg);
        out.push_str(&format!(
            "<p><a href=\"/map?packet={}&amp;sighting={}\" data-nav>Open this route on the map</a></p>",
            esc(&p.hash),
            i + 1
        ));
    }
    out.push_str(&heading(2, "Raw"));
    out.push_str(&format!("<p class=\"mono raw\">{}</p>", esc(&p.raw_hex)));
    out
}

#[component]
pub(crate) fn Packet(hash: String) -> impl IntoView {
    let text: Loaded = RwSignal::new(None);
    spawn_local(async move {
        let url = format!(
            "/api/packets/{}",
            String::from(js_sys::encode_uri_component(&hash))
        );
        text.set(Some(get_json::<PacketDetail>(&url).await.map(render)));
    });
    loaded("this packet", text)
}
