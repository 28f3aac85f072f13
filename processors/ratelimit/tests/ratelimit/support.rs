//! Where the tests' Redis is, limiters with unique key prefixes, raw Redis access, metrics.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use prometheus::Registry;
use redis::FromRedisValue;
use sixfold_ratelimit::{RateLimitSettings, RateLimiter};
use tempfile::TempDir;

/// A test clock origin: 2027-01-15 08:00:00 UTC in µs, aligned to the hour (and so to every
/// window the tests use).
pub const T0: u64 = 1_800_000_000_000_000;
pub const MS: u64 = 1_000;
pub const SEC: u64 = 1_000_000;

/// Which Redis a suite run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Single,
    Cluster,
}

fn single_url() -> String {
    std::env::var("SIXFOLD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn cluster_nodes() -> Vec<String> {
    std::env::var("SIXFOLD_TEST_REDIS_CLUSTER")
        .unwrap_or_else(|_| "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "t-{test}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Settings for `target` with a unique prefix and the given rules file.
pub fn settings(target: Target, test: &str, rules_file: &Path) -> RateLimitSettings {
    let mut s = RateLimitSettings {
        key_prefix: unique_prefix(test),
        rules_file: rules_file.to_owned(),
        reload_interval: Duration::from_millis(50),
        // Generous: a debug build on two shared cores; the failure tests set their own.
        timeout: Duration::from_secs(2),
        ..RateLimitSettings::default()
    };
    match target {
        Target::Single => s.redis_url = Some(single_url()),
        Target::Cluster => s.cluster_nodes = cluster_nodes(),
    }
    s
}

/// Raw access to the target, for looking at what the scripts stored.
pub enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    /// Connects, and fails with what to run when the target is not there.
    pub async fn connect(target: Target) -> Result<Self> {
        let deadline = Duration::from_secs(5);
        match target {
            Target::Single => {
                let url = single_url();
                let connect = async {
                    let client = redis::Client::open(url.as_str())?;
                    client.get_multiplexed_async_connection().await
                };
                match tokio::time::timeout(deadline, connect).await {
                    Ok(Ok(c)) => Ok(Raw::Single(c)),
                    _ => bail!(
                        "Redis is not reachable at {url}; start it with `scripts/services.sh up`"
                    ),
                }
            }
            Target::Cluster => {
                let nodes = cluster_nodes();
                let hint = format!(
                    "the Redis Cluster is not reachable at {} (SIXFOLD_TEST_REDIS_CLUSTER); start it with \
                     `scripts/redis-cluster.sh up`",
                    nodes.join(",")
                );
                let urls: Vec<String> = nodes.iter().map(|n| format!("redis://{n}")).collect();
                let connect = async {
                    let client = redis::cluster::ClusterClient::builder(urls)
                        .connection_timeout(Duration::from_secs(1))
                        .build()?;
                    client.get_async_connection().await
                };
                let mut raw = match tokio::time::timeout(deadline, connect).await {
                    Ok(Ok(c)) => Raw::Cluster(c),
                    _ => bail!("{hint}"),
                };
                let info: String = raw
                    .query(redis::cmd("CLUSTER").arg("INFO"))
                    .await
                    .context(hint.clone())?;
                if !info.contains("cluster_state:ok") {
                    bail!("{hint} (cluster_state is not ok)");
                }
                Ok(raw)
            }
        }
    }

    pub async fn query<T: FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        Ok(match self {
            Raw::Single(c) => cmd.query_async(c).await?,
            Raw::Cluster(c) => cmd.query_async(c).await?,
        })
    }
}

/// A rules file in a fresh directory.
pub struct RulesFile {
    _dir: TempDir,
    pub path: PathBuf,
}

impl RulesFile {
    pub fn new(yaml: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ratelimit.yaml");
        std::fs::write(&path, yaml)?;
        Ok(Self { _dir: dir, path })
    }

    pub fn write(&self, yaml: &str) -> Result<()> {
        // Write aside and rename, as deployment tools do, so the watcher never sees half a file.
        let aside = self.path.with_extension("tmp");
        std::fs::write(&aside, yaml)?;
        std::fs::rename(&aside, &self.path)?;
        Ok(())
    }
}

/// A limiter on `target` plus what the test needs to look inside.
pub struct Harness {
    pub limiter: RateLimiter,
    pub registry: Registry,
    pub settings: RateLimitSettings,
    pub rules: RulesFile,
    pub raw: Raw,
}

impl Harness {
    pub async fn new(target: Target, test: &str, rules_yaml: &str) -> Result<Self> {
        Self::with(target, test, rules_yaml, |_| {}).await
    }

    pub async fn with(
        target: Target,
        test: &str,
        rules_yaml: &str,
        adjust: impl FnOnce(&mut RateLimitSettings),
    ) -> Result<Self> {
        let raw = Raw::connect(target).await?;
        let rules = RulesFile::new(rules_yaml)?;
        let mut settings = settings(target, test, &rules.path);
        adjust(&mut settings);
        let registry = Registry::new();
        let limiter = RateLimiter::new(&settings, &registry).await?;
        Ok(Self {
            limiter,
            registry,
            settings,
            rules,
            raw,
        })
    }

    /// The value of a counter or gauge (the sum over series whose labels include `labels`),
    /// or a histogram's sample count.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        metric(&self.registry, name, labels)
    }
}

pub fn metric(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> u64 {
    use prometheus::Encoder;
    let mut text = Vec::new();
    if prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .is_err()
    {
        return 0;
    }
    let text = String::from_utf8_lossy(&text);
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        let wanted = series_name == name || series_name == format!("{name}_count");
        if wanted
            && labels
                .iter()
                .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        {
            total += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    total as u64
}

/// Polls `condition` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs each listed test against the single Redis and against the cluster.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::support::Target::Single).await
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::support::Target::Cluster).await
                }
            )*
        }
    };
}
pub(crate) use on_both;
