//! A ready-to-use set-up for ledger tests: registry, clients, fresh keys, and readers of the
//! materialized result.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_store::Store;
use sixfold_tests::ledger::{LedgerEntry, LedgerKeys, LedgerProcessor};
use sixfold_tests::{TestRegistry, kafka, redis_url, sqlite_store, unique};

pub struct Harness {
    pub registry: TestRegistry,
    pub context: RuntimeContext,
    pub redis: ConnectionManager,
    pub store: Arc<dyn Store>,
    pub sqlite_path: std::path::PathBuf,
    pub keys: LedgerKeys,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Result<Self> {
        let registry = TestRegistry::start().await?;
        let metrics = Metrics::new();
        let kafka = kafka();
        let context = RuntimeContext {
            codec: Arc::new(AvroCodec::new(&registry.url)?),
            producer: Producer::new(&kafka, metrics.clone())?,
            kafka,
            metrics,
        };
        let dir = tempfile::tempdir()?;
        let store = sqlite_store(dir.path()).await?;
        // The same file `sqlite_store` opened, for the processor process to share.
        let sqlite_path = dir.path().join("store.db");
        let redis = ConnectionManager::new(redis::Client::open(redis_url())?).await?;
        Ok(Self {
            registry,
            context,
            redis,
            store,
            sqlite_path,
            keys: LedgerKeys::new(&unique("ledger")),
            _dir: dir,
        })
    }

    pub fn processor(&self, instance: &str) -> LedgerProcessor {
        LedgerProcessor::new(
            self.redis.clone(),
            self.store.clone(),
            self.keys.clone(),
            instance,
            Duration::ZERO,
        )
    }

    pub async fn produce(&self, topic: &str, entries: &[LedgerEntry]) -> Result<()> {
        sixfold_tests::ledger::produce(&self.context.producer, &self.context.codec, topic, entries)
            .await
    }

    pub async fn applied_count(&self) -> usize {
        let mut redis = self.redis.clone();
        redis.scard(self.keys.applied()).await.unwrap_or(0)
    }

    pub async fn is_applied(&self, event_id: &str) -> bool {
        let mut redis = self.redis.clone();
        redis
            .sismember(self.keys.applied(), event_id)
            .await
            .unwrap_or(false)
    }

    pub async fn balances(&self) -> Result<HashMap<String, i64>> {
        let mut redis = self.redis.clone();
        Ok(redis.hgetall(self.keys.balances()).await?)
    }

    pub async fn applied_by(&self) -> Result<HashMap<String, String>> {
        let mut redis = self.redis.clone();
        Ok(redis.hgetall(self.keys.applied_by()).await?)
    }

    pub async fn calls(&self) -> Result<u64> {
        let mut redis = self.redis.clone();
        Ok(redis
            .get::<_, Option<u64>>(self.keys.calls())
            .await?
            .unwrap_or(0))
    }
}

/// Expected balance per account.
pub fn expected_balances(entries: &[LedgerEntry]) -> HashMap<String, i64> {
    let mut balances = HashMap::new();
    for entry in entries {
        *balances.entry(entry.account.clone()).or_default() += entry.amount;
    }
    balances
}

/// Reads `count` records from `topic` from the beginning, failing after `deadline`.
pub async fn read_records(
    topic: &str,
    count: usize,
    deadline: Duration,
) -> Result<Vec<OwnedMessage>> {
    let mut config = kafka().client_config();
    config
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let consumer: StreamConsumer = config.create()?;
    consumer.subscribe(&[topic])?;
    let mut records = Vec::new();
    let read = async {
        while records.len() < count {
            let message = consumer.recv().await?;
            records.push(message.detach());
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| {
        anyhow::anyhow!(
            "read {} of {count} records from {topic} before the deadline",
            records.len()
        )
    })??;
    Ok(records)
}

/// A header's value as text.
pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
