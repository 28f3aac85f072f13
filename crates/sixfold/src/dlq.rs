//! `sixfold dlq`: look into a processor's dead-letter topic, send its records back, forget them.
//!
//! - [`list`] reads `<processor>.dlq` from the start (or from where the last purge stopped) to
//!   its end and groups the records by error class (header `sixfold.error.class`), with the
//!   first few of each class decoded.
//! - [`redrive`] produces each record (or each of one class) back to the topic it first came
//!   from (header `sixfold.original.topic`) with its key, value and headers, plus
//!   `sixfold.redriven.from` = `<dlq partition>:<offset>`. A marker per DLQ record in the store
//!   (`dlq.<processor>` / `redriven:<partition>:<offset>`, holding the record's timestamp) makes
//!   it idempotent: running it again, with or without a class, does not send a record again
//!   (a crash between the send and its marker, or two re-drives at once, can). The input topic's consumer treats
//!   the record as new (retry headers count only on retry topics), so it gets all its attempts
//!   again.
//! - [`purge`] moves the start of each partition past every record there now: the store keeps
//!   the purge offsets (`purged:<partition>`), and `list` and `redrive` skip what lies before.
//!   The records themselves go with the topic's retention. The Admin API's DeleteRecords is not
//!   used: the local broker's storage panics on it and stops serving (docs/broker.md).
//!
//! The functions take the settings and clients, not the command line, so that a web page can
//! call them as the CLI does.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sixfold_runtime::failure::{
    H_ATTEMPTS, H_ERROR_CLASS, H_ERROR_MESSAGE, H_FIRST_FAILURE_MS, H_ORIGINAL_TOPIC, dlq_topic,
};

use crate::settings::Settings;
use crate::{BROKER_TIMEOUT, Clients};

/// Header a re-driven record carries: `<dlq partition>:<dlq offset>`.
pub const H_REDRIVEN_FROM: &str = "sixfold.redriven.from";

/// One dead-lettered record.
#[derive(Debug, Clone, Serialize)]
pub struct DlqRecord {
    /// DLQ partition.
    pub partition: i32,
    /// DLQ offset.
    pub offset: i64,
    /// Record key as text (lossy UTF-8).
    pub key: Option<String>,
    /// Topic the record first came from.
    pub original_topic: String,
    /// Error class.
    pub error_class: String,
    /// Error message.
    pub error: String,
    /// Failed attempts.
    pub attempts: u32,
    /// First failure, ms since the epoch.
    pub first_failure_ms: Option<i64>,
    /// The value decoded to JSON, or why it could not be.
    pub value: serde_json::Value,
    /// Whether it was re-driven already.
    pub redriven: bool,
}

/// The records of one error class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassSummary {
    /// Error class.
    pub error_class: String,
    /// Records of the class.
    pub count: u64,
    /// Of those, already re-driven.
    pub redriven: u64,
    /// The first few, decoded.
    pub examples: Vec<DlqRecord>,
}

/// What a processor's DLQ holds.
#[derive(Debug, Clone, Serialize)]
pub struct DlqSummary {
    /// Processor name.
    pub processor: String,
    /// Its DLQ topic.
    pub topic: String,
    /// Records (after the last purge).
    pub total: u64,
    /// By error class, largest first.
    pub classes: Vec<ClassSummary>,
}

/// What a re-drive did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RedriveReport {
    /// Records of the asked class (all when none was asked).
    pub matched: u64,
    /// Sent back to their input topics now (or that would be, when dry).
    pub redriven: u64,
    /// Skipped: re-driven by an earlier run.
    pub already_redriven: u64,
    /// Nothing was sent.
    pub dry_run: bool,
}

fn namespace(processor: &str) -> String {
    format!("dlq.{processor}")
}

