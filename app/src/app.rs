//! The root component: header, navigation and the current page.

use leptos::prelude::*;

use crate::pages::home::Home;

#[component]
pub(crate) fn App() -> impl IntoView {
    view! {
        <header class="top">
            <a class="brand" href="/">"meshscope"</a>
        </header>
        <main>
            <Home />
        </main>
    }
}
