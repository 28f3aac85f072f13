//! The consumer loop that drives a [`Processor`]: one consumer for the input topics, one per
//! retry tier.
//!
//! Each consumer takes what one poll has buffered (up to 512 records) and handles it as a batch:
//! the records of a key one at a time in offset order, different keys side by side (at most 64
//! at once); offsets are stored when the batch is done, up to the first record not handled.
//! It calls `recv` again only when the whole batch is handled, so when librdkafka calls the
//! rebalance callback (which happens only inside `recv`) no record is in flight: revoking
//! partitions just commits the stored offsets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, HashMap};

use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, TopicPartitionList};
use tokio_util::sync::CancellationToken;

mod aligned;
mod lag;

use self::lag::{max_poll_interval, sample_lag};
use crate::codec::AvroCodec;
use crate::failure::{self, CLASS_DECODE, Failure, Origin, Route};
use crate::metrics::Metrics;
use crate::processor::{Classify, Processor, Record};
use crate::producer::{ProduceError, Producer};
use crate::settings::KafkaSettings;

/// Records handled per batch, at most: what one poll has buffered, spread over its partitions.
const MAX_BATCH: usize = 512;

/// The consumer's `fetch.wait.max.ms`: on input topics, the processor's own wait (topics.yaml)
/// or else the configured one; at least 500 ms on retry tiers, whose records wait a second or
/// more anyway, so that idle retry consumers do not poll the broker twenty times a second.
fn fetch_wait(kafka: &KafkaSettings, config: &ProcessorConfig, lane: &Lane) -> Duration {
    let wait = config.fetch_wait.unwrap_or(kafka.fetch_wait);
    if lane.is_retry {
        wait.max(Duration::from_millis(500))
    } else {
        wait
    }
}

/// Keys handled at once within a batch, at most.
const MAX_KEYS_IN_FLIGHT: usize = 64;

/// Where and why handling a key's records stopped before the end of the batch.
struct Stopped<'m> {
    topic: &'m str,
    partition: i32,
    offset: i64,
    why: Interrupted,
}

/// The records of `batch` grouped by topic, partition and key, each group in offset order.
/// Records with the same key share a partition, so this keeps the order that matters (per
/// key, as DESIGN.md promises) while records of different keys run side by side.
fn by_key<'b, 'c>(batch: &'b [BorrowedMessage<'c>]) -> Vec<Vec<&'b BorrowedMessage<'c>>> {
    let mut groups: Vec<Vec<&BorrowedMessage<'c>>> = Vec::new();
    let mut index: HashMap<(&str, i32, Option<&[u8]>), usize> = HashMap::new();
    for message in batch {
        let slot = *index
            .entry((message.topic(), message.partition(), message.key()))
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        groups[slot].push(message);
    }
    groups
}

/// Longest pause between attempts to reach the registry or the broker before giving up a record.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What to run: a processor's name, its input topics and its retry tiers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessorConfig {
    /// Processor name: consumer group id and prefix of its retry and DLQ topics.
    pub name: String,
    /// Input topics.
    pub topics: Vec<String>,
    /// Delay of each retry tier; empty means failures go straight to the DLQ.
    pub retry_delays: Vec<Duration>,
    /// This processor's `fetch.wait.max.ms` on its input topics, when it needs a shorter one
    /// than `kafka.fetch_wait` (a latency-bound processor on a broker that holds fetches for the
    /// whole wait); `None` uses the setting.
    pub fetch_wait: Option<Duration>,
    /// Per input partition, an offset where this run stops reading: records at or after it
    /// are left unhandled and uncommitted (their partition is paused), for a replay up to a
    /// point. Empty for a processor that runs on.
    pub stop_at: BTreeMap<(String, i32), i64>,
    /// Consumer group of the input topics when it is not `name` (a rebuild beside the live
    /// processor); its retry tiers are then read in `<group>.retry.<n>` groups. Retry and DLQ
    /// topics stay `name`'s.
    pub group: Option<String>,
    /// Retry a transiently failing record in place (backing off, the partition waiting)
    /// instead of handing it to a retry tier: for a rebuild, which has no retry topics of its
    /// own and must not skip a record.
    pub retry_in_place: bool,
    /// Read the input topics in timestamp order across topics (Kafka Streams' stream-time
    /// alignment), for a replay whose views depend on the order of events across topics: the
    /// input partitions are assigned (not subscribed), each partition stops at its `stop_at`
    /// offset (or the end it has when the run starts), a transient failure is retried in
    /// place, and there are no retry tiers. See [`aligned`].
    pub aligned: bool,
}

