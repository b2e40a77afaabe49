//! Fetching the server's JSON API. A failed request and an empty answer are
//! different results: errors carry a message for the operator.
//!
//! Calls `fetch` through web-sys directly (rather than an HTTP crate) to keep
//! the wasm small; the request code exists once, whatever the payload type.

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use shared::api::ErrorBody;
use shared::migration::{Control, MigrationInfo};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestInit, Response};

/// An HTTP answer: status, status text and body.
struct Answer {
    status: u16,
    status_text: String,
    body: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's `{"error"}` message, else the status text.
    fn error(&self) -> String {
        parse::<ErrorBody>(&self.body)
            .map(|b| b.error)
            .unwrap_or_else(|_| self.status_text.clone())
    }
}

/// Decodes JSON text with the browser's `JSON.parse`, then into `T`; the
/// error says what did not fit.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let value = js_sys::JSON::parse(text).map_err(|e| format!("not JSON: {}", js_message(&e)))?;
    serde_wasm_bindgen::from_value(value).map_err(|e| e.to_string())
}

fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "network error".into())
}

async fn fetch(method: &str, path: &str, api_key: Option<&str>) -> Result<Answer, String> {
    let unreachable = |e: JsValue| format!("cannot reach the server: {}", js_message(&e));
    let window = web_sys::window().ok_or("no browser window")?;
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(key) = api_key {
        let headers = Headers::new().map_err(unreachable)?;
        headers
            .set("Authorization", &format!("Bearer {key}"))
            .map_err(|_| "the API key contains characters a header cannot carry".to_string())?;
        init.set_headers(&headers);
    }
    let resp: Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(unreachable)?
        .unchecked_into();
    let body = JsFuture::from(resp.text().map_err(unreachable)?)
        .await
        .map_err(unreachable)?
        .as_string()
        .unwrap_or_default();
    Ok(Answer {
        status: resp.status(),
        status_text: resp.status_text(),
        body,
    })
}

/// GETs `path`: the body of a 2xx answer, else a message. Boxed, so the
/// request's state machine exists once in the wasm rather than inside the
/// future of every caller of [`get_json`].
fn get_body(path: String) -> Pin<Box<dyn Future<Output = Result<String, String>>>> {
    Box::pin(async move {
        let a = fetch("GET", &path, None).await?;
        if a.ok() {
            Ok(a.body)
        } else {
            Err(format!("{path}: HTTP {}: {}", a.status, a.error()))
        }
    })
}

/// GETs `path`, narrowed to the page's region where the endpoint takes
/// one (`region::narrowed`), and decodes the JSON answer; any failure
/// becomes a message.
pub(crate) async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    get_json_as_is(&crate::region::narrowed(path)).await
}

/// [`get_json`] without the region.
pub(crate) async fn get_json_as_is<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let body = get_body(path.to_string()).await?;
    parse(&body).map_err(|e| format!("{path}: unexpected answer: {e}"))
}

/// Why an operator control was not applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ControlError {
    /// 401: the API key is missing or wrong.
    KeyRejected(String),
    /// 403: the server has no API key configured, so controls are off.
    Disabled(String),
    /// 404 / 409 / 5xx or no answer: the message says which.
    Other(String),
}

/// `POST /api/migrations/{name}/{action}` with the operator's API key.
pub(crate) async fn control(
    name: &str,
    op: Control,
    api_key: &str,
) -> Result<MigrationInfo, ControlError> {
    let path = format!(
        "/api/migrations/{}/{}",
        String::from(js_sys::encode_uri_component(name)),
        op.action()
    );
    let a = fetch("POST", &path, Some(api_key))
        .await
        .map_err(ControlError::Other)?;
    match a.status {
        200..=299 => parse::<MigrationInfo>(&a.body)
            .map_err(|e| ControlError::Other(format!("unexpected answer: {e}"))),
        401 => Err(ControlError::KeyRejected(a.error())),
        403 => Err(ControlError::Disabled(a.error())),
        status => Err(ControlError::Other(format!("HTTP {status}: {}", a.error()))),
    }
}
