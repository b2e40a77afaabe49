//! The live migration status every page shares: one `EventSource` on
//! `/api/events`, with a fallback to polling `/api/healthz` when the stream
//! is unavailable, plus a one-second clock for the banner's time rules.
//!
//! Everything here is created once, by the root component, and torn down in
//! its `on_cleanup`: re-rendering pages never adds listeners or timers.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::Healthz;
use shared::banner::{banner, poll_interval_ms, Banner, HealthRead};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

use crate::api::get_json;
use crate::storage;

/// With no event (not even a heartbeat, sent every 15 s) for this long, the
/// stream is treated as unavailable and the dashboard polls instead.
const STREAM_SILENCE_MS: f64 = 40_000.0;

/// Shared through context; every field is a cheap `Copy` handle. The clock
/// the banner's time rules read (`now_ms`) stays private to this module.
#[derive(Clone, Copy)]
pub(crate) struct Live {
    /// The latest healthz, or why it could not be had; `None` before the first answer.
    pub(crate) health: RwSignal<Option<Result<Healthz, String>>>,
    /// Failures the operator has acknowledged (persisted in localStorage).
    pub(crate) dismissed: RwSignal<BTreeSet<String>>,
    /// The banner computed from the three above.
    pub(crate) banner: Memo<Banner>,
}

impl Live {
    pub(crate) fn dismiss(&self, key: String) {
        self.dismissed.update(|d| {
            d.insert(key);
        });
        self.dismissed.with_untracked(storage::save_dismissed);
    }

    /// What a page built from `job`'s work says while it runs
    /// (`shared::migration::building_note`); tracked.
    pub(crate) fn building_note(&self, job: &str, what: &str) -> Option<String> {
        self.health.with(|h| {
            h.as_ref()
                .and_then(|h| h.as_ref().ok())
                .and_then(|h| h.async_migrations.as_deref())
                .and_then(|infos| shared::migration::building_note(infos, job, what))
        })
    }
}

pub(crate) fn use_live() -> Live {
    expect_context::<Live>()
}

fn now() -> f64 {
    js_sys::Date::now()
}

async fn fetch_health() -> Result<Healthz, String> {
    get_json::<Healthz>("/api/healthz").await
}

/// The open stream and the callbacks it holds; dropping the callbacks
/// without closing the stream would leave JavaScript calling freed closures.
struct Stream {
    source: EventSource,
    _callbacks: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

impl Stream {
    fn close(&self) {
        self.source.close();
    }
}

/// Starts the live status feed and provides it as context. Call once.
pub(crate) fn start() -> Live {
    let health = RwSignal::new(None::<Result<Healthz, String>>);
    let now_ms = RwSignal::new(now() as i64);
    let dismissed = RwSignal::new(storage::load_dismissed());
    let banner = Memo::new(move |_| {
        let now = now_ms.get();
        dismissed.with(|d| {
            health.with(|h| match h {
                None => Banner::default(),
                Some(Ok(h)) => banner(HealthRead::Ok(h), now, d),
                Some(Err(_)) => banner(HealthRead::Failed, now, d),
            })
        })
    });
    let live = Live {
        health,
        dismissed,
        banner,
    };
    provide_context(live);

    let alive = Arc::new(AtomicBool::new(true));
    // When the last event arrived (ms), and whether we have fallen back to polling.
    let last_event = Rc::new(Cell::new(now()));
    let polling = Rc::new(Cell::new(false));
    let stream = StoredValue::new_local(open_stream(live, &last_event, &polling));

    // The one driver loop: ticks the clock, polls while the stream is
    // unavailable, and notices a stream that went silent.
    {
        let alive = Arc::clone(&alive);
        spawn_local(async move {
            // The first answer comes from a plain read, so the banner is right
            // even before (or without) the stream.
            health.set(Some(fetch_health().await));
            let mut next_poll = 0.0;
            while alive.load(Ordering::Relaxed) {
                TimeoutFuture::new(1_000).await;
                if !alive.load(Ordering::Relaxed) {
                    break;
                }
                let t = now();
                now_ms.set(t as i64);
                if !polling.get() && t - last_event.get() > STREAM_SILENCE_MS {
                    stream.with_value(|s| s.iter().for_each(Stream::close));
                    polling.set(true);
                }
                if polling.get() && t >= next_poll {
                    let read = fetch_health().await;
                    if !alive.load(Ordering::Relaxed) {
                        break;
                    }
                    health.set(Some(read));
                    next_poll = now() + f64::from(banner.with_untracked(poll_interval_ms));
                }
            }
        });
    }

    on_cleanup(move || {
        alive.store(false, Ordering::Relaxed);
        stream.with_value(|s| s.iter().for_each(Stream::close));
        stream.dispose();
    });
    live
}

/// Opens `/api/events`; `None` (and polling) when the browser cannot.
fn open_stream(live: Live, last_event: &Rc<Cell<f64>>, polling: &Rc<Cell<bool>>) -> Option<Stream> {
    let Ok(source) = EventSource::new("/api/events") else {
        polling.set(true);
        return None;
    };
    let mut callbacks = Vec::new();

    let seen = Rc::clone(last_event);
    let on_migrations = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        seen.set(now());
        let data = ev
            .dyn_ref::<MessageEvent>()
            .and_then(|m| m.data().as_string())
            .unwrap_or_default();
        let read = crate::api::parse::<Healthz>(&data)
            .map_err(|e| format!("/api/events: not healthz JSON: {e}"));
        live.health.set(Some(read));
    });
    let seen = Rc::clone(last_event);
    let on_heartbeat = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
        seen.set(now());
    });
    let es = source.clone();
    let fallback = Rc::clone(polling);
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
        if es.ready_state() == EventSource::CLOSED {
            // The server refused the stream (e.g. an older server without
            // /api/events): poll healthz from now on.
            fallback.set(true);
        } else {
            // The browser is reconnecting; meanwhile find out whether the
            // server is reachable at all, so the banner tells the truth.
            spawn_local(async move {
                live.health.set(Some(fetch_health().await));
            });
        }
    });
    for (name, cb) in [
        ("migrations", on_migrations),
        ("heartbeat", on_heartbeat),
        ("error", on_error),
    ] {
        if source
            .add_event_listener_with_callback(name, cb.as_ref().unchecked_ref())
            .is_err()
        {
            source.close();
            polling.set(true);
            return None;
        }
        callbacks.push(cb);
    }
    Some(Stream {
        source,
        _callbacks: callbacks,
    })
}
