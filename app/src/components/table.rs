//! Tables and fact lists, written as HTML text with every value escaped and
//! put on the page in one `inner_html`.
//!
//! Why text and not `view!` trees: each distinct view tree is its own
//! compiled code (build, rebuild, mount, unmount), and a dashboard of
//! tables paid for each column of each table; the wasm went past its
//! budget. A table here is one string builder whatever its columns, and
//! every read-only block of a page is the same one view type ([`html`]).
//!
//! Links inside (`<a data-nav>`) switch pages without reloading: one click
//! handler on the block asks the router, as `NavLink` does.

use std::fmt::Write;

use leptos::ev::MouseEvent;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::router::use_router;

/// `s` with `& < > " '` escaped, for text and attribute values alike.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One cell's content.
pub(crate) enum Cell {
    Text(String),
    /// Right-aligned, for numbers.
    Num(String),
    Mono(String),
    /// A main line and a muted monospace line under it (a name and its id).
    Two(String, String),
    /// A link to another page (`href`, text), with an optional muted line.
    Link(String, String, Option<String>),
    /// Markup built by this module's builders (values already escaped).
    Html(String),
}

fn sub(out: &mut String, s: &str) {
    let _ = write!(out, "<div class=\"muted mono small\">{}</div>", esc(s));
}

/// A table with headers `head` (a `#` prefix right-aligns the column, as
/// numbers are); each row has one cell per header.
pub(crate) fn table(id: &str, head: &[&str], rows: Vec<Vec<Cell>>) -> String {
    let mut out = format!(
        "<div class=\"table-wrap\"><table class=\"rows\" id=\"{}\"><thead><tr>",
        esc(id)
    );
    for h in head {
        match h.strip_prefix('#') {
            Some(l) => out.push_str(&format!("<th class=\"num\">{}</th>", esc(l))),
            None => out.push_str(&format!("<th>{}</th>", esc(h))),
        }
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (c, h) in row.into_iter().zip(head) {
            let label = esc(h.trim_start_matches('#'));
            let class = match &c {
                Cell::Num(_) => " class=\"num\"",
                Cell::Mono(_) | Cell::Link(_, _, None) => " class=\"mono\"",
                _ => "",
            };
            let _ = write!(out, "<td data-label=\"{label}\"{class}>");
            match c {
                Cell::Text(s) | Cell::Num(s) | Cell::Mono(s) => out.push_str(&esc(&s)),
                Cell::Html(h) => out.push_str(&h),
                Cell::Two(a, b) => {
                    out.push_str(&esc(&a));
                    sub(&mut out, &b);
                }
                Cell::Link(href, text, b) => {
                    let _ = write!(
                        out,
                        "<a href=\"{}\" data-nav>{}</a>",
                        esc(&href),
                        esc(&text)
                    );
                    if let Some(b) = b {
                        sub(&mut out, &b);
                    }
                }
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A list of labelled facts (`<dl>`).
pub(crate) fn facts(rows: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (k, v) in rows {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    out.push_str("</dl>");
    out
}

/// A heading, escaped.
pub(crate) fn heading(level: u8, text: &str) -> String {
    format!("<h{level}>{}</h{level}>", esc(text))
}

/// HTML text built by this module (values escaped) as a block of the page;
/// its `data-nav` links go through the router.
pub(crate) fn html(markup: String) -> AnyView {
    let router = use_router();
    let click = move |ev: MouseEvent| {
        if ev.button() != 0 || ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key() {
            return;
        }
        let link = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("a[data-nav]").ok().flatten());
        if let Some(href) = link.and_then(|a| a.get_attribute("href")) {
            ev.prevent_default();
            router.navigate(&href);
        }
    };
    view! { <div class="block" inner_html=markup on:click=click></div> }.into_any()
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

pub(crate) use shared::packet::role_label;

/// What a read-only block of a page shows: nothing yet, why it could not
/// be read, or its HTML (from this module's builders).
pub(crate) type Loaded = RwSignal<Option<Result<String, String>>>;

/// The block for `text`: "Loading…", the error (as an alert, never as an
/// empty list), or the HTML. One view type for every such block.
pub(crate) fn loaded(what: &'static str, text: Loaded) -> impl IntoView {
    move || match text.get() {
        None => crate::components::message::loading(),
        Some(Err(e)) => crate::components::message::load_error(what, &e),
        Some(Ok(h)) => html(h),
    }
}

/// A muted one-line message as HTML text (an empty list, say).
pub(crate) fn muted_html(text: &str) -> String {
    format!("<p class=\"muted\">{}</p>", esc(text))
}
