//! Live: every sighting as meshscope stores it (`/api/live`), newest first,
//! narrowed by the page's region and a payload type; pause keeps the list
//! still (new sightings are counted, and shown on resume).

use leptos::prelude::*;
use shared::api::{LiveMissed, LivePacket};
use shared::timefmt::short_time;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

use crate::components::form::select;
use crate::components::table::{esc, muted_html, num, table, Cell};
use crate::pages::route::named_path;

/// Sightings the page keeps.
const KEEP: usize = 200;

fn render(list: &[LivePacket], waiting: usize, missed: u64, paused: bool) -> String {
    let mut out = String::new();
    if paused {
        out.push_str(&muted_html(&format!(
            "Paused: {waiting} new sightings held; resume to show them."
        )));
    }
    if missed > 0 {
        out.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{missed} sightings were not sent to this page: it fell behind the feed.</p>"
        ));
    }
    if list.is_empty() {
        out.push_str(&muted_html(
            "Waiting for packets: each sighting stored from now on appears here.",
        ));
        return out;
    }
    let rows = list
        .iter()
        .map(|p| {
            vec![
                Cell::Text(short_time(&p.heard_at)),
                Cell::Link(
                    format!("/packets/{}", p.hash),
                    p.kind.clone(),
                    Some(p.hash.clone()),
                ),
                Cell::Two(
                    p.observer_name
                        .clone()
                        .unwrap_or_else(|| p.observer_id.clone()),
                    p.iata.clone().unwrap_or_else(|| "—".into()),
                ),
                Cell::Num(num(p.snr)),
                Cell::Num(num(p.rssi)),
                Cell::Html(match &p.sender {
                    Some(n) => format!(
                        "from <a href=\"/nodes/{}\" data-nav>{}</a>; {}",
                        esc(&n.public_key),
                        esc(n.name.as_deref().unwrap_or("(no name)")),
                        named_path(&p.path)
                    ),
                    None => named_path(&p.path),
                }),
            ]
        })
        .collect();
    out + &table(
        "live-table",
        &["Heard", "Packet", "Observer", "#SNR", "#RSSI", "Path"],
        rows,
    )
}

struct Feed {
    source: EventSource,
    _callbacks: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

#[component]
pub(crate) fn Live() -> impl IntoView {
    let kind = RwSignal::new(String::new());
    let shown = RwSignal::new(Vec::<LivePacket>::new());
    let held = RwSignal::new(Vec::<LivePacket>::new());
    let missed = RwSignal::new(0_u64);
    let paused = RwSignal::new(false);
    let failed = RwSignal::new(None::<String>);
    let feed = StoredValue::new_local(None::<Feed>);
    let open = move || {
        feed.update_value(|f| {
            if let Some(old) = f.take() {
                old.source.close();
            }
        });
        shown.set(Vec::new());
        held.set(Vec::new());
        missed.set(0);
        let mut url = String::from("/api/live");
        let t = kind.get_untracked();
        if !t.is_empty() {
            url.push_str(&format!("?type={t}"));
        }
        let url = crate::region::narrowed(&url);
        let Ok(source) = EventSource::new(&url) else {
            failed.set(Some("this browser cannot open the live feed".into()));
            return;
        };
        let on_packet = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            let data = ev
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
                .unwrap_or_default();
            match crate::api::parse::<LivePacket>(&data) {
                Ok(p) => {
                    failed.set(None);
                    let target = if paused.get_untracked() { held } else { shown };
                    target.update(|l| {
                        l.insert(0, p);
                        l.truncate(KEEP);
                    });
                }
                Err(e) => failed.set(Some(format!("/api/live: unexpected event: {e}"))),
            }
        });
        let on_missed = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            let data = ev
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
                .unwrap_or_default();
            if let Ok(m) = crate::api::parse::<LiveMissed>(&data) {
                missed.update(|n| *n += m.count);
            }
        });
        let es = source.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            failed.set(Some(if es.ready_state() == EventSource::CLOSED {
                "the server refused the live feed (see its answer to /api/live)".into()
            } else {
                "the live feed was interrupted; reconnecting…".into()
            }));
        });
        let mut callbacks = Vec::new();
        for (name, cb) in [
            ("packet", on_packet),
            ("missed", on_missed),
            ("error", on_error),
        ] {
            let _ = source.add_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
            callbacks.push(cb);
        }
        feed.set_value(Some(Feed {
            source,
            _callbacks: callbacks,
        }));
    };
    open();
    on_cleanup(move || {
        feed.update_value(|f| {
            if let Some(old) = f.take() {
                old.source.close();
            }
        });
    });
    let toggle = move |_| {
        if paused.get_untracked() {
            let mut waiting = held.get_untracked();
            held.set(Vec::new());
            shown.update(|l| {
                waiting.append(l);
                waiting.truncate(KEEP);
                *l = waiting;
            });
        }
        paused.update(|p| *p = !*p);
    };
    let types = [
        "ADVERT", "TXT_MSG", "GRP_TXT", "ACK", "PATH", "REQ", "RESPONSE", "TRACE",
    ]
    .into_iter()
    .map(|t| (t.to_string(), t.to_string()))
    .collect();
    let body = move || {
        let html = shown.with(|l| render(l, held.with(Vec::len), missed.get(), paused.get()));
        view! {
            {move || failed.get().map(|e| crate::components::message::load_error("the live feed", &e))}
            {crate::components::table::html(html)}
        }
    };
    view! {
        <h1>"Live"</h1>
        <form class="filters" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); open(); }>
            {select("l-type", "Type", types, kind)}
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <button type="button" id="live-pause" class="secondary" on:click=toggle>
                    {move || if paused.get() { "Resume" } else { "Pause" }}
                </button>
            </div>
        </form>
        {body}
    }
}
