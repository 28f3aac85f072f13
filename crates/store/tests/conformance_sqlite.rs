//! The conformance suite against the SQLite adapter, on a fresh temporary database file.

use std::path::Path;
use std::sync::Arc;

use sixfold_store::{Backend, Store, StoreError, StoreSettings, conformance, connect};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn settings(path: &Path) -> StoreSettings {
    StoreSettings {
        backend: Backend::Sqlite,
        sqlite_path: path.to_path_buf(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_conformance_suite() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = connect(&settings(&dir.path().join("store.db"))).await?;
    assert_eq!(store.backend(), "sqlite");
    conformance::run_all(store).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_data_across_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A directory that does not exist yet, as with the default `var/sixfold.db`.
    let settings = settings(&dir.path().join("var").join("sixfold.db"));
    conformance::survives_reopen(|| connect(&settings)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_if_absent_is_atomic_across_connections_to_one_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let settings = settings(&dir.path().join("shared.db"));
    let (a, b) = (connect(&settings).await?, connect(&settings).await?);
    // Two handles have two writer connections, so this race is decided by SQLite's file
    // lock, as between two processes, not by the adapter's mutex.
    for _ in 0..5 {
        conformance::put_if_absent_race(a.clone(), b.clone()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn migrations_are_recorded_once_and_wal_is_on() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.db");
    for _ in 0..3 {
        connect(&settings(&path)).await?.ping().await?;
    }
    let conn = rusqlite::Connection::open(&path)?;
    let applied: Vec<(i64, String)> = conn
        .prepare("SELECT version, name FROM schema_migrations ORDER BY version")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    assert_eq!(applied, vec![(1, "kv".to_owned())]);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    assert_eq!(mode, "wal");
    Ok(())
}

#[tokio::test]
async fn in_memory_database_works_on_one_connection() -> TestResult {
    let store: Arc<dyn Store> = connect(&settings(Path::new(":memory:"))).await?;
    conformance::get_put_delete(store.as_ref()).await?;
    conformance::list_pages_in_key_order(store.as_ref()).await?;
    Ok(())
}

#[tokio::test]
async fn unopenable_path_is_an_error_not_a_panic() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A database path whose "directory" is a regular file cannot be created.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x")?;
    let result = connect(&settings(&file.join("store.db"))).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "{:?}",
        result.err()
    );
    Ok(())
}
