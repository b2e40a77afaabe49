//! Navigation links that switch pages without reloading.

use leptos::ev::MouseEvent;
use leptos::prelude::*;

use crate::router::use_router;

#[component]
pub(crate) fn NavLink(href: &'static str, children: Children) -> impl IntoView {
    let router = use_router();
    let current = move || (router.path() == href).then_some("page");
    view! {
        <a
            href=href
            aria-current=current
            on:click=move |ev: MouseEvent| {
                // Let the browser handle new-tab / new-window clicks.
                if ev.button() == 0 && !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key()) {
                    ev.prevent_default();
                    router.navigate(href);
                }
            }
        >
            {children()}
        </a>
    }
}
