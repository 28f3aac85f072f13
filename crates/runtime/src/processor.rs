//! What a processor implements, and the record it is handed.

use apache_avro::types::Value;
use async_trait::async_trait;
use serde::de::DeserializeOwned;

/// One input record, decoded, as a processor sees it.
///
/// For a record re-consumed from a retry topic, `topic`, `partition` and `offset` are those of
/// the original record, so a processor dispatches on `topic` the same way on every attempt.
#[derive(Debug, Clone)]
pub struct Record {
    /// Topic the record was first written to.
    pub topic: String,
    /// Partition of the original record.
    pub partition: i32,
    /// Offset of the original record.
    pub offset: i64,
    /// Record key, as written.
    pub key: Option<Vec<u8>>,
    /// Decoded Avro value; `Value::Null` for a tombstone.
    pub value: Value,
    /// Producer timestamp in milliseconds since the epoch, when the broker has one.
    pub timestamp_ms: Option<i64>,
    /// 1 on the first delivery, 2 on the first retry, and so on.
    pub attempt: u32,
}

impl Record {
    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
    }

    /// Deserializes the value into a processor's event type.
    ///
    /// A failure here means the value does not match the event type: a permanent error.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, apache_avro::Error> {
        apache_avro::from_value(&self.value)
    }
}

/// Tells the runtime how to route a failed record.
pub trait Classify {
    /// True when the same record may succeed later (a store or Redis timeout, a provider's 503).
    /// Transient failures go through the retry tiers; others go straight to the DLQ.
    fn is_transient(&self) -> bool;

    /// A short stable name for the kind of failure (`validation`, `store_unavailable`, …),
    /// written to the DLQ header `sixfold.error.class` and used as a metric label.
    fn class(&self) -> &'static str;
}

/// A stage that materializes or delivers the effects of records.
///
/// `process` must be idempotent: the runtime delivers at least once, so the same record may be
/// processed again after a crash or a rebalance. It returns only when every effect of the record
/// is done; the runtime stores the offset after that.
#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// The processor's error; its [`Classify`] decides retry versus dead letter.
    type Error: std::error::Error + Classify + Send + Sync + 'static;

    /// Applies every effect of one record.
    async fn process(&self, record: &Record) -> Result<(), Self::Error>;
}
