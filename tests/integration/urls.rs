//! The URL shortener through HTTP with its processor running: create → redirect → stats, alias
//! races, expiry, bad requests, OpenAPI, and replay into an empty store and cache.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sixfold_ingress::{ApiKeyEntry, IngressSettings};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::failure::dlq_topic;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::redis_conn::RedisConn;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_tests::{
    TestRegistry, bind, create_topics, kafka, redis_conn, redis_url, serve_ingress, sqlite_store,
    unique, wait_for,
};
use sixfold_urls::{Urls, UrlsDeps, UrlsSettings};

const KEY: &str = "integration-test-key";

/// One shortener: topics, store, ingress and processor, all fresh.
struct Shortener {
    base: String,
    http: reqwest::Client,
    urls: Arc<Urls>,
    settings: UrlsSettings,
    registry: Arc<TestRegistry>,
    redis: RedisConn,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Shortener {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Shortener {
    async fn start() -> Result<Self> {
        Self::start_on(false).await
    }

    /// A shortener on fresh topics, its cache on the single Redis or (`redis_cluster`) the
    /// Redis Cluster.
    async fn start_on(redis_cluster: bool) -> Result<Self> {
        let prefix = unique("urls");
        let settings = UrlsSettings {
            namespace: prefix.clone(),
            created_topic: format!("{prefix}.created"),
            clicked_topic: format!("{prefix}.clicked"),
            ..UrlsSettings::default()
        };
        create_topics(&[(&settings.created_topic, 2), (&settings.clicked_topic, 2)]).await?;
        let registry = Arc::new(TestRegistry::start().await?);
        Self::start_with(settings, registry, &unique("urls-group"), redis_cluster).await
    }

    /// A shortener on existing topics with a new, empty store and consumer group `group`.
    async fn start_with(
        settings: UrlsSettings,
        registry: Arc<TestRegistry>,
        group: &str,
        redis_cluster: bool,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = sqlite_store(dir.path()).await?;
        let redis = redis_conn(redis_cluster).await?;
        let metrics = Metrics::new();
        let producer = Producer::new(&kafka(), metrics.clone())?;
        let codec = Arc::new(AvroCodec::new(&registry.url)?);
        let shutdown = CancellationToken::new();
        let (listener, base) = bind().await?;
        let urls = Urls::new(
            settings.clone(),
            UrlsDeps {
                store: store.clone(),
                redis: redis.clone(),
                producer: producer.clone(),
                bulk_producer: Producer::bulk(&kafka(), metrics.clone())?,
                codec: codec.clone(),
                metrics: metrics.clone(),
                public_url: base.clone(),
                shutdown: shutdown.clone(),
            },
        )?;
        let ingress = IngressSettings {
            max_body_bytes: 4096,
            api_keys: vec![ApiKeyEntry {
                name: "tests".into(),
                sha256: sixfold_ingress::auth::digest_hex(KEY),
            }],
            ..IngressSettings::default()
        };
        serve_ingress(
            listener,
            &ingress,
            &registry.url,
            &redis_url(),
            store,
            metrics.clone(),
            RateLimiter::disabled(),
            vec![sixfold_urls::routes::routes(urls.clone())],
            shutdown.clone(),
        )?;
        let dlq = dlq_topic(group);
        create_topics(&[(&dlq, 1)]).await?;
        let config = ProcessorConfig {
            name: group.to_string(),
            topics: urls.input_topics(),
            retry_delays: vec![],
            ..ProcessorConfig::default()
        };
        let context = RuntimeContext {
            kafka: kafka(),
            codec,
            producer,
            metrics,
        };
        tokio::spawn(run_processor(
            Arc::new(urls.processor()),
            config,
            context,
            shutdown.clone(),
        ));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            base,
            http,
            urls,
            settings,
            registry,
            redis,
            shutdown,
            _dir: dir,
        })
    }

