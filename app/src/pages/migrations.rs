//! Migrations: one row per online migration, live from the same feed as the
//! banner, with the operator controls (pause, resume, cancel, retry).
//!
//! Rows are keyed by name and their cells update in place, so a button is
//! never replaced under the pointer while progress events stream in.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::fmt::{rate, thousands};
use shared::migration::{Control, MigrationInfo, MigrationStatus};

use crate::api::{self, ControlError};
use crate::components::message::{load_error, loading, muted};
use crate::components::table::esc;
use crate::live::use_live;
use crate::storage;
use shared::timefmt::short_time;

/// A message about the last control, good or bad.
#[derive(Clone, PartialEq)]
struct Notice {
    ok: bool,
    text: String,
}

fn label(op: Control) -> &'static str {
    match op {
        Control::Pause => "Pause",
        Control::Resume => "Resume",
        Control::Cancel => "Cancel",
        Control::Retry => "Retry",
    }
}

#[component]
pub(crate) fn Migrations() -> impl IntoView {
    let live = use_live();
    let key = RwSignal::new(storage::load_api_key());
    let key_input = RwSignal::new(String::new());
    // The control the operator asked for before giving a key; run once they do.
    let waiting = RwSignal::new(None::<(String, Control)>);
    let notice = RwSignal::new(None::<Notice>);
    let busy = RwSignal::new(false);

    let run = Callback::new(move |(name, op): (String, Control)| {
        let Some(k) = key.get_untracked() else {
            notice.set(Some(Notice {
                ok: false,
                text: format!("Enter the API key to {} {name}.", op.action()),
            }));
            waiting.set(Some((name, op)));
            return;
        };
        busy.set(true);
        spawn_local(async move {
            let result = api::control(&name, op, &k).await;
            busy.set(false);
            let text = match result {
                Ok(info) => {
                    notice.set(Some(Notice {
                        ok: true,
                        text: format!("{name}: {} accepted; now {}.", op.action(), info.status.as_str()),
                    }));
                    return;
                }
                Err(ControlError::KeyRejected(msg)) => {
                    storage::save_api_key(None);
                    key.set(None);
                    waiting.set(Some((name, op)));
                    format!("The API key was rejected ({msg}). Enter the correct key.")
                }
                Err(ControlError::Disabled(msg)) => format!(
                    "Operator controls are disabled on this server ({msg}). Start meshscope with an operator key (MESHSCOPE_OPERATOR_KEY) to enable them."
                ),
                Err(ControlError::Other(msg)) => format!("Could not {} {name}: {msg}", op.action()),
            };
            notice.set(Some(Notice { ok: false, text }));
        });
    });

    let save_key = move |ev: SubmitEvent| {
        ev.prevent_default();
        let k = key_input.get_untracked().trim().to_string();
        if k.is_empty() {
            return;
        }
        storage::save_api_key(Some(&k));
        key.set(Some(k));
        key_input.set(String::new());
        notice.set(None);
        if let Some(w) = waiting.get_untracked() {
            waiting.set(None);
            run.run(w);
        }
    };
    let forget_key = move |_| {
        storage::save_api_key(None);
        key.set(None);
    };

    let key_panel = move || {
        match key.get() {
        Some(_) => view! {
            <p class="key-set">
                "API key set for this tab. "
                <button type="button" class="secondary" on:click=forget_key>"Forget key"</button>
            </p>
        }
        .into_any(),
        None => view! {
            <form class="key-form" on:submit=save_key>
                <label for="api-key">"Operator API key"</label>
                <input id="api-key" type="password" autocomplete="off" bind:value=key_input />
                <button type="submit">"Use key"</button>
                <p class="muted small">"Needed for pause, resume, cancel and retry; kept only in this tab."</p>
            </form>
        }
        .into_any(),
    }
    };

    // Names in the server's order; rows follow them by key.
    let names = Memo::new(move |_| {
        live.health.with(|h| match h {
            Some(Ok(h)) => h
                .async_migrations
                .as_ref()
                .map(|l| l.iter().map(|m| m.name.clone()).collect::<Vec<_>>()),
            _ => None,
        })
    });
    let state = move || {
        live.health.with(|h| match h {
            None => Some(loading()),
            Some(Err(e)) => Some(load_error("migration status", e)),
            // The server answered, but could not read the status itself.
            Some(Ok(h)) => match (&h.async_migrations_error, &h.async_migrations) {
                (Some(e), _) => Some(load_error("migration status", e)),
                (None, None) => Some(muted(
                    "This server does not report migration status (it predates it).",
                )),
                (None, Some(l)) if l.is_empty() => {
                    Some(muted("No online migrations are registered."))
                }
                _ => None,
            },
        })
    };

    view! {
        <h1>"Migrations"</h1>
        {key_panel}
        <p role="alert" class=move || notice.with(|n| match n {
            Some(n) if n.ok => "notice ok",
            Some(_) => "notice error",
            None => "notice",
        })>
            {move || notice.with(|n| n.as_ref().map(|n| n.text.clone()))}
        </p>
        {state}
        <div
            class="table-wrap"
            hidden=move || names.with(|n| n.as_ref().is_none_or(|n| n.is_empty()))
        >
            <table class="rows migrations">
                <thead>
                    <tr>
                        <th>"Name"</th>
                        <th>"Status"</th>
                        <th>"Progress (processed / total)"</th>
                        <th class="num">"Rate"</th>
                        <th>"ETA"</th>
                        <th>"Started / ended"</th>
                        <th class="num">"Attempts"</th>
                        <th>"Error"</th>
                        <th>"Controls"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || names.get().unwrap_or_default() key=|n| n.clone() let:name>
                        <MigrationRow name=name run=run busy=busy />
                    </For>
                </tbody>
            </table>
        </div>
    }
}

