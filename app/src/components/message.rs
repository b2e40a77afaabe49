//! One-line page messages. A failed read ("Could not load …", red, announced
//! as an alert) looks different from "Loading…" or an empty result (muted),
//! so an error never passes for an empty list.
//!
//! Each is one view type however often it is used, which keeps the wasm small.

use leptos::prelude::*;

pub(crate) fn muted(text: &str) -> AnyView {
    let text = text.to_string();
    view! { <p class="muted">{text}</p> }.into_any()
}

pub(crate) fn loading() -> AnyView {
    muted("Loading…")
}

/// `what` names the thing that could not be loaded; `err` says why.
pub(crate) fn load_error(what: &str, err: &str) -> AnyView {
    let text = format!("Could not load {what}: {err}");
    view! { <p class="error" role="alert">{text}</p> }.into_any()
}
