//! [`Registry`]: the state, and the one writer that changes it through the schemas topic.

use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use apache_avro::Schema;
use sixfold_runtime::settings::KafkaSettings;
use tokio::sync::Mutex;

use crate::RegistrySettings;
use crate::compat::CompatibilityLevel;
use crate::error::{ApiError, RegistryError};
use crate::log::SchemaLog;
use crate::record::{LogRecord, SchemaValue};
use crate::state::{ParsedSchema, Registration, State, VersionSpec};

/// A schema registry backed by a compacted topic.
///
/// Reads are served from memory. Every change goes through one private `write` step: under one
/// async mutex it reads the topic to its end, decides, appends the record, waits for the
/// broker's acknowledgement and only then applies the record to memory and answers.
pub struct Registry {
    state: RwLock<State>,
    log: Mutex<SchemaLog>,
}

impl Registry {
    /// Creates the schemas topic if missing and rebuilds the state by reading it to its end.
    pub async fn open(
        settings: &RegistrySettings,
        kafka: &KafkaSettings,
    ) -> Result<Self, RegistryError> {
        let mut log = SchemaLog::open(&settings.topic, settings.replication_factor, kafka).await?;
        let records = log.read_to_end().await?;
        let mut state = State::default();
        for record in &records {
            state.apply(record);
        }
        tracing::info!(
            topic = %settings.topic,
            records = records.len(),
            subjects = state.subjects().len(),
            "schema registry state rebuilt"
        );
        Ok(Self {
            state: RwLock::new(state),
            log: Mutex::new(log),
        })
    }

    /// The current state, for reads. Never held across an `.await`.
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        // A panic while applying a record cannot leave the maps half-updated in a way later
        // reads would trip over, so a poisoned lock is still usable.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serializes a change: catch up with the topic, let `decide` look at the state and name
    /// the record to write (or none), write it, apply it.
    async fn write<T>(
        &self,
        decide: impl FnOnce(&State) -> Result<(T, Option<LogRecord>), ApiError>,
    ) -> Result<T, ApiError> {
        let mut log = self.log.lock().await;
        // Normally there is nothing new; after a write whose outcome was unknown (timeout) or
        // if another instance wrote, this brings the state back in line with the topic.
        let missed = log.read_to_end().await?;
        self.apply(&missed);
        let (answer, record) = decide(&self.state())?;
        if let Some(record) = record {
            log.append(&record).await?;
            self.apply(std::slice::from_ref(&record));
        }
        Ok(answer)
    }

    fn apply(&self, records: &[LogRecord]) {
        if records.is_empty() {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        for record in records {
            state.apply(record);
        }
    }

    /// Registers `schema` under `subject` and returns its global id (existing or new).
    pub async fn register(&self, subject: &str, schema: ParsedSchema) -> Result<u32, ApiError> {
        // Clients re-register on every start; answer those without taking the writer lock.
        if let Registration::Existing(id) = self.state().plan_registration(subject, &schema) {
            return Ok(id);
        }
        self.write(|state| match state.plan_registration(subject, &schema) {
            Registration::Existing(id) => Ok((id, None)),
            Registration::New {
                id,
                version,
                level,
                previous,
            } => {
                let previous: Vec<&Schema> = previous.iter().map(|s| &s.parsed.schema).collect();
                let problems = level.check(&schema.schema, &previous);
                if !problems.is_empty() {
                    return Err(ApiError::Incompatible {
                        subject: subject.to_owned(),
                        problems,
                    });
                }
                tracing::info!(subject, version, id, "registering schema");
                let value = SchemaValue {
                    subject: subject.to_owned(),
                    version,
                    id,
                    schema: schema.text.clone(),
                    deleted: false,
                    schema_type: None,
                };
                let record = LogRecord::Schema {
                    subject: subject.to_owned(),
                    version,
                    value: Some(value),
                };
                Ok((id, Some(record)))
            }
        })
        .await
    }

    /// Sets the global level (`subject: None`) or a subject's level.
    pub async fn set_level(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), ApiError> {
        self.write(|state| {
            if state.configured_level(subject) == Some(level) {
                return Ok(((), None));
            }
            tracing::info!(subject, %level, "setting compatibility level");
            let record = LogRecord::Config {
                subject: subject.map(str::to_owned),
                level: Some(level),
            };
            Ok(((), Some(record)))
        })
        .await
    }

    /// The problems `schema` would have under `subject`'s level, checked against one version
    /// (`Some`) or against the versions the level names (`None`). Empty means compatible.
    pub fn compatibility_problems(
        &self,
        subject: &str,
        against: Option<VersionSpec>,
        schema: &ParsedSchema,
    ) -> Result<Vec<String>, ApiError> {
        let state = self.state();
        let previous = match against {
            Some(spec) => match state.version(subject, spec) {
                Ok(version) => vec![version],
                // Confluent: nothing registered yet means anything is compatible with "latest".
                Err(ApiError::SubjectNotFound(_)) if spec == VersionSpec::Latest => Vec::new(),
                Err(error) => return Err(error),
            },
            None => state.all_versions(subject).unwrap_or_default(),
        };
        let previous: Vec<&Schema> = previous.iter().map(|v| &v.schema.parsed.schema).collect();
        Ok(state
            .effective_level(subject)
            .check(&schema.schema, &previous))
    }
}
