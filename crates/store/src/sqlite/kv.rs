//! [`KvStore`] on SQLite: the `kv` table of migration 1.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::OptionalExtension;

use super::Db;
use crate::kv::{KvEntry, check_entry, check_key, check_list, check_namespace};
use crate::{KvStore, StoreError};

/// The SQLite [`KvStore`]. Every write is one autocommit statement on the writer connection.
pub struct SqliteKv {
    db: Arc<Db>,
}

impl SqliteKv {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl KvStore for SqliteKv {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(namespace, key)?;
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.db
            .read("kv.get", move |conn| {
                conn.prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")?
                    .query_row((ns, key), |row| row.get(0))
                    .optional()
            })
            .await
    }

    async fn put(&self, namespace: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        check_entry(namespace, key, &value)?;
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.db
            .write("kv.put", move |conn| {
                conn.prepare_cached(
                    "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                )?
                .execute((ns, key, value))
                .map(drop)
            })
            .await
    }

    async fn put_if_absent(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        check_entry(namespace, key, &value)?;
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        // One statement: the existence check and the insert happen under SQLite's write lock,
        // so racing callers (threads or processes) cannot both insert. `execute` returns
        // sqlite3_changes(): 1 if inserted, 0 if the conflict clause skipped the row.
        self.db
            .write("kv.put_if_absent", move |conn| {
                conn.prepare_cached(
                    "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (namespace, key) DO NOTHING",
                )?
                .execute((ns, key, value))
                .map(|changed| changed == 1)
            })
            .await
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        check_key(namespace, key)?;
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.db
            .write("kv.delete", move |conn| {
                conn.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")?
                    .execute((ns, key))
                    .map(drop)
            })
            .await
    }

    async fn list(
        &self,
        namespace: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KvEntry>, StoreError> {
        let after = check_list(namespace, after_key, limit)?.to_owned();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ns = namespace.to_owned();
        // `limit` is at most MAX_LIST_LIMIT, so the conversion cannot truncate.
        let limit = limit as i64;
        self.db
            .read("kv.list", move |conn| {
                conn.prepare_cached(
                    "SELECT key, value FROM kv WHERE namespace = ?1 AND key > ?2
                     ORDER BY key LIMIT ?3",
                )?
                .query_map((ns, after, limit), |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
            })
            .await
    }

    async fn count(&self, namespace: &str) -> Result<u64, StoreError> {
        check_namespace(namespace)?;
        let ns = namespace.to_owned();
        let n: i64 = self
            .db
            .read("kv.count", move |conn| {
                conn.prepare_cached("SELECT COUNT(*) FROM kv WHERE namespace = ?1")?
                    .query_row([ns], |row| row.get(0))
            })
            .await?;
        u64::try_from(n).map_err(|e| StoreError::backend("kv.count", e))
    }
}
