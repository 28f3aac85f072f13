//! The ingress's rate limiting against real Redis: headers and the 429 body, shadow mode, and
//! failing open or closed when Redis stops mid-test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use sixfold_ingress::IngressSettings;
use sixfold_ratelimit::{RateLimitSettings, RateLimiter};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_tests::{TestRegistry, bind, redis_url, serve_ingress, sqlite_store, unique, wait_for};

struct LimitedIngress {
    base: String,
    metrics: Metrics,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    _registry: TestRegistry,
}

impl Drop for LimitedIngress {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An ingress limited by `rules` (YAML), keeping counters in the Redis at `redis`.
async fn start(rules: &str, redis: &str) -> Result<LimitedIngress> {
    let dir = tempfile::tempdir()?;
    let rules_file = dir.path().join("rules.yaml");
    std::fs::write(&rules_file, rules)?;
    let metrics = Metrics::new();
    let limiter = RateLimiter::new(
        &RateLimitSettings {
            redis_url: Some(redis.to_string()),
            rules_file,
            key_prefix: unique("rl"),
            ..RateLimitSettings::default()
        },
        metrics.registry(),
    )
    .await?;
    let registry = TestRegistry::start().await?;
    let (listener, base) = bind().await?;
    let shutdown = CancellationToken::new();
    serve_ingress(
        listener,
        &IngressSettings::default(),
        &registry.url,
        &redis_url(),
        sqlite_store(dir.path()).await?,
        metrics.clone(),
        limiter,
        Vec::new(),
        shutdown.clone(),
    )?;
    Ok(LimitedIngress {
        base,
        metrics,
        shutdown,
        _dir: dir,
        _registry: registry,
    })
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_requests_get_429_with_headers_and_the_seed_body() -> Result<()> {
    let rules = r#"
rules:
  - name: health-per-ip
    match: {method: GET, route: /healthz}
    key: ip
    limits:
      - {algorithm: fixed_window, limit: 3, window: 1h}
"#;
    let ingress = start(rules, &redis_url()).await?;
    let url = format!("{}/healthz", ingress.base);
    for remaining in ["2", "1", "0"] {
        let response = reqwest::get(&url).await?;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&response, "x-ratelimit-remaining").as_deref(),
            Some(remaining)
        );
        assert!(header(&response, "x-ratelimit-reset").is_some());
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some(r#""health-per-ip.1h";q=3;w=3600"#)
        );
    }
    let denied = reqwest::get(&url).await?;
    assert_eq!(denied.status(), 429);
    assert_eq!(
        header(&denied, "x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    let retry: u64 = header(&denied, "retry-after").unwrap().parse()?;
    assert!(retry > 0 && retry <= 3600, "{retry}");
    assert!(header(&denied, "ratelimit").unwrap().contains(";r=0;"));
    let body: Value = denied.json().await?;
    assert_eq!(body["error"], "Rate limit exceeded");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("try again in {retry} seconds")),
        "{body}"
    );
    // Routes no rule matches are not limited and carry no headers.
    let free = reqwest::get(format!("{}/openapi.json", ingress.base)).await?;
    assert_eq!(free.status(), 200);
    assert!(header(&free, "x-ratelimit-limit").is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_rules_count_but_never_block() -> Result<()> {
    let rules = r#"
rules:
  - name: observed
    match: {route: /healthz}
    key: ip
    limits: [{limit: 1, window: 1h}]
    shadow: true
"#;
    let ingress = start(rules, &redis_url()).await?;
    for _ in 0..5 {
        let response = reqwest::get(format!("{}/healthz", ingress.base)).await?;
        assert_eq!(response.status(), 200);
    }
    let metrics = ingress.metrics.render();
    let shadow_denied = metrics
        .lines()
        .find(|l| l.contains(r#"rule="observed""#) && l.contains(r#"result="shadow_denied""#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert_eq!(shadow_denied, Some(4), "{metrics}");
    Ok(())
}

/// A `redis-server` of this test's own, so it can be stopped mid-test.
fn own_redis(port: u16, dir: &std::path::Path) -> Result<Child> {
    Ok(Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopping_mid_test_fails_open_or_closed_per_rule() -> Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let mut redis = own_redis(port, dir.path())?;
    let address = format!("127.0.0.1:{port}");
    wait_for("own redis", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(&address).await.is_ok()
    })
    .await?;
    let rules = r#"
rules:
  - name: open-route
    match: {route: /healthz}
    key: ip
    limits: [{limit: 1000, window: 1m}]
    on_redis_error: open
  - name: closed-route
    match: {route: /openapi.json}
    key: ip
    limits: [{limit: 1000, window: 1m}]
    on_redis_error: closed
"#;
    let ingress = start(rules, &format!("redis://{address}/")).await?;
    let get = |path: &str| reqwest::get(format!("{}{path}", ingress.base));
    assert_eq!(get("/healthz").await?.status(), 200);
    assert_eq!(get("/openapi.json").await?.status(), 200);

    redis.kill()?;
    redis.wait()?;
    let open = get("/healthz").await?;
    assert_eq!(open.status(), 200, "fails open");
    let closed = get("/openapi.json").await?;
    assert_eq!(closed.status(), 429, "fails closed");
    assert_eq!(header(&closed, "retry-after").as_deref(), Some("1"));
    let body: Value = closed.json().await?;
    assert_eq!(body["error"], "Rate limit exceeded");
    let metrics = ingress.metrics.render();
    assert!(
        metrics.contains("sixfold_ratelimit_redis_errors_total"),
        "{metrics}"
    );

    // Redis back: decisions are made again.
    let mut redis = own_redis(port, dir.path())?;
    wait_for(
        "the closed route to answer again",
        Duration::from_secs(30),
        || async { get("/openapi.json").await.is_ok_and(|r| r.status() == 200) },
    )
    .await?;
    redis.kill()?;
    redis.wait()?;
    Ok(())
}
