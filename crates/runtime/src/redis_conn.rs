//! One Redis connection type for every system: a single node, or a Redis Cluster.
//!
//! [`RedisConn`] implements `redis::aio::ConnectionLike`, so commands, scripts and
//! single-slot pipelines run on it as on any connection. What differs on a cluster is a
//! pipeline whose commands touch keys in different hash slots: the cluster refuses it
//! (`CROSSSLOT`). [`RedisConn::query_each`] runs such a batch of independent commands as one
//! pipeline on a single node, and on a cluster as concurrent requests, each routed by its key.
//! Keys that one command or script uses together share a hash tag (`{<user>}`) in every
//! system, so they always land in one slot.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use serde::{Deserialize, Serialize};

/// Settings section `redis:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db` of a single node (ignored when `cluster_nodes` is set).
    pub url: String,
    /// Redis Cluster seed nodes (`redis://host:port` or `host:port`); non-empty selects
    /// cluster mode.
    pub cluster_nodes: Vec<String>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/".into(),
            cluster_nodes: Vec::new(),
        }
    }
}

impl RedisSettings {
    /// Whether the settings name a cluster.
    pub fn cluster_mode(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }

    /// The seed nodes as URLs.
    pub fn cluster_urls(&self) -> Vec<String> {
        self.cluster_nodes
            .iter()
            .map(|node| {
                if node.contains("://") {
                    node.clone()
                } else {
                    format!("redis://{node}")
                }
            })
            .collect()
    }

    /// URLs of the nodes to try for a connection of one's own (pub/sub, health checks): `url`,
    /// or every cluster seed (a cluster forwards every `PUBLISH` to all its nodes).
    pub fn node_urls(&self) -> Vec<String> {
        if self.cluster_mode() {
            self.cluster_urls()
        } else {
            vec![self.url.clone()]
        }
    }

    /// Where Redis is, for logs and errors: the URL, or `cluster <seed nodes>`.
    pub fn describe(&self) -> String {
        if self.cluster_mode() {
            format!("cluster {}", self.cluster_nodes.join(","))
        } else {
            self.url.clone()
        }
    }
}

/// A multiplexed connection that reconnects by itself, to one node or to a cluster.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub enum RedisConn {
    /// One node.
    Single(ConnectionManager),
    /// A Redis Cluster: commands are routed by their keys' hash slots.
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects as `settings` say.
    pub async fn connect(settings: &RedisSettings) -> RedisResult<Self> {
        if settings.cluster_mode() {
            let client = ClusterClient::new(settings.cluster_urls())?;
            Ok(Self::Cluster(client.get_async_connection().await?))
        } else {
            let client = redis::Client::open(settings.url.as_str())?;
            Ok(Self::Single(ConnectionManager::new(client).await?))
        }
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs independent commands that may touch keys in different hash slots, and returns
    /// their replies in order: one pipeline (one round trip) on a single node; on a cluster,
    /// one request per command, all at once, each routed by its key. Not atomic either way.
    pub async fn query_each(&self, commands: &[Cmd]) -> RedisResult<Vec<Value>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Single(connection) => {
                let mut pipe = redis::pipe();
                for command in commands {
                    pipe.add_command(command.clone());
                }
                pipe.query_async(&mut connection.clone()).await
            }
            Self::Cluster(connection) => {
                futures::future::try_join_all(commands.iter().map(|command| {
                    let mut connection = connection.clone();
                    async move { command.query_async::<Value>(&mut connection).await }
                }))
                .await
            }
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_select_cluster_mode_and_become_urls() {
        let single = RedisSettings::default();
        assert!(!single.cluster_mode());
        assert_eq!(single.node_urls(), ["redis://127.0.0.1:6379/"]);
        let cluster = RedisSettings {
            cluster_nodes: vec!["10.0.0.1:7000".into(), "redis://10.0.0.2:7000".into()],
            ..RedisSettings::default()
        };
        assert!(cluster.cluster_mode());
        assert_eq!(
            cluster.cluster_urls(),
            ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]
        );
        assert_eq!(cluster.node_urls(), cluster.cluster_urls());
        assert_eq!(
            cluster.describe(),
            "cluster 10.0.0.1:7000,redis://10.0.0.2:7000"
        );
    }
}