/// Shared clients a processor runs with.
#[derive(Clone)]
pub struct RuntimeContext {
    /// Broker connection settings.
    pub kafka: KafkaSettings,
    /// Avro codec (schema registry client).
    pub codec: Arc<AvroCodec>,
    /// Producer for retry and DLQ hand-offs (and for processors' own output).
    pub producer: Producer,
    /// Metrics of this process.
    pub metrics: Metrics,
}

/// Why a processor stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The consumer could not be created or subscribed.
    #[error("consumer {group} failed: {source}")]
    Kafka {
        /// Consumer group.
        group: String,
        /// librdkafka's reason.
        #[source]
        source: KafkaError,
    },
    /// A failed record could not be handed to its retry topic or the DLQ, and retrying cannot
    /// help (the broker refused it as too large, or this client may not write there).
    #[error("consumer {group}: the record at offset {offset} cannot be handed off: {source}")]
    HandOffRefused {
        /// Consumer group.
        group: String,
        /// Offset of the record that failed.
        offset: i64,
        /// The broker's refusal.
        #[source]
        source: Box<ProduceError>,
    },
    /// A consumer task panicked or was aborted.
    #[error("consumer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs `processor` until `shutdown` is cancelled: the main consumer plus one consumer per retry
/// tier, each in its own task. Returns after every consumer has committed and stopped.
pub async fn run_processor<P: Processor>(
    processor: Arc<P>,
    config: ProcessorConfig,
    context: RuntimeContext,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    if config.aligned {
        let driver = Driver {
            processor,
            config: Arc::new(config),
            context,
            shutdown,
        };
        return driver.run_aligned().await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut lanes = vec![Lane {
        group: config.group.clone().unwrap_or_else(|| config.name.clone()),
        topics: config.topics.clone(),
        is_retry: false,
    }];
    for tier in 1..=config.retry_delays.len() {
        let topic = failure::retry_topic(&config.name, tier);
        lanes.push(Lane {
            group: match &config.group {
                Some(group) => failure::retry_topic(group, tier),
                None => topic.clone(),
            },
            topics: vec![topic],
            is_retry: true,
        });
    }
    let config = Arc::new(config);
    for lane in lanes {
        let driver = Driver {
            processor: processor.clone(),
            config: config.clone(),
            context: context.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(async move { driver.run(lane).await });
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.map_err(ConsumerError::from).and_then(|r| r);
        if let Err(error) = outcome {
            tracing::error!(%error, processor = %config.name, "consumer stopped");
            // One lane failing stops the others: a half-running processor hides problems.
            shutdown.cancel();
            result = Err(error);
        }
    }
    result
}

/// One consumer: a group and the topics it reads.
struct Lane {
    group: String,
    topics: Vec<String>,
    /// Whether it reads a retry tier (whose records carry trusted retry headers).
    is_retry: bool,
}

/// librdkafka callbacks: commit before giving partitions up, log assignments.
struct GroupContext {
    group: String,
    /// Bumped whenever partitions are revoked: a record received before the latest revoke
    /// belongs to a partition that was taken away (and, with the eager protocol, every
    /// partition is), so the batch drops it and the owner reads it again from the committed
    /// offset.
    revocations: std::sync::atomic::AtomicU64,
}

impl GroupContext {
    fn revocations(&self) -> u64 {
        self.revocations.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            tracing::info!(group = %self.group, partitions = partitions.count(), "partitions revoked; committing");
            commit(consumer, &self.group);
            self.revocations
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let list: Vec<String> = partitions
                .elements()
                .iter()
                .map(|p| format!("{}[{}]", p.topic(), p.partition()))
                .collect();
            tracing::info!(group = %self.group, partitions = %list.join(","), "partitions assigned");
        }
    }
}

/// Commits stored offsets synchronously; "nothing to commit" is not an error.
fn commit<C: Consumer<X>, X: ConsumerContext>(consumer: &C, group: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(%error, %group, "commit failed"),
    }
}

