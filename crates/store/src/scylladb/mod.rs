//! The ScyllaDB adapter, for production (any Cassandra-protocol cluster works).
//!
//! Connect creates the keyspace if missing (`SimpleStrategy` with the configured replication
//! factor; create it beforehand with `NetworkTopologyStrategy` in production), applies the
//! missing CQL migrations from `schemas/cql/`, then prepares every statement once. Prepared
//! statements carry their partition key, so the driver's default policy routes each request
//! to a replica that owns it (token- and shard-aware).
//!
//! Every request uses `LOCAL_QUORUM` (reads see all writes acknowledged in the local
//! datacenter) with `LOCAL_SERIAL` for lightweight transactions, and `request_timeout` as the
//! client-side timeout.

mod kv;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{ExecutionError, NewSessionError, RequestAttemptError};
use scylla::statement::{Consistency, SerialConsistency, Statement};

use crate::migrations::{CQL_BOOTSTRAP, MIGRATIONS, cql_statements};
use crate::{KvStore, Store, StoreError, StoreSettings};

pub use kv::ScyllaKv;

/// Client-side timeout for schema changes, which take longer than ordinary requests.
const DDL_TIMEOUT: Duration = Duration::from_secs(60);

/// A [`Store`] on a ScyllaDB keyspace.
pub struct ScyllaStore {
    session: Arc<Session>,
    kv: ScyllaKv,
    keyspace: String,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

impl ScyllaStore {
    /// Connects to `settings.scylla_nodes`, creates `settings.keyspace` if missing, applies
    /// the missing migrations and prepares the statements.
    ///
    /// Run the first connect of a new schema version from one process (e.g. a deploy job):
    /// migrations are written to be idempotent where CQL allows (`IF NOT EXISTS`), but two
    /// processes applying the same non-idempotent change at once would race.
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        let profile = ExecutionProfile::builder()
            .consistency(Consistency::LocalQuorum)
            .serial_consistency(Some(SerialConsistency::LocalSerial))
            .request_timeout(Some(settings.request_timeout))
            .build();
        let session = SessionBuilder::new()
            .known_nodes(&settings.scylla_nodes)
            .connection_timeout(settings.request_timeout)
            .default_execution_profile_handle(profile.into_handle())
            .build()
            .await
            .map_err(session_error)?;

        bootstrap(&session, settings).await?;
        session
            .use_keyspace(&settings.keyspace, false)
            .await
            .map_err(|e| StoreError::unavailable("use keyspace", e))?;
        migrate(&session).await?;

        let session = Arc::new(session);
        let kv = ScyllaKv::prepare(session.clone()).await?;
        tracing::info!(nodes = ?settings.scylla_nodes, keyspace = %settings.keyspace, "connected Scylla store");
        Ok(Self {
            session,
            kv,
            keyspace: settings.keyspace.clone(),
        })
    }
}

#[async_trait]
impl Store for ScyllaStore {
    fn backend(&self) -> &'static str {
        "scylla"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.session
            .query_unpaged("SELECT release_version FROM system.local", &[])
            .await
            .map(drop)
            .map_err(|e| classify("ping", e))
    }

    fn kv(&self) -> &dyn KvStore {
        &self.kv
    }
}

/// Runs one schema statement with the longer DDL timeout.
async fn ddl(session: &Session, op: &'static str, cql: &str) -> Result<(), StoreError> {
    let mut statement = Statement::new(cql);
    statement.set_request_timeout(Some(DDL_TIMEOUT));
    session
        .query_unpaged(statement, &[])
        .await
        .map(drop)
        .map_err(|e| classify(op, e))
}

/// Creates the keyspace and the `schema_migrations` table if they are missing.
async fn bootstrap(session: &Session, settings: &StoreSettings) -> Result<(), StoreError> {
    let script = CQL_BOOTSTRAP
        .replace("{keyspace}", &settings.keyspace)
        .replace(
            "{replication_factor}",
            &settings.replication_factor.to_string(),
        );
    for statement in cql_statements(&script) {
        ddl(session, "create keyspace", &statement).await?;
    }
    Ok(())
}

/// Applies, in order, the migrations not yet recorded in `schema_migrations`.
async fn migrate(session: &Session) -> Result<(), StoreError> {
    let applied: Vec<i32> = session
        .query_unpaged("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(|e| classify("migrate", e))?
        .into_rows_result()
        .map_err(|e| StoreError::backend("migrate", e))?
        .rows::<(i32,)>()
        .map_err(|e| StoreError::backend("migrate", e))?
        .map(|row| row.map(|(v,)| v))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::backend("migrate", e))?;
    for m in MIGRATIONS {
        let version = i32::try_from(m.version).map_err(|e| StoreError::backend("migrate", e))?;
        if applied.contains(&version) {
            continue;
        }
        let failed = |e: StoreError| StoreError::Migration {
            version: m.version,
            name: m.name,
            source: Box::new(e),
        };
        for statement in cql_statements(m.cql) {
            ddl(session, "migrate", &statement).await.map_err(failed)?;
        }
        session
            .query_unpaged(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES (?, ?, toTimestamp(now()))",
                (version, m.name),
            )
            .await
            .map_err(|e| failed(classify("migrate", e)))?;
        tracing::info!(version = m.version, name = m.name, "applied CQL migration");
    }
    Ok(())
}

fn session_error(e: NewSessionError) -> StoreError {
    match e {
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_) => {
            StoreError::Settings(e.to_string())
        }
        _ => StoreError::unavailable("connect", e),
    }
}

/// Maps a driver error to transient (unreachable, overloaded, timed out) or permanent.
pub(crate) fn classify(op: &'static str, e: ExecutionError) -> StoreError {
    let transient = match &e {
        ExecutionError::RequestTimeout(after) => {
            return StoreError::Timeout { op, after: *after };
        }
        ExecutionError::EmptyPlan
        | ExecutionError::ConnectionPoolError(_)
        | ExecutionError::UseKeyspaceError(_)
        | ExecutionError::SchemaAgreementError(_)
        | ExecutionError::MetadataError(_) => true,
        ExecutionError::LastAttemptError(attempt) => attempt_is_transient(attempt),
        _ => false,
    };
    if transient {
        StoreError::unavailable(op, e)
    } else {
        StoreError::backend(op, e)
    }
}

fn attempt_is_transient(e: &RequestAttemptError) -> bool {
    use scylla::errors::DbError;
    match e {
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => true,
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::ReadFailure { .. }
                | DbError::WriteFailure { .. }
                | DbError::RateLimitReached { .. }
                | DbError::TruncateError
        ),
        _ => false,
    }
}
