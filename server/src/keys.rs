//! API keys: the two scopes (ingest, operator controls) and the key type,
//! kept only as a SHA-256 so comparisons take the same time whatever the
//! presented key. Below both the HTTP layer, which checks them, and the
//! configuration, which reads them.

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
        Ok(ApiKey(
            <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()).into(),
        ))
    }

    /// Whether `presented` is this key (constant time).
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(presented.as_bytes()).into();
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &digest[..]).into()
    }
}

/// The keys of the two scopes. A key given for both (`api_key`) covers a
/// scope that has no key of its own.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Required by `POST /api/ingest`; `None`: ingest is open.
    pub ingest: Option<ApiKey>,
    /// Required by the operator controls; `None`: controls are disabled.
    pub operator: Option<ApiKey>,
}
