//! The conformance suite against a ScyllaDB cluster named by `SCYLLA_URI`
//! (`127.0.0.1:9042`, or several comma-separated contact points). Without it the test says so
//! and passes, since no CQL server can run on every development machine.
//!
//! Each run uses a fresh random keyspace and drops it afterwards.
#![cfg(feature = "scylla")]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sixfold_store::{Backend, StoreSettings, conformance, connect};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn scylla_settings() -> Option<StoreSettings> {
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        eprintln!("skipping Scylla conformance: SCYLLA_URI not set");
        return None;
    };
    let nodes = uri
        .split(',')
        .map(|node| node.trim().trim_start_matches("scylla://").to_owned())
        .filter(|node| !node.is_empty())
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Some(StoreSettings {
        backend: Backend::Scylla,
        scylla_nodes: nodes,
        keyspace: format!(
            "sixfold_test_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000
        ),
        replication_factor: 1,
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    })
}

async fn drop_keyspace(settings: &StoreSettings) -> TestResult {
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&settings.scylla_nodes)
        .build()
        .await?;
    let cql = format!("DROP KEYSPACE IF EXISTS {}", settings.keyspace);
    session.query_unpaged(cql, &[]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_passes_the_conformance_suite() -> TestResult {
    let Some(settings) = scylla_settings() else {
        return Ok(());
    };
    let outcome = async {
        let store = connect(&settings).await?;
        assert_eq!(store.backend(), "scylla");
        conformance::run_all(store.clone()).await?;
        // A second session is a second coordinator-side client: the LWT must still hold.
        let other = connect(&settings).await?;
        conformance::put_if_absent_race(store, Arc::clone(&other)).await?;
        conformance::survives_reopen(|| connect(&settings)).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    let cleanup = drop_keyspace(&settings).await;
    outcome?;
    cleanup
}
