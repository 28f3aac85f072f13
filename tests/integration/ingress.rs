//! The ingress skeleton: `/healthz`, `/metrics`, and `/readyz` against real dependencies.

use std::sync::Arc;

use anyhow::Result;
use sixfold_ingress::Readiness;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_store::StoreSettings;
use sixfold_tests::{TestRegistry, kafka, redis_url};

async fn start(
    redis: &str,
    registry: &str,
) -> Result<(String, CancellationToken, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = sixfold_store::connect(&StoreSettings {
        sqlite_path: dir.path().join("store.db"),
        ..StoreSettings::default()
    })
    .await?;
    let readiness = Readiness::new(&kafka(), registry, redis::Client::open(redis)?, store)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    metrics.consumed.with_label_values(&["probe", "t"]).inc();
    let app = sixfold_ingress::app(
        &sixfold_ingress::IngressSettings::default(),
        Arc::new(readiness),
        metrics,
        sixfold_ratelimit::RateLimiter::disabled(),
        Vec::new(),
    )?;
    tokio::spawn(sixfold_ingress::serve(listener, app, shutdown.clone()));
    Ok((base, shutdown, dir))
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_readiness() -> Result<()> {
    let registry = TestRegistry::start().await?;
    let (base, shutdown, _dir) = start(&redis_url(), &registry.url).await?;
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    let metrics = http.get(format!("{base}/metrics")).send().await?;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await?;
    assert!(
        text.contains(r#"sixfold_consumed_total{processor="probe",topic="t"} 1"#),
        "{text}"
    );
    let ready = http.get(format!("{base}/readyz")).send().await?;
    let status = ready.status();
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["broker"], "ok");
    assert_eq!(body["checks"]["registry"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(body["checks"]["store"], "ok");
    shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_names_the_dependency_that_is_down() -> Result<()> {
    let registry = TestRegistry::start().await?;
    // Nothing listens on port 1.
    let (base, shutdown, _dir) = start("redis://127.0.0.1:1/", &registry.url).await?;
    let ready = reqwest::get(format!("{base}/readyz")).await?;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(body["ok"], false);
    assert_ne!(body["checks"]["redis"], "ok");
    assert_eq!(body["checks"]["broker"], "ok");
    shutdown.cancel();
    Ok(())
}
