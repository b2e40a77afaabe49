//! Packets: `/api/packets` with filters (type, observer, hash prefix, time
//! range) and paging by cursor: "Older" follows the page's `nextCursor`,
//! "Newer" goes back along the cursors followed, so pages neither repeat
//! nor skip rows while new packets arrive. A total the server only
//! estimates is shown as "about".

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{ObserverRow, PacketsPage};
use shared::fmt::thousands;
use shared::packet::PAYLOAD_TYPES;
use wasm_bindgen::JsValue;

use crate::api::get_json;
use crate::components::message::{load_error, loading, muted};
use crate::components::packet_table::packet_table;

const PAGE: i64 = 50;

/// The applied filters (what the last "Apply" submitted).
#[derive(Clone, Default, PartialEq)]
struct Filters {
    kind: String,
    observer: String,
    hash: String,
    since: String,
    until: String,
}

/// A `datetime-local` value (the browser's local time) as unix seconds.
fn local_to_unix(v: &str) -> Result<Option<i64>, String> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    let ms = js_sys::Date::new(&JsValue::from_str(v)).get_time();
    if ms.is_finite() {
        Ok(Some((ms / 1000.0).floor() as i64))
    } else {
        Err(format!("\"{v}\" is not a date and time"))
    }
}

fn query(f: &Filters, cursor: Option<&str>) -> Result<String, String> {
    let enc = |s: &str| String::from(js_sys::encode_uri_component(s.trim()));
    let mut q = format!("/api/packets?limit={PAGE}&order=desc");
    if let Some(c) = cursor {
        q.push_str(&format!("&cursor={}", enc(c)));
    }
    for (k, v) in [
        ("type", &f.kind),
        ("observer", &f.observer),
        ("hash", &f.hash),
    ] {
        if !v.trim().is_empty() {
            q.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    if let Some(s) = local_to_unix(&f.since).map_err(|e| format!("From: {e}"))? {
        q.push_str(&format!("&since={s}"));
    }
    if let Some(u) = local_to_unix(&f.until).map_err(|e| format!("To: {e}"))? {
        q.push_str(&format!("&until={u}"));
    }
    Ok(q)
}

#[component]
pub(crate) fn Packets() -> impl IntoView {
    let filters = RwSignal::new(Filters::default());
    // The cursors followed from the first page: the current page is read
    // with the last one (none: the first page).
    let cursors = RwSignal::new(Vec::<String>::new());
    let page = RwSignal::new(None::<Result<PacketsPage, String>>);
    let observers = RwSignal::new(None::<Result<Vec<ObserverRow>, String>>);
    spawn_local(async move {
        observers.set(Some(get_json::<Vec<ObserverRow>>("/api/observers").await));
    });
    // Called whenever the filters or the page change; only the latest
    // request's answer is shown, however the answers arrive.
    let latest = StoredValue::new(0_u32);
    let load = move || {
        let q = filters
            .with_untracked(|f| cursors.with_untracked(|c| query(f, c.last().map(String::as_str))));
        latest.update_value(|n| *n += 1);
        let mine = latest.get_value();
        spawn_local(async move {
            let result = match q {
                Ok(q) => get_json::<PacketsPage>(&q).await,
                Err(e) => Err(e),
            };
            if latest.try_get_value() == Some(mine) {
                page.set(Some(result));
            }
        });
    };
    load();

    // Form fields, applied together on submit.
    let kind = RwSignal::new(String::new());
    let observer = RwSignal::new(String::new());
    let hash = RwSignal::new(String::new());
    let since = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());
    let apply = move |ev: SubmitEvent| {
        ev.prevent_default();
        filters.set(Filters {
            kind: kind.get_untracked(),
            observer: observer.get_untracked(),
            hash: hash.get_untracked(),
            since: since.get_untracked(),
            until: until.get_untracked(),
        });
        cursors.set(Vec::new());
        load();
    };
    let clear = move |_| {
        for s in [kind, observer, hash, since, until] {
            s.set(String::new());
        }
        filters.set(Filters::default());
        cursors.set(Vec::new());
        load();
    };

    let type_options = PAYLOAD_TYPES
        .iter()
        .map(|(_, name)| view! { <option value=*name>{*name}</option> })
        .collect_view();
    let observer_field = move || {
        match observers.get() {
        Some(Ok(list)) if !list.is_empty() => {
            let opts = list
                .into_iter()
                .map(|o| {
                    let label = match &o.name {
                        Some(n) => format!("{n} ({})", o.id),
                        None => o.id.clone(),
                    };
                    view! { <option value=o.id>{label}</option> }
                })
                .collect_view();
            view! {
                <select id="f-observer" bind:value=observer>
                    <option value="">"Any"</option>
                    {opts}
                </select>
            }
            .into_any()
        }
        // The list could not be loaded (or is empty): the id can still be typed.
        _ => view! { <input id="f-observer" type="text" placeholder="observer id" bind:value=observer /> }
            .into_any(),
    }
    };

    view! {
        <h1>"Packets"</h1>
        <form class="filters" on:submit=apply>
            <label for="f-type">"Type"</label>
            <select id="f-type" bind:value=kind>
                <option value="">"Any"</option>
                {type_options}
            </select>
            <label for="f-observer">"Observer"</label>
            {observer_field}
            <label for="f-hash">"Hash prefix"</label>
            <input id="f-hash" type="text" inputmode="latin" autocomplete="off" bind:value=hash />
            <label for="f-since">"From"</label>
            <input id="f-since" type="datetime-local" bind:value=since />
            <label for="f-until">"To"</label>
            <input id="f-until" type="datetime-local" bind:value=until />
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <button type="button" class="secondary" on:click=clear>"Clear"</button>
            </div>
        </form>
        {move || match page.get() {
            None => loading(),
            Some(Err(e)) => load_error("packets", &e),
            Some(Ok(p)) if p.packets.is_empty() => muted(
                if p.total == 0 && cursors.with_untracked(Vec::is_empty) {
                    "No packets match these filters."
                } else {
                    "No more packets."
                },
            ),
            Some(Ok(p)) => {
                let skipped = cursors.with_untracked(Vec::len) as i64 * PAGE;
                let first = skipped + 1;
                let last = skipped + p.packets.len() as i64;
                // An estimate can fall short of the rows already shown.
                let total = if p.total_estimated {
                    format!("about {}", thousands(p.total.max(last)))
                } else {
                    thousands(p.total)
                };
                view! {
                    <p class="muted" id="packets-range">{format!("{} – {} of {total}", thousands(first), thousands(last))}</p>
                    {packet_table(p.packets)}
                }.into_any()
            }
        }}
        <nav class="pager" aria-label="Pages">
            <button
                disabled=move || cursors.with(Vec::is_empty)
                on:click=move |_| {
                    cursors.update(|c| {
                        c.pop();
                    });
                    load();
                }
            >
                "‹ Newer"
            </button>
            <button
                disabled=move || {
                    page.with(|p| !matches!(p, Some(Ok(p)) if p.next_cursor.is_some()))
                }
                on:click=move |_| {
                    let next = page.with_untracked(|p| match p {
                        Some(Ok(p)) => p.next_cursor.clone(),
                        _ => None,
                    });
                    if let Some(next) = next {
                        cursors.update(|c| c.push(next));
                        load();
                    }
                }
            >
                "Older ›"
            </button>
        </nav>
    }
}
