//! API keys: a validated newtype and a constant-time check of the
//! `Authorization: Bearer <key>` or `X-API-Key: <key>` header.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// A configured API key. Only its SHA-256 is kept, so comparisons take the
/// same time whatever the presented key's length or content.
#[derive(Clone)]
pub struct ApiKey([u8; 32]);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// Why a configured key is refused (the key itself is never shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("API key must be 8 to 256 characters long")]
    Length,
    #[error("API key must be visible ASCII without spaces")]
    Characters,
}

impl ApiKey {
    /// Keys are 8-256 visible ASCII characters.
    pub fn parse(s: &str) -> Result<ApiKey, KeyError> {
        if s.len() < 8 || s.len() > 256 {
            return Err(KeyError::Length);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::Characters);
        }
        Ok(ApiKey(Sha256::digest(s.as_bytes()).into()))
    }

    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&digest).into()
    }
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Ingest: open when no key is configured, else the key is required.
pub(crate) fn check_if_configured(
    key: Option<&ApiKey>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    match key {
        None => Ok(()),
        Some(k) => check(k, headers),
    }
}

/// Operator controls: refused outright (403) when no key is configured.
pub(crate) fn check_required(key: Option<&ApiKey>, headers: &HeaderMap) -> Result<(), ApiError> {
    match key {
        None => Err(ApiError::Forbidden(
            "this server has no API key configured, so changes are disabled; \
             start it with --api-key or MESHSCOPE_API_KEY"
                .into(),
        )),
        Some(k) => check(k, headers),
    }
}

fn check(key: &ApiKey, headers: &HeaderMap) -> Result<(), ApiError> {
    match presented(headers) {
        None => Err(ApiError::Unauthorized(
            "API key required: send Authorization: Bearer <key> or X-API-Key: <key>".into(),
        )),
        Some(p) if key.matches(p) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("API key is not valid".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_validation() {
        let k = ApiKey::parse("secret-key-1").unwrap();
        let mut h = HeaderMap::new();
        assert!(check(&k, &h).is_err());
        h.insert("authorization", "Bearer secret-key-1".parse().unwrap());
        assert!(check(&k, &h).is_ok());
        h.insert("authorization", "Bearer secret-key-2".parse().unwrap());
        assert!(check(&k, &h).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "secret-key-1".parse().unwrap());
        assert!(check(&k, &h).is_ok());
        assert!(ApiKey::parse("short").is_err());
        assert!(ApiKey::parse("has space in it").is_err());
        assert!(matches!(
            check_required(None, &h),
            Err(ApiError::Forbidden(_))
        ));
        assert!(check_if_configured(None, &HeaderMap::new()).is_ok());
    }
}
