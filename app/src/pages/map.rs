//! Map: the nodes that advertised a location, by role, clustered when
//! dense, each opening its node page; with `?node=KEY`, centred on that
//! node; with `?packet=HASH&sighting=N`, that sighting's route. Leaflet is loaded by this page only (`/leaflet/`,
//! bundled by `cargo xtask dist`); the tiles come from the server's
//! `map_tiles` setting, and without them the markers draw on a blank
//! background.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::live::use_live;

/// Calls `window.meshscopeMap(el, opts)` once the script has loaded.
fn draw() -> Result<(), String> {
    let win = window();
    let doc = win.document().ok_or("no document")?;
    let el = doc.get_element_by_id("map").ok_or("no map element")?;
    let f: js_sys::Function = js_sys::Reflect::get(&win, &"meshscopeMap".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("the map script did not load")?;
    let params =
        web_sys::UrlSearchParams::new_with_str(&win.location().search().unwrap_or_default())
            .map_err(|_| "cannot read the address")?;
    let opts = js_sys::Object::new();
    let set = |k: &str, v: JsValue| js_sys::Reflect::set(&opts, &k.into(), &v).map(|_| ());
    let region = crate::region::current();
    if !region.is_empty() {
        let _ = set("iata", region.into());
    }
    if let Some(k) = params.get("node") {
        let _ = set("node", k.to_ascii_lowercase().into());
    }
    if let Some(p) = params.get("packet") {
        let _ = set("packet", p.into());
        let n = params
            .get("sighting")
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let _ = set("sighting", f64::from(n - 1).into());
    }
    f.call2(&JsValue::NULL, &el, &opts)
        .map(|_| ())
        .map_err(|_| "the map could not be drawn".into())
}

/// Adds the map's styles and script to the page (once per visit).
fn load(failed: RwSignal<Option<String>>) {
    let Some(doc) = window().document() else {
        return;
    };
    if js_sys::Reflect::has(&window(), &"meshscopeMap".into()).unwrap_or(false) {
        if let Err(e) = draw() {
            failed.set(Some(e));
        }
        return;
    }
    let add = || -> Result<(), JsValue> {
        let head = doc.head().ok_or(JsValue::NULL)?;
        let css = doc.create_element("link")?;
        css.set_attribute("rel", "stylesheet")?;
        css.set_attribute("href", "/leaflet/map.css")?;
        head.append_child(&css)?;
        let script = doc.create_element("script")?;
        script.set_attribute("src", "/leaflet/map.js")?;
        let on_load = Closure::once_into_js(move || {
            if let Err(e) = draw() {
                failed.set(Some(e));
            }
        });
        script.add_event_listener_with_callback("load", on_load.unchecked_ref())?;
        let on_error = Closure::once_into_js(move || {
            failed.set(Some(
                "the map script (/leaflet/map.js) could not be loaded".into(),
            ));
        });
        script.add_event_listener_with_callback("error", on_error.unchecked_ref())?;
        head.append_child(&script)?;
        Ok(())
    };
    if add().is_err() {
        failed.set(Some("the page cannot load the map script".into()));
    }
}

#[component]
pub(crate) fn Map() -> impl IntoView {
    let failed = RwSignal::new(None::<String>);
    let live = use_live();
    let building = move || live.building_note("nodes_backfill_v1", "The map");
    request_animation_frame(move || load(failed));
    view! {
        <h1>"Map"</h1>
        {move || building().map(|n| view! { <p class="notice" role="status" id="map-building">{n}</p> })}
        {move || failed.get().map(|e| crate::components::message::load_error("the map", &e))}
        <p class="muted" id="map-status">"Loading the map…"</p>
        <div id="map" class="map"></div>
    }
}
