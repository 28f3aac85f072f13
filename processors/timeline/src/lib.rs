//! Home timeline: hybrid fan-out on write and on read, as the seed's Twitter chapter describes.
//!
//! # Flow
//! - `POST /v1/tweets` (ingress, API key) checks the tweet, gives it a time-ordered 53-bit id
//!   ([`id`]) and produces `tweet.posted` (key: author). `DELETE /v1/tweets/{id}` produces
//!   `tweet.deleted` (key: author); `POST`/`DELETE /v1/follows` produce `follow.changed`
//!   (key: followee). Other systems may produce the same events.
//! - The `timeline` processor consumes those three topics and `timeline.fanout`:
//!   - `follow.changed`: the edge in both directions in the store, the followee's follower
//!     count, the cached graph sets in Redis, and the celebrity set (follower count ≥
//!     `fanout_threshold`). A follow backfills the followee's newest `backfill` tweets into the
//!     follower's home timeline; an unfollow takes the followee's newest `cap` out. An author
//!     who falls below the threshold has their followers' cached timelines dropped (through
//!     `timeline.fanout` INVALIDATE items) so that the next read rebuilds them with the
//!     author's tweets, which were never pushed.
//!   - `tweet.posted`: the tweet into the store and the tweet cache; then, for an author below
//!     the threshold, its id into the home timeline (Redis sorted set `<p>:{<user>}`, score =
//!     id, newest `cap` kept) of every follower and of the author: directly when there are at
//!     most `fanout_batch` of them, otherwise as `timeline.fanout` work items of
//!     `fanout_batch` followers each (key `tweet_id:batch`), which every instance shares.
//!     Celebrities' tweets are not pushed: readers merge them in.
//!   - `tweet.deleted`: a tombstone, the tweet out of the store and cache, and a REMOVE fan-out.
//!   - `timeline.fanout`: ADD, REMOVE or INVALIDATE for one batch of timelines.
//! - `GET /v1/timeline/{user}` reads a page of the cached timeline, merges in the followed
//!   celebrities' tweets older than the cursor from the store, and hydrates ids from the tweet
//!   cache (then the store). A timeline that is not cached (never read, expired after
//!   `timeline_ttl` without reads, evicted, Redis restarted) is rebuilt from the store: the
//!   newest `cap` tweets of the user and the non-celebrities they follow ([`read`]).
//!
//! # State
//! Store tables: [`storage`]. Redis keys: [`cache`]. A home timeline is, by construction, the
//! newest `cap` tweets of the user and the non-celebrities they follow, plus celebrities'
//! tweets merged on read: pushes, backfills and rebuilds all converge on it, which is why
//! `backfill` defaults to `cap` (a smaller backfill makes a timeline built by pushes differ
//! from one rebuilt from the store).
//!
//! # Delivery and idempotency
//! At least once. A redelivered `tweet.posted` re-puts the same rows and re-adds the same
//! sorted-set member (ZADD of an existing member changes nothing). A redelivered follow sees
//! the edge already there; the follower count remembers the offsets it applied
//! ([`sixfold_runtime::applied::AppliedOffsets`]). A deletion leaves a tombstone so that a
//! replay meeting it before the post does not resurrect the tweet; reads also drop ids whose
//! tweet is gone. Invalid events go to `timeline.dlq`; store, Redis or broker failures are
//! transient (`timeline.retry.1..3`).
//!
//! Known limits:
//! - Follow records re-consumed from a retry tier run beside the main lane. The follower count
//!   applies an offset once per partition, so a retried follow whose partition has already
//!   applied a later offset is not counted (and a retried follow can restore an edge a later
//!   unfollow removed). Replaying `follow.changed` into an empty store recounts exactly.
//! - A `timeline.fanout` ADD item still queued when its follower unfollows the author puts that
//!   one tweet back into the follower's timeline.
//! - On Redis Cluster a push writes one timeline per script call (a call's keys must share a
//!   slot) instead of 100, all of a batch sent at once; `MGET` of a page's tweet bodies is split
//!   by slot by the client.
//! - `timeline.node_id` must differ between ingresses running at once; nothing enforces it.

pub mod cache;
pub mod events;
pub mod id;
pub mod model;
pub mod plan;
pub mod processor;
pub mod read;
pub mod routes;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::redis_conn::RedisConn;
use sixfold_store::Store;

use crate::cache::TimelineCache;
use crate::id::TweetIds;
use crate::model::ContentLimits;
pub use crate::processor::TimelineProcessor;
use crate::storage::TimelineStore;

