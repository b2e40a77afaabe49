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

/// Back and forward buttons of a paged list.
pub(crate) fn pager(
    back: &'static str,
    forward: &'static str,
    back_disabled: Signal<bool>,
    forward_disabled: Signal<bool>,
    on_back: Callback<()>,
    on_forward: Callback<()>,
) -> AnyView {
    view! {
        <nav class="pager" aria-label="Pages">
            <button disabled=back_disabled on:click=move |_| on_back.run(())>{back}</button>
            <button disabled=forward_disabled on:click=move |_| on_forward.run(())>{forward}</button>
        </nav>
    }
    .into_any()
}
