//! [`KvStore`] on ScyllaDB: the `kv` table of `schemas/cql/001_kv.cql`.

use std::sync::Arc;

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use super::classify;
use crate::kv::{KvEntry, check_entry, check_key, check_list, check_namespace};
use crate::{KvStore, StoreError};

/// Rows per page when `list` reads: bounds one response to ~64 MiB even with 1 MiB values.
const LIST_PAGE_ROWS: i32 = 64;

/// The ScyllaDB [`KvStore`]. `put_if_absent` is a lightweight transaction (Paxos); the other
/// writes are plain `LOCAL_QUORUM` writes, last write wins.
///
/// Mixing both kinds of write on one key loses linearizability (plain writes do not take part
/// in Paxos), so a key written with `put_if_absent` (an idempotency marker, a claimed name)
/// should not also be written with `put` while others may race on it.
pub struct ScyllaKv {
    session: Arc<Session>,
    get: PreparedStatement,
    put: PreparedStatement,
    put_if_absent: PreparedStatement,
    delete: PreparedStatement,
    list: PreparedStatement,
    count: PreparedStatement,
}

impl ScyllaKv {
    /// Prepares every statement once, at connect.
    pub(super) async fn prepare(session: Arc<Session>) -> Result<Self, StoreError> {
        let prepare = |cql: &'static str, idempotent: bool| {
            let session = session.clone();
            async move {
                let mut statement = session
                    .prepare(cql)
                    .await
                    .map_err(|e| StoreError::unavailable("kv.prepare", e))?;
                // Lets the driver retry or speculate on timeouts; never for the LWT, whose
                // retry could report `false` for the caller's own insert.
                statement.set_is_idempotent(idempotent);
                Ok::<_, StoreError>(statement)
            }
        };
        let mut list = prepare(
            "SELECT key, value FROM kv WHERE namespace = ? AND key > ? LIMIT ?",
            true,
        )
        .await?;
        list.set_page_size(LIST_PAGE_ROWS);
        Ok(Self {
            get: prepare("SELECT value FROM kv WHERE namespace = ? AND key = ?", true).await?,
            put: prepare(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?)",
                true,
            )
            .await?,
            put_if_absent: prepare(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) IF NOT EXISTS",
                false,
            )
            .await?,
            delete: prepare("DELETE FROM kv WHERE namespace = ? AND key = ?", true).await?,
            list,
            count: prepare("SELECT COUNT(*) FROM kv WHERE namespace = ?", true).await?,
            session,
        })
    }
}

#[async_trait]
impl KvStore for ScyllaKv {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(namespace, key)?;
        let op = "kv.get";
        let rows = self
            .session
            .execute_unpaged(&self.get, (namespace, key))
            .await
            .map_err(|e| classify(op, e))?
            .into_rows_result()
            .map_err(|e| StoreError::backend(op, e))?;
        let row = rows
            .maybe_first_row::<(Vec<u8>,)>()
            .map_err(|e| StoreError::backend(op, e))?;
        Ok(row.map(|(value,)| value))
    }

    async fn put(&self, namespace: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        check_entry(namespace, key, &value)?;
        self.session
            .execute_unpaged(&self.put, (namespace, key, value))
            .await
            .map(drop)
            .map_err(|e| classify("kv.put", e))
    }

    async fn put_if_absent(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        check_entry(namespace, key, &value)?;
        let op = "kv.put_if_absent";
        let rows = self
            .session
            .execute_unpaged(&self.put_if_absent, (namespace, key, value))
            .await
            .map_err(|e| classify(op, e))?
            .into_rows_result()
            .map_err(|e| StoreError::backend(op, e))?;
        // An LWT answers with `[applied]` first; when not applied, the existing row's columns
        // follow, so read the row untyped rather than as a fixed tuple.
        let row: Row = rows.single_row().map_err(|e| StoreError::backend(op, e))?;
        match row.columns.first() {
            Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
            other => Err(StoreError::backend(
                op,
                format!("expected a boolean [applied] column, got {other:?}"),
            )),
        }
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        check_key(namespace, key)?;
        self.session
            .execute_unpaged(&self.delete, (namespace, key))
            .await
            .map(drop)
            .map_err(|e| classify("kv.delete", e))
    }

    async fn list(
        &self,
        namespace: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KvEntry>, StoreError> {
        let after = check_list(namespace, after_key, limit)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let op = "kv.list";
        // `limit` is at most MAX_LIST_LIMIT, so the conversion cannot fail.
        let cql_limit = i32::try_from(limit).map_err(|e| StoreError::backend(op, e))?;
        let mut entries = Vec::with_capacity(limit.min(LIST_PAGE_ROWS as usize));
        let mut paging = PagingState::start();
        loop {
            let (result, next) = self
                .session
                .execute_single_page(&self.list, (namespace, after, cql_limit), paging)
                .await
                .map_err(|e| classify(op, e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| StoreError::backend(op, e))?;
            for row in rows
                .rows::<(String, Vec<u8>)>()
                .map_err(|e| StoreError::backend(op, e))?
            {
                entries.push(row.map_err(|e| StoreError::backend(op, e))?);
            }
            match next {
                PagingStateResponse::HasMorePages { state } if entries.len() < limit => {
                    paging = state;
                }
                _ => break,
            }
        }
        Ok(entries)
    }

    async fn count(&self, namespace: &str) -> Result<u64, StoreError> {
        check_namespace(namespace)?;
        let op = "kv.count";
        let (n,): (i64,) = self
            .session
            .execute_unpaged(&self.count, (namespace,))
            .await
            .map_err(|e| classify(op, e))?
            .into_rows_result()
            .map_err(|e| StoreError::backend(op, e))?
            .single_row()
            .map_err(|e| StoreError::backend(op, e))?;
        u64::try_from(n).map_err(|e| StoreError::backend(op, e))
    }
}
