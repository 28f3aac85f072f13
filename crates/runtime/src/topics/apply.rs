//! `sixfold topics apply`: make the broker's topics match the catalog through the Admin API.
//!
//! Missing topics are created with their partitions and configuration; a topic with fewer
//! partitions than the catalog gets more (partitions never shrink); everything else is left
//! alone, so a second run changes nothing and says so.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::TopicSpec;
use crate::settings::KafkaSettings;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why applying the catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The admin client failed or the broker refused a request.
    #[error("topics apply: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// librdkafka's reason.
        #[source]
        source: KafkaError,
    },
    /// A topic could not be created or grown.
    #[error("topics apply: {topic}: {code}")]
    Topic {
        /// Topic name.
        topic: String,
        /// Broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// What `apply` did to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The topic did not exist and was created.
    Created,
    /// The topic had fewer partitions; partitions were added.
    PartitionsAdded {
        /// Partitions before.
        from: i32,
        /// Partitions now.
        to: i32,
    },
    /// The topic already matched.
    Unchanged,
    /// The topic needs more partitions but the broker cannot add them (no CreatePartitions
    /// support, as with tansu 0.6); left as is.
    CannotAddPartitions {
        /// Partitions on the broker.
        actual: i32,
        /// Partitions the catalog asks for.
        wanted: i32,
    },
    /// The topic has more partitions than the catalog asks for; left as is.
    MorePartitions {
        /// Partitions on the broker.
        actual: i32,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Created => write!(f, "created"),
            Action::PartitionsAdded { from, to } => write!(f, "partitions {from} -> {to}"),
            Action::Unchanged => write!(f, "unchanged"),
            Action::CannotAddPartitions { actual, wanted } => write!(
                f,
                "has {actual} partitions, catalog wants {wanted}; the broker cannot add partitions"
            ),
            Action::MorePartitions { actual } => {
                write!(
                    f,
                    "has {actual} partitions, more than the catalog; left as is"
                )
            }
        }
    }
}

fn kafka(context: &str) -> impl FnOnce(KafkaError) -> ApplyError + '_ {
    move |source| ApplyError::Kafka {
        context: context.to_string(),
        source,
    }
}

/// Creates or grows the topics in `specs`; returns what happened to each, in order.
pub async fn apply(
    settings: &KafkaSettings,
    specs: &[TopicSpec],
) -> Result<Vec<(String, Action)>, ApplyError> {
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(
        settings
            .client_config()
            .create()
            .map_err(kafka("create admin client"))?,
    );
    let existing = partition_counts(admin.clone()).await?;
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));

    let mut actions = Vec::with_capacity(specs.len());
    let mut to_create = Vec::new();
    let mut to_grow = Vec::new();
    for spec in specs {
        let action = match existing.get(&spec.name) {
            None => {
                to_create.push(spec);
                Action::Created
            }
            Some(&actual) if actual < spec.partitions => {
                to_grow.push(spec);
                Action::PartitionsAdded {
                    from: actual,
                    to: spec.partitions,
                }
            }
            Some(&actual) if actual > spec.partitions => Action::MorePartitions { actual },
            Some(_) => Action::Unchanged,
        };
        actions.push((spec.name.clone(), action));
    }

    let new_topics: Vec<NewTopic<'_>> = to_create
        .iter()
        .map(|spec| {
            spec.config.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    if !new_topics.is_empty() {
        let results = admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(kafka("create topics"))?;
        check(results)?;
    }
    let growths: Vec<NewPartitions<'_>> = to_grow
        .iter()
        .map(|spec| NewPartitions::new(&spec.name, spec.partitions as usize))
        .collect();
    if !growths.is_empty() {
        match admin.create_partitions(&growths, &options).await {
            Ok(results) => check(results)?,
            Err(KafkaError::AdminOp(RDKafkaErrorCode::UnsupportedFeature)) => {
                tracing::warn!(
                    "the broker does not support CreatePartitions; partitions unchanged"
                );
                for (_, action) in &mut actions {
                    if let Action::PartitionsAdded { from, to } = *action {
                        *action = Action::CannotAddPartitions {
                            actual: from,
                            wanted: to,
                        };
                    }
                }
            }
            Err(error) => return Err(kafka("add partitions")(error)),
        }
    }
    Ok(actions)
}

fn check(results: Vec<Result<String, (String, RDKafkaErrorCode)>>) -> Result<(), ApplyError> {
    for result in results {
        match result {
            Ok(_) => {}
            // Another `apply` raced us; the topic is there, which is what we wanted.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(ApplyError::Topic { topic, code }),
        }
    }
    Ok(())
}

/// Partition count of every topic on the broker.
async fn partition_counts(
    admin: Arc<AdminClient<DefaultClientContext>>,
) -> Result<BTreeMap<String, i32>, ApplyError> {
    // Metadata requests block; keep them off the async worker threads.
    tokio::task::spawn_blocking(move || {
        let metadata = admin
            .inner()
            .fetch_metadata(None, ADMIN_TIMEOUT)
            .map_err(kafka("fetch metadata"))?;
        Ok(metadata
            .topics()
            .iter()
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    })
    .await
    .map_err(|e| ApplyError::Kafka {
        context: format!("metadata task: {e}"),
        source: KafkaError::Canceled,
    })?
}