type GroupConsumer = StreamConsumer<GroupContext>;

/// Why handling a record stopped before its offset could be stored.
enum Interrupted {
    /// Shutdown was requested.
    Shutdown,
    /// The broker refused the record's retry or DLQ hand-off for good (too large, not
    /// authorized): the lane stops loudly rather than spin on one record.
    HandOffRefused(ProduceError),
}

struct Driver<P> {
    processor: Arc<P>,
    config: Arc<ProcessorConfig>,
    context: RuntimeContext,
    shutdown: CancellationToken,
}

impl<P: Processor> Driver<P> {
    async fn run(self, lane: Lane) -> Result<(), ConsumerError> {
        let consumer = Arc::new(self.consumer(&lane)?);
        let lag = tokio::spawn(sample_lag(
            consumer.clone(),
            self.config.name.clone(),
            self.context.metrics.clone(),
            self.shutdown.clone(),
        ));
        tracing::info!(group = %lane.group, topics = %lane.topics.join(","), "consumer started");
        loop {
            let first = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                message = consumer.recv() => message,
            };
            let first = match first {
                Ok(message) => message,
                Err(error) => {
                    // Broker hiccups and missing topics surface here; librdkafka reconnects.
                    tracing::warn!(%error, group = %lane.group, "consume error");
                    continue;
                }
            };
            let batch = self.gather(&consumer, first, &lane.group);
            let (batch, reached) = self.hold_back(&consumer, batch, &lane.group);
            // Each key's records in offset order, different keys side by side. No `recv` runs
            // until the whole batch is handled, so a rebalance (which librdkafka delivers only
            // inside `recv`) never finds a record in flight.
            let mut work = Vec::new();
            for records in by_key(&batch) {
                work.push(self.handle_in_order(records, lane.is_retry));
            }
            let handled: Vec<Result<(), Stopped<'_>>> = futures::stream::iter(work)
                .buffer_unordered(MAX_KEYS_IN_FLIGHT)
                .collect()
                .await;
            let mut stopped: HashMap<(&str, i32), i64> = HashMap::new();
            let mut shutdown = false;
            let mut refused = None;
            for outcome in handled {
                let Err(stop) = outcome else { continue };
                let first = stopped
                    .entry((stop.topic, stop.partition))
                    .or_insert(stop.offset);
                *first = (*first).min(stop.offset);
                match stop.why {
                    Interrupted::Shutdown => shutdown = true,
                    Interrupted::HandOffRefused(source) => refused = Some((stop.offset, source)),
                }
            }
            self.store_done_offsets(&consumer, &batch, &stopped, &lane.group);
            self.store_stop_offsets(&consumer, reached, &stopped, &lane.group);
            if let Some((offset, source)) = refused {
                // Earlier records' offsets are committed; this one is re-read on restart.
                commit(consumer.as_ref(), &lane.group);
                lag.abort();
                return Err(ConsumerError::HandOffRefused {
                    group: lane.group.clone(),
                    offset,
                    source: Box::new(source),
                });
            }
            if shutdown {
                break;
            }
        }
        commit(consumer.as_ref(), &lane.group);
        lag.abort();
        tracing::info!(group = %lane.group, "consumer stopped");
        Ok(())
    }

    /// `first` and the records already waiting behind it, up to [`MAX_BATCH`], minus those
    /// received before a revoke that happened while they were gathered: their partitions were
    /// taken away (the eager protocol revokes all), and whoever owns them now reads them again
    /// from the committed offset. (The consumer's assignment is not asked: that call waits on
    /// librdkafka's main thread, which may itself be waiting for this thread to poll.)
    fn gather<'c>(
        &self,
        consumer: &'c GroupConsumer,
        first: BorrowedMessage<'c>,
        group: &str,
    ) -> Vec<BorrowedMessage<'c>> {
        let context = consumer.context();
        let mut batch = vec![(context.revocations(), first)];
        while batch.len() < MAX_BATCH {
            match consumer.recv().now_or_never() {
                Some(Ok(message)) => batch.push((context.revocations(), message)),
                Some(Err(error)) => {
                    tracing::warn!(%error, %group, "consume error");
                    break;
                }
                None => break,
            }
        }
        let current = context.revocations();
        batch
            .into_iter()
            .filter(|(received_under, _)| *received_under == current)
            .map(|(_, message)| message)
            .collect()
    }

    /// The records of `batch` before their partition's stop offset (`stop_at`), and the
    /// partitions that reached it (with their stop offsets); those are paused, so a run up to
    /// a point leaves the rest unread and uncommitted.
    #[allow(clippy::type_complexity)]
    fn hold_back<'c>(
        &self,
        consumer: &GroupConsumer,
        batch: Vec<BorrowedMessage<'c>>,
        group: &str,
    ) -> (Vec<BorrowedMessage<'c>>, Vec<((String, i32), i64)>) {
        if self.config.stop_at.is_empty() {
            return (batch, Vec::new());
        }
        let mut reached: Vec<((String, i32), i64)> = Vec::new();
        let kept = batch
            .into_iter()
            .filter(|message| {
                let place = (message.topic().to_owned(), message.partition());
                let stop = self.config.stop_at.get(&place).copied();
                let beyond = stop.is_some_and(|stop| message.offset() >= stop);
                if let Some(stop) = stop.filter(|_| beyond)
                    && !reached.iter().any(|(p, _)| *p == place)
                {
                    reached.push((place, stop));
                }
                !beyond
            })
            .collect();
        if !reached.is_empty() {
            let mut pause = TopicPartitionList::new();
            for ((topic, partition), _) in &reached {
                pause.add_partition(topic, *partition);
            }
            if let Err(error) = consumer.pause(&pause) {
                tracing::warn!(%error, %group, "partitions at their stop offset not paused");
            }
        }
        (kept, reached)
    }

    /// Stores each reached partition's stop offset when everything before it was handled: the
    /// records between the last one handled and the stop may not exist (compaction, explicit
    /// offsets), and the group's position must still arrive at the stop.
    fn store_stop_offsets(
        &self,
        consumer: &GroupConsumer,
        reached: Vec<((String, i32), i64)>,
        stopped: &HashMap<(&str, i32), i64>,
        group: &str,
    ) {
        let mut positions = TopicPartitionList::new();
        for ((topic, partition), stop) in &reached {
            if stopped.contains_key(&(topic.as_str(), *partition)) {
                continue;
            }
            if let Err(error) =
                positions.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*stop))
            {
                tracing::warn!(%error, %group, "stop offset not recorded");
            }
        }
        if positions.count() > 0
            && let Err(error) = consumer.store_offsets(&positions)
        {
            // The partition was revoked meanwhile; its new owner stops at the same place.
            tracing::warn!(%error, %group, "stop offsets not stored");
        }
    }

    /// Handles one key's records in offset order; stops at the first interruption.
    async fn handle_in_order<'m>(
        &self,
        records: Vec<&'m BorrowedMessage<'_>>,
        from_retry_topic: bool,
    ) -> Result<(), Stopped<'m>> {
        for message in records {
            self.handle(message, from_retry_topic)
                .await
                .map_err(|why| Stopped {
                    topic: message.topic(),
                    partition: message.partition(),
                    offset: message.offset(),
                    why,
                })?;
        }
        Ok(())
    }

    /// Stores, per partition, the offset after the last record of the batch below the first
    /// one that was not handled: every record before that one is done (each key's records
    /// run in offset order and stop at their first interruption), so nothing unhandled is
    /// ever committed, whatever order the keys finished in.
    fn store_done_offsets(
        &self,
        consumer: &GroupConsumer,
        batch: &[BorrowedMessage<'_>],
        stopped: &HashMap<(&str, i32), i64>,
        group: &str,
    ) {
        let mut last_done: HashMap<(&str, i32), &BorrowedMessage<'_>> = HashMap::new();
        for message in batch {
            let partition = (message.topic(), message.partition());
            if stopped
                .get(&partition)
                .is_none_or(|&first| message.offset() < first)
            {
                last_done.insert(partition, message);
            }
        }
        for message in last_done.into_values() {
            if let Err(error) = consumer.store_offset_from_message(message) {
                // The partition was revoked meanwhile; its new owner re-processes.
                tracing::warn!(%error, %group, "offset not stored");
            }
        }
    }

    fn consumer(&self, lane: &Lane) -> Result<GroupConsumer, ConsumerError> {
        let consumer = self.unsubscribed_consumer(lane)?;
        let topics: Vec<&str> = lane.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| ConsumerError::Kafka {
                group: lane.group.clone(),
                source,
            })?;
        Ok(consumer)
    }

    /// A consumer in `lane`'s group that has not subscribed to anything yet.
    fn unsubscribed_consumer(&self, lane: &Lane) -> Result<GroupConsumer, ConsumerError> {
        let kafka_error = |source| ConsumerError::Kafka {
            group: lane.group.clone(),
            source,
        };
        let mut config = self.context.kafka.client_config();
        config
            .set("group.id", &lane.group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set(
                "session.timeout.ms",
                self.context.kafka.session_timeout.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "1000")
            .set(
                "fetch.wait.max.ms",
                fetch_wait(&self.context.kafka, &self.config, lane)
                    .as_millis()
                    .to_string(),
            )
            // A retry tier sleeps in the poll loop until its head record is due; the group must
            // not evict it meanwhile.
            .set(
                "max.poll.interval.ms",
                max_poll_interval(&self.config.retry_delays)
                    .as_millis()
                    .to_string(),
            );
        let consumer: GroupConsumer = config
            .create_with_context(GroupContext {
                group: lane.group.clone(),
                revocations: std::sync::atomic::AtomicU64::new(0),
            })
            .map_err(kafka_error)?;
        Ok(consumer)
    }

    /// Handles one record until its offset may be stored: processed, or handed to a retry tier
    /// or the DLQ.
    async fn handle<M: Message>(
        &self,
        message: &M,
        from_retry_topic: bool,
    ) -> Result<(), Interrupted> {
        let name = self.config.name.as_str();
        // Retry headers mean something only on this processor's own retry topics; on an input
        // topic they are whatever a producer wrote (a forged due time would stall the lane).
        let headers: Vec<(&str, &[u8])> = match message.headers() {
            Some(h) if from_retry_topic => h
                .iter()
                .map(|h| (h.key, h.value.unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        };
        let origin = Origin::from_headers(
            message.topic(),
            message.partition(),
            message.offset(),
            headers,
        );
        self.context
            .metrics
            .consumed
            .with_label_values(&[name, message.topic()])
            .inc();
        if let Some(due) = origin.due_ms {
            self.wait_until(due).await?;
        }

        let started = Instant::now();
        let failure = match self.decode(message.payload()).await? {
            Err(message) => Some(Failure {
                class: CLASS_DECODE,
                message,
                transient: false,
            }),
            Ok(value) => {
                let record = Record {
                    topic: origin.topic.clone(),
                    partition: origin.partition,
                    offset: origin.offset,
                    key: message.key().map(<[u8]>::to_vec),
                    value,
                    timestamp_ms: message.timestamp().to_millis(),
                    attempt: origin.failed_attempts.saturating_add(1),
                };
                let mut backoff = Duration::from_millis(200);
                loop {
                    match self.processor.process(&record).await {
                        Ok(()) => break None,
                        Err(error)
                            if error.is_transient()
                                && (self.config.retry_in_place || self.config.aligned) =>
                        {
                            tracing::warn!(%error, processor = %self.config.name, "transient failure; retrying in place");
                            self.pause(backoff).await?;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                        Err(error) => {
                            break Some(Failure {
                                class: error.class(),
                                message: error.to_string(),
                                transient: error.is_transient(),
                            });
                        }
                    }
                }
            }
        };
        self.context
            .metrics
            .processing_seconds
            .with_label_values(&[name, &origin.topic])
            .observe(started.elapsed().as_secs_f64());
        match failure {
            None => Ok(()),
            Some(failure) => {
                self.hand_off(&origin, message.key(), message.payload(), &failure)
                    .await
            }
        }
    }

    /// Decodes the payload. Outer error: shutdown while the registry was unreachable; inner
    /// error: the bytes are bad (a permanent failure).
    async fn decode(
        &self,
        payload: Option<&[u8]>,
    ) -> Result<Result<apache_avro::types::Value, String>, Interrupted> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.context.codec.decode(payload).await {
                Ok(value) => return Ok(Ok(value)),
                Err(error) if !error.retriable => return Ok(Err(error.message)),
                Err(error) => {
                    // The registry is down: every record would fail alike, so wait here rather
                    // than flood the retry topics.
                    tracing::warn!(%error, processor = %self.config.name, "registry unavailable; backing off");
                    self.pause(backoff).await?;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Hands a failed record to its next stop, retrying the produce until it is acknowledged.
    async fn hand_off(
        &self,
        origin: &Origin,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        failure: &Failure,
    ) -> Result<(), Interrupted> {
        let name = self.config.name.as_str();
        let mut backoff = Duration::from_millis(200);
        loop {
            let sent = failure::hand_off(
                &self.context.producer,
                name,
                &self.config.retry_delays,
                origin,
                key,
                payload,
                failure,
            )
            .await;
            match sent {
                Ok(Route::Retry { tier, .. }) => {
                    tracing::info!(processor = name, topic = %origin.topic, offset = origin.offset, tier, class = failure.class, error = %failure.message, "record sent to retry tier");
                    self.context
                        .metrics
                        .retried
                        .with_label_values(&[name, &tier.to_string()])
                        .inc();
                    return Ok(());
                }
                Ok(Route::DeadLetter) => {
                    tracing::warn!(processor = name, topic = %origin.topic, offset = origin.offset, class = failure.class, error = %failure.message, "record dead-lettered");
                    self.context
                        .metrics
                        .dead_lettered
                        .with_label_values(&[name, failure.class])
                        .inc();
                    return Ok(());
                }
                Err(error) if error.is_permanent() => {
                    tracing::error!(%error, processor = name, topic = %origin.topic, offset = origin.offset, "hand-off refused by the broker; stopping");
                    return Err(Interrupted::HandOffRefused(error));
                }
                Err(error) => {
                    tracing::warn!(%error, processor = name, "hand-off failed; retrying");
                    self.pause(backoff).await?;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn wait_until(&self, due_ms: i64) -> Result<(), Interrupted> {
        let wait = due_ms - failure::now_ms();
        if wait > 0 {
            self.pause(Duration::from_millis(wait as u64)).await?;
        }
        Ok(())
    }

    async fn pause(&self, duration: Duration) -> Result<(), Interrupted> {
        tokio::select! {
            _ = self.shutdown.cancelled() => Err(Interrupted::Shutdown),
            _ = tokio::time::sleep(duration) => Ok(()),
        }
    }
}
