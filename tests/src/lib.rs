//! Support for Sixfold's integration tests: unique names, topic set-up, an in-process schema
//! registry, waiting on conditions, and the ledger test processor built on the runtime.
//!
//! Every test uses fresh topic names, consumer groups and Redis key prefixes, so tests run in
//! parallel against one broker and one Redis without seeing each other.

pub mod chat;
pub mod ledger;
pub mod standins;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sixfold_ingress::{IngressSettings, Readiness, SystemRoutes};
use sixfold_ratelimit::RateLimiter;
use sixfold_registry::RegistrySettings;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::redis_conn::{RedisConn, RedisSettings};
use sixfold_runtime::settings::KafkaSettings;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::topics::TopicSpec;
use sixfold_store::{Store, StoreSettings};

/// Broker address from `SIXFOLD__KAFKA__BROKERS`, or the local default.
pub fn kafka() -> KafkaSettings {
    KafkaSettings {
        brokers: std::env::var("SIXFOLD__KAFKA__BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".into()),
        ..KafkaSettings::default()
    }
}

/// Redis URL from `SIXFOLD__REDIS__URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("SIXFOLD__REDIS__URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// The 3-node Redis Cluster `make services-up` starts (`scripts/redis-cluster.sh`): seed nodes
/// from `SIXFOLD_TEST_REDIS_CLUSTER` (comma-separated) or its default ports.
pub fn redis_cluster_nodes() -> Vec<String> {
    std::env::var("SIXFOLD_TEST_REDIS_CLUSTER")
        .unwrap_or_else(|_| "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".into())
        .split(',')
        .map(|node| node.trim().to_owned())
        .filter(|node| !node.is_empty())
        .collect()
}

/// Redis settings of a test: the single node of [`redis_url`], or with `cluster` the Redis
/// Cluster of [`redis_cluster_nodes`].
pub fn redis_settings(cluster: bool) -> RedisSettings {
    RedisSettings {
        url: redis_url(),
        cluster_nodes: if cluster {
            redis_cluster_nodes()
        } else {
            Vec::new()
        },
    }
}

/// A connection as [`redis_settings`] says.
pub async fn redis_conn(cluster: bool) -> Result<RedisConn> {
    let settings = redis_settings(cluster);
    RedisConn::connect(&settings).await.with_context(|| {
        format!(
            "connect to redis {} (start it with `make services-up`)",
            settings.describe()
        )
    })
}

/// A name no other test run uses: `prefix-<uuid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates `topics` (name, partitions) on the broker.
pub async fn create_topics(topics: &[(&str, i32)]) -> Result<()> {
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|(name, partitions)| TopicSpec {
            name: name.to_string(),
            partitions: *partitions,
            replication: 1,
            config: Default::default(),
        })
        .collect();
    sixfold_runtime::topics::apply(&kafka(), &specs).await?;
    Ok(())
}

/// A schema registry served in this process on a free port, with its own `_schemas` topic.
pub struct TestRegistry {
    /// URL to give codecs.
    pub url: String,
    shutdown: CancellationToken,
}

impl TestRegistry {
    /// Starts the registry and waits until it answers.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let settings = RegistrySettings {
            url: format!("http://{address}"),
            listen: address,
            topic: unique("_schemas-test"),
            ..RegistrySettings::default()
        };
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let kafka = kafka();
        let serve_settings = settings.clone();
        tokio::spawn(async move {
            if let Err(error) =
                sixfold_registry::serve(listener, &serve_settings, &kafka, token).await
            {
                tracing::error!(%error, "test registry failed");
            }
        });
        let url = settings.url.clone();
        let http = reqwest::Client::new();
        let subjects = format!("{url}/subjects");
        wait_for("registry to answer", Duration::from_secs(60), || {
            let request = http.get(&subjects).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await?;
        Ok(Self { url, shutdown })
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A fresh SQLite store in `dir` (the caller keeps the directory alive).
pub async fn sqlite_store(dir: &std::path::Path) -> Result<Arc<dyn Store>> {
    Ok(sixfold_store::connect(&StoreSettings {
        sqlite_path: dir.join("store.db"),
        ..StoreSettings::default()
    })
    .await?)
}

/// A listener on a free loopback port and the base URL it answers at.
pub async fn bind() -> Result<(tokio::net::TcpListener, String)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    Ok((listener, base))
}

/// Serves the ingress assembled from `settings`, `limiter` and `systems` on `listener` until
/// `shutdown`, with `/readyz` checking the real broker, the registry at `registry_url`, the
/// test Redis and `store`.
#[allow(clippy::too_many_arguments)]
pub fn serve_ingress(
    listener: tokio::net::TcpListener,
    settings: &IngressSettings,
    registry_url: &str,
    redis_url: &str,
    store: Arc<dyn Store>,
    metrics: Metrics,
    limiter: RateLimiter,
    systems: Vec<SystemRoutes>,
    shutdown: CancellationToken,
) -> Result<()> {
    let readiness = Readiness::new(
        &kafka(),
        registry_url,
        vec![redis::Client::open(redis_url)?],
        store,
    )?;
    let app = sixfold_ingress::app(settings, Arc::new(readiness), metrics, limiter, systems)?;
    tokio::spawn(sixfold_ingress::serve(listener, app, shutdown));
    Ok(())
}

/// Polls `condition` every 100 ms until it is true, failing after `deadline`.
pub async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return Ok(());
        }
        if started.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
