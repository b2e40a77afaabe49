//! A migration's status as a coloured badge.

use leptos::prelude::*;
use shared::migration::MigrationStatus;

#[component]
pub(crate) fn StatusBadge(status: MigrationStatus) -> impl IntoView {
    let s = status.as_str();
    view! { <span class=format!("badge badge-{s}")>{s}</span> }
}
