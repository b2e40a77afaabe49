//! Filter-form fields and the pager, shared by the list pages: each is one
//! view type however many pages and fields use it (smaller wasm).

use leptos::prelude::*;

/// A labelled input bound to `value`.
pub(crate) fn input(
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    placeholder: &'static str,
    value: RwSignal<String>,
) -> AnyView {
    view! {
        <label for=id>{label}</label>
        <input id=id type=kind placeholder=placeholder autocomplete="off" bind:value=value />
    }
    .into_any()
}

/// A labelled select bound to `value`: "Any" (empty) first, then
/// `options` as (value, text).
pub(crate) fn select(
    id: &'static str,
    label: &'static str,
    options: Vec<(String, String)>,
    value: RwSignal<String>,
) -> AnyView {
    let options = options
        .into_iter()
        .map(|(v, t)| view! { <option value=v>{t}</option> })
        .collect_view();
    view! {
        <label for=id>{label}</label>
        <select id=id bind:value=value>
            <option value="">"Any"</option>
            {options}
        </select>
    }
    .into_any()
}

/// Back and forward buttons of a list paged by cursor: `cursors` are the
/// ones followed from the first page (back pops one), `next` is the cursor
/// of the page after the one shown (none: it is the last); `load` reads the
/// page the last cursor names.
pub(crate) fn pager(
    back: &'static str,
    forward: &'static str,
    cursors: RwSignal<Vec<String>>,
    next: RwSignal<Option<String>>,
    load: Callback<()>,
) -> AnyView {
    let go_back = move |_| {
        cursors.update(|c| {
            c.pop();
        });
        load.run(());
    };
    let go_forward = move |_| {
        if let Some(n) = next.get_untracked() {
            cursors.update(|c| c.push(n));
            load.run(());
        }
    };
    view! {
        <nav class="pager" aria-label="Pages">
            <button disabled=move || cursors.with(Vec::is_empty) on:click=go_back>{back}</button>
            <button disabled=move || next.with(Option::is_none) on:click=go_forward>{forward}</button>
        </nav>
    }
    .into_any()
}
