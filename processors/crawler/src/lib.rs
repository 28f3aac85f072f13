//! Web crawler: a polite, partitioned crawler over a store-backed frontier, as the seed's
//! crawler chapter describes, with what StormCrawler, Nutch and Heritrix learned.
//!
//! # Flow
//! - Seeds: `POST /v1/crawl/seeds` ([`routes`]) or other systems produce `crawl.discovered`
//!   (key: host). Links found while crawling go the same way.
//! - The `crawler` processor ([`admission`]) consumes `crawl.discovered`: normalizes the URL
//!   ([`normalize`]), checks the crawl's scope (depth, allowed domains, length, repeated
//!   segments), deduplicates it (an in-memory [`bloom`] filter for "certainly new", the store
//!   for the exact answer) and queues it in its host's queue in the store ([`frontier`]),
//!   tiered by depth. It also consumes `crawl.fetched`: records each result per host and marks
//!   the URL done (the fetch loop did already; a replay of the topics into a wiped frontier
//!   thereby fetches nothing again).
//! - The fetch loop ([`scheduler`], in every crawler process) takes hosts with work and a due
//!   politeness time, leases each (a Redis key, so one process at a time fetches a host), and
//!   fetches one URL per host at a time, up to `concurrency` hosts at once: robots.txt first
//!   (RFC 9309, cached in the store for `robots_ttl`; `Sitemap:` lines feed discovery), then
//!   the page ([`fetch`]: timeouts, body limit, same-host redirects, refusal of private and
//!   loopback addresses). The body goes to the content store under its SHA-256 (`sixfold_store::blobs`:
//!   identical bodies stored once), links are extracted with an HTML parser ([`extract`]) and
//!   produced to `crawl.discovered`, the result to `crawl.fetched`. The host's next fetch is
//!   due after [`politeness`]: the delay (1 s, or the robots.txt `Crawl-delay`, or twice a slow
//!   time to first byte), or the backoff after 429/503 (`Retry-After` honoured).
//!
//! # Partitioning
//! `crawl.discovered` is keyed by host, so one partition, and so one processor instance, admits
//! all URLs of a host in order: dedup and queueing of a host never race. Fetching follows host
//! leases rather than partition assignment, so it needs no coordination with the consumer's
//! rebalances: a process that stops lets its leases expire (`host_lease`) and another picks the
//! hosts up, with their politeness state, from the store.
//!
//! # Delivery and idempotency
//! At least once. A URL is claimed in the store (seen, queued) before it is queued; a
//! redelivered or repeated discovery finds the claim. A fetch is complete when its links and
//! result are acknowledged by the broker and the URL is marked done; only then is it taken off
//! the queue, and a URL marked done is never fetched again, so a crash refetches at most the
//! pages in flight. Invalid events go to `crawler.dlq`; an unavailable store is transient
//! (`crawler.retry.1..3`).

#![warn(missing_docs)]

pub mod admission;
pub mod bloom;
pub mod events;
pub mod extract;
pub mod fetch;
pub mod frontier;
pub mod normalize;
mod percent;
pub mod politeness;
pub mod robots;
pub mod routes;
pub mod scheduler;
pub mod settings;

use std::sync::{Arc, Mutex};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};
use serde::Serialize;
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::redis_conn::RedisConn;
use sixfold_store::Store;

pub use crate::admission::CrawlerProcessor;
use crate::bloom::BloomFilter;
use crate::frontier::Frontier;
use crate::normalize::NormalizeSettings;
pub use crate::settings::CrawlerSettings;
use sixfold_store::blobs::ContentStore;

/// The processor's name (consumer group, retry and DLQ topics).
pub const PROCESSOR: &str = "crawler";

/// What the crawler needs from the process.
pub struct CrawlerDeps {
    /// Store.
    pub store: Arc<dyn Store>,
    /// Redis (host leases).
    pub redis: RedisConn,
    /// Producer (links and results are awaited before a URL counts as done).
    pub producer: Producer,
    /// Avro codec.
    pub codec: Arc<AvroCodec>,
    /// Metrics registry.
    pub metrics: Metrics,
}

