//! An idempotent producer whose `send` completes only when the broker has acknowledged the
//! record, so callers can store a consumer offset right after.

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use crate::metrics::Metrics;
use crate::settings::KafkaSettings;

/// Minimum linger of a [`Producer::bulk`] producer.
pub const BULK_LINGER: Duration = Duration::from_millis(50);

/// Why a record was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The producer could not be created from the settings.
    #[error("cannot create producer: {0}")]
    Config(#[source] KafkaError),
    /// The broker did not acknowledge the record in time or refused it.
    #[error("record to {topic} not acknowledged: {source}")]
    Delivery {
        /// Destination topic.
        topic: String,
        /// librdkafka's reason.
        #[source]
        source: KafkaError,
    },
}

impl ProduceError {
    /// True when sending the same record again cannot succeed: the broker refused it for its
    /// size or content, or this client may not write to the topic.
    pub fn is_permanent(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode as Code;
        match self {
            ProduceError::Config(_) => true,
            ProduceError::Delivery { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(
                    Code::MessageSizeTooLarge
                        | Code::MessageBatchTooLarge
                        | Code::InvalidMessage
                        | Code::InvalidRecord
                        | Code::TopicAuthorizationFailed
                        | Code::ClusterAuthorizationFailed
                )
            ),
        }
    }
}

/// Why an event was not handed to the broker (see [`Producer::send_event`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EventSendError {
    /// Trying again cannot help: the value does not fit its schema, or the broker refuses
    /// the record for good (see [`ProduceError::is_permanent`]).
    pub permanent: bool,
    /// What went wrong.
    pub message: String,
}

/// A record to produce. Headers are `(name, value)` pairs.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Record key; the partitioner hashes it so equal keys land in one partition.
    pub key: Option<&'a [u8]>,
    /// Record value; `None` is a tombstone.
    pub payload: Option<&'a [u8]>,
    /// Record headers.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition written to.
    pub partition: i32,
    /// Offset within that partition.
    pub offset: i64,
}

/// Idempotent (`enable.idempotence=true`, `acks=all`) producer shared by a whole process.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    metrics: Metrics,
}

impl Producer {
    /// Creates the producer. Nothing is sent until the first record.
    pub fn new(settings: &KafkaSettings, metrics: Metrics) -> Result<Self, ProduceError> {
        Self::with_linger(settings, metrics, settings.linger)
    }

    /// A producer for high-volume records nobody waits on (clicks, fan-out items): it lingers
    /// at least `BULK_LINGER` to fill large batches. On a loaded core librdkafka spent a tenth
    /// of the CPU serving its queues with the default few-millisecond linger.
    pub fn bulk(settings: &KafkaSettings, metrics: Metrics) -> Result<Self, ProduceError> {
        Self::with_linger(settings, metrics, settings.linger.max(BULK_LINGER))
    }

    fn with_linger(
        settings: &KafkaSettings,
        metrics: Metrics,
        linger: Duration,
    ) -> Result<Self, ProduceError> {
        let mut config = settings.client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", linger.as_millis().to_string())
            .set("batch.num.messages", "10000")
            .set("compression.type", &settings.compression)
            .set(
                "delivery.timeout.ms",
                settings.delivery_timeout.as_millis().to_string(),
            );
        let inner = config.create().map_err(ProduceError::Config)?;
        Ok(Self { inner, metrics })
    }

    /// Encodes `event` with `schema` (Confluent wire format, registering the schema under
    /// `<topic>-value` when needed) and sends it with `key`, waiting for the acknowledgement.
    pub async fn send_event<T: serde::Serialize>(
        &self,
        codec: &crate::codec::AvroCodec,
        topic: &str,
        schema: &crate::codec::EventSchema,
        key: &str,
        event: &T,
    ) -> Result<Delivered, EventSendError> {
        let payload = codec
            .encode(topic, schema, event)
            .await
            .map_err(|e| EventSendError {
                permanent: !e.retriable,
                message: e.to_string(),
            })?;
        self.send(Outgoing {
            topic,
            key: Some(key.as_bytes()),
            payload: Some(&payload),
            headers: &[],
        })
        .await
        .map_err(|e| EventSendError {
            permanent: e.is_permanent(),
            message: e.to_string(),
        })
    }

