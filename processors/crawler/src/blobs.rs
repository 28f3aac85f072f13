//! The content store: page bodies under their SHA-256, through `object_store` (a local
//! directory here; the same interface fronts S3 in production).

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

/// Where a body went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// SHA-256 of the body, hex.
    pub hash: String,
    /// Its path in the store.
    pub location: String,
    /// False when an identical body was already there (stored once).
    pub new: bool,
}

/// Bodies by content hash.
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

    /// Stores `body` under its hash unless an identical body is already there.
    pub async fn put(&self, body: Bytes) -> Result<Stored, object_store::Error> {
        let hash = hex::encode(Sha256::digest(&body));
        let location = format!("pages/{}/{hash}", &hash[..2]);
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
}