/// The processor's name (consumer group, retry and DLQ topics).
pub const PROCESSOR: &str = "timeline";

/// Settings section `timeline:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimelineSettings {
    /// Authors with at least this many followers are merged on read instead of pushed.
    pub fanout_threshold: u64,
    /// Tweets kept in each cached home timeline (Twitter kept 800).
    pub cap: usize,
    /// Followers per `timeline.fanout` work item; fan-outs up to this size are written
    /// directly by the instance that handles the tweet.
    pub fanout_batch: usize,
    /// Newest tweets of the followee pushed into the follower's timeline on follow.
    pub backfill: usize,
    /// A home timeline nobody reads for this long expires from Redis (pushes skip it; the next
    /// read rebuilds it), so memory goes to active users.
    #[serde(with = "humantime_serde")]
    pub timeline_ttl: Duration,
    /// How long a tweet body stays in the Redis tweet cache.
    #[serde(with = "humantime_serde")]
    pub tweet_cache_ttl: Duration,
    /// This ingress's node id in tweet ids (0–31); concurrently running ingresses need
    /// distinct ones.
    pub node_id: u8,
    /// Longest tweet text, in characters.
    pub max_content_chars: usize,
    /// Most media URLs per tweet.
    pub max_media: usize,
    /// Largest page a reader may ask for.
    pub max_page: usize,
    /// Prefix of store namespaces and Redis keys.
    pub namespace: String,
    /// Topic of posted tweets.
    pub posted_topic: String,
    /// Topic of deleted tweets.
    pub deleted_topic: String,
    /// Topic of follows and unfollows.
    pub follow_topic: String,
    /// Topic of fan-out work items.
    pub fanout_topic: String,
}

impl Default for TimelineSettings {
    fn default() -> Self {
        Self {
            fanout_threshold: 10_000,
            cap: 800,
            fanout_batch: 1000,
            backfill: 800,
            timeline_ttl: Duration::from_secs(7 * 24 * 3600),
            tweet_cache_ttl: Duration::from_secs(24 * 3600),
            node_id: 0,
            max_content_chars: 280,
            max_media: 4,
            max_page: 100,
            namespace: "timeline".into(),
            posted_topic: "tweet.posted".into(),
            deleted_topic: "tweet.deleted".into(),
            follow_topic: "follow.changed".into(),
            fanout_topic: "timeline.fanout".into(),
        }
    }
}

/// What the timeline needs from the process.
pub struct TimelineDeps {
    /// Store.
    pub store: Arc<dyn Store>,
    /// Redis.
    pub redis: RedisConn,
    /// Producer (events and fan-out items are awaited).
    pub producer: Producer,
    /// Avro codec.
    pub codec: Arc<AvroCodec>,
    /// Metrics registry.
    pub metrics: Metrics,
}

