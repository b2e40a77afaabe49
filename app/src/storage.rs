//! Web storage: dismissed failures (localStorage, so an acknowledgement
//! survives reloads) and the operator's API key (sessionStorage, so it ends
//! with the tab). When storage is unavailable (e.g. disabled by the browser)
//! both still work in memory for the life of the page.

use std::collections::BTreeSet;

use web_sys::Storage;

const DISMISSED_KEY: &str = "meshscope.dismissedFailures";
const API_KEY_KEY: &str = "meshscope.apiKey";

fn local() -> Option<Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn session() -> Option<Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The dismissed failure keys (see `shared::banner::dismiss_key`).
pub(crate) fn load_dismissed() -> BTreeSet<String> {
    local()
        .and_then(|s| s.get_item(DISMISSED_KEY).ok().flatten())
        .and_then(|json| crate::api::parse(&json).ok())
        .unwrap_or_default()
}

pub(crate) fn save_dismissed(keys: &BTreeSet<String>) {
    let json = serde_wasm_bindgen::to_value(keys)
        .ok()
        .and_then(|v| js_sys::JSON::stringify(&v).ok())
        .and_then(|s| s.as_string());
    if let (Some(s), Some(json)) = (local(), json) {
        let _ = s.set_item(DISMISSED_KEY, &json);
    }
}

pub(crate) fn load_api_key() -> Option<String> {
    session()
        .and_then(|s| s.get_item(API_KEY_KEY).ok().flatten())
        .filter(|k| !k.is_empty())
}

pub(crate) fn save_api_key(key: Option<&str>) {
    if let Some(s) = session() {
        let _ = match key {
            Some(k) => s.set_item(API_KEY_KEY, k),
            None => s.remove_item(API_KEY_KEY),
        };
    }
}
