//! Any path the dashboard does not know.

use leptos::prelude::*;

use crate::components::link::NavLink;

#[component]
pub(crate) fn NotFound() -> impl IntoView {
    view! {
        <h1>"Page not found"</h1>
        <p>"There is no such page. " <NavLink href="/">"Back to the overview"</NavLink></p>
    }
}
