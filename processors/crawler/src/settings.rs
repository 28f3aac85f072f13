//! Settings section `crawler:`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings section `crawler:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrawlerSettings {
    /// `User-Agent` of every request; its first word is the product token matched against
    /// robots.txt groups.
    pub user_agent: String,
    /// Least time between two requests to one host (robots.txt `Crawl-delay` may ask more).
    #[serde(with = "humantime_serde")]
    pub default_delay: Duration,
    /// A host answering slower than this gets twice its time to first byte as delay.
    #[serde(with = "humantime_serde")]
    pub slow_ttfb: Duration,
    /// Longest backoff after 429/503 (a `Retry-After` above it is capped).
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// 429/503 answers to one URL before it is given up as an HTTP error.
    pub max_throttled: u32,
    /// Depth limit of crawls that do not give one.
    pub max_depth: u32,
    /// Frontier priority tiers (0 first).
    pub tiers: usize,
    /// Depth levels per tier: depth 0..n is tier 0, and so on.
    pub depth_per_tier: usize,
    /// Query parameters removed from every URL (`utm_*` style prefixes allowed).
    pub strip_params: Vec<String>,
    /// Fetches in flight at once (over all hosts; each host has at most one).
    pub concurrency: usize,
    /// Connect timeout of a fetch.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Whole-request timeout of a fetch.
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// Largest body read; larger pages are recorded as too large.
    pub max_body_bytes: usize,
    /// Fetch hosts that resolve to private, loopback or link-local addresses. Never in
    /// production: it lets anyone who can seed a URL probe the internal network.
    pub allow_private_addresses: bool,
    /// How long a robots.txt is trusted.
    #[serde(with = "humantime_serde")]
    pub robots_ttl: Duration,
    /// How long after a 5xx or unreachable robots.txt it is fetched again (nothing of the host
    /// is fetched meanwhile).
    #[serde(with = "humantime_serde")]
    pub robots_retry: Duration,
    /// How often the fetch loop looks for hosts that became ready or new.
    #[serde(with = "humantime_serde")]
    pub scan_interval: Duration,
    /// How long a fetch loop owns a host without renewing its lease.
    #[serde(with = "humantime_serde")]
    pub host_lease: Duration,
    /// URLs the Bloom filter is sized for.
    pub bloom_expected_urls: u64,
    /// The Bloom filter's false-positive rate at that size (a false positive costs one store
    /// read, never a lost URL).
    pub bloom_false_positive_rate: f64,
    /// Directory of the content store (page bodies by SHA-256).
    pub content_dir: PathBuf,
    /// Prefix of store namespaces and Redis keys.
    pub namespace: String,
    /// Topic of discovered URLs.
    pub discovered_topic: String,
    /// Topic of fetch results.
    pub fetched_topic: String,
}

impl Default for CrawlerSettings {
    fn default() -> Self {
        Self {
            user_agent: "sixfold-crawler/0.1 (+https://github.com/sixfold/sixfold)".into(),
            default_delay: Duration::from_secs(1),
            slow_ttfb: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            max_throttled: 5,
            max_depth: 16,
            tiers: 4,
            depth_per_tier: 2,
            strip_params: crate::normalize::NormalizeSettings::default().strip_params,
            concurrency: 64,
            connect_timeout: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(20),
            max_body_bytes: 5 * 1024 * 1024,
            allow_private_addresses: false,
            robots_ttl: Duration::from_secs(24 * 3600),
            robots_retry: Duration::from_secs(300),
            scan_interval: Duration::from_millis(50),
            host_lease: Duration::from_secs(30),
            bloom_expected_urls: 10_000_000,
            bloom_false_positive_rate: 0.001,
            content_dir: "var/crawl".into(),
            namespace: "crawler".into(),
            discovered_topic: "crawl.discovered".into(),
            fetched_topic: "crawl.fetched".into(),
        }
    }
}
