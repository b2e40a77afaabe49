//! meshscope dashboard entry point: mounts the root component.

// `#[component]` expands to `pub` items; in a binary crate nothing is reachable anyway.
#![allow(unreachable_pub)]

mod api;
mod app;
mod components;
mod live;
mod pages;
mod refresh;
mod region;
mod router;
mod storage;

/// Panics go to the browser console with their message and location (a
/// smaller hook than `console_error_panic_hook`, which also walks the JS
/// stack; the wasm has a size budget).
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("meshscope dashboard: {info}").into());
    }));
}

fn main() {
    report_panics();
    leptos::mount::mount_to_body(app::App);
}
