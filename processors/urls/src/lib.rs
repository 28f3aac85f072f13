//! URL shortener: short codes, redirects through a Redis cache over the store, click counts.
//!
//! # Flow
//! - `POST /v1/urls` (ingress, API key) validates the request, picks the code, produces
//!   `url.created` (waiting for the broker's acknowledgement) and primes the cache, so a
//!   redirect right after creation works before the processor has run.
//! - The `urls` processor consumes `url.created` (key: short code) and upserts the link into the
//!   store namespace `urls` plus an expiry index `urls.expiry`, then refreshes the cache.
//! - `GET /{code}` looks the link up cache-aside (Redis `urls:link:<code>`, then the store, then
//!   fills the cache with a TTL that never outlives the link) and answers 301 or 302 with
//!   `Location`, 404 for an unknown code, 410 for an expired link. It hands a `url.clicked`
//!   event to a background task that produces in batches: the response never waits on it.
//! - The processor consumes `url.clicked` (key: short code) and counts clicks per code and UTC
//!   day in the store namespace `urls.clicks`; `GET /v1/urls/{code}` returns link and counts.
//! - A periodic task (in the processor process) purges links a grace period after expiry.
//!
//! # Short codes
//! Generated codes are 7 Base62 characters: a counter value, leased in blocks (Redis `INCR` for
//! speed, claimed atomically in the store for durability — [`allocator`]), pushed through a
//! keyed Feistel permutation of `[0, 62^7)` ([`code`]). Unique without a collision check on the
//! create path, and unpredictable without the key (`urls.code_secret`). A pre-generated key pool
//! (a key generation service) would also work, but needs a store of unused keys and a way to
//! hand them out exactly once; counter blocks need one integer and one claim per 1000 codes.
//! Custom aliases (4–32 of `[A-Za-z0-9_-]`, not reserved, never 7 plain Base62 characters so
//! they cannot equal a generated code) are claimed synchronously by the ingress with the
//! store's atomic `put_if_absent`: two racing requests for one alias get one 201 and one 409.
//!
//! # Delivery and idempotency
//! At least once (the runtime's guarantee). A redelivered `url.created` upserts the same row;
//! a redelivered `url.clicked` is skipped because the count row remembers the last applied
//! offset per partition (all clicks of a code share a partition and, outside retries, one
//! writer). Replaying `url.created` from the beginning into an empty store and cache restores
//! every redirect.
//! Failures: undecodable or invalid events go to `urls.dlq`; a store that is unavailable is
//! transient (retry tiers `urls.retry.1..3`). Cache write failures are logged and skipped (the
//! cache fills on read).
//!
//! Known limits: a click record re-consumed from a retry tier runs beside the main consumer, so
//! its read-modify-write of the count row can race the main lane's (a click lost or counted
//! twice), and if later clicks of the code were counted first, the offset guard skips it. Click
//! counts are analytics; the links themselves have no such race. On ScyllaDB, the alias claim
//! is a lightweight transaction while the processor's upsert and the purge's delete are plain
//! writes: do not rely on re-claiming an alias in the same millisecond it is purged.

pub mod allocator;
pub mod cache;
pub mod clicks;
pub mod code;
pub mod events;
pub mod link;
pub mod processor;
mod purge;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sixfold_ingress::ApiError;
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::redis_conn::RedisConn;
use sixfold_store::Store;
use tokio_util::sync::CancellationToken;

use crate::allocator::CodeAllocator;
use crate::cache::{LinkCache, NearCache};
use crate::clicks::{ClickCounts, ClickRecorder};
use crate::code::CodeScrambler;
use crate::events::UrlCreated;
use crate::link::{Link, RedirectStatus};
pub use crate::processor::UrlsProcessor;

/// The processor's name (consumer group, retry and DLQ topics).
pub const PROCESSOR: &str = "urls";

/// Settings section `urls:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlsSettings {
    /// Redirect status of links that do not choose: 301 or 302.
    pub default_redirect: u16,
    /// How long a link stays in the Redis cache after it was last filled.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Links kept in each ingress process's own memory in front of Redis.
    pub near_cache_capacity: usize,
    /// How long a link stays in process memory (0 turns the near cache off).
    #[serde(with = "humantime_serde")]
    pub near_cache_ttl: Duration,
    /// Key of the code permutation. Changing it after codes were issued breaks uniqueness.
    #[serde(serialize_with = "sixfold_runtime::settings::expose_secret")]
    pub code_secret: SecretString,
    /// Counter values leased per block.
    pub block_size: u64,
    /// How often expired links are purged.
    #[serde(with = "humantime_serde")]
    pub purge_interval: Duration,
    /// How long after expiry a link still answers 410 before it is purged.
    #[serde(with = "humantime_serde")]
    pub purge_grace: Duration,
    /// Prefix of store namespaces and Redis keys.
    pub namespace: String,
    /// Prefix of the short-code allocator's counter and block ledger when not `namespace`.
    /// They are state, not a view (they keep codes unique for good), so a view rebuilt under
    /// another namespace keeps using the first one (`sixfold replay --rebuild` sets this).
    pub code_namespace: Option<String>,
    /// Clicks buffered for producing before new ones are dropped.
    pub click_buffer: usize,
    /// Topic of link creations.
    pub created_topic: String,
    /// Topic of clicks.
    pub clicked_topic: String,
}

