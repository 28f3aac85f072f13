//! The topic catalog: `topics.yaml` is the one list of topics, read by `sixfold topics apply`,
//! by processors (what they consume, their retry tiers) and by tests.
//!
//! Retry and dead-letter topics are not written out in the file: each processor listed under
//! `processors:` gets `<name>.retry.<n>` for each of its retry delays and `<name>.dlq`, derived
//! here so the names can never drift from what the runtime produces to.

mod apply;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use apply::{Action, ApplyError, apply};

use crate::consumer::ProcessorConfig;
use crate::failure::{dlq_topic, retry_topic};

/// How long retry topics keep records: long enough to outlast an outage of the last tier.
const RETRY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long dead-letter topics keep records: long enough for a person to look and re-drive.
const DLQ_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// I/O reason.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("invalid topic catalog: {0}")]
    Parse(#[from] serde_yaml::Error),
    /// The catalog is well-formed but inconsistent.
    #[error("invalid topic catalog: {0}")]
    Invalid(String),
}

/// Retention of a topic: a duration, or `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Records older than this are deleted.
    For(Duration),
    /// Records are never deleted by age.
    Forever,
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "forever" {
            return Ok(Retention::Forever);
        }
        humantime::parse_duration(&text)
            .map(Retention::For)
            .map_err(|e| serde::de::Error::custom(format!("retention {text:?}: {e}")))
    }
}

/// A retry delay written as a human duration (`1s`, `10s`, `1m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delay(Duration);

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Delay)
            .map_err(|e| serde::de::Error::custom(format!("retry delay {text:?}: {e}")))
    }
}

impl Retention {
    /// The `retention.ms` value.
    pub fn as_ms(&self) -> String {
        match self {
            Retention::For(d) => d.as_millis().to_string(),
            Retention::Forever => "-1".into(),
        }
    }
}

/// `cleanup.policy` of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cleanup {
    /// Delete by age (`retention`).
    #[default]
    Delete,
    /// Keep the latest record per key.
    Compact,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    partitions: i32,
    replication: i32,
    retention: Retention,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessorEntry {
    name: String,
    #[serde(default)]
    retry_delays: Option<Vec<Delay>>,
    #[serde(default)]
    fetch_wait: Option<Delay>,
}

/// One input or internal topic as written in `topics.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicEntry {
    /// Topic name.
    pub name: String,
    /// What the record key is (e.g. `short_code`).
    pub key: String,
    /// File under `schemas/avro/` holding the value schema.
    pub schema: String,
    /// Processors consuming the topic.
    #[serde(default)]
    pub consumers: Vec<String>,
    /// Partition count; the default applies when absent.
    pub partitions: Option<i32>,
    /// Replication factor; the default applies when absent.
    pub replication: Option<i32>,
    /// Cleanup policy.
    #[serde(default)]
    pub cleanup: Cleanup,
    /// Retention; the default applies when absent.
    pub retention: Option<Retention>,
    /// What the topic carries.
    #[serde(default)]
    pub doc: String,
}

/// A topic as it should exist on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// Topic configuration (`cleanup.policy`, `retention.ms`).
    pub config: BTreeMap<String, String>,
}

/// The parsed `topics.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    defaults: Defaults,
    retry_delays: Vec<Delay>,
    processors: Vec<ProcessorEntry>,
    /// Input and internal topics.
    pub topics: Vec<TopicEntry>,
}

impl Catalog {
    /// Reads and checks the catalog at `path`.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and checks a catalog document.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = serde_yaml::from_str(text)?;
        catalog.check()?;
        Ok(catalog)
    }

    fn check(&self) -> Result<(), CatalogError> {
        let mut seen = std::collections::BTreeSet::new();
        for topic in &self.topics {
            if !seen.insert(topic.name.as_str()) {
                return Err(CatalogError::Invalid(format!(
                    "topic {} listed twice",
                    topic.name
                )));
            }
            for consumer in &topic.consumers {
                if !self.processors.iter().any(|p| &p.name == consumer) {
                    return Err(CatalogError::Invalid(format!(
                        "topic {} names consumer {consumer}, which is not under processors:",
                        topic.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Names of the processors in the catalog.
    pub fn processor_names(&self) -> impl Iterator<Item = &str> {
        self.processors.iter().map(|p| p.name.as_str())
    }

    /// The run configuration of processor `name`: its input topics and retry tiers.
    pub fn processor(&self, name: &str) -> Option<ProcessorConfig> {
        let entry = self.processors.iter().find(|p| p.name == name)?;
        Some(ProcessorConfig {
            name: name.to_string(),
            topics: self
                .topics
                .iter()
                .filter(|t| t.consumers.iter().any(|c| c == name))
                .map(|t| t.name.clone())
                .collect(),
            retry_delays: self.delays_of(entry),
            fetch_wait: entry.fetch_wait.as_ref().map(|d| d.0),
            ..ProcessorConfig::default()
        })
    }

    fn delays_of(&self, entry: &ProcessorEntry) -> Vec<Duration> {
        entry
            .retry_delays
            .as_ref()
            .unwrap_or(&self.retry_delays)
            .iter()
            .map(|d| d.0)
            .collect()
    }

    /// Every topic that must exist: the listed ones, then each processor's retry and DLQ topics.
    pub fn specs(&self) -> Vec<TopicSpec> {
        let mut specs: Vec<TopicSpec> = self
            .topics
            .iter()
            .map(|t| {
                let mut config = BTreeMap::new();
                match t.cleanup {
                    Cleanup::Compact => {
                        config.insert("cleanup.policy".into(), "compact".into());
                    }
                    Cleanup::Delete => {
                        config.insert("cleanup.policy".into(), "delete".into());
                        let retention = t.retention.unwrap_or(self.defaults.retention);
                        config.insert("retention.ms".into(), retention.as_ms());
                    }
                }
                TopicSpec {
                    name: t.name.clone(),
                    partitions: t.partitions.unwrap_or(self.defaults.partitions),
                    replication: t.replication.unwrap_or(self.defaults.replication),
                    config,
                }
            })
            .collect();
        for processor in &self.processors {
            let failure_topic = |name: String, retention: Duration| TopicSpec {
                name,
                partitions: self.defaults.partitions,
                replication: self.defaults.replication,
                config: BTreeMap::from([
                    ("cleanup.policy".to_string(), "delete".to_string()),
                    (
                        "retention.ms".to_string(),
                        retention.as_millis().to_string(),
                    ),
                ]),
            };
            for tier in 1..=self.delays_of(processor).len() {
                specs.push(failure_topic(
                    retry_topic(&processor.name, tier),
                    RETRY_RETENTION,
                ));
            }
            specs.push(failure_topic(dlq_topic(&processor.name), DLQ_RETENTION));
        }
        specs
    }
}

#[cfg(test)]
mod tests;
