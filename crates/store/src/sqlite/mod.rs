//! The SQLite adapter: the embedded default, used by tests and `sixfold run`.
//!
//! Connections: one writer and a few readers on the same file, in WAL mode, so reads never
//! wait for a write and see every committed write (each statement reads the latest commit).
//! All writes go through the single writer connection behind a mutex: SQLite allows one
//! writer at a time anyway, and queueing writers on a mutex is cheaper and fairer than
//! letting several connections spin on the file lock. `busy_timeout` still covers other
//! processes that open the same file. Every call runs on tokio's blocking pool, bounded by
//! `request_timeout`.
//!
//! Durability: `synchronous=NORMAL` in WAL mode survives a process crash and may lose the
//! last commits on power loss; stores hold derived views that topics can rebuild.

mod kv;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::migrations::MIGRATIONS;
use crate::{KvStore, Store, StoreError, StoreSettings};

pub use kv::SqliteKv;

/// How many read connections a file-backed store opens.
const READERS: usize = 4;

/// A [`Store`] on one SQLite database file.
pub struct SqliteStore {
    kv: SqliteKv,
    db: Arc<Db>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.db.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `settings.sqlite_path` and applies the
    /// schema migrations it lacks. Only `sqlite_path` and `request_timeout` are read.
    pub async fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let path = settings.sqlite_path.clone();
        let timeout = settings.request_timeout;
        let db = tokio::task::spawn_blocking(move || Db::open(path, timeout))
            .await
            .map_err(|e| StoreError::backend("open", e))??;
        let db = Arc::new(db);
        Ok(Self {
            kv: SqliteKv::new(db.clone()),
            db,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read("ping", |conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    fn kv(&self) -> &dyn KvStore {
        &self.kv
    }
}

/// The connections of one database file, shared by the per-system stores.
pub(crate) struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Empty for `:memory:`, whose connections would each see a different database; the
    /// writer then serves reads too.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    timeout: Duration,
}

impl Db {
    fn open(path: PathBuf, timeout: Duration) -> Result<Self, StoreError> {
        let in_memory = path == Path::new(":memory:");
        if !in_memory && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::unavailable("open", e))?;
        }
        let mut writer = open_connection(&path, timeout, false)?;
        migrate(&mut writer)?;
        let readers = if in_memory {
            Vec::new()
        } else {
            (0..READERS)
                .map(|_| open_connection(&path, timeout, true).map(Mutex::new))
                .collect::<Result<_, _>>()?
        };
        tracing::info!(path = %path.display(), "opened SQLite store");
        Ok(Self {
            path,
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            timeout,
        })
    }

    /// Runs `f` on a read connection on the blocking pool.
    pub(crate) async fn read<T, F>(
        self: &Arc<Self>,
        op: &'static str,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        self.run(op, move || f(&db.reader())).await
    }

    /// Runs `f` on the writer connection on the blocking pool.
    pub(crate) async fn write<T, F>(
        self: &Arc<Self>,
        op: &'static str,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        self.run(op, move || f(&mut lock(&db.writer))).await
    }

    async fn run<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> rusqlite::Result<T> + Send + 'static,
    {
        // On timeout the blocking call is abandoned, not cancelled: it may still complete,
        // which is the "outcome unknown" a transient error promises.
        let task = tokio::task::spawn_blocking(f);
        match tokio::time::timeout(self.timeout, task).await {
            Err(_elapsed) => Err(StoreError::Timeout {
                op,
                after: self.timeout,
            }),
            Ok(Err(join)) => Err(StoreError::backend(op, join)),
            Ok(Ok(result)) => result.map_err(|e| classify(op, e)),
        }
    }

    /// A free reader if there is one, else the next one in turn (or the writer for `:memory:`).
    fn reader(&self) -> MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return lock(&self.writer);
        }
        for reader in &self.readers {
            if let Ok(guard) = reader.try_lock() {
                return guard;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[i])
    }
}

/// Locks a connection even if a thread panicked while holding it: a panic cannot leave a
/// half-applied statement behind (an open transaction rolls back when dropped).
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_connection(
    path: &Path,
    timeout: Duration,
    read_only: bool,
) -> Result<Connection, StoreError> {
    let setup = || -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(timeout)?;
        // journal_mode answers with the mode in force ("memory" for :memory:); WAL is
        // persistent in the file, so readers inherit it.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        if read_only {
            conn.pragma_update(None, "query_only", true)?;
        }
        Ok(conn)
    };
    setup().map_err(|e| classify("open", e))
}

/// Applies the migrations the file lacks, each in its own IMMEDIATE transaction so that two
/// processes opening the same file at once apply each migration exactly once.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
         ) STRICT;",
    )
    .map_err(|e| classify("migrate", e))?;
    for m in MIGRATIONS {
        let apply = |conn: &mut Connection| -> rusqlite::Result<bool> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let applied: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [m.version],
                |row| row.get(0),
            )?;
            if !applied {
                tx.execute_batch(m.sqlite)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
                    (m.version, m.name),
                )?;
            }
            tx.commit()?;
            Ok(!applied)
        };
        match apply(conn) {
            Ok(true) => tracing::info!(
                version = m.version,
                name = m.name,
                "applied SQLite migration"
            ),
            Ok(false) => {}
            Err(e) => {
                return Err(StoreError::Migration {
                    version: m.version,
                    name: m.name,
                    source: Box::new(e),
                });
            }
        }
    }
    Ok(())
}

/// Maps a SQLite error to transient (busy, locked, I/O, disk full) or permanent.
pub(crate) fn classify(op: &'static str, e: rusqlite::Error) -> StoreError {
    let code = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    };
    match code {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen,
        ) => StoreError::unavailable(op, e),
        Some(ErrorCode::ConstraintViolation) => StoreError::Constraint {
            op,
            source: Box::new(e),
        },
        _ => StoreError::backend(op, e),
    }
}