/// The raw records of a DLQ between the purge offsets and the end, handed to `each` in
/// partition and offset order.
async fn scan(
    settings: &Settings,
    clients: &Clients,
    processor: &str,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> Result<()>,
) -> Result<()> {
    let topic = dlq_topic(processor);
    let mut config = settings.kafka.client_config();
    config
        .set(
            "group.id",
            format!("sixfold-dlq-tool-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create().context("create DLQ consumer")?;
    let metadata = consumer
        .fetch_metadata(None, BROKER_TIMEOUT)
        .with_context(|| format!("metadata of {topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} does not exist; run `sixfold topics apply`");
    }
    let kv = clients.store.kv();
    let ns = namespace(processor);
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, BROKER_TIMEOUT)
            .with_context(|| format!("watermarks of {topic}/{partition}"))?;
        let purged = match kv.get(&ns, &format!("purged:{partition}")).await? {
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().unwrap_or(0),
            None => 0,
        };
        let start = if purged > high {
            // The topic is newer than the purge (recreated, or the broker's data wiped).
            tracing::warn!(%topic, partition, purged, high, "purge offset past the end; ignored");
            low
        } else {
            low.max(purged)
        };
        if start < high {
            assignment.add_partition_offset(&topic, partition, Offset::Offset(start))?;
            ends.insert(partition, high);
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    while !ends.is_empty() {
        let message = match consumer.poll(BROKER_TIMEOUT) {
            Some(message) => message.with_context(|| format!("reading {topic}"))?,
            None => {
                // Retention may have deleted what was left to read.
                for (partition, end) in ends.clone() {
                    let (low, _) = consumer.fetch_watermarks(&topic, partition, BROKER_TIMEOUT)?;
                    if low >= end {
                        ends.remove(&partition);
                    }
                }
                if ends.is_empty() {
                    break;
                }
                bail!(
                    "{topic}: partitions {:?} gave no record within {BROKER_TIMEOUT:?} before their end",
                    ends.keys()
                );
            }
        };
        let partition = message.partition();
        let Some(&end) = ends.get(&partition) else {
            continue;
        };
        if message.offset() < end {
            each(&message)?;
        }
        if message.offset() + 1 >= end {
            ends.remove(&partition);
        }
    }
    Ok(())
}

fn header(message: &rdkafka::message::BorrowedMessage<'_>, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Groups `processor`'s DLQ by error class with up to `examples` decoded records each.
pub async fn list(
    settings: &Settings,
    clients: &Clients,
    processor: &str,
    examples: usize,
) -> Result<DlqSummary> {
    let mut raw: Vec<(DlqRecord, Option<Vec<u8>>, String)> = Vec::new();
    let mut classes: BTreeMap<String, ClassSummary> = BTreeMap::new();
    let mut counted = Vec::new();
    scan(settings, clients, processor, |message| {
        let class = header(message, H_ERROR_CLASS).unwrap_or_else(|| "unknown".into());
        counted.push((
            class.clone(),
            message.partition(),
            message.offset(),
            stamp(message),
        ));
        let summary = classes.entry(class.clone()).or_insert(ClassSummary {
            error_class: class.clone(),
            count: 0,
            redriven: 0,
            examples: Vec::new(),
        });
        summary.count += 1;
        if summary.count as usize <= examples {
            raw.push((
                record_of(message, class),
                message.payload().map(<[u8]>::to_vec),
                stamp(message),
            ));
        }
        Ok(())
    })
    .await?;
    let kv = clients.store.kv();
    let ns = namespace(processor);
    for (class, partition, offset, stamp) in &counted {
        if is_redriven(kv, &ns, *partition, *offset, stamp).await?
            && let Some(summary) = classes.get_mut(class)
        {
            summary.redriven += 1;
        }
    }
    for (mut record, payload, stamp) in raw {
        record.value = clients.codec.decode_json(payload.as_deref()).await;
        record.redriven = is_redriven(kv, &ns, record.partition, record.offset, &stamp).await?;
        if let Some(summary) = classes.get_mut(&record.error_class) {
            summary.examples.push(record);
        }
    }
    let mut classes: Vec<ClassSummary> = classes.into_values().collect();
    classes.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.error_class.cmp(&b.error_class))
    });
    Ok(DlqSummary {
        processor: processor.to_owned(),
        topic: dlq_topic(processor),
        total: classes.iter().map(|c| c.count).sum(),
        classes,
    })
}

fn record_of(message: &rdkafka::message::BorrowedMessage<'_>, class: String) -> DlqRecord {
    DlqRecord {
        partition: message.partition(),
        offset: message.offset(),
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        original_topic: header(message, H_ORIGINAL_TOPIC).unwrap_or_default(),
        error_class: class,
        error: header(message, H_ERROR_MESSAGE).unwrap_or_default(),
        attempts: header(message, H_ATTEMPTS)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        first_failure_ms: header(message, H_FIRST_FAILURE_MS).and_then(|t| t.parse().ok()),
        value: serde_json::Value::Null,
        redriven: false,
    }
}

