//! The ingress skeleton: `/healthz`, `/metrics`, and `/readyz` against real dependencies.

use anyhow::Result;
use sixfold_ingress::IngressSettings;
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_tests::{TestRegistry, bind, redis_url, serve_ingress, sqlite_store};

async fn start(
    redis: &str,
    registry: &str,
) -> Result<(String, CancellationToken, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let (listener, base) = bind().await?;
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    metrics.consumed.with_label_values(&["probe", "t"]).inc();
    serve_ingress(
        listener,
        &IngressSettings::default(),
        registry,
        redis,
        sqlite_store(dir.path()).await?,
        metrics,
        RateLimiter::disabled(),
        Vec::new(),
        shutdown.clone(),
    )?;
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
