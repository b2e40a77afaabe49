//! A small client-side router on `location.pathname`: links push history
//! entries, the back button (`popstate`) updates the current path. Lighter
//! than a router crate for four fixed pages.

use leptos::prelude::*;
use wasm_bindgen::JsValue;

/// The current path, shared through context.
#[derive(Clone, Copy)]
pub(crate) struct Router {
    path: RwSignal<String>,
}

fn current_path() -> String {
    location_pathname().unwrap_or_else(|| "/".into())
}

impl Router {
    /// Creates the router and its one `popstate` listener; call once, at the root.
    pub(crate) fn start() -> Router {
        let router = Router {
            path: RwSignal::new(current_path()),
        };
        let handle = window_event_listener_untyped("popstate", move |_| {
            router.path.set(current_path());
        });
        on_cleanup(move || handle.remove());
        provide_context(router);
        router
    }

    /// The current path (tracked).
    pub(crate) fn path(&self) -> String {
        self.path.get()
    }

    /// Switches to `to` (a path, perhaps with a query); the region filter
    /// stays on as pages switch.
    pub(crate) fn navigate(&self, to: &str) {
        let path = to.split('?').next().unwrap_or(to);
        let region = crate::region::query();
        let url = match to.split_once('?') {
            None => format!("{to}{region}"),
            Some(_) if region.is_empty() || to.contains("iata=") => to.to_string(),
            Some(_) => format!("{to}&{}", region.trim_start_matches('?')),
        };
        if self.path.get_untracked() == path && !to.contains('?') {
            return;
        }
        if let Ok(history) = window().history() {
            let _ = history.push_state_with_url(&JsValue::NULL, "", Some(&url));
        }
        self.path.set(path.to_string());
        window().scroll_to_with_x_and_y(0.0, 0.0);
    }
}

pub(crate) fn use_router() -> Router {
    expect_context::<Router>()
}
