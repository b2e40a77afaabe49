//! The root component: header with navigation, the warm-up banner, and the
//! current page. It starts the router and the live status feed, once.

use leptos::prelude::*;

use crate::components::banner::WarmupBanner;
use crate::components::link::NavLink;
use crate::live;
use crate::pages::{
    home::Home, migrations::Migrations, not_found::NotFound, observers::Observers, packets::Packets,
};
use crate::router::Router;

#[component]
pub(crate) fn App() -> impl IntoView {
    let router = Router::start();
    live::start();
    let page = move || match router.path().trim_end_matches('/') {
        "" => view! { <Home /> }.into_any(),
        "/packets" => view! { <Packets /> }.into_any(),
        "/migrations" => view! { <Migrations /> }.into_any(),
        "/observers" => view! { <Observers /> }.into_any(),
        _ => view! { <NotFound /> }.into_any(),
    };
    view! {
        <header class="top">
            <NavLink href="/">
                <span class="brand">"meshscope"</span>
            </NavLink>
            <nav class="main-nav" aria-label="Pages">
                <NavLink href="/packets">"Packets"</NavLink>
                <NavLink href="/observers">"Observers"</NavLink>
                <NavLink href="/migrations">"Migrations"</NavLink>
            </nav>
        </header>
        <main>{page}</main>
        <WarmupBanner />
    }
}
