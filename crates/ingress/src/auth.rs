//! API keys for event producers: `Authorization: Bearer <key>` on every write route.
//!
//! Settings hold only SHA-256 digests of the keys. API keys are long random tokens, so a fast
//! hash is enough (a slow password hash protects low-entropy secrets; these have none to
//! protect), and it keeps the check cheap on every request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One accepted key, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// Who holds the key (appears in logs and in the `created_by` of events).
    pub name: String,
    /// Hex SHA-256 of the key (`printf %s KEY | sha256sum`).
    pub sha256: String,
}

/// The accepted keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    entries: Vec<([u8; 32], String)>,
}

/// The caller a request was authenticated as; handlers read it from request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

impl ApiKeys {
    /// Parses the configured digests; an entry that is not 64 hex digits is an error.
    pub fn new(entries: &[ApiKeyEntry]) -> Result<Self, String> {
        let entries = entries
            .iter()
            .map(|entry| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(entry.sha256.trim(), &mut digest).map_err(|e| {
                    format!(
                        "api key {:?}: sha256 must be 64 hex digits: {e}",
                        entry.name
                    )
                })?;
                Ok((digest, entry.name.clone()))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { entries })
    }

    /// The name of the holder of `key`, if it is accepted.
    pub fn holder(&self, key: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.entries
            .iter()
            .find(|(known, _)| constant_time_eq(known, &digest))
            .map(|(_, name)| name.as_str())
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Hex SHA-256 of `key`, the form settings keep.
pub fn digest_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Middleware: 401 unless the request carries an accepted bearer key; on success the handler
/// finds a [`Caller`] in the request extensions.
pub async fn require_api_key(
    State(keys): State<Arc<ApiKeys>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(presented) = presented else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing Authorization: Bearer <api key>",
        ));
    };
    let Some(holder) = keys.holder(presented) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown API key",
        ));
    };
    request.extensions_mut().insert(Caller(holder.to_string()));
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_keys() {
        let keys = ApiKeys::new(&[ApiKeyEntry {
            name: "dev".into(),
            sha256: digest_hex("secret-key"),
        }])
        .unwrap();
        assert_eq!(keys.holder("secret-key"), Some("dev"));
        assert_eq!(keys.holder("secret-kez"), None);
        assert_eq!(keys.holder(""), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn rejects_malformed_digests() {
        let bad = ApiKeys::new(&[ApiKeyEntry {
            name: "x".into(),
            sha256: "abc".into(),
        }]);
        assert!(bad.unwrap_err().contains("64 hex digits"));
    }
}