/// Why the timeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum TimelineStartError {
    /// A setting is invalid.
    #[error("timeline settings: {0}")]
    Settings(String),
    /// An event schema did not parse.
    #[error("timeline schema: {0}")]
    Schema(#[from] sixfold_runtime::codec::CodecError),
    /// A metric could not be registered.
    #[error("timeline metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Parsed schemas of the events the timeline produces.
struct Schemas {
    posted: EventSchema,
    deleted: EventSchema,
    follow: EventSchema,
    fanout: EventSchema,
}

/// The timeline's shared state: used by its routes and its processor.
pub struct Timeline {
    settings: TimelineSettings,
    store: TimelineStore,
    cache: TimelineCache,
    ids: TweetIds,
    producer: Producer,
    codec: Arc<AvroCodec>,
    schemas: Schemas,
    metrics: Metrics,
    /// Timeline writes by kind (push, remove, invalidate, rebuild) and outcome.
    timeline_writes: IntCounterVec,
    /// Home timeline reads by how they were served (cached, rebuilt, store_only).
    reads: IntCounterVec,
}

impl Timeline {
    /// Builds the timeline from settings and the process's clients.
    pub fn new(
        settings: TimelineSettings,
        deps: TimelineDeps,
    ) -> Result<Arc<Self>, TimelineStartError> {
        check_settings(&settings).map_err(TimelineStartError::Settings)?;
        let registry = deps.metrics.registry();
        let timeline_writes = IntCounterVec::new(
            Opts::new(
                "sixfold_timeline_writes_total",
                "Home timelines written, by operation (push, remove, invalidate, rebuild).",
            ),
            &["operation"],
        )?;
        registry.register(Box::new(timeline_writes.clone()))?;
        let reads = IntCounterVec::new(
            Opts::new(
                "sixfold_timeline_reads_total",
                "Home timeline reads, by source: cached, rebuilt (from the store into Redis), store_only (Redis unavailable).",
            ),
            &["source"],
        )?;
        registry.register(Box::new(reads.clone()))?;
        Ok(Arc::new(Self {
            store: TimelineStore::new(deps.store, &settings.namespace),
            cache: TimelineCache::new(
                deps.redis,
                &settings.namespace,
                settings.cap,
                settings.timeline_ttl,
                settings.tweet_cache_ttl,
            ),
            ids: TweetIds::new(settings.node_id).map_err(TimelineStartError::Settings)?,
            producer: deps.producer,
            codec: deps.codec,
            schemas: Schemas {
                posted: EventSchema::parse(events::TWEET_POSTED_SCHEMA)?,
                deleted: EventSchema::parse(events::TWEET_DELETED_SCHEMA)?,
                follow: EventSchema::parse(events::FOLLOW_CHANGED_SCHEMA)?,
                fanout: EventSchema::parse(events::TIMELINE_FANOUT_SCHEMA)?,
            },
            metrics: deps.metrics,
            timeline_writes,
            reads,
            settings,
        }))
    }

    /// The processor, for the runtime's consumer loop.
    pub fn processor(self: &Arc<Self>) -> TimelineProcessor {
        TimelineProcessor::new(self.clone())
    }

    /// The topics the processor consumes.
    pub fn input_topics(&self) -> Vec<String> {
        let s = &self.settings;
        vec![
            s.posted_topic.clone(),
            s.deleted_topic.clone(),
            s.follow_topic.clone(),
            s.fanout_topic.clone(),
        ]
    }

    /// The settings in force.
    pub fn settings(&self) -> &TimelineSettings {
        &self.settings
    }

    /// Home timeline writes so far, by operation (`push`, `remove`, `invalidate`, `rebuild`),
    /// counted when Redis has acknowledged them; benchmarks watch it.
    pub fn timeline_writes(&self, operation: &str) -> u64 {
        self.timeline_writes.with_label_values(&[operation]).get()
    }

    /// Checks a new tweet, gives it an id and produces `tweet.posted`, waiting for the
    /// broker's acknowledgement. The views follow when the processor has handled it.
    pub async fn post(
        &self,
        author_id: String,
        content: String,
        media_urls: Vec<String>,
    ) -> Result<model::Tweet, PostError> {
        let id = self.ids.next();
        let tweet = model::Tweet {
            id,
            author_id,
            content,
            media_urls,
            created_at_ms: id::created_at_ms(id),
        };
        model::check_tweet(&tweet, self.limits()).map_err(PostError::Invalid)?;
        let s = &self.settings;
        self.produce(
            &s.posted_topic,
            &self.schemas.posted,
            &tweet.author_id,
            &events::TweetPosted::of(&tweet),
        )
        .await
        .map_err(PostError::Produce)?;
        Ok(tweet)
    }

    fn limits(&self) -> ContentLimits {
        ContentLimits {
            max_chars: self.settings.max_content_chars,
            max_media: self.settings.max_media,
        }
    }

    /// Encodes `event` for `topic` and waits for the broker's acknowledgement.
    async fn produce<T: Serialize>(
        &self,
        topic: &str,
        schema: &EventSchema,
        key: &str,
        event: &T,
    ) -> Result<(), ProduceFailure> {
        self.producer
            .send_event(&self.codec, topic, schema, key, event)
            .await?;
        Ok(())
    }
}

/// Why a tweet was not posted.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The tweet is invalid.
    #[error(transparent)]
    Invalid(model::Invalid),
    /// The event could not be produced.
    #[error(transparent)]
    Produce(ProduceFailure),
}

/// An event that could not be handed to the broker.
pub type ProduceFailure = sixfold_runtime::producer::EventSendError;

fn check_settings(s: &TimelineSettings) -> Result<(), String> {
    if s.cap == 0 || s.fanout_batch == 0 || s.max_page == 0 {
        return Err("cap, fanout_batch and max_page must be at least 1".into());
    }
    if s.backfill > sixfold_store::MAX_LIST_LIMIT || s.cap > sixfold_store::MAX_LIST_LIMIT {
        return Err(format!(
            "cap and backfill must be at most {}",
            sixfold_store::MAX_LIST_LIMIT
        ));
    }
    sixfold_runtime::settings::check_namespace(&s.namespace)?;
    Ok(())
}
