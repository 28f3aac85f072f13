//! The records of the schemas topic, laid out as Confluent Schema Registry lays out its
//! `_schemas` topic: a JSON key naming what the record is about (so compaction keeps the last
//! record per subject version and per config), and a JSON value (`null` deletes the key).
//!
//! ```text
//! {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
//!     → {"subject":"s","version":1,"id":7,"schema":"…","deleted":false}
//! {"keytype":"CONFIG","subject":null,"magic":0}   → {"compatibilityLevel":"FULL"}   (global)
//! {"keytype":"CONFIG","subject":"s","magic":0}    → {"compatibilityLevel":"NONE"}   (subject)
//! ```
//! Other key types Confluent writes (`NOOP`, `MODE`, `DELETE_SUBJECT`, …) are skipped on replay.

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;

/// One entry of the schemas topic.
#[derive(Debug, Clone, PartialEq)]
pub enum LogRecord {
    /// A version of a subject; `value: None` is a tombstone that removes the version.
    Schema {
        /// The subject the version belongs to.
        subject: String,
        /// The version number within the subject, from 1.
        version: u32,
        /// The registration, or `None` for a tombstone.
        value: Option<SchemaValue>,
    },
    /// A compatibility level; `subject: None` is the global one, `level: None` clears it.
    Config {
        /// The subject, or `None` for the global level.
        subject: Option<String>,
        /// The level, or `None` to remove the setting.
        level: Option<CompatibilityLevel>,
    },
}

/// The value of a `SCHEMA` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaValue {
    /// The subject (repeated from the key, as Confluent does).
    pub subject: String,
    /// The version within the subject (repeated from the key).
    pub version: u32,
    /// The global schema id.
    pub id: u32,
    /// The schema text as it was registered.
    pub schema: String,
    /// Soft-deleted versions stay resolvable by id but are hidden from the subject.
    #[serde(default)]
    pub deleted: bool,
    /// `AVRO` when absent; other types are skipped on replay.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_type: Option<String>,
}

#[derive(Serialize)]
struct SchemaKey<'a> {
    keytype: &'static str,
    subject: &'a str,
    version: u32,
    magic: u8,
}

#[derive(Serialize)]
struct ConfigKey<'a> {
    keytype: &'static str,
    subject: Option<&'a str>,
    magic: u8,
}

#[derive(Deserialize)]
struct AnyKey {
    keytype: String,
    subject: Option<String>,
    version: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct ConfigValue {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<CompatibilityLevel>,
}

/// A record of the topic that could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The key or value is not the JSON expected.
    #[error("malformed schemas-topic record: {0}")]
    Json(#[from] serde_json::Error),
    /// A `SCHEMA` key without a subject or version.
    #[error("schemas-topic key of type {0} lacks subject or version")]
    IncompleteKey(String),
}

impl LogRecord {
    /// The record key: the identity compaction keeps one record for.
    pub fn key(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            LogRecord::Schema {
                subject, version, ..
            } => serde_json::to_vec(&SchemaKey {
                keytype: "SCHEMA",
                subject,
                version: *version,
                magic: 1,
            }),
            LogRecord::Config { subject, .. } => serde_json::to_vec(&ConfigKey {
                keytype: "CONFIG",
                subject: subject.as_deref(),
                magic: 0,
            }),
        }
    }

    /// The record value; `None` is a tombstone.
    pub fn value(&self) -> Result<Option<Vec<u8>>, serde_json::Error> {
        match self {
            LogRecord::Schema { value, .. } => value.as_ref().map(serde_json::to_vec).transpose(),
            LogRecord::Config { level, .. } => level
                .map(|level| {
                    serde_json::to_vec(&ConfigValue {
                        compatibility_level: Some(level),
                    })
                })
                .transpose(),
        }
    }

    /// Reads a record of the topic; `Ok(None)` for key types this registry does not use.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<LogRecord>, DecodeError> {
        let key: AnyKey = serde_json::from_slice(key)?;
        match key.keytype.as_str() {
            "SCHEMA" => {
                let (Some(subject), Some(version)) = (key.subject, key.version) else {
                    return Err(DecodeError::IncompleteKey(key.keytype));
                };
                let value = value
                    .map(serde_json::from_slice::<SchemaValue>)
                    .transpose()?;
                Ok(Some(LogRecord::Schema {
                    subject,
                    version,
                    value,
                }))
            }
            "CONFIG" => {
                let level = match value {
                    Some(value) => {
                        serde_json::from_slice::<ConfigValue>(value)?.compatibility_level
                    }
                    None => None,
                };
                Ok(Some(LogRecord::Config {
                    subject: key.subject,
                    level,
                }))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: &LogRecord) -> LogRecord {
        let key = record.key().unwrap();
        let value = record.value().unwrap();
        LogRecord::decode(&key, value.as_deref()).unwrap().unwrap()
    }

    #[test]
    fn schema_records_use_confluents_layout_and_round_trip() {
        let record = LogRecord::Schema {
            subject: "s".into(),
            version: 2,
            value: Some(SchemaValue {
                subject: "s".into(),
                version: 2,
                id: 7,
                schema: r#""string""#.into(),
                deleted: false,
                schema_type: None,
            }),
        };
        assert_eq!(
            String::from_utf8(record.key().unwrap()).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(record.value().unwrap().unwrap()).unwrap(),
            r#"{"subject":"s","version":2,"id":7,"schema":"\"string\"","deleted":false}"#
        );
        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn config_records_round_trip_for_global_and_subject() {
        for subject in [None, Some("s".to_owned())] {
            let record = LogRecord::Config {
                subject,
                level: Some(CompatibilityLevel::FullTransitive),
            };
            assert_eq!(round_trip(&record), record);
        }
        let global = LogRecord::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        };
        assert_eq!(
            String::from_utf8(global.key().unwrap()).unwrap(),
            r#"{"keytype":"CONFIG","subject":null,"magic":0}"#
        );
        assert_eq!(
            String::from_utf8(global.value().unwrap().unwrap()).unwrap(),
            r#"{"compatibilityLevel":"FULL"}"#
        );
    }

    #[test]
    fn tombstones_decode_and_other_key_types_are_skipped() {
        let key = br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#;
        assert_eq!(
            LogRecord::decode(key, None).unwrap(),
            Some(LogRecord::Schema {
                subject: "s".into(),
                version: 1,
                value: None
            })
        );
        let noop = br#"{"keytype":"NOOP","magic":0}"#;
        assert_eq!(LogRecord::decode(noop, Some(b"{}")).unwrap(), None);
        assert!(LogRecord::decode(b"not json", None).is_err());
        assert!(LogRecord::decode(br#"{"keytype":"SCHEMA","magic":1}"#, None).is_err());
    }

    #[test]
    fn confluent_values_with_extra_fields_decode() {
        let key = br#"{"keytype":"CONFIG","subject":"s","magic":0}"#;
        let value = br#"{"compatibilityLevel":"FORWARD","normalize":false,"alias":null}"#;
        assert_eq!(
            LogRecord::decode(key, Some(value)).unwrap(),
            Some(LogRecord::Config {
                subject: Some("s".into()),
                level: Some(CompatibilityLevel::Forward)
            })
        );
    }
}
