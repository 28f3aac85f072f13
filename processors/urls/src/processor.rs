//! The `urls` processor: materializes `url.created` into the store and cache, and counts
//! `url.clicked` per code and day.

use std::sync::Arc;

use async_trait::async_trait;
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::{Classify, Processor, Record};
use sixfold_store::{Store, StoreError};

use crate::cache::LinkCache;
use crate::clicks::{ClickCounts, utc_day};
use crate::events::{UrlClicked, UrlCreated};
use crate::{Names, UrlTopics};

/// Why a record could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum UrlsError {
    /// The value is not the event its topic carries.
    #[error("invalid event: {0}")]
    Invalid(String),
    /// The record came from a topic this processor does not read.
    #[error("unexpected topic {0}")]
    UnknownTopic(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A stored value could not be read back.
    #[error("corrupt stored value for {0}")]
    Corrupt(String),
}

impl Classify for UrlsError {
    fn is_transient(&self) -> bool {
        matches!(self, UrlsError::Store(e) if e.is_transient())
    }

    fn class(&self) -> &'static str {
        match self {
            UrlsError::Invalid(_) => "invalid_event",
            UrlsError::UnknownTopic(_) => "unknown_topic",
            UrlsError::Store(e) if e.is_transient() => "store_unavailable",
            UrlsError::Store(_) => "store_rejected",
            UrlsError::Corrupt(_) => "corrupt_state",
        }
    }
}

/// The processor.
pub struct UrlsProcessor {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cache: LinkCache,
    pub(crate) names: Names,
    pub(crate) topics: UrlTopics,
    pub(crate) metrics: Metrics,
}

#[async_trait]
impl Processor for UrlsProcessor {
    type Error = UrlsError;

    async fn process(&self, record: &Record) -> Result<(), UrlsError> {
        if record.topic == self.topics.created {
            let event: UrlCreated = record
                .decode()
                .map_err(|e| UrlsError::Invalid(e.to_string()))?;
            self.materialize_link(&event).await
        } else if record.topic == self.topics.clicked {
            let event: UrlClicked = record
                .decode()
                .map_err(|e| UrlsError::Invalid(e.to_string()))?;
            self.count_click(&event, record.partition, record.offset)
                .await
        } else {
            Err(UrlsError::UnknownTopic(record.topic.clone()))
        }
    }
}

impl UrlsProcessor {
    /// Upserts the link and its expiry index entry (idempotent), then refreshes the cache.
    async fn materialize_link(&self, event: &UrlCreated) -> Result<(), UrlsError> {
        let link = event.link();
        let value = serde_json::to_vec(&link).map_err(|e| UrlsError::Invalid(e.to_string()))?;
        let kv = self.store.kv();
        kv.put(&self.names.links, &link.code, value).await?;
        if let Some(expires) = link.expires_at_ms {
            kv.put(
                &self.names.expiry,
                &expiry_key(expires, &link.code),
                Vec::new(),
            )
            .await?;
        }
        // The store is the truth; a cache that cannot be written fills itself on the next read.
        if let Err(error) = self.cache.put(&link, now_ms()).await {
            tracing::warn!(%error, code = %link.code, "link not cached");
        }
        self.metrics
            .materialized
            .with_label_values(&["urls", "link"])
            .inc();
        Ok(())
    }

    /// Counts the click once (see [`ClickCounts`]).
    async fn count_click(
        &self,
        event: &UrlClicked,
        partition: i32,
        offset: i64,
    ) -> Result<(), UrlsError> {
        let kv = self.store.kv();
        let mut counts: ClickCounts = match kv.get(&self.names.clicks, &event.short_code).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|_| UrlsError::Corrupt(event.short_code.clone()))?,
            None => ClickCounts::default(),
        };
        if counts.apply(partition, offset, &utc_day(event.occurred_at)) {
            let value =
                serde_json::to_vec(&counts).map_err(|e| UrlsError::Invalid(e.to_string()))?;
            kv.put(&self.names.clicks, &event.short_code, value).await?;
            self.metrics
                .materialized
                .with_label_values(&["urls", "clicks"])
                .inc();
        }
        Ok(())
    }
}

/// Key of the expiry index: sorts by expiry time, then code. 20 digits hold every positive
/// `i64`, so the text order is the time order for any expiry (13 digits stop at year 2286).
pub(crate) fn expiry_key(expires_at_ms: i64, code: &str) -> String {
    format!("{:020}:{code}", expires_at_ms.max(0))
}

/// The parts of an expiry index key.
pub(crate) fn parse_expiry_key(key: &str) -> Option<(i64, &str)> {
    let (ms, code) = key.split_once(':')?;
    Some((ms.parse().ok()?, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_keys_sort_by_time() {
        let early = expiry_key(999, "zzzzzzz");
        let late = expiry_key(1_000, "aaaaaaa");
        assert!(early < late);
        // Past year 2286 a millisecond time has 14 digits; it must still sort after today.
        assert!(expiry_key(1_795_000_000_000, "x") < expiry_key(10_413_792_000_000, "x"));
        assert_eq!(parse_expiry_key(&late), Some((1_000, "aaaaaaa")));
        assert_eq!(parse_expiry_key("junk"), None);
    }
}