/// One cell of a migration's row: HTML text from `f` (values escaped, see
/// [`crate::components::table`]), set again whenever the record changes.
/// Every text cell is this one view type.
fn cell(
    info: Memo<Option<MigrationInfo>>,
    label: &'static str,
    class: &'static str,
    f: fn(&MigrationInfo) -> String,
) -> impl IntoView {
    view! {
        <td data-label=label class=class inner_html=move || info.with(|m| m.as_ref().map(f).unwrap_or_default())></td>
    }
}

fn status_html(m: &MigrationInfo) -> String {
    let s = m.status.as_str();
    format!(
        "<span class=\"badge badge-{s}\">{s}</span><div class=\"small muted throttle-reason\">{}</div>",
        esc(m.throttle_reason.as_deref().unwrap_or(""))
    )
}

fn progress_html(m: &MigrationInfo) -> String {
    let pct = m.whole_percent();
    format!(
        "<progress max=\"100\" value=\"{pct}\" aria-label=\"{} progress\"></progress>\
         <div class=\"small nowrap\">{pct}% · {} / {}</div>",
        esc(&m.name),
        thousands(m.rows_processed),
        thousands(m.rows_total),
    )
}

fn rate_html(m: &MigrationInfo) -> String {
    match m.status {
        MigrationStatus::Running | MigrationStatus::Throttled => {
            format!("{}/s", rate(m.rate_per_sec))
        }
        _ => "—".into(),
    }
}

fn eta_html(m: &MigrationInfo) -> String {
    m.eta_text().unwrap_or_else(|| "—".into())
}

fn times_html(m: &MigrationInfo) -> String {
    let started = m.started().map_or_else(|| "not started".into(), short_time);
    let ended = m
        .ended_at
        .as_deref()
        .map_or_else(String::new, |t| format!("ended {}", short_time(t)));
    format!(
        "<div>{}</div><div class=\"muted\">{}</div>",
        esc(&started),
        esc(&ended)
    )
}

/// A migration's row. The controls are real buttons kept in place (never
/// replaced under the pointer while progress streams in); the other cells
/// are re-set from the record.
#[component]
fn MigrationRow(
    name: String,
    run: Callback<(String, Control)>,
    busy: RwSignal<bool>,
) -> impl IntoView {
    let live = use_live();
    let row_name = name.clone();
    let info = Memo::new(move |_| {
        live.health.with(|h| match h {
            Some(Ok(h)) => h
                .async_migrations
                .iter()
                .flatten()
                .find(|m| m.name == row_name)
                .cloned(),
            _ => None,
        })
    });
    let status = Memo::new(move |_| {
        info.with(|m| m.as_ref().map_or(MigrationStatus::Unknown, |m| m.status))
    });

    let buttons = Control::ALL
        .into_iter()
        .map(|op| {
            let name = name.clone();
            let aria = format!("{} {name}", label(op));
            view! {
                <button
                    class="control"
                    aria-label=aria
                    disabled=move || busy.get() || !op.applies_to(status.get())
                    on:click=move |_| run.run((name.clone(), op))
                >
                    {label(op)}
                </button>
            }
        })
        .collect_view();

    view! {
        <tr data-migration=name>
            {cell(info, "Name", "name", |m| esc(&m.name))}
            {cell(info, "Status", "", status_html)}
            {cell(info, "Progress", "", progress_html)}
            {cell(info, "Rate", "num nowrap", rate_html)}
            {cell(info, "ETA", "nowrap", eta_html)}
            {cell(info, "Started / ended", "", times_html)}
            {cell(info, "Attempts", "num", |m| m.attempts.to_string())}
            {cell(info, "Error", "error-cell", |m| esc(m.error.as_deref().unwrap_or("")))}
            <td data-label="Controls">
                <div class="controls">{buttons}</div>
            </td>
        </tr>
    }
}
