//! meshscope dashboard entry point: mounts the root component.

// `#[component]` expands to `pub` items; in a binary crate nothing is reachable anyway.
#![allow(unreachable_pub)]

mod api;
mod app;
mod components;
mod live;
mod pages;
mod refresh;
mod router;
mod storage;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
