//! Sixfold's store: the traits processors write their materialized views through, with two
//! adapters behind them and one conformance suite that both must pass.
//!
//! Stores hold derived state only; the topics are the source of truth, and every view can be
//! rebuilt by replaying them. That is why the adapters favour simple, idempotent writes.
//!
//! # Layout
//! - [`Store`] is what a processor holds (`Arc<dyn Store>`, from [`connect`]): readiness
//!   ([`Store::ping`]), the adapter's name, and one accessor per table family. Today that is
//!   [`Store::kv`], a namespaced key-value table ([`KvStore`]).
//! - [`StoreSettings`] is the `store:` settings section; [`StoreError`] says whether a failure
//!   is transient ([`StoreError::is_transient`]: retry topic) or permanent (dead-letter topic).
//! - [`sqlite::SqliteStore`]: the embedded default (`rusqlite`, bundled SQLite, WAL, one
//!   writer connection and a few readers, calls on tokio's blocking pool).
//! - [`scylladb::ScyllaStore`] (feature `scylla`, on by default): ScyllaDB through the
//!   `scylla` driver, statements prepared once at connect, token-aware routing,
//!   `LOCAL_QUORUM`.
//! - [`blobs`]: blobs by content hash through `object_store` (crawled pages, chat
//!   attachments).
//! - [`json`]: JSON values in the KV table and [`json::ViewError`], for the systems' views.
//! - [`conformance`]: the behaviour every adapter must show, run by `tests/conformance_*.rs`.
//!
//! # Consistency of each operation
//! | operation | SQLite | ScyllaDB |
//! |---|---|---|
//! | `get`, `list`, `count` | the latest commit (each statement reads a fresh WAL snapshot) | `LOCAL_QUORUM`: sees every write acknowledged in the local datacenter |
//! | `put`, `delete` | one autocommit statement on the single writer | `LOCAL_QUORUM` write, last write wins by timestamp; delete writes a tombstone |
//! | `put_if_absent` | atomic under SQLite's write lock (`ON CONFLICT DO NOTHING` + changes), across threads and processes | lightweight transaction (`IF NOT EXISTS`, Paxos at `LOCAL_SERIAL`), linearizable against other `put_if_absent` on the key |
//! | `list` paging | each page is one statement; pages are not one snapshot | same; a namespace is one partition, read as an ordered slice |
//!
//! Durability: SQLite runs `synchronous=NORMAL` (survives a process crash, may lose the last
//! commits on power loss); Scylla writes are acknowledged by a quorum of replicas. After a
//! transient error (timeout, connection lost) the outcome of a write is unknown on both.
//!
//! # Schema and migrations
//! Both adapters apply the same numbered migrations (`migrations.rs`): SQLite scripts in
//! `crates/store/migrations/sqlite/NNN_name.sql`, CQL scripts in `schemas/cql/NNN_name.cql`
//! (`000_keyspace.cql` bootstraps the keyspace). Each adapter records what it applied in a
//! `schema_migrations` table and applies the rest, in order, when it connects.
//!
//! # Adding a system's tables
//! 1. Append a migration: `migrations/sqlite/00N_urls.sql`, `schemas/cql/00N_urls.cql`, and an
//!    entry in `MIGRATIONS`. Pick the Scylla partition key for the system's access pattern.
//! 2. Write the trait in its own module (`urls.rs`: `pub trait UrlStore`), with the same
//!    input checks for both adapters.
//! 3. Add `fn urls(&self) -> &dyn UrlStore` to [`Store`] and implement it in
//!    `sqlite/urls.rs` and `scylladb/urls.rs` (each adapter shares its connection pool or
//!    session with its sub-stores).
//! 4. Add the behaviour to [`conformance`] so both adapters are held to it.

pub mod blobs;
pub mod conformance;
mod error;
pub mod json;
mod kv;
mod migrations;
mod settings;
pub mod sqlite;

#[cfg(feature = "scylla")]
pub mod scylladb;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::{BoxError, StoreError};
pub use kv::{
    KvEntry, KvStore, MAX_KEY_BYTES, MAX_LIST_LIMIT, MAX_NAMESPACE_BYTES, MAX_VALUE_BYTES,
};
pub use settings::{Backend, StoreSettings};

/// A connected store: one handle per process, shared as `Arc<dyn Store>`.
///
/// Each table family is reached through its own accessor, so later systems add theirs
/// (`fn urls(&self) -> &dyn UrlStore`) without changing the existing ones.
#[async_trait]
pub trait Store: Send + Sync {
    /// The adapter's name: `sqlite` or `scylla`.
    fn backend(&self) -> &'static str;

    /// Readiness: succeeds when the backend answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The namespaced key-value table.
    fn kv(&self) -> &dyn KvStore;
}

/// Opens the adapter `settings.backend` names and brings its schema up to date (idempotent:
/// applies only the migrations not yet recorded).
pub async fn connect(settings: &StoreSettings) -> Result<Arc<dyn Store>, StoreError> {
    settings.validate()?;
    match settings.backend {
        Backend::Sqlite => Ok(Arc::new(sqlite::SqliteStore::open(settings).await?)),
        #[cfg(feature = "scylla")]
        Backend::Scylla => Ok(Arc::new(scylladb::ScyllaStore::connect(settings).await?)),
        #[cfg(not(feature = "scylla"))]
        Backend::Scylla => Err(StoreError::Settings(
            "backend `scylla` needs sixfold-store's `scylla` feature".into(),
        )),
    }
}
