//! The warm-up banner shown above every page. It only renders what
//! `shared::banner` decides; all text goes in as text nodes, never markup.
//!
//! It overlays the bottom of the viewport (`position: fixed`), so appearing
//! or growing never shifts the page's layout.

use leptos::prelude::*;
use shared::banner::{Line, LineKind};

use crate::live::use_live;

#[component]
pub(crate) fn WarmupBanner() -> impl IntoView {
    let live = use_live();
    let lines = move || {
        live.banner.with(|b| {
            if b.visible() {
                b.lines.clone()
            } else {
                Vec::new()
            }
        })
    };
    view! {
        // The live region always exists (so screen readers follow it); when
        // steady it is empty, and CSS gives an empty banner no size.
        <div class="banner" role="status" aria-live="polite">
            <For each=lines key=|l: &Line| l.text.clone() let:line>
                <BannerLine line=line />
            </For>
        </div>
    }
}

#[component]
fn BannerLine(line: Line) -> impl IntoView {
    let live = use_live();
    let Line { kind, name, text } = line;
    let name = name.unwrap_or_default();
    let what = match kind {
        LineKind::Unowned { .. } => "notice",
        _ => "failure",
    };
    let (class, bar, dismiss) = match kind {
        LineKind::Unreachable | LineKind::StatusError => ("banner-line bad", None, None),
        LineKind::NotReady | LineKind::Unknown | LineKind::IngestSource => {
            ("banner-line warn", None, None)
        }
        LineKind::Progress { percent } => ("banner-line busy", Some(percent), None),
        LineKind::Paused { percent } => ("banner-line paused", Some(percent), None),
        LineKind::Throttled { percent } => ("banner-line throttled", Some(percent), None),
        LineKind::Failed { dismiss_key } | LineKind::Unowned { dismiss_key } => {
            ("banner-line bad", None, Some(dismiss_key))
        }
    };
    // The same whole percent as the line's text (floored, never 100 early).
    let bar = bar.map(|pct| {
        view! {
            <progress max="100" value=(pct.floor() as i64).to_string() aria-label=format!("{name} progress")></progress>
        }
    });
    let button = dismiss.map(|key| {
        view! {
            <button
                class="dismiss"
                aria-label=format!("Dismiss {name} {what}")
                title="Dismiss"
                on:click=move |_| live.dismiss(key.clone())
            >
                "×"
            </button>
        }
    });
    view! {
        <div class=class>
            <span class="banner-text">{text}</span>
            {bar}
            {button}
        </div>
    }
}