impl Default for UrlsSettings {
    fn default() -> Self {
        Self {
            default_redirect: 302,
            cache_ttl: Duration::from_secs(24 * 3600),
            near_cache_capacity: 100_000,
            near_cache_ttl: Duration::from_secs(30),
            code_secret: SecretString::from("sixfold-development-code-secret"),
            block_size: 1000,
            purge_interval: Duration::from_secs(3600),
            purge_grace: Duration::from_secs(7 * 24 * 3600),
            namespace: "urls".into(),
            code_namespace: None,
            click_buffer: 100_000,
            created_topic: "url.created".into(),
            clicked_topic: "url.clicked".into(),
        }
    }
}

/// Topics the shortener reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTopics {
    /// `url.created`.
    pub created: String,
    /// `url.clicked`.
    pub clicked: String,
}

/// Store namespaces, all under the configured prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Links by code.
    pub links: String,
    /// Expiry index (`<expires_ms>:<code>`).
    pub expiry: String,
    /// Click counts by code.
    pub clicks: String,
}

/// What the shortener needs from the process.
pub struct UrlsDeps {
    /// Store.
    pub store: Arc<dyn Store>,
    /// Redis.
    pub redis: RedisConn,
    /// Producer for events a request waits on (`url.created`).
    pub producer: Producer,
    /// Producer for events nobody waits on (`url.clicked`); see [`Producer::bulk`].
    pub bulk_producer: Producer,
    /// Avro codec.
    pub codec: Arc<AvroCodec>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Base of short URLs (the ingress's public URL).
    pub public_url: String,
    /// Stops the click producer.
    pub shutdown: CancellationToken,
}

/// Why the shortener could not start.
#[derive(Debug, thiserror::Error)]
pub enum UrlsStartError {
    /// A setting is invalid.
    #[error("urls settings: {0}")]
    Settings(String),
    /// The event schema did not parse.
    #[error("urls schema: {0}")]
    Schema(#[from] sixfold_runtime::codec::CodecError),
    /// A metric could not be registered.
    #[error("urls metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The shortener's shared state: used by its routes, its processor and its purge task.
pub struct Urls {
    settings: UrlsSettings,
    names: Names,
    topics: UrlTopics,
    store: Arc<dyn Store>,
    cache: LinkCache,
    near: NearCache,
    allocator: CodeAllocator,
    clicks: ClickRecorder,
    producer: Producer,
    codec: Arc<AvroCodec>,
    created_schema: EventSchema,
    metrics: Metrics,
    cache_lookups: IntCounterVec,
    public_url: String,
}

impl Urls {
    /// Builds the shortener and starts its click producer.
    pub fn new(settings: UrlsSettings, deps: UrlsDeps) -> Result<Arc<Self>, UrlsStartError> {
        let default_redirect = RedirectStatus::from_code(settings.default_redirect);
        if default_redirect.is_none() {
            return Err(UrlsStartError::Settings(
                "default_redirect must be 301 or 302".into(),
            ));
        }
        let prefix = settings.namespace.clone();
        let names = Names {
            links: prefix.clone(),
            expiry: format!("{prefix}.expiry"),
            clicks: format!("{prefix}.clicks"),
        };
        let topics = UrlTopics {
            created: settings.created_topic.clone(),
            clicked: settings.clicked_topic.clone(),
        };
        let registry = deps.metrics.registry();
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "sixfold_urls_cache_lookups_total",
                "Redirect cache lookups by result: near_hit (process memory), hit (Redis), miss, error.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(cache_lookups.clone()))?;
        let dropped = IntCounter::new(
            "sixfold_urls_clicks_dropped_total",
            "Clicks dropped because the click buffer was full.",
        )?;
        registry.register(Box::new(dropped.clone()))?;
        let clicks = ClickRecorder::spawn(
            deps.bulk_producer,
            deps.codec.clone(),
            topics.clicked.clone(),
            settings.click_buffer,
            dropped,
            deps.shutdown,
        )?;
        let scrambler = CodeScrambler::new(settings.code_secret.expose_secret().as_bytes());
        Ok(Arc::new(Self {
            cache: LinkCache::new(deps.redis.clone(), &prefix, settings.cache_ttl),
            near: NearCache::new(settings.near_cache_capacity, settings.near_cache_ttl),
            allocator: CodeAllocator::new(
                scrambler,
                deps.redis,
                deps.store.clone(),
                settings.code_namespace.as_deref().unwrap_or(&prefix),
                settings.block_size,
            ),
            created_schema: EventSchema::parse(events::URL_CREATED_SCHEMA)?,
            settings,
            names,
            topics,
            store: deps.store,
            clicks,
            producer: deps.producer,
            codec: deps.codec,
            metrics: deps.metrics,
            cache_lookups,
            public_url: deps.public_url.trim_end_matches('/').to_string(),
        }))
    }

    /// The processor, for the runtime's consumer loop.
    pub fn processor(&self) -> UrlsProcessor {
        UrlsProcessor {
            store: self.store.clone(),
            cache: self.cache.clone(),
            names: self.names.clone(),
            topics: self.topics.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// The topics the processor consumes.
    pub fn input_topics(&self) -> Vec<String> {
        vec![self.topics.created.clone(), self.topics.clicked.clone()]
    }

    fn default_redirect(&self) -> RedirectStatus {
        RedirectStatus::from_code(self.settings.default_redirect).unwrap_or(RedirectStatus::Found)
    }

    fn short_url(&self, code: &str) -> String {
        format!("{}/{code}", self.public_url)
    }

    /// Claims an alias (if custom), produces `url.created` and primes the cache.
    async fn create(&self, link: &Link) -> Result<(), ApiError> {
        let value =
            serde_json::to_vec(link).map_err(|e| ApiError::dependency_failed("encode link", e))?;
        if link.custom && !self.claim_alias(&link.code, &value).await? {
            return Err(ApiError::conflict(
                "alias_taken",
                format!("the alias {:?} is already taken", link.code),
            ));
        }
        if let Err(error) = self.produce_created(link).await {
            if link.custom {
                self.release_alias(&link.code, &value).await;
            }
            return Err(ApiError::dependency_failed("record the event", error));
        }
        if let Err(error) = self.cache.put(link, now_ms()).await {
            tracing::warn!(%error, code = %link.code, "new link not cached");
        }
        Ok(())
    }

    /// Claims `alias` with the store's atomic insert. A claim whose outcome is unknown (a
    /// timed-out lightweight transaction) is settled by reading the alias back: ours if it
    /// holds exactly the value we wrote.
    async fn claim_alias(&self, alias: &str, value: &[u8]) -> Result<bool, ApiError> {
        let kv = self.store.kv();
        match kv
            .put_if_absent(&self.names.links, alias, value.to_vec())
            .await
        {
            Ok(claimed) => Ok(claimed),
            Err(error) if error.is_transient() => {
                let held = kv
                    .get(&self.names.links, alias)
                    .await
                    .map_err(|e| ApiError::dependency_failed("claim the alias", e))?;
                match held {
                    Some(current) => Ok(current == value),
                    None => Err(ApiError::dependency_failed("claim the alias", error)),
                }
            }
            Err(error) => Err(ApiError::dependency_failed("claim the alias", error)),
        }
    }

    /// Frees an alias whose event could not be produced, trying a few times; if the event did
    /// reach the broker after all, the processor writes the link back.
    async fn release_alias(&self, alias: &str, value: &[u8]) {
        let kv = self.store.kv();
        for attempt in 1..=3 {
            match kv.get(&self.names.links, alias).await {
                Ok(Some(current)) if current != value => return, // someone else's now
                Ok(None) => return,
                _ => {}
            }
            match kv.delete(&self.names.links, alias).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, alias, attempt, "alias not released yet");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
            }
        }
        tracing::error!(
            alias,
            "alias claimed without an event; it stays taken until deleted from the store"
        );
    }

    async fn produce_created(&self, link: &Link) -> Result<(), String> {
        let event = UrlCreated::of(link);
        self.producer
            .send_event(
                &self.codec,
                &self.topics.created,
                &self.created_schema,
                &link.code,
                &event,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The link for `code`: process memory, then Redis, then the store (filling the caches).
    async fn lookup(&self, code: &str) -> Result<Arc<Link>, ApiError> {
        if let Some(link) = self.near.get(code) {
            self.cache_lookups.with_label_values(&["near_hit"]).inc();
            return Ok(link);
        }
        match self.cache.get(code).await {
            Ok(Some(link)) => {
                self.cache_lookups.with_label_values(&["hit"]).inc();
                let link = Arc::new(link);
                self.near.put(link.clone());
                return Ok(link);
            }
            Ok(None) => self.cache_lookups.with_label_values(&["miss"]).inc(),
            Err(error) => {
                // Redis down: serve from the store rather than fail the redirect.
                tracing::warn!(%error, "redirect cache unavailable");
                self.cache_lookups.with_label_values(&["error"]).inc();
            }
        }
        let bytes = self
            .store
            .kv()
            .get(&self.names.links, code)
            .await
            .map_err(|e| ApiError::dependency_failed("read the link", e))?
            .ok_or_else(|| ApiError::not_found("no such link"))?;
        let link: Link = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::dependency_failed("read the stored link", e))?;
        if let Err(error) = self.cache.put(&link, now_ms()).await {
            tracing::debug!(%error, "cache not filled");
        }
        let link = Arc::new(link);
        self.near.put(link.clone());
        Ok(link)
    }

    async fn clicks_of(&self, code: &str) -> Result<ClickCounts, ApiError> {
        let bytes = self
            .store
            .kv()
            .get(&self.names.clicks, code)
            .await
            .map_err(|e| ApiError::dependency_failed("read the click counts", e))?;
        Ok(bytes
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }
}
