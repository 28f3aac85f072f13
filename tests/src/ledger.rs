//! The ledger test processor: a processor built on the runtime whose effects make lost or
//! duplicated deliveries visible.
//!
//! Each `LedgerEntry` adds `amount` to `account`. The effect is one Lua script in Redis that adds
//! the event id to a set and, only if it was new, increments the balance — an idempotent effect,
//! as the runtime's at-least-once delivery expects. It also writes the entry to the store's
//! key-value table (an upsert, idempotent by event id), records which instance handled it, and
//! counts every call so tests can see redeliveries.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::producer::{Outgoing, Producer};
use sixfold_runtime::{Classify, Processor, Record};
use sixfold_store::Store;

/// The Avro schema of [`LedgerEntry`].
pub const SCHEMA: &str = include_str!("ledger.avsc");

/// How the processor treats an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Behaviour {
    /// Apply on the first attempt.
    Apply,
    /// Fail transiently on attempts 1 and 2, apply on attempt 3.
    FailTwice,
    /// Fail transiently on every attempt (ends in the DLQ once tiers are exhausted).
    AlwaysTransient,
    /// Fail permanently (straight to the DLQ).
    Reject,
}

/// The test event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Idempotency key.
    pub event_id: String,
    /// Milliseconds since the epoch.
    pub occurred_at: i64,
    /// Account; also the record key.
    pub account: String,
    /// Amount to add.
    pub amount: i64,
    /// What the processor should do.
    pub behaviour: Behaviour,
}

impl LedgerEntry {
    /// An entry with a fresh event id.
    pub fn new(account: &str, amount: i64, behaviour: Behaviour) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: 0,
            account: account.into(),
            amount,
            behaviour,
        }
    }
}

/// The processor's failures.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The value is not a ledger entry.
    #[error("not a ledger entry: {0}")]
    Invalid(String),
    /// The entry asked to be rejected.
    #[error("entry {0} rejected")]
    Rejected(String),
    /// The entry asked to fail transiently on this attempt.
    #[error("entry {event_id} failed transiently on attempt {attempt}")]
    Flaky {
        /// Event id.
        event_id: String,
        /// Attempt number.
        attempt: u32,
    },
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] sixfold_store::StoreError),
}

impl Classify for LedgerError {
    fn is_transient(&self) -> bool {
        matches!(self, LedgerError::Flaky { .. } | LedgerError::Redis(_))
            || matches!(self, LedgerError::Store(e) if e.is_transient())
    }

    fn class(&self) -> &'static str {
        match self {
            LedgerError::Invalid(_) => "invalid_entry",
            LedgerError::Rejected(_) => "rejected",
            LedgerError::Flaky { .. } => "flaky",
            LedgerError::Redis(_) => "redis",
            LedgerError::Store(_) => "store",
        }
    }
}

/// Redis keys of one test run, all under one prefix.
#[derive(Debug, Clone)]
pub struct LedgerKeys {
    prefix: String,
}

impl LedgerKeys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
    /// Set of applied event ids.
    pub fn applied(&self) -> String {
        format!("{}:applied", self.prefix)
    }
    /// Hash account → balance.
    pub fn balances(&self) -> String {
        format!("{}:balances", self.prefix)
    }
    /// Counter of `process` calls that reached the effect.
    pub fn calls(&self) -> String {
        format!("{}:calls", self.prefix)
    }
    /// Hash event id → `instance:attempt` that applied it.
    pub fn applied_by(&self) -> String {
        format!("{}:applied-by", self.prefix)
    }
    /// Store namespace for the entries.
    pub fn namespace(&self) -> &str {
        &self.prefix
    }
}

/// Adds the event to the applied set and, only if it was not there, adds to the balance.
const APPLY_ONCE: &str = r"
redis.call('INCR', KEYS[3])
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
  return 1
end
return 0
";

/// The ledger processor.
pub struct LedgerProcessor {
    redis: ConnectionManager,
    store: Arc<dyn Store>,
    keys: LedgerKeys,
    instance: String,
    delay: Duration,
    script: redis::Script,
}

impl LedgerProcessor {
    /// A processor writing under `keys`, naming itself `instance`, sleeping `delay` per record
    /// (so tests can stop it mid-stream).
    pub fn new(
        redis: ConnectionManager,
        store: Arc<dyn Store>,
        keys: LedgerKeys,
        instance: &str,
        delay: Duration,
    ) -> Self {
        Self {
            redis,
            store,
            keys,
            instance: instance.into(),
            delay,
            script: redis::Script::new(APPLY_ONCE),
        }
    }
}

#[async_trait]
impl Processor for LedgerProcessor {
    type Error = LedgerError;

    async fn process(&self, record: &Record) -> Result<(), LedgerError> {
        let entry: LedgerEntry = record
            .decode()
            .map_err(|e| LedgerError::Invalid(e.to_string()))?;
        match entry.behaviour {
            Behaviour::Apply => {}
            Behaviour::FailTwice if record.attempt >= 3 => {}
            Behaviour::FailTwice | Behaviour::AlwaysTransient => {
                return Err(LedgerError::Flaky {
                    event_id: entry.event_id,
                    attempt: record.attempt,
                });
            }
            Behaviour::Reject => return Err(LedgerError::Rejected(entry.event_id)),
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.store
            .kv()
            .put(
                self.keys.namespace(),
                &entry.event_id,
                entry.account.clone().into_bytes(),
            )
            .await?;
        let mut redis = self.redis.clone();
        let _: i64 = self
            .script
            .key(self.keys.applied())
            .key(self.keys.balances())
            .key(self.keys.calls())
            .key(self.keys.applied_by())
            .arg(&entry.event_id)
            .arg(&entry.account)
            .arg(entry.amount)
            .arg(format!(
                "{}:{}:{}",
                self.instance, record.partition, record.attempt
            ))
            .invoke_async(&mut redis)
            .await?;
        Ok(())
    }
}

/// Produces ledger entries to `topic`, keyed by account, Avro-encoded through the registry.
pub async fn produce(
    producer: &Producer,
    codec: &AvroCodec,
    topic: &str,
    entries: &[LedgerEntry],
) -> anyhow::Result<()> {
    let schema = EventSchema::parse(SCHEMA)?;
    for entry in entries {
        let payload = codec.encode(topic, &schema, entry).await?;
        producer
            .send(Outgoing {
                topic,
                key: Some(entry.account.as_bytes()),
                payload: Some(&payload),
                headers: &[],
            })
            .await?;
    }
    Ok(())
}
