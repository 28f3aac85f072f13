//! The schemas topic: created if missing, read to its end, appended to.
//!
//! One partition keeps one order for every write. Reads use a consumer assigned to partition 0
//! directly (no consumer group, nothing committed): the registry always reads from the
//! beginning at start and then only forward. Writes go through an idempotent producer with
//! `acks=all` and complete when the broker acknowledged them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use sixfold_runtime::settings::KafkaSettings;

use crate::error::RegistryError;
use crate::record::LogRecord;

/// How long an admin or metadata call, or a read making no progress, may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// The schemas consumer, with end-of-partition events kept out of the error log.
type SchemaConsumer = BaseConsumer<QuietEndOfPartition>;

/// Reading to the end of the topic is the normal case, but librdkafka also reports it through
/// the client's error callback, which would log an ERROR line at every start.
struct QuietEndOfPartition;

impl ClientContext for QuietEndOfPartition {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                tracing::debug!(%error, reason, "schemas topic end reached")
            }
            error => tracing::error!(%error, reason, "librdkafka error"),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEndOfPartition {}

/// The only partition of the schemas topic.
const PARTITION: i32 = 0;

/// The schemas topic, with the position up to which this process has read it.
pub struct SchemaLog {
    topic: String,
    producer: FutureProducer,
    consumer: Arc<SchemaConsumer>,
    /// The next offset to read; everything before it has been applied.
    next_offset: i64,
    delivery_timeout: Duration,
}

impl SchemaLog {
    /// Creates the topic if missing and prepares to read it from the beginning.
    pub async fn open(
        topic: &str,
        replication_factor: i32,
        kafka: &KafkaSettings,
    ) -> Result<Self, RegistryError> {
        ensure_topic(topic, replication_factor, kafka).await?;
        let mut config = kafka.client_config();
        config.set("client.id", format!("{}-registry", kafka.client_id));
        let producer: FutureProducer = config
            .clone()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &kafka.compression)
            // A registration waits for its write; batching would only add latency.
            .set("linger.ms", "0")
            .set("message.timeout.ms", millis(kafka.delivery_timeout))
            .create()
            .map_err(|source| kafka_error("create the schemas producer", source))?;
        let consumer: SchemaConsumer = config
            // librdkafka needs a group to assign partitions; it is never joined (no
            // subscribe) and nothing is committed to it.
            .set("group.id", format!("{}-registry-reader", kafka.client_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .create_with_context(QuietEndOfPartition)
            .map_err(|source| kafka_error("create the schemas consumer", source))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, PARTITION, Offset::Beginning)
            .and_then(|()| consumer.assign(&assignment))
            .map_err(|source| kafka_error("assign the schemas topic", source))?;
        Ok(Self {
            topic: topic.to_owned(),
            producer,
            consumer: Arc::new(consumer),
            next_offset: 0,
            delivery_timeout: kafka.delivery_timeout,
        })
    }

    /// Reads every record from where the last read stopped up to the current end of the
    /// topic (its high watermark when this call starts).
    pub async fn read_to_end(&mut self) -> Result<Vec<LogRecord>, RegistryError> {
        let consumer = Arc::clone(&self.consumer);
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let from = self.next_offset;
        let (records, next) = tokio::task::spawn_blocking(move || {
            read_blocking(&consumer, producer.client(), &topic, from)
        })
        .await??;
        self.next_offset = next;
        Ok(records)
    }

    /// Appends a record and waits for the broker to acknowledge it.
    ///
    /// The caller must have read to the end first: when the record lands right there, nothing
    /// else was written in between and the reader can skip it (the caller applies it itself).
    pub async fn append(&mut self, record: &LogRecord) -> Result<(), RegistryError> {
        let key = record.key()?;
        let value = record.value()?;
        let mut message = FutureRecord::<Vec<u8>, Vec<u8>>::to(&self.topic)
            .partition(PARTITION)
            .key(&key);
        if let Some(value) = &value {
            message = message.payload(value);
        }
        let delivery = self
            .producer
            .send(message, Timeout::After(self.delivery_timeout))
            .await
            .map_err(|(source, _)| kafka_error("write to the schemas topic", source))?;
        if delivery.offset == self.next_offset {
            self.next_offset += 1;
        }
        Ok(())
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

fn kafka_error(action: &'static str, source: KafkaError) -> RegistryError {
    RegistryError::Kafka { action, source }
}

/// Creates the compacted single-partition topic unless it exists.
async fn ensure_topic(
    topic: &str,
    replication_factor: i32,
    kafka: &KafkaSettings,
) -> Result<(), RegistryError> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config()
        .create()
        .map_err(|source| kafka_error("create an admin client", source))?;
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(replication_factor))
        .set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(BROKER_TIMEOUT));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|source| kafka_error("create the schemas topic", source))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, "created schemas topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic, "schemas topic exists")
            }
            Err((topic, code)) => return Err(RegistryError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// Polls the consumer until it has delivered everything below the high watermark.
///
/// The watermark is asked through the producer's connection: on the consumer's own, the
/// request would queue behind its fetch long-poll (brokers answer one request per connection
/// at a time) and cost up to `fetch.wait.max.ms` per write.
///
/// Consumer errors (a topic whose metadata has not spread yet, a broker reconnecting) are
/// retried until [`BROKER_TIMEOUT`] passes without progress.
fn read_blocking<C: ClientContext>(
    consumer: &SchemaConsumer,
    watermarks: &Client<C>,
    topic: &str,
    mut next: i64,
) -> Result<(Vec<LogRecord>, i64), RegistryError> {
    let mut records = Vec::new();
    let mut take = |message: &rdkafka::message::BorrowedMessage<'_>, next: &mut i64| {
        if message.offset() < *next {
            return; // a record this process wrote and applied itself
        }
        *next = message.offset() + 1;
        match message
            .key()
            .map(|key| LogRecord::decode(key, message.payload()))
        {
            Some(Ok(Some(record))) => records.push(record),
            Some(Ok(None)) => {}
            Some(Err(error)) => {
                tracing::warn!(topic, offset = message.offset(), %error, "skipping record");
            }
            None => tracing::warn!(
                topic,
                offset = message.offset(),
                "skipping record without key"
            ),
        }
    };
    // What the consumer fetched already; end-of-partition events queued before the watermark
    // is read below say nothing about the current end, so they are dropped here.
    while let Some(event) = consumer.poll(Duration::ZERO) {
        match event {
            Ok(message) => take(&message, &mut next),
            Err(error) => tracing::debug!(topic, %error, "schemas consumer event"),
        }
    }
    let end = high_watermark(watermarks, topic)?;
    let mut deadline = Instant::now() + BROKER_TIMEOUT;
    while next < end {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                take(&message, &mut next);
                deadline = Instant::now() + BROKER_TIMEOUT;
            }
            // Compaction may have removed the last offsets below the watermark.
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) => tracing::warn!(topic, %error, "reading schemas topic"),
            None => {}
        }
        if Instant::now() >= deadline {
            return Err(RegistryError::ReadStalled {
                topic: topic.to_owned(),
                reached: next,
                end,
            });
        }
    }
    Ok((records, next.max(end)))
}

fn high_watermark<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<i64, RegistryError> {
    let deadline = Instant::now() + BROKER_TIMEOUT;
    loop {
        match client.fetch_watermarks(topic, PARTITION, Duration::from_secs(5)) {
            Ok((_, high)) => return Ok(high),
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(topic, %error, "reading schemas topic watermarks, retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(source) => return Err(kafka_error("read the schemas topic watermarks", source)),
        }
    }
}
