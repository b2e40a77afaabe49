//! The region filter (`?iata=` in the page's URL, kept as links switch
//! pages): every list and figure the server narrows by region is fetched
//! with it; the selector in the header sets it (a reload, so the choice is
//! in the address a user bookmarks or reloads).

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::ObserverRow;

/// The API endpoints that take `iata` (lists and figures, not one item).
const REGIONAL: [&str; 5] = [
    "/api/packets?",
    "/api/nodes?",
    "/api/observers",
    "/api/stats",
    "/api/live",
];

/// The page URL's `iata` (comma-separated codes), empty for all regions.
pub(crate) fn current() -> String {
    let search = window().location().search().unwrap_or_default();
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()
        .and_then(|p| p.get("iata"))
        .unwrap_or_default()
}

/// `?iata=…` to keep on an internal link, or nothing.
pub(crate) fn query() -> String {
    let r = current();
    if r.is_empty() {
        String::new()
    } else {
        format!("?iata={}", String::from(js_sys::encode_uri_component(&r)))
    }
}

/// `path` narrowed to the current region when its endpoint takes one.
pub(crate) fn narrowed(path: &str) -> String {
    let r = current();
    if r.is_empty()
        || !REGIONAL
            .iter()
            .any(|p| path.starts_with(p) || path == p.trim_end_matches('?'))
    {
        return path.to_string();
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    format!(
        "{path}{sep}iata={}",
        String::from(js_sys::encode_uri_component(&r))
    )
}

/// The header's region selector: every region an observer reports.
#[component]
pub(crate) fn RegionSelect() -> impl IntoView {
    let regions = RwSignal::new(Vec::<String>::new());
    let chosen = current();
    spawn_local(async move {
        // All observers, whatever the current region (`narrowed` is not
        // applied: this is the list to choose from).
        if let Ok(list) = crate::api::get_json_as_is::<Vec<ObserverRow>>("/api/observers").await {
            let mut codes: Vec<String> = list
                .into_iter()
                .filter_map(|o| o.iata.map(|i| i.to_ascii_uppercase()))
                .filter(|i| !i.is_empty())
                .collect();
            codes.sort();
            codes.dedup();
            regions.set(codes);
        }
    });
    let change = move |ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        let loc = window().location();
        let search = if v.is_empty() {
            String::new()
        } else {
            format!("?iata={}", String::from(js_sys::encode_uri_component(&v)))
        };
        let _ = loc.set_search(&search);
    };
    let shown = chosen.clone();
    view! {
        <label class="region" for="region">"Region"</label>
        <select id="region" class="region" on:change=change>
            <option value="" selected=chosen.is_empty()>"All regions"</option>
            {move || {
                let mut codes = regions.get();
                // A region in the URL stays choosable before (or without)
                // observers that report it.
                if !shown.is_empty() && !codes.contains(&shown) {
                    codes.push(shown.clone());
                }
                codes
                    .into_iter()
                    .map(|c| {
                        let sel = c == shown;
                        let text = c.clone();
                        view! { <option value=c selected=sel>{text}</option> }
                    })
                    .collect_view()
            }}
        </select>
    }
}
