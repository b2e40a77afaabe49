//! The root component: header with navigation, the warm-up banner, and the
//! current page. It starts the router and the live status feed, once.

use leptos::prelude::*;

use crate::components::banner::WarmupBanner;
use crate::components::link::NavLink;
use crate::live;
use crate::pages::{
    home::Home, live::Live, map::Map, migrations::Migrations, node::Node, nodes::Nodes,
    not_found::NotFound, observers::Observers, packet::Packet, packets::Packets,
};
use crate::region::RegionSelect;
use crate::router::Router;

#[component]
pub(crate) fn App() -> impl IntoView {
    let router = Router::start();
    live::start();
    let page = move || {
        let path = router.path();
        let path = path.trim_end_matches('/');
        match path {
            "" => view! { <Home /> }.into_any(),
            "/packets" => view! { <Packets /> }.into_any(),
            "/nodes" => view! { <Nodes /> }.into_any(),
            "/map" => view! { <Map /> }.into_any(),
            "/live" => view! { <Live /> }.into_any(),
            "/migrations" => view! { <Migrations /> }.into_any(),
            "/observers" => view! { <Observers /> }.into_any(),
            _ => {
                if let Some(hash) = path.strip_prefix("/packets/") {
                    view! { <Packet hash=hash.to_string() /> }.into_any()
                } else if let Some(key) = path.strip_prefix("/nodes/") {
                    view! { <Node key=key.to_string() /> }.into_any()
                } else {
                    view! { <NotFound /> }.into_any()
                }
            }
        }
    };
    view! {
        <header class="top">
            <NavLink href="/">
                <span class="brand">"meshscope"</span>
            </NavLink>
            <nav class="main-nav" aria-label="Pages">
                <NavLink href="/packets">"Packets"</NavLink>
                <NavLink href="/nodes">"Nodes"</NavLink>
                <NavLink href="/map">"Map"</NavLink>
                <NavLink href="/live">"Live"</NavLink>
                <NavLink href="/observers">"Observers"</NavLink>
                <NavLink href="/migrations">"Migrations"</NavLink>
            </nav>
            <div class="region-pick">
                <RegionSelect />
            </div>
        </header>
        <main>{page}</main>
        <WarmupBanner />
    }
}