    async fn create(&self, body: Value) -> Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}/v1/urls", self.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response> {
        Ok(self.http.get(format!("{}{path}", self.base)).send().await?)
    }

    async fn stats(&self, code: &str) -> Result<Value> {
        Ok(self.get(&format!("/v1/urls/{code}")).await?.json().await?)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_redirect_and_count_clicks() -> Result<()> {
    create_redirect_count(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn create_redirect_and_count_clicks_on_a_redis_cluster() -> Result<()> {
    create_redirect_count(true).await
}

/// Create → redirect (302 and 301) → clicks counted, the link cache and code allocator on the
/// single Redis or the Redis Cluster.
async fn create_redirect_count(redis_cluster: bool) -> Result<()> {
    let s = Shortener::start_on(redis_cluster).await?;
    let (status, created) = s
        .create(json!({"long_url": "https://example.com/a?b=1"}))
        .await?;
    assert_eq!(status, 201, "{created}");
    let code = created["short_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 7);
    assert_eq!(created["short_url"], format!("{}/{code}", s.base));

    let (status, permanent) = s
        .create(json!({"long_url": "https://example.com/p", "custom_alias": "perm-link", "redirect": 301}))
        .await?;
    assert_eq!(status, 201, "{permanent}");

    let redirect = s.get(&format!("/{code}")).await?;
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["location"], "https://example.com/a?b=1");
    let again = s.get(&format!("/{code}")).await?;
    assert_eq!(again.status(), 302);
    let moved = s.get("/perm-link").await?;
    assert_eq!(moved.status(), 301);
    assert_eq!(moved.headers()["location"], "https://example.com/p");
    assert_eq!(s.get("/Zzzzzzz").await?.status(), 404);
    assert_eq!(s.get("/no-such-alias").await?.status(), 404);

    wait_for("two counted clicks", Duration::from_secs(60), || async {
        s.stats(&code).await.is_ok_and(|v| v["clicks_total"] == 2)
    })
    .await?;
    let stats = s.stats(&code).await?;
    assert_eq!(stats["long_url"], "https://example.com/a?b=1");
    assert_eq!(
        stats["clicks_by_day"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        2
    );
    assert_eq!(stats["custom_alias"], false);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_of_one_alias_give_exactly_one_201() -> Result<()> {
    let s = Arc::new(Shortener::start().await?);
    let alias = format!("race-{}", &unique("a")[2..10]);
    let attempts = (0..24).map(|i| {
        let (s, alias) = (s.clone(), alias.clone());
        tokio::spawn(async move {
            s.create(json!({"long_url": format!("https://example.com/{i}"), "custom_alias": alias}))
                .await
        })
    });
    let mut created = Vec::new();
    let mut conflicts = 0;
    for attempt in futures::future::join_all(attempts).await {
        let (status, body) = attempt??;
        match status.as_u16() {
            201 => created.push(body),
            409 => {
                assert_eq!(body["error"], "alias_taken");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(conflicts, 23);
    // The winner's target is what the alias redirects to, now and after materialization.
    let winner = created[0]["long_url"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(&format!("/{alias}")).await?.headers()["location"],
        winner.as_str()
    );
    wait_for(
        "the alias materialized",
        Duration::from_secs(60),
        || async {
            s.stats(&alias)
                .await
                .is_ok_and(|v| v["long_url"] == winner.as_str())
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_links_answer_410_and_are_purged() -> Result<()> {
    let s = Shortener::start().await?;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let expires = soon.format(&time::format_description::well_known::Rfc3339)?;
    let (status, created) = s
        .create(json!({"long_url": "https://example.com/soon", "expires_at": expires}))
        .await?;
    assert_eq!(status, 201, "{created}");
    let code = created["short_code"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/{code}")).await?.status(), 302);
    wait_for("the link to expire", Duration::from_secs(30), || async {
        s.get(&format!("/{code}"))
            .await
            .is_ok_and(|r| r.status() == 410)
    })
    .await?;
    let gone: Value = s.get(&format!("/{code}")).await?.json().await?;
    assert_eq!(gone["error"], "expired");

    // Not yet past the grace period: nothing purged.
    let now = sixfold_runtime::failure::now_ms();
    assert_eq!(s.urls.purge_expired(now).await?, 0);
    let after_grace = now + s.settings.purge_grace.as_millis() as i64 + 1_000;
    wait_for(
        "the link to be materialized",
        Duration::from_secs(60),
        || async {
            s.stats(&code)
                .await
                .is_ok_and(|v| v["short_code"] == code.as_str())
        },
    )
    .await?;
    assert_eq!(s.urls.purge_expired(after_grace).await?, 1);
    assert_eq!(s.get(&format!("/{code}")).await?.status(), 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_json_4xx() -> Result<()> {
    let s = Shortener::start().await?;
    let cases = [
        (json!({"long_url": "ftp://example.com/"}), "invalid_url"),
        (json!({"long_url": "not a url"}), "invalid_url"),
        (
            json!({"long_url": format!("https://example.com/{}", "a".repeat(2040))}),
            "invalid_url",
        ),
        (
            json!({"long_url": "https://example.com/", "custom_alias": "a b"}),
            "invalid_alias",
        ),
        (
            json!({"long_url": "https://example.com/", "custom_alias": "healthz"}),
            "invalid_alias",
        ),
        (
            json!({"long_url": "https://example.com/", "custom_alias": "abcDE12"}),
            "invalid_alias",
        ),
        (
            json!({"long_url": "https://example.com/", "redirect": 307}),
            "invalid_redirect",
        ),
        (
            json!({"long_url": "https://example.com/", "expires_at": "2001-01-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"long_url": "https://example.com/", "expires_at": "tomorrow"}),
            "invalid_expiry",
        ),
        (
            json!({"long_url": "https://example.com/", "unknown": true}),
            "invalid_body",
        ),
        (json!({"custom_alias": "no-url"}), "invalid_body"),
    ];
    for (body, error) in cases {
        let (status, answer) = s.create(body.clone()).await?;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"], error, "{body} → {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let post = |body: String| {
        s.http
            .post(format!("{}/v1/urls", s.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = post("{\"long_url\": ".into()).await?;
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.json::<Value>().await?["error"], "malformed_json");
    let huge = post(format!(
        "{{\"long_url\": \"https://example.com/{}\"}}",
        "a".repeat(8192)
    ))
    .await?;
    assert_eq!(huge.status(), 413);
    assert_eq!(huge.json::<Value>().await?["error"], "body_too_large");
    let no_type = s
        .http
        .post(format!("{}/v1/urls", s.base))
        .bearer_auth(KEY)
        .body("{}")
        .send()
        .await?;
    assert_eq!(no_type.status(), 415);
    let no_key = s
        .http
        .post(format!("{}/v1/urls", s.base))
        .json(&json!({"long_url": "https://example.com/"}))
        .send()
        .await?;
    assert_eq!(no_key.status(), 401);
    assert_eq!(no_key.json::<Value>().await?["error"], "unauthorized");
    let wrong_key = s
        .http
        .post(format!("{}/v1/urls", s.base))
        .bearer_auth("not-the-key")
        .json(&json!({"long_url": "https://example.com/"}))
        .send()
        .await?;
    assert_eq!(wrong_key.status(), 401);
    let unknown_route = s.get("/v1/nothing/here").await?;
    assert_eq!(unknown_route.status(), 404);
    assert_eq!(unknown_route.json::<Value>().await?["error"], "not_found");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_describes_every_route() -> Result<()> {
    let s = Shortener::start().await?;
    let doc: Value = s.get("/openapi.json").await?.json().await?;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/urls",
        "/v1/urls/{code}",
        "/{code}",
    ]
    .into();
    assert_eq!(paths, expected);
    assert!(doc["paths"]["/v1/urls"]["post"]["security"].is_array());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    // Request metrics are labelled by route template.
    s.get("/Zzzzzzz").await?;
    let metrics = s.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains(
            r#"sixfold_http_requests_total{method="GET",route="/{code}",status="404"} 1"#
        ),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_url_created_restores_every_redirect() -> Result<()> {
    let first = Shortener::start().await?;
    let mut links = Vec::new();
    for i in 0..20 {
        let body = if i % 4 == 0 {
            json!({"long_url": format!("https://example.com/{i}"), "custom_alias": format!("replay-{i}")})
        } else {
            json!({"long_url": format!("https://example.com/{i}")})
        };
        let (status, created) = first.create(body).await?;
        assert_eq!(status, 201, "{created}");
        links.push((
            created["short_code"].as_str().unwrap().to_string(),
            format!("https://example.com/{i}"),
        ));
    }
    let (settings, registry) = (first.settings.clone(), first.registry.clone());
    let mut redis = first.redis.clone();
    drop(first);

    // Empty cache: delete every key of this namespace.
    let keys: Vec<String> = redis.keys(format!("{}:*", settings.namespace)).await?;
    if !keys.is_empty() {
        redis.del::<_, ()>(keys).await?;
    }
    // Empty store, new consumer group: the processor reads url.created from the beginning.
    let second = Shortener::start_with(settings, registry, &unique("urls-replay"), false).await?;
    for (code, target) in &links {
        wait_for(
            &format!("{code} restored"),
            Duration::from_secs(60),
            || async {
                second.get(&format!("/{code}")).await.is_ok_and(|r| {
                    r.headers()
                        .get("location")
                        .is_some_and(|l| l == target.as_str())
                })
            },
        )
        .await?;
    }
    Ok(())
}
