//! What the console shows of things that already happened: the newest records of a topic
//! (decoded), and the newest mails the local SMTP stand-in wrote.

use std::path::Path;

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::BROKER_TIMEOUT;
use crate::Clients;
use crate::settings::Settings;

/// One record of a topic, decoded.
#[derive(Debug, Clone, Serialize)]
pub struct RecentRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Broker timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Key as text (lossy UTF-8).
    pub key: Option<String>,
    /// The value decoded to JSON, or why it could not be.
    pub value: serde_json::Value,
}

/// Up to `limit` newest records of `topic` (at most `limit` per partition read), oldest first.
///
/// Blocks on the broker: call it from a blocking task.
pub async fn records(
    settings: &Settings,
    clients: &Clients,
    topic: &str,
    limit: usize,
) -> Result<Vec<RecentRecord>> {
    let mut config = settings.kafka.client_config();
    config
        .set(
            "group.id",
            format!("sixfold-console-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create().context("create console consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .with_context(|| format!("metadata of {topic}"))?;
    let mut ends = std::collections::BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
    {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
            .with_context(|| format!("watermarks of {topic}/{partition}"))?;
        let start = low.max(high - limit as i64);
        if start < high {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
            ends.insert(partition, high);
        }
    }
    let mut raw = Vec::new();
    if !ends.is_empty() {
        consumer.assign(&assignment)?;
        while !ends.is_empty() {
            let Some(message) = consumer.poll(BROKER_TIMEOUT) else {
                break; // retention may have removed the rest; show what was read
            };
            let message = message.with_context(|| format!("reading {topic}"))?;
            let Some(&end) = ends.get(&message.partition()) else {
                continue;
            };
            if message.offset() + 1 >= end {
                ends.remove(&message.partition());
            }
            raw.push((
                message.partition(),
                message.offset(),
                message.timestamp().to_millis(),
                message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                message.payload().map(<[u8]>::to_vec),
            ));
        }
    }
    raw.sort_by_key(|r| (r.2, r.0, r.1));
    let skip = raw.len().saturating_sub(limit);
    let mut records = Vec::new();
    for (partition, offset, timestamp_ms, key, payload) in raw.into_iter().skip(skip) {
        let value = clients.codec.decode_json(payload.as_deref()).await;
        records.push(RecentRecord {
            partition,
            offset,
            timestamp_ms,
            key,
            value,
        });
    }
    Ok(records)
}

/// One mail in the local mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct Mail {
    /// File name (`NNNN-<time>.eml`).
    pub file: String,
    /// `To:` header.
    pub to: String,
    /// `Subject:` header (as written; may be MIME-encoded).
    pub subject: String,
    /// `Message-ID:` header.
    pub message_id: String,
}

/// The newest `limit` mails of the SMTP stand-in's mailbox directory (by time written), newest
/// first; none when the directory does not exist.
pub fn mails(dir: &Path, limit: usize) -> Result<Vec<Mail>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("read {}", dir.display())),
    };
    // By time written: the stand-in numbers its files from 1 again at every start.
    let mut files: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let written = e.metadata().and_then(|m| m.modified()).ok()?;
            name.ends_with(".eml").then_some((written, name))
        })
        .collect();
    files.sort();
    let mut mails = Vec::new();
    for (_, name) in files.into_iter().rev().take(limit) {
        let text = std::fs::read(dir.join(&name))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let header = |wanted: &str| {
            text.lines()
                .take_while(|line| !line.is_empty())
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case(wanted)
                        .then(|| value.trim().to_owned())
                })
                .unwrap_or_default()
        };
        mails.push(Mail {
            to: header("To"),
            subject: header("Subject"),
            message_id: header("Message-ID"),
            file: name,
        });
    }
    Ok(mails)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_mails_come_first_with_their_headers() {
        let dir =
            std::env::temp_dir().join(format!("sixfold-console-mails-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (n, id) in [(3, "a"), (2, "b"), (1, "c")] {
            // Written in this order, numbered backwards: the time written decides.
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::write(
                dir.join(format!("{n:04}-20261127T000000Z.eml")),
                format!("To: u{n}@example.com\r\nSubject: hello {n}\r\nMessage-ID: <{id}@sixfold>\r\n\r\nTo: not-a-header\r\n"),
            )
            .unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let mails = mails(&dir, 2).unwrap();
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].to, "u1@example.com");
        assert_eq!(mails[0].subject, "hello 1");
        assert_eq!(mails[0].message_id, "<c@sixfold>");
        assert_eq!(mails[1].to, "u2@example.com");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(super::mails(&dir, 2).unwrap().is_empty());
    }
}
