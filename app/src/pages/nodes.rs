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
use crate::components::form::{input, pager, select};
use crate::components::table::{loaded, muted_html, num, role_label, table, Cell, Loaded};

/// A page of nodes as HTML text: the table, or why it is empty.
fn render(p: NodesPage, first_page: bool, oldest_first: bool) -> String {
    if p.nodes.is_empty() && p.building {
        return muted_html(
            "The node list is still being built from the adverts in this file; \
             none matches yet.",
        );
    }
    if p.nodes.is_empty() {
        return muted_html(if first_page {
            "No nodes match. Nodes appear when their ADVERTs are heard."
        } else {
            "No more nodes."
        });
    }
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
                Cell::Text(
                    n.last_seen
                        .as_deref()
                        .map(short_time)
                        .unwrap_or_else(|| "never".into()),
                ),
                Cell::Num(thousands(n.advert_count)),
            ]
        })
        .collect();
    let order = if oldest_first {
        "Longest silent first."
    } else {
        "Most recently seen first."
    };
    muted_html(order)
        + &table(
            "nodes-table",
            &["Node", "Role", "Location", "Last seen", "#Adverts"],
            rows,
        )
}

#[component]
pub(crate) fn Nodes() -> impl IntoView {
    let q = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    let oldest_first = RwSignal::new(false);
    let cursors = RwSignal::new(Vec::<String>::new());
    // What the list shows, and the cursor of the page after it.
    let text: Loaded = RwSignal::new(None);
    let next = RwSignal::new(None::<String>);
    let latest = StoredValue::new(0_u32);
    let load = move || {
        let enc = |s: String| String::from(js_sys::encode_uri_component(s.trim()));
        let mut url = format!(
            "/api/nodes?limit=50&order={}",
            if oldest_first.get_untracked() {
                "asc"
            } else {
                "desc"
            }
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
                next.set(r.as_ref().ok().and_then(|p| p.cursor.clone()));
                let first_page = cursors.with_untracked(Vec::is_empty);
                let oldest = oldest_first.get_untracked();
                text.set(Some(r.map(|p| render(p, first_page, oldest))));
            }
        });
    };
    load();
    let live = crate::live::use_live();
    let building = move || {
        live.building_note("nodes_backfill_v1", "The node list")
            .or_else(|| {
                (!crate::region::current().is_empty())
                    .then(|| live.building_note("node_regions_v1", "The node list of this region"))
                    .flatten()
            })
    };
    let apply = move |ev: SubmitEvent| {
        ev.prevent_default();
        cursors.set(Vec::new());
        load();
    };
    view! {
        <h1>"Nodes"</h1>
        <form class="filters" on:submit=apply>
            {input("n-q", "Search", "search", "name or key prefix", q)}
            {select(
                "n-role",
                "Role",
                shared::packet::ROLES
                    .into_iter()
                    .map(|r| (r.to_string(), role_label(Some(r))))
                    .collect(),
                role,
            )}
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
                    "Reverse order"
                </button>
            </div>
        </form>
        {move || building().map(|n| view! { <p class="notice" role="status" id="nodes-building">{n}</p> })}
        {loaded("nodes", text)}
        {pager("‹ Previous", "Next ›", cursors, next, Callback::new(move |()| load()))}
    }
}