    /// Encodes `event` like [`Producer::send_event`] and puts it in the producer's queue before
    /// returning; the returned future waits for the acknowledgement. Records queued one after
    /// another by one caller keep that order in their partition (the producer is idempotent),
    /// so a caller can keep many in flight without waiting for each — what a chat socket that
    /// receives a burst of messages needs.
    pub async fn enqueue_event<T: serde::Serialize>(
        &self,
        codec: &crate::codec::AvroCodec,
        topic: &str,
        schema: &crate::codec::EventSchema,
        key: &str,
        event: &T,
    ) -> Result<
        impl Future<Output = Result<Delivered, EventSendError>> + Send + 'static,
        EventSendError,
    > {
        use rdkafka::types::RDKafkaErrorCode;
        let payload = codec
            .encode(topic, schema, event)
            .await
            .map_err(|e| EventSendError {
                permanent: !e.retriable,
                message: e.to_string(),
            })?;
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .key(key.as_bytes())
            .payload(&payload);
        let queued = Instant::now();
        let delivery = loop {
            match self.inner.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if queued.elapsed() < Duration::from_secs(5) =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((error, _)) => {
                    return Err(EventSendError {
                        permanent: false,
                        message: format!("record to {topic} not queued: {error}"),
                    });
                }
            }
        };
        let (metrics, topic) = (self.metrics.clone(), topic.to_owned());
        Ok(async move {
            let failed = |source: KafkaError| {
                let error = ProduceError::Delivery {
                    topic: topic.clone(),
                    source,
                };
                EventSendError {
                    permanent: error.is_permanent(),
                    message: error.to_string(),
                }
            };
            match delivery.await {
                Ok(Ok(delivery)) => {
                    metrics.produced.with_label_values(&[&topic]).inc();
                    Ok(Delivered {
                        partition: delivery.partition,
                        offset: delivery.offset,
                    })
                }
                Ok(Err((source, _))) => Err(failed(source)),
                Err(_canceled) => Err(failed(KafkaError::Canceled)),
            }
        })
    }

    /// Sends one record and waits for the broker's acknowledgement.
    pub async fn send(&self, record: Outgoing<'_>) -> Result<Delivered, ProduceError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let mut future = FutureRecord::<[u8], [u8]>::to(record.topic).headers(headers);
        if let Some(key) = record.key {
            future = future.key(key);
        }
        if let Some(payload) = record.payload {
            future = future.payload(payload);
        }
        // The queue wait is bounded by delivery.timeout.ms inside librdkafka as well.
        match self.inner.send(future, Duration::from_secs(5)).await {
            Ok(delivery) => {
                self.metrics
                    .produced
                    .with_label_values(&[record.topic])
                    .inc();
                Ok(Delivered {
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Err((source, _)) => Err(ProduceError::Delivery {
                topic: record.topic.to_string(),
                source,
            }),
        }
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaErrorCode;

    use super::*;

    fn delivery(code: RDKafkaErrorCode) -> ProduceError {
        ProduceError::Delivery {
            topic: "t".into(),
            source: KafkaError::MessageProduction(code),
        }
    }

    #[test]
    fn size_and_authorization_refusals_are_permanent() {
        assert!(delivery(RDKafkaErrorCode::MessageSizeTooLarge).is_permanent());
        assert!(delivery(RDKafkaErrorCode::TopicAuthorizationFailed).is_permanent());
        assert!(!delivery(RDKafkaErrorCode::MessageTimedOut).is_permanent());
        assert!(!delivery(RDKafkaErrorCode::NotLeaderForPartition).is_permanent());
    }
}
