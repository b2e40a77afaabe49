//! Every table of rows on the dashboard, built by one function from plain
//! cells: one view type however many tables and columns there are, which
//! keeps the wasm within its budget (each distinct `view!` tree is code).

use leptos::prelude::*;

/// One cell's content.
pub(crate) enum Cell {
    Text(String),
    /// Right-aligned, for numbers.
    Num(String),
    Mono(String),
    /// A main line and a muted monospace line under it (a name and its id).
    Two(String, String),
}

fn sub(s: String) -> AnyView {
    view! { <div class="muted mono small">{s}</div> }.into_any()
}

fn cell(c: Cell, label: &'static str) -> AnyView {
    let (class, body): (&str, AnyView) = match c {
        Cell::Text(s) => ("", s.into_any()),
        Cell::Num(s) => ("num", s.into_any()),
        Cell::Mono(s) => ("mono", s.into_any()),
        Cell::Two(a, b) => ("", view! { {a} {sub(b)} }.into_any()),
    };
    view! { <td data-label=label class=class>{body}</td> }.into_any()
}

/// A table with headers `head` (a `#` prefix right-aligns the column, as
/// numbers are); each row has one cell per header.
pub(crate) fn table(
    id: &'static str,
    head: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
) -> AnyView {
    let labels = || head.iter().map(|h| h.trim_start_matches('#'));
    let ths = head
        .iter()
        .map(|h| match h.strip_prefix('#') {
            Some(l) => view! { <th class="num">{l}</th> }.into_any(),
            None => view! { <th>{*h}</th> }.into_any(),
        })
        .collect_view();
    let trs = rows
        .into_iter()
        .map(|r| {
            let tds = r
                .into_iter()
                .zip(labels())
                .map(|(c, l)| cell(c, l))
                .collect_view();
            view! { <tr>{tds}</tr> }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="rows" id=id>
                <thead>
                    <tr>{ths}</tr>
                </thead>
                <tbody>{trs}</tbody>
            </table>
        </div>
    }
    .into_any()
}
