//! Nodes: the network's nodes from their ADVERTs, searchable by name or
//! key, filtered by role, by last seen (newest or oldest first), paged by
//! cursor like Packets.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::NodesPage;
use shared::fmt::thousands;
use shared::timefmt::short_time;

use crate::api::get_json;
use crate::components::facts::{num, role_label};
use crate::components::table::{table, Cell};
use crate::components::message::{load_error, loading, muted};

#[component]
pub(crate) fn Nodes() -> impl IntoView {
    let q = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    let oldest_first = RwSignal::new(false);
    let cursors = RwSignal::new(Vec::<String>::new());
    let page = RwSignal::new(None::<Result<NodesPage, String>>);
    let latest = StoredValue::new(0_u32);
    let load = move || {
        let enc = |s: String| String::from(js_sys::encode_uri_component(s.trim()));
        let mut url = format!(
            "/api/nodes?limit=50&order={}",
            if oldest_first.get_untracked() { "asc" } else { "desc" }
        );
        for (k, v) in [("q", q.get_untracked()), ("role", role.get_untracked())] {
            if !v.trim().is_empty() {
                url.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        if let Some(c) = cursors.with_untracked(|c| c.last().cloned()) {
            url.push_str(&format!("&cursor={}", enc(c)));
        }
        latest.update_value(|n| *n += 1);
        let mine = latest.get_value();
        spawn_local(async move {
            let r = get_json::<NodesPage>(&url).await;
            if latest.try_get_value() == Some(mine) {
                page.set(Some(r));
            }
        });
    };
    load();
    let apply = move |ev: SubmitEvent| {
        ev.prevent_default();
        cursors.set(Vec::new());
        load();
    };
    let table = move || match page.get() {
        None => loading(),
        Some(Err(e)) => load_error("nodes", &e),
        Some(Ok(p)) if p.nodes.is_empty() => muted(if cursors.with_untracked(Vec::is_empty) {
            "No nodes match. Nodes appear when their ADVERTs are heard."
        } else {
            "No more nodes."
        }),
        Some(Ok(p)) => {
            let rows = p
                .nodes
                .into_iter()
                .map(|n| {
                    let place = match (n.lat, n.lon) {
                        (Some(_), Some(_)) => format!("{}, {}", num(n.lat), num(n.lon)),
                        _ => "—".into(),
                    };
                    vec![
                        Cell::Link(
                            format!("/nodes/{}", n.public_key),
                            n.name.clone().unwrap_or_else(|| "(no name)".into()),
                            Some(n.public_key),
                        ),
                        Cell::Text(role_label(n.role.as_deref())),
                        Cell::Text(place),
                        Cell::Text(n.last_seen.as_deref().map(short_time).unwrap_or_else(|| "never".into())),
                        Cell::Num(thousands(n.advert_count)),
                    ]
                })
                .collect();
            table("nodes-table", &["Node", "Role", "Location", "Last seen", "#Adverts"], rows)
        }
    };
    view! {
        <h1>"Nodes"</h1>
        <form class="filters" on:submit=apply>
            <label for="n-q">"Search"</label>
            <input id="n-q" type="search" placeholder="name or key prefix" bind:value=q />
            <label for="n-role">"Role"</label>
            <select id="n-role" bind:value=role>
                <option value="">"Any"</option>
                <option value="companion">"companion"</option>
                <option value="repeater">"repeater"</option>
                <option value="room">"room server"</option>
                <option value="sensor">"sensor"</option>
            </select>
            <div class="filter-actions">
                <button type="submit">"Apply"</button>
                <button
                    type="button"
                    class="secondary"
                    on:click=move |_| {
                        oldest_first.update(|o| *o = !*o);
                        cursors.set(Vec::new());
                        load();
                    }
                >
                    {move || if oldest_first.get() { "Oldest seen first" } else { "Latest seen first" }}
                </button>
            </div>
        </form>
        {table}
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
                "‹ Previous"
            </button>
            <button
                disabled=move || page.with(|p| !matches!(p, Some(Ok(p)) if p.cursor.is_some()))
                on:click=move |_| {
                    if let Some(next) = page.with_untracked(|p| match p {
                        Some(Ok(p)) => p.cursor.clone(),
                        _ => None,
                    }) {
                        cursors.update(|c| c.push(next));
                        load();
                    }
                }
            >
                "Next ›"
            </button>
        </nav>
    }
}
