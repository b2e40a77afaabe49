//! Periodic re-reads for pages that show live data.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Calls `load` now and then every `every_ms` until the calling component is
/// cleaned up: one loop per mounted page, never more.
pub(crate) fn every<F, Fut>(every_ms: u32, load: F)
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    // Boxed, so the loop below is compiled once rather than once per page.
    every_boxed(every_ms, Box::new(move || Box::pin(load())));
}

type Load = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()>>>>;

fn every_boxed(every_ms: u32, load: Load) {
    let alive = Arc::new(AtomicBool::new(true));
    let running = Arc::clone(&alive);
    spawn_local(async move {
        while running.load(Ordering::Relaxed) {
            load().await;
            TimeoutFuture::new(every_ms).await;
        }
    });
    on_cleanup(move || alive.store(false, Ordering::Relaxed));
}