fn marker(partition: i32, offset: i64) -> String {
    format!("redriven:{partition}:{offset}")
}

/// What a marker holds: the DLQ record's timestamp, so that a marker left from a topic that was
/// since recreated (same partition and offset, another record) does not count.
fn stamp(message: &rdkafka::message::BorrowedMessage<'_>) -> String {
    message.timestamp().to_millis().unwrap_or(-1).to_string()
}

async fn is_redriven(
    kv: &dyn sixfold_store::KvStore,
    ns: &str,
    partition: i32,
    offset: i64,
    stamp: &str,
) -> Result<bool> {
    Ok(kv
        .get(ns, &marker(partition, offset))
        .await?
        .is_some_and(|value| value == stamp.as_bytes()))
}

/// A DLQ record to send back.
struct Outgoing {
    partition: i32,
    offset: i64,
    stamp: String,
    topic: String,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

/// Sends `processor`'s DLQ records (of `class`, when given) back to their input topics, each
/// at most once over all runs; with `dry_run`, only counts.
pub async fn redrive(
    settings: &Settings,
    clients: &Clients,
    processor: &str,
    class: Option<&str>,
    dry_run: bool,
) -> Result<RedriveReport> {
    let mut outgoing = Vec::new();
    scan(settings, clients, processor, |message| {
        let record_class = header(message, H_ERROR_CLASS).unwrap_or_else(|| "unknown".into());
        if class.is_some_and(|c| c != record_class) {
            return Ok(());
        }
        let topic = header(message, H_ORIGINAL_TOPIC).with_context(|| {
            format!(
                "DLQ record {}:{} has no {H_ORIGINAL_TOPIC} header",
                message.partition(),
                message.offset()
            )
        })?;
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        outgoing.push(Outgoing {
            partition: message.partition(),
            offset: message.offset(),
            stamp: stamp(message),
            topic,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        });
        Ok(())
    })
    .await?;
    let kv = clients.store.kv();
    let ns = namespace(processor);
    let mut report = RedriveReport {
        matched: outgoing.len() as u64,
        redriven: 0,
        already_redriven: 0,
        dry_run,
    };
    for record in outgoing {
        let key = marker(record.partition, record.offset);
        if is_redriven(kv, &ns, record.partition, record.offset, &record.stamp).await? {
            report.already_redriven += 1;
            continue;
        }
        if dry_run {
            report.redriven += 1;
            continue;
        }
        let from = format!("{}:{}", record.partition, record.offset);
        let mut headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        headers.push((H_REDRIVEN_FROM, from.as_bytes()));
        clients
            .producer
            .send(sixfold_runtime::producer::Outgoing {
                topic: &record.topic,
                key: record.key.as_deref(),
                payload: record.payload.as_deref(),
                headers: &headers,
            })
            .await
            .with_context(|| format!("re-drive {from} to {}", record.topic))?;
        // Marked once produced: a crash in between sends it again on the next run, which the
        // processors absorb (they are idempotent); never marked without being sent.
        kv.put(&ns, &key, record.stamp.clone().into_bytes()).await?;
        report.redriven += 1;
    }
    Ok(report)
}

/// Forgets every record now in `processor`'s DLQ; returns how many.
pub async fn purge(settings: &Settings, clients: &Clients, processor: &str) -> Result<u64> {
    let mut ends: BTreeMap<i32, (i64, u64)> = BTreeMap::new();
    scan(settings, clients, processor, |message| {
        let entry = ends.entry(message.partition()).or_insert((0, 0));
        entry.0 = message.offset() + 1;
        entry.1 += 1;
        Ok(())
    })
    .await?;
    let kv = clients.store.kv();
    let ns = namespace(processor);
    for (partition, (end, _)) in &ends {
        kv.put(
            &ns,
            &format!("purged:{partition}"),
            end.to_string().into_bytes(),
        )
        .await?;
    }
    Ok(ends.values().map(|(_, n)| n).sum())
}
