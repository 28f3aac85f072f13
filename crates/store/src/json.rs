//! JSON values in a [`KvStore`]: what the systems' materialized views store, and the error
//! that says whether a failure may pass.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{KvStore, StoreError};

/// Why a view read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A stored value did not parse or breaks an invariant (names the namespace).
    #[error("corrupt stored value in {0}")]
    Corrupt(String),
}

impl ViewError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ViewError::Store(e) if e.is_transient())
    }
}

/// The value under `key` in `namespace`, parsed; `None` if absent.
pub async fn get<T: DeserializeOwned>(
    kv: &dyn KvStore,
    namespace: &str,
    key: &str,
) -> Result<Option<T>, ViewError> {
    match kv.get(namespace, key).await? {
        Some(value) => decode(namespace, &value).map(Some),
        None => Ok(None),
    }
}

/// Stores `value` as JSON under `key` in `namespace`.
pub async fn put<T: Serialize>(
    kv: &dyn KvStore,
    namespace: &str,
    key: &str,
    value: &T,
) -> Result<(), ViewError> {
    kv.put(namespace, key, encode(value)?).await?;
    Ok(())
}

/// `value` as JSON bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ViewError> {
    serde_json::to_vec(value).map_err(|e| ViewError::Corrupt(e.to_string()))
}

/// Parses a value read from `namespace`.
pub fn decode<T: DeserializeOwned>(namespace: &str, value: &[u8]) -> Result<T, ViewError> {
    serde_json::from_slice(value).map_err(|e| ViewError::Corrupt(format!("{namespace}: {e}")))
}
