//! Settings section `ratelimit:`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the limiter keeps its counters when neither `redis_url` nor `cluster_nodes` is set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// Settings section `ratelimit:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Whether requests are limited at all. When false the limiter allows everything without
    /// touching Redis or the rules file.
    pub enabled: bool,
    /// Redis (single node) holding the counters; unset means the process's main Redis (the
    /// caller fills it with [`RateLimitSettings::or_redis_url`]), else [`DEFAULT_REDIS_URL`].
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes (`host:port` or `redis://host:port`); non-empty selects cluster
    /// mode and `redis_url` is ignored.
    pub cluster_nodes: Vec<String>,
    /// The rules file (YAML; format in the crate doc).
    pub rules_file: PathBuf,
    /// How often the rules file's modification time is checked; a changed file is reloaded
    /// and a broken one is logged and ignored (the previous rules stay).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// The longest a decision waits for Redis before the rule's `on_redis_error` applies.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First part of every Redis key (`{<prefix>:<rule>:<identity>}:…`).
    pub key_prefix: String,
    /// How many over-limit identities are remembered in process until their retry time, so
    /// their further requests are refused without Redis; 0 turns the local cache off.
    pub local_cache_size: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            redis_url: None,
            cluster_nodes: Vec::new(),
            rules_file: PathBuf::from("config/ratelimit.yaml"),
            reload_interval: Duration::from_secs(1),
            timeout: Duration::from_millis(50),
            key_prefix: "rl".to_owned(),
            local_cache_size: 10_000,
        }
    }
}

impl RateLimitSettings {
    /// Uses the process's own Redis (`main_url`, or the cluster `main_cluster_nodes` when
    /// non-empty) when this section names neither a `redis_url` nor `cluster_nodes`.
    pub fn or_main_redis(mut self, main_url: &str, main_cluster_nodes: &[String]) -> Self {
        if self.redis_url.is_none() && self.cluster_nodes.is_empty() {
            if main_cluster_nodes.is_empty() {
                self.redis_url = Some(main_url.to_owned());
            } else {
                self.cluster_nodes = main_cluster_nodes.to_vec();
            }
        }
        self
    }

    /// Whether the counters live in a Redis Cluster.
    pub fn cluster_mode(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_fields_are_refused() {
        let text = serde_yaml::to_string(&RateLimitSettings::default()).unwrap();
        let back: RateLimitSettings = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, RateLimitSettings::default());
        let some: RateLimitSettings =
            serde_yaml::from_str("timeout: 20ms\ncluster_nodes: [127.0.0.1:7000]").unwrap();
        assert_eq!(some.timeout, Duration::from_millis(20));
        assert!(some.cluster_mode());
        assert!(serde_yaml::from_str::<RateLimitSettings>("timout: 20ms").is_err());
    }

    #[test]
    fn main_redis_fills_only_an_unset_url_or_cluster() {
        let s = RateLimitSettings::default().or_main_redis("redis://main/", &[]);
        assert_eq!(s.redis_url.as_deref(), Some("redis://main/"));
        let s = s.or_main_redis("redis://other/", &[]);
        assert_eq!(s.redis_url.as_deref(), Some("redis://main/"));
        let cluster = vec!["10.0.0.1:7000".to_owned()];
        let s = RateLimitSettings::default().or_main_redis("redis://main/", &cluster);
        assert!(s.cluster_mode() && s.redis_url.is_none());
        let own = RateLimitSettings {
            redis_url: Some("redis://own/".into()),
            ..RateLimitSettings::default()
        }
        .or_main_redis("redis://main/", &cluster);
        assert!(!own.cluster_mode());
    }
}
