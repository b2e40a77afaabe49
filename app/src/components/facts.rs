//! A list of labelled facts (`<dl>`), one view type for every detail page.

use leptos::prelude::*;

pub(crate) fn facts(rows: Vec<(String, String)>) -> AnyView {
    let rows = rows
        .into_iter()
        .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
        .collect_view();
    view! { <dl class="facts">{rows}</dl> }.into_any()
}

/// Hops as a path: `A1 → B2`, or "direct" without any.
pub(crate) fn hops(path: &[String]) -> String {
    if path.is_empty() {
        "direct (no hops)".into()
    } else {
        path.join(" → ")
    }
}

/// A number (at most 6 decimals, trailing zeros dropped) or a dash.
pub(crate) fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |x| shared::fmt::decimal(x, 6))
}

/// The role as people say it (`room` is a room server).
pub(crate) fn role_label(role: Option<&str>) -> String {
    match role {
        Some("room") => "room server".into(),
        Some(r) => r.to_string(),
        None => "unknown".into(),
    }
}