/// Why the crawler could not start.
#[derive(Debug, thiserror::Error)]
pub enum CrawlerStartError {
    /// A setting is invalid.
    #[error("crawler settings: {0}")]
    Settings(String),
    /// An event schema did not parse.
    #[error("crawler schema: {0}")]
    Schema(#[from] sixfold_runtime::codec::CodecError),
    /// A metric could not be registered.
    #[error("crawler metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The content store could not be opened.
    #[error("crawler content store: {0}")]
    Content(#[from] object_store::Error),
    /// The HTTP client could not be built.
    #[error("crawler fetcher: {0}")]
    Fetcher(String),
}

/// The crawler's shared state: used by its routes, its processor and its fetch loop.
pub struct Crawler {
    settings: CrawlerSettings,
    normalize: NormalizeSettings,
    frontier: Frontier,
    content: ContentStore,
    fetcher: fetch::Fetcher,
    redis: RedisConn,
    producer: Producer,
    codec: Arc<AvroCodec>,
    discovered_schema: EventSchema,
    fetched_schema: EventSchema,
    bloom: Mutex<BloomFilter>,
    metrics: Metrics,
    /// Discovered URLs by admission result.
    admissions: IntCounterVec,
    /// Fetches by outcome.
    fetches: IntCounterVec,
    /// Seconds per fetch stage (robots, fetch, store, extract, produce).
    stage_seconds: HistogramVec,
    /// URLs queued per host (hosts this process fetches).
    queued: IntGaugeVec,
    /// Parsed robots.txt rules by host, with the fetch time of the file they came from.
    robots_rules: Mutex<std::collections::HashMap<String, (i64, robots::Rules)>>,
    /// Hosts this process has recorded in the host list (saves a store write per URL).
    known_hosts: Mutex<std::collections::HashSet<String>>,
    /// Take or renew a host lease (`lua/lease.lua`).
    lease_script: redis::Script,
    /// Give a host lease up if still held (`lua/release.lua`).
    release_script: redis::Script,
    /// Fetch loops (this one included) in this process's latest view of the members.
    fetch_loops_seen: std::sync::atomic::AtomicUsize,
}

impl Crawler {
    /// Builds the crawler from settings and the process's clients.
    pub fn new(
        settings: CrawlerSettings,
        deps: CrawlerDeps,
    ) -> Result<Arc<Self>, CrawlerStartError> {
        if settings.concurrency == 0 || settings.tiers == 0 || settings.namespace.is_empty() {
            return Err(CrawlerStartError::Settings(
                "concurrency, tiers and namespace must be set".into(),
            ));
        }
        let bloom = BloomFilter::with_rate(
            settings.bloom_expected_urls,
            settings.bloom_false_positive_rate,
        )
        .map_err(|e| CrawlerStartError::Settings(e.to_string()))?;
        let registry = deps.metrics.registry();
        let admissions = IntCounterVec::new(
            Opts::new(
                "sixfold_crawler_admissions_total",
                "Discovered URLs by admission: queued, duplicate, or the scope rule that refused them.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(admissions.clone()))?;
        let fetches = IntCounterVec::new(
            Opts::new(
                "sixfold_crawler_fetches_total",
                "Fetches by outcome (fetched, http_error, robots_disallowed, ...).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(fetches.clone()))?;
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sixfold_crawler_stage_seconds",
                "Time per crawl stage: robots, fetch, store, extract, produce.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["stage"],
        )?;
        registry.register(Box::new(stage_seconds.clone()))?;
        let queued = IntGaugeVec::new(
            Opts::new(
                "sixfold_crawler_frontier_queued",
                "URLs waiting in the frontier, per host this process fetches.",
            ),
            &["host"],
        )?;
        registry.register(Box::new(queued.clone()))?;
        let fetcher = fetch::Fetcher::new(fetch::FetchSettings {
            user_agent: settings.user_agent.clone(),
            connect_timeout: settings.connect_timeout,
            timeout: settings.fetch_timeout,
            max_body_bytes: settings.max_body_bytes,
            allow_private_addresses: settings.allow_private_addresses,
            ..fetch::FetchSettings::default()
        })
        .map_err(|e| CrawlerStartError::Fetcher(e.to_string()))?;
        Ok(Arc::new(Self {
            normalize: NormalizeSettings {
                strip_params: settings.strip_params.clone(),
            },
            frontier: Frontier::new(deps.store, &settings.namespace),
            content: ContentStore::local(&settings.content_dir)?,
            fetcher,
            redis: deps.redis,
            producer: deps.producer,
            codec: deps.codec,
            discovered_schema: EventSchema::parse(events::CRAWL_DISCOVERED_SCHEMA)?,
            fetched_schema: EventSchema::parse(events::CRAWL_FETCHED_SCHEMA)?,
            bloom: Mutex::new(bloom),
            metrics: deps.metrics,
            admissions,
            fetches,
            stage_seconds,
            queued,
            robots_rules: Mutex::new(Default::default()),
            known_hosts: Mutex::new(Default::default()),
            lease_script: redis::Script::new(include_str!("lua/lease.lua")),
            release_script: redis::Script::new(include_str!("lua/release.lua")),
            fetch_loops_seen: std::sync::atomic::AtomicUsize::new(0),
            settings,
        }))
    }

    /// The processor, for the runtime's consumer loop.
    pub fn processor(self: &Arc<Self>) -> CrawlerProcessor {
        CrawlerProcessor::new(self.clone())
    }

    /// The topics the processor consumes.
    pub fn input_topics(&self) -> Vec<String> {
        vec![
            self.settings.discovered_topic.clone(),
            self.settings.fetched_topic.clone(),
        ]
    }

    /// The settings in force.
    pub fn settings(&self) -> &CrawlerSettings {
        &self.settings
    }

    /// Fetches so far with `outcome` (a [`events::FetchOutcome::label`]); tests and benchmarks
    /// watch it.
    pub fn fetch_count(&self, outcome: &str) -> u64 {
        self.fetches.with_label_values(&[outcome]).get()
    }

    /// How many fetch loops (this one included) this process's fetch loop last saw alive;
    /// hosts are spread over exactly those.
    pub fn fetch_loops_seen(&self) -> usize {
        self.fetch_loops_seen
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Seconds spent and observations per crawl stage so far (for the benchmark's breakdown).
    pub fn stage_totals(&self) -> Vec<(String, f64, u64)> {
        ["robots", "fetch", "store", "extract", "produce"]
            .iter()
            .map(|stage| {
                let h = self.stage_seconds.with_label_values(&[stage]);
                (stage.to_string(), h.get_sample_sum(), h.get_sample_count())
            })
            .collect()
    }

    fn bloom_contains(&self, hash: &str) -> bool {
        self.bloom
            .lock()
            .map(|b| b.might_contain(hash.as_bytes()))
            .unwrap_or(true)
    }

    fn bloom_insert(&self, hash: &str) {
        if let Ok(mut bloom) = self.bloom.lock() {
            bloom.insert(hash.as_bytes());
        }
    }

    /// Fills the Bloom filter from the store's seen URLs (at start: the filter lives in memory).
    pub async fn rebuild_bloom(&self) -> Result<u64, sixfold_store::StoreError> {
        let mut count = 0;
        for host in self.frontier.all_hosts().await? {
            for hash in self.frontier.seen_hashes(&host).await? {
                self.bloom_insert(&hash);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Encodes `event` for `topic` with `key` and waits for the broker's acknowledgement.
    async fn produce<T: Serialize>(
        &self,
        topic: &str,
        schema: &EventSchema,
        key: &str,
        event: &T,
    ) -> Result<(), String> {
        self.producer
            .send_event(&self.codec, topic, schema, key, event)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
