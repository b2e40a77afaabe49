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
use crate::components::form::{input, pager, select};
use crate::components::packet_table::packet_rows;
use crate::components::table::{loaded, muted_html, Loaded};

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

/// A page of packets as HTML text: the range shown and the table, or why
/// it is empty. `skipped`: rows on the pages before.
fn render(p: PacketsPage, skipped: i64) -> String {
    if p.packets.is_empty() {
        return muted_html(if p.total == 0 && skipped == 0 {
            "No packets match these filters."
        } else {
            "No more packets."
        });
    }
    let first = skipped + 1;
    let last = skipped + p.packets.len() as i64;
    // An estimate can fall short of the rows already shown.
    let total = if p.total_estimated {
        format!("about {}", thousands(p.total.max(last)))
    } else {
        thousands(p.total)
    };
    format!(
        "<p class=\"muted\" id=\"packets-range\">{} – {} of {total}</p>{}",
        thousands(first),
        thousands(last),
        packet_rows(p.packets)
    )
}

#[component]
pub(crate) fn Packets() -> impl IntoView {
    let filters = RwSignal::new(Filters::default());
    // The cursors followed from the first page: the current page is read
    // with the last one (none: the first page).
    let cursors = RwSignal::new(Vec::<String>::new());
    // What the list shows, and the cursor of the page after it.
    let text: Loaded = RwSignal::new(None);
    let next = RwSignal::new(None::<String>);
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
                next.set(result.as_ref().ok().and_then(|p| p.next_cursor.clone()));
                let skipped = cursors.with_untracked(Vec::len) as i64 * PAGE;
                text.set(Some(result.map(|p| render(p, skipped))));
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

    let type_options: Vec<(String, String)> = PAYLOAD_TYPES
        .iter()
        .map(|(_, name)| (name.to_string(), name.to_string()))
        .collect();
    let observer_field = move || match observers.get() {
        Some(Ok(list)) if !list.is_empty() => {
            let opts = list
                .into_iter()
                .map(|o| {
                    let label = match &o.name {
                        Some(n) => format!("{n} ({})", o.id),
                        None => o.id.clone(),
                    };
                    (o.id, label)
                })
                .collect();
            select("f-observer", "Observer", opts, observer)
        }
        // The list could not be loaded (or is empty): the id can still be typed.
        _ => input("f-observer", "Observer", "text", "observer id", observer),
    };

    view! {
        <h1>"Packets"</h1>
        <form class="filters" on:submit=apply>
            {select("f-type", "Type", type_options, kind)}
            {observer_field}
            {input("f-hash", "Hash prefix", "text", "", hash)}
            {input("f-since", "From", "datetime-local", "", since)}
            {input("f-until", "To", "datetime-local", "", until)}
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <button type="button" class="secondary" on:click=clear>"Clear"</button>
            </div>
        </form>
        {loaded("packets", text)}
        {pager("‹ Newer", "Older ›", cursors, next, Callback::new(move |()| load()))}
    }
}
