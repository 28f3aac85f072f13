//! The connection to Redis, single node or Cluster behind one type, and the script call.
//!
//! Both connect lazily and reconnect by themselves, so a limiter can be built while Redis is
//! down and recovers when it returns; the caller bounds every call with its timeout.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use tokio::sync::OnceCell;

use crate::RateLimitError;
use crate::script::{SHA, SOURCE};
use crate::settings::{DEFAULT_REDIS_URL, RateLimitSettings};

/// After a failed cluster connection attempt, calls fail at once for this long.
const CLUSTER_RECONNECT_BACKOFF: Duration = Duration::from_millis(500);
/// How long one connection attempt may take (in the background of the request timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What one script call returned.
pub(crate) struct EvalReply {
    /// The script's integers.
    pub values: Vec<i64>,
    /// The node did not know the script (`NOSCRIPT`) and it was sent with `EVAL`.
    pub loaded: bool,
}

/// A multiplexed connection to a single Redis or to a Redis Cluster.
pub(crate) enum Backend {
    Single(ConnectionManager),
    Cluster(Box<LazyCluster>),
}

pub(crate) struct LazyCluster {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
    failed_at: Mutex<Option<Instant>>,
}

impl Backend {
    /// A backend for `settings` (cluster mode when `cluster_nodes` is non-empty); connects on
    /// first use.
    pub(crate) fn new(settings: &RateLimitSettings) -> Result<Self, RateLimitError> {
        if settings.cluster_mode() {
            let nodes: Vec<String> = settings
                .cluster_nodes
                .iter()
                .map(|n| match n.contains("://") {
                    true => n.clone(),
                    false => format!("redis://{n}"),
                })
                .collect();
            let client = ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(CONNECT_TIMEOUT)
                .retries(2)
                .build()
                .map_err(|source| RateLimitError::Connect {
                    target: settings.cluster_nodes.join(","),
                    source,
                })?;
            return Ok(Backend::Cluster(Box::new(LazyCluster {
                client,
                connection: OnceCell::new(),
                failed_at: Mutex::new(None),
            })));
        }
        let url = settings.redis_url.as_deref().unwrap_or(DEFAULT_REDIS_URL);
        let connect_error = |source| RateLimitError::Connect {
            target: url.to_owned(),
            source,
        };
        let client = redis::Client::open(url).map_err(connect_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(connect_error)?;
        Ok(Backend::Single(manager))
    }

    /// Connects and loads the script on every node, so the first decisions need one round trip.
    pub(crate) async fn prepare(&self) -> Result<(), RateLimitError> {
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(SOURCE);
        match self {
            Backend::Single(manager) => {
                let _: redis::Value = load.query_async(&mut manager.clone()).await?;
            }
            Backend::Cluster(cluster) => {
                let _: redis::Value = load.query_async(&mut cluster.connection().await?).await?;
            }
        }
        Ok(())
    }

    /// Runs the rate-limit script over `keys` with `args`: `EVALSHA`, and `EVAL` if the node
    /// answers `NOSCRIPT` (a restarted or new node, `SCRIPT FLUSH`). `EVAL` caches the script
    /// on that node, so the next `EVALSHA` there succeeds. Cluster connections route both by
    /// the first key, which is why all keys of a call share one hash tag.
    pub(crate) async fn eval(
        &self,
        keys: &[String],
        args: &[String],
    ) -> Result<EvalReply, RateLimitError> {
        match self {
            Backend::Single(manager) => Ok(eval_on(&mut manager.clone(), keys, args).await?),
            Backend::Cluster(cluster) => {
                Ok(eval_on(&mut cluster.connection().await?, keys, args).await?)
            }
        }
    }
}

impl LazyCluster {
    async fn connection(&self) -> Result<ClusterConnection, RateLimitError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let recently_failed = self
            .failed_at
            .lock()
            .map(|at| at.is_some_and(|t| t.elapsed() < CLUSTER_RECONNECT_BACKOFF))
            .unwrap_or(false);
        if recently_failed {
            return Err(RateLimitError::Unavailable(
                "cluster connection failed recently".into(),
            ));
        }
        let result = self
            .connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await;
        match result {
            Ok(connection) => Ok(connection.clone()),
            Err(error) => {
                if let Ok(mut at) = self.failed_at.lock() {
                    *at = Some(Instant::now());
                }
                Err(error.into())
            }
        }
    }
}

async fn eval_on<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &[String],
    args: &[String],
) -> Result<EvalReply, RedisError> {
    let mut evalsha = redis::cmd("EVALSHA");
    evalsha
        .arg(SHA.as_str())
        .arg(keys.len())
        .arg(keys)
        .arg(args);
    match evalsha.query_async(connection).await {
        Ok(values) => Ok(EvalReply {
            values,
            loaded: false,
        }),
        Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(SOURCE).arg(keys.len()).arg(keys).arg(args);
            let values = eval.query_async(connection).await?;
            Ok(EvalReply {
                values,
                loaded: true,
            })
        }
        Err(error) => Err(error),
    }
}
