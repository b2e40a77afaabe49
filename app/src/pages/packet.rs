//! One packet: its header and payload decoded, and every sighting with
//! the observer, reception and the path it came over.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::PacketDetail;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::facts::{facts, hops, num};
use crate::components::message::{load_error, loading};
use crate::components::table::{table, Cell};

#[component]
pub(crate) fn Packet(hash: String) -> impl IntoView {
    let detail = RwSignal::new(None::<Result<PacketDetail, String>>);
    spawn_local(async move {
        let url = format!("/api/packets/{}", String::from(js_sys::encode_uri_component(&hash)));
        detail.set(Some(get_json::<PacketDetail>(&url).await));
    });
    move || match detail.get() {
        None => loading(),
        Some(Err(e)) => load_error("this packet", &e),
        Some(Ok(d)) => {
            let p = d.packet;
            let mut header = vec![
                ("Hash".into(), p.hash.clone()),
                ("Route".into(), p.route.clone()),
                ("Version".into(), p.payload_version.to_string()),
                ("Path".into(), hops(&p.path)),
                ("First seen".into(), short_time(&p.first_seen)),
                ("Sightings".into(), thousands(p.observation_count)),
            ];
            if let Some(codes) = &p.transport_codes {
                header.push(("Transport codes".into(), codes.join(" ")));
            }
            let payload = facts(p.fields);
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
                        Cell::Mono(hops(&o.path)),
                    ]
                })
                .collect();
            let sightings = table(
                "packet-sightings",
                &["Observer", "Region", "Heard", "#SNR", "#RSSI", "Path"],
                rows,
            );
            view! {
                <h1>{format!("{} packet", p.kind)}</h1>
                {facts(header)}
                <h2>"Payload"</h2>
                {payload}
                <h2>"Sightings"</h2>
                {sightings}
                <h2>"Raw"</h2>
                <p class="mono raw">{p.raw_hex}</p>
            }
            .into_any()
        }
    }
}
