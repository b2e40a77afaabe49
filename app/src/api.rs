//! Fetching the server's JSON API. A failed request and an empty answer are
//! different results: errors carry a message for the operator.

use serde::de::DeserializeOwned;

pub(crate) async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let resp = gloo_net::http::Request::get(path)
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    if !resp.ok() {
        let status = resp.status();
        let msg = resp
            .json::<shared::api::ErrorBody>()
            .await
            .map(|b| b.error)
            .unwrap_or_else(|_| resp.status_text());
        return Err(format!("{path}: HTTP {status}: {msg}"));
    }
    resp.json::<T>()
        .await
        .map_err(|e| format!("{path}: unexpected answer: {e}"))
}
