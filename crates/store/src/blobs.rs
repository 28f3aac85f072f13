//! [`ContentStore`]: blobs (crawled pages, chat attachments) under their SHA-256, through
//! `object_store` — a local directory in development; the same interface fronts S3 in
//! production.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

/// Where a blob went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// SHA-256 of the body, lowercase hex.
    pub hash: String,
    /// Its path in the store: `<prefix>/<first two hex digits>/<hash>`.
    pub location: String,
    /// False when an identical body was already there (stored once).
    pub new: bool,
}

/// Blobs by content hash, each family under its own prefix (`pages`, `chat-media`).
#[derive(Clone)]
pub struct ContentStore {
    store: Arc<dyn ObjectStore>,
}

impl ContentStore {
    /// A content store in the local directory `dir` (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self, object_store::Error> {
        std::fs::create_dir_all(dir).map_err(|e| object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        })?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// Stores `body` under `prefix` and its hash unless an identical body is already there.
    pub async fn put(&self, prefix: &str, body: Bytes) -> Result<Stored, object_store::Error> {
        let hash = hex::encode(Sha256::digest(&body));
        let location = format!("{prefix}/{}/{hash}", &hash[..2]);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let new = match self
            .store
            .put_opts(
                &Path::from(location.as_str()),
                PutPayload::from(body),
                options,
            )
            .await
        {
            Ok(_) => true,
            Err(object_store::Error::AlreadyExists { .. }) => false,
            Err(error) => return Err(error),
        };
        Ok(Stored {
            hash,
            location,
            new,
        })
    }

    /// The blob at `location` (as returned by [`ContentStore::put`]), or `None` if absent.
    pub async fn get(&self, location: &str) -> Result<Option<Bytes>, object_store::Error> {
        match self.store.get(&Path::from(location)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_once_by_hash_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = ContentStore::local(dir.path()).unwrap();
        let first = blobs
            .put("pages", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert!(first.new);
        assert!(
            first.location.starts_with("pages/2c/2cf24dba"),
            "{}",
            first.location
        );
        let again = blobs
            .put("pages", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert!(!again.new);
        assert_eq!(again.location, first.location);
        let body = blobs.get(&first.location).await.unwrap();
        assert_eq!(body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(blobs.get("pages/00/missing").await.unwrap(), None);
    }
}
