//! The crawler's events, as serde types matching `schemas/avro/crawl.*.avsc`.

use serde::{Deserialize, Serialize};

/// `schemas/avro/crawl.discovered.avsc`.
pub const CRAWL_DISCOVERED_SCHEMA: &str =
    include_str!("../../../schemas/avro/crawl.discovered.avsc");
/// `schemas/avro/crawl.fetched.avsc`.
pub const CRAWL_FETCHED_SCHEMA: &str = include_str!("../../../schemas/avro/crawl.fetched.avsc");

/// How a URL was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DiscoverySource {
    /// Given as a seed.
    Seed,
    /// An `<a href>` on a crawled page.
    Link,
    /// An entry of a sitemap (or the sitemap itself, named by robots.txt).
    Sitemap,
    /// The target of a redirect that was not followed in place (another host).
    Redirect,
    /// A page's `<link rel=canonical>`.
    Canonical,
}

/// A URL to consider (key: host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrawlDiscovered {
    /// Unique event id.
    pub event_id: String,
    /// When it was found.
    pub occurred_at: i64,
    /// Absolute http(s) URL.
    pub url: String,
    /// Host key (lower-case host with non-default port); the record key.
    pub host: String,
    /// The crawl it belongs to.
    pub crawl_id: String,
    /// Links followed from a seed.
    pub depth: i32,
    /// Suggested priority tier, 0 highest.
    #[serde(default)]
    pub priority: i32,
    /// How it was found.
    pub source: DiscoverySource,
    /// Page or sitemap it was found on.
    #[serde(default)]
    pub discovered_from: Option<String>,
    /// The crawl's depth limit (settings default when `None`).
    #[serde(default)]
    pub max_depth: Option<i32>,
    /// Domains the crawl may enter; empty for any.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

/// Result class of one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FetchOutcome {
    /// A symbol this reader does not know.
    Unknown,
    /// A 2xx body was stored.
    Fetched,
    /// The final response was not 2xx (or a redirect handed on as a new URL).
    HttpError,
    /// robots.txt disallows the URL.
    RobotsDisallowed,
    /// The host resolves to an address the crawler may not reach.
    BlockedAddress,
    /// The body was larger than the limit.
    TooLarge,
    /// Not HTML (or a sitemap), so not parsed or stored.
    UnsupportedContentType,
    /// No answer in time.
    Timeout,
    /// The connection failed.
    NetworkError,
}

impl FetchOutcome {
    /// The metric label of this outcome.
    pub fn label(self) -> &'static str {
        match self {
            FetchOutcome::Unknown => "unknown",
            FetchOutcome::Fetched => "fetched",
            FetchOutcome::HttpError => "http_error",
            FetchOutcome::RobotsDisallowed => "robots_disallowed",
            FetchOutcome::BlockedAddress => "blocked_address",
            FetchOutcome::TooLarge => "too_large",
            FetchOutcome::UnsupportedContentType => "unsupported_content_type",
            FetchOutcome::Timeout => "timeout",
            FetchOutcome::NetworkError => "network_error",
        }
    }
}

/// The result of one fetch (key: host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrawlFetched {
    /// Unique event id.
    pub event_id: String,
    /// When the event was written.
    pub occurred_at: i64,
    /// The normalized URL fetched.
    pub url: String,
    /// Its host key; the record key.
    pub host: String,
    /// The crawl.
    pub crawl_id: String,
    /// Depth of the URL.
    pub depth: i32,
    /// Result class.
    pub outcome: FetchOutcome,
    /// Final HTTP status.
    pub status_code: Option<i32>,
    /// URL after redirects, when different.
    pub final_url: Option<String>,
    /// Media type of the response.
    pub content_type: Option<String>,
    /// SHA-256 of the body, hex.
    pub content_hash: Option<String>,
    /// Blob store path of the body.
    pub content_location: Option<String>,
    /// Body size.
    pub content_length: Option<i64>,
    /// Links produced to `crawl.discovered`.
    pub links_count: i32,
    /// When the response (or failure) arrived.
    pub fetched_at: i64,
    /// Time to first byte.
    pub ttfb_ms: Option<i32>,
    /// Why, when not fetched.
    pub error: Option<String>,
}
