//! [`KvStore`]: a namespaced key-value table for small materialized views.

use async_trait::async_trait;

use crate::StoreError;

/// Longest accepted key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest accepted namespace, in UTF-8 bytes.
pub const MAX_NAMESPACE_BYTES: usize = 256;
/// Largest accepted value: 1 MiB. Larger values get [`StoreError::ValueTooLarge`].
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Largest `limit` accepted by [`KvStore::list`]; page through bigger namespaces.
pub const MAX_LIST_LIMIT: usize = 1000;

/// One entry returned by [`KvStore::list`]: the key and its value.
pub type KvEntry = (String, Vec<u8>);

/// A key-value table partitioned by namespace, for materialized views that need no table of
/// their own (cursors, idempotency markers, small per-system indexes).
///
/// Namespaces and keys are non-empty UTF-8 strings (at most [`MAX_NAMESPACE_BYTES`] and
/// [`MAX_KEY_BYTES`]); values are opaque bytes of at most [`MAX_VALUE_BYTES`]. Keys are ordered
/// by their UTF-8 bytes (which is also Rust's `str` order) in every adapter.
///
/// A namespace is meant to stay small (thousands to a few hundred thousand keys): on ScyllaDB a
/// namespace is one partition. Shard a large data set over several namespaces (e.g.
/// `seen/07`) or give it a table of its own.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// The value stored under `key`, or `None`.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `value` under `key`, replacing any previous value. Idempotent.
    async fn put(&self, namespace: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError>;

    /// Stores `value` only if `key` has no value yet. Returns true if this call inserted it.
    ///
    /// Atomic: when several callers race on one key, exactly one gets `true`, and the stored
    /// value is that caller's. After a transient error, whether it was inserted is unknown.
    async fn put_if_absent(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, StoreError>;

    /// Removes `key`. Removing an absent key succeeds (idempotent).
    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError>;

    /// Up to `limit` entries of `namespace` with keys strictly after `after_key` (from the
    /// first key when `None`), in key order. A page shorter than `limit` is the last one; pass
    /// the last key returned as `after_key` to get the next page. `limit` is at most
    /// [`MAX_LIST_LIMIT`]. Each page is consistent on its own, not with the pages before it.
    async fn list(
        &self,
        namespace: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KvEntry>, StoreError>;

    /// Number of keys in `namespace`. Reads the whole namespace: meant for small ones.
    async fn count(&self, namespace: &str) -> Result<u64, StoreError>;
}

/// Rejects an empty or oversized namespace.
pub(crate) fn check_namespace(namespace: &str) -> Result<(), StoreError> {
    if namespace.is_empty() {
        return Err(StoreError::InvalidInput("namespace is empty".into()));
    }
    if namespace.len() > MAX_NAMESPACE_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "namespace of {} bytes is longer than {MAX_NAMESPACE_BYTES}",
            namespace.len()
        )));
    }
    Ok(())
}

/// Rejects a bad namespace, or an empty or oversized key.
pub(crate) fn check_key(namespace: &str, key: &str) -> Result<(), StoreError> {
    check_namespace(namespace)?;
    if key.is_empty() {
        return Err(StoreError::InvalidInput("key is empty".into()));
    }
    check_key_len(key)
}

fn check_key_len(key: &str) -> Result<(), StoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "key of {} bytes is longer than {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

/// Rejects a bad namespace, key or oversized value.
pub(crate) fn check_entry(namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
    check_key(namespace, key)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge {
            size: value.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// Checks the arguments of `list` and returns the lower bound to use: keys are never empty,
/// so `key > ""` selects every key when there is no `after_key`.
pub(crate) fn check_list<'a>(
    namespace: &str,
    after_key: Option<&'a str>,
    limit: usize,
) -> Result<&'a str, StoreError> {
    check_namespace(namespace)?;
    if limit > MAX_LIST_LIMIT {
        return Err(StoreError::InvalidInput(format!(
            "list limit {limit} is above {MAX_LIST_LIMIT}"
        )));
    }
    let after = after_key.unwrap_or("");
    check_key_len(after)?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_in_bytes_and_inclusive() {
        let four_byte_char = "\u{1F600}";
        assert!(check_key("ns", &four_byte_char.repeat(MAX_KEY_BYTES / 4)).is_ok());
        assert!(check_key("ns", &format!("a{}", four_byte_char.repeat(256))).is_err());
        assert!(check_key("", "k").is_err());
        assert!(check_key("ns", "").is_err());
        assert!(check_entry("ns", "k", &vec![0; MAX_VALUE_BYTES]).is_ok());
        assert!(matches!(
            check_entry("ns", "k", &vec![0; MAX_VALUE_BYTES + 1]),
            Err(StoreError::ValueTooLarge { .. })
        ));
        assert_eq!(check_list("ns", None, MAX_LIST_LIMIT).ok(), Some(""));
        assert!(check_list("ns", Some("k"), MAX_LIST_LIMIT + 1).is_err());
    }
}
