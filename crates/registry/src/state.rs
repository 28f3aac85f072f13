//! The in-memory model the topic is folded into: schemas by global id, subjects with their
//! versions, and compatibility levels. [`State::apply`] is the only mutation, used alike for
//! replay at start and for a write the broker has just acknowledged; it is idempotent, so
//! reading a record the registry already applied changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apache_avro::Schema;

use crate::compat::CompatibilityLevel;
use crate::error::ApiError;
use crate::record::{LogRecord, SchemaValue};

/// A schema as submitted, parsed, with the identity registrations are compared by.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The text as submitted; answered back unchanged.
    pub text: String,
    /// The parsed schema, for compatibility checks.
    pub schema: Schema,
    /// apache-avro's normalized JSON of the schema: whitespace and key order do not matter,
    /// but docs, defaults, aliases and logical types do (like Confluent's canonical string;
    /// Avro's Parsing Canonical Form would drop defaults and make a changed default look
    /// like the same schema).
    pub identity: String,
}

impl ParsedSchema {
    /// Parses an Avro schema; anything apache-avro rejects is a 42201.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let schema =
            Schema::parse_str(text).map_err(|error| ApiError::InvalidSchema(error.to_string()))?;
        let identity = serde_json::to_string(&schema)
            .map_err(|error| ApiError::InvalidSchema(error.to_string()))?;
        Ok(Self {
            text: text.to_owned(),
            schema,
            identity,
        })
    }
}

/// A registered schema and its global id.
#[derive(Debug)]
pub struct StoredSchema {
    /// The global id.
    pub id: u32,
    /// The schema.
    pub parsed: ParsedSchema,
}

/// One version of a subject, as answered by `GET /subjects/{s}/versions/{v}`.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version within the subject.
    pub version: u32,
    /// The schema and its id.
    pub schema: Arc<StoredSchema>,
}

/// Which version of a subject a request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// `latest` (or `-1`).
    Latest,
    /// A version number.
    Number(u32),
}

impl VersionSpec {
    /// Parses a path segment the way Confluent does: `latest`, `-1`, or 1 ..= 2^31-1.
    pub fn parse(segment: &str) -> Result<Self, ApiError> {
        match segment {
            "latest" | "-1" => Ok(VersionSpec::Latest),
            _ => match segment.parse::<i32>() {
                Ok(n) if n >= 1 => Ok(VersionSpec::Number(n.unsigned_abs())),
                _ => Err(ApiError::InvalidVersion(segment.to_owned())),
            },
        }
    }
}

/// What registering a schema under a subject would do.
#[derive(Debug)]
pub enum Registration {
    /// The subject already has this schema: answer its id, write nothing.
    Existing(u32),
    /// A new version; `id` is reused when another subject has the same schema.
    New {
        /// The id to answer.
        id: u32,
        /// The new version number.
        version: u32,
        /// The level to check against `previous`.
        level: CompatibilityLevel,
        /// The subject's live versions, oldest first.
        previous: Vec<Arc<StoredSchema>>,
    },
}

#[derive(Debug, Clone, Copy)]
struct VersionEntry {
    id: u32,
    deleted: bool,
}

#[derive(Debug, Default)]
struct Subject {
    versions: BTreeMap<u32, VersionEntry>,
    /// Highest version any record named, also skipped ones, so a new version never reuses it.
    highest_version: u32,
    level: Option<CompatibilityLevel>,
}

impl Subject {
    fn live(&self) -> impl DoubleEndedIterator<Item = (u32, u32)> + '_ {
        self.versions
            .iter()
            .filter(|(_, entry)| !entry.deleted)
            .map(|(version, entry)| (*version, entry.id))
    }
}

/// Everything the registry knows, rebuilt from the schemas topic.
#[derive(Debug, Default)]
pub struct State {
    schemas: BTreeMap<u32, Arc<StoredSchema>>,
    by_identity: HashMap<String, u32>,
    subjects: BTreeMap<String, Subject>,
    global_level: Option<CompatibilityLevel>,
    /// Highest id any record named, also skipped ones (e.g. another registry's Protobuf).
    highest_id: u32,
}

impl State {
    /// Folds one record of the topic into the state.
    pub fn apply(&mut self, record: &LogRecord) {
        match record {
            LogRecord::Schema {
                subject,
                version,
                value: Some(value),
            } => self.apply_schema(subject, *version, value),
            LogRecord::Schema {
                subject,
                version,
                value: None,
            } => {
                if let Some(entry) = self.subjects.get_mut(subject) {
                    entry.versions.remove(version);
                }
            }
            LogRecord::Config {
                subject: None,
                level,
            } => self.global_level = *level,
            LogRecord::Config {
                subject: Some(subject),
                level,
            } => self.subjects.entry(subject.clone()).or_default().level = *level,
        }
    }

    fn apply_schema(&mut self, subject: &str, version: u32, value: &SchemaValue) {
        self.highest_id = self.highest_id.max(value.id);
        let entry = self.subjects.entry(subject.to_owned()).or_default();
        entry.highest_version = entry.highest_version.max(version);
        if let Some(kind) = value.schema_type.as_deref().filter(|k| *k != "AVRO") {
            tracing::warn!(
                subject,
                version,
                schema_type = kind,
                "skipping non-Avro schema record"
            );
            return;
        }
        let id = value.id;
        if !self.schemas.contains_key(&id) {
            let parsed = match ParsedSchema::parse(&value.schema) {
                Ok(parsed) => parsed,
                Err(error) => {
                    tracing::warn!(subject, version, id, %error, "skipping unparsable schema record");
                    return;
                }
            };
            self.by_identity
                .entry(parsed.identity.clone())
                .or_insert(id);
            self.schemas
                .insert(id, Arc::new(StoredSchema { id, parsed }));
        }
        let entry = VersionEntry {
            id,
            deleted: value.deleted,
        };
        self.subjects
            .entry(subject.to_owned())
            .or_default()
            .versions
            .insert(version, entry);
    }

    /// Decides what registering `schema` under `subject` would do (without doing it).
    pub fn plan_registration(&self, subject: &str, schema: &ParsedSchema) -> Registration {
        let known_id = self.by_identity.get(&schema.identity).copied();
        let existing = self.subjects.get(subject);
        if let (Some(id), Some(existing)) = (known_id, existing)
            && existing.live().any(|(_, version_id)| version_id == id)
        {
            return Registration::Existing(id);
        }
        let next_id = self.highest_id + 1;
        let version = existing.map_or(0, |s| s.highest_version) + 1;
        let previous = existing
            .map(|s| {
                s.live()
                    .filter_map(|(_, id)| self.schemas.get(&id).cloned())
                    .collect()
            })
            .unwrap_or_default();
        Registration::New {
            id: known_id.unwrap_or(next_id),
            version,
            level: self.effective_level(subject),
            previous,
        }
    }

    /// Subjects with at least one live version, sorted.
    pub fn subjects(&self) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, subject)| subject.live().next().is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn live_subject(&self, subject: &str) -> Result<&Subject, ApiError> {
        self.subjects
            .get(subject)
            .filter(|s| s.live().next().is_some())
            .ok_or_else(|| ApiError::SubjectNotFound(subject.to_owned()))
    }

    /// The live version numbers of a subject, ascending.
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, ApiError> {
        Ok(self.live_subject(subject)?.live().map(|(v, _)| v).collect())
    }

    /// One version of a subject.
    pub fn version(&self, subject: &str, spec: VersionSpec) -> Result<SubjectVersion, ApiError> {
        let entry = self.live_subject(subject)?;
        let (version, id) = match spec {
            VersionSpec::Latest => entry.live().next_back(),
            VersionSpec::Number(n) => entry.live().find(|(v, _)| *v == n),
        }
        .ok_or(match spec {
            VersionSpec::Number(n) => ApiError::VersionNotFound(n),
            VersionSpec::Latest => ApiError::SubjectNotFound(subject.to_owned()),
        })?;
        self.subject_version(subject, version, id)
    }

    fn subject_version(
        &self,
        subject: &str,
        version: u32,
        id: u32,
    ) -> Result<SubjectVersion, ApiError> {
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version,
            schema: self.schema(id)?,
        })
    }

    /// All live versions of a subject, oldest first.
    pub fn all_versions(&self, subject: &str) -> Result<Vec<SubjectVersion>, ApiError> {
        let entry = self.live_subject(subject)?;
        entry
            .live()
            .map(|(version, id)| self.subject_version(subject, version, id))
            .collect()
    }

    /// The version of `subject` whose schema is `schema`, if any (`POST /subjects/{s}`).
    pub fn find(&self, subject: &str, schema: &ParsedSchema) -> Result<SubjectVersion, ApiError> {
        let entry = self.live_subject(subject)?;
        let id = self
            .by_identity
            .get(&schema.identity)
            .ok_or(ApiError::SchemaNotFound)?;
        let (version, id) = entry
            .live()
            .rev()
            .find(|(_, version_id)| version_id == id)
            .ok_or(ApiError::SchemaNotFound)?;
        self.subject_version(subject, version, id)
    }

    /// A schema by global id.
    pub fn schema(&self, id: u32) -> Result<Arc<StoredSchema>, ApiError> {
        self.schemas
            .get(&id)
            .cloned()
            .ok_or(ApiError::SchemaIdNotFound(id))
    }

    /// Every live (subject, version) that uses schema `id`.
    pub fn uses_of(&self, id: u32) -> Result<Vec<(String, u32)>, ApiError> {
        self.schema(id)?;
        Ok(self
            .subjects
            .iter()
            .flat_map(|(name, subject)| {
                subject
                    .live()
                    .filter(move |(_, version_id)| *version_id == id)
                    .map(move |(version, _)| (name.clone(), version))
            })
            .collect())
    }

    /// The global level (BACKWARD unless set).
    pub fn global_level(&self) -> CompatibilityLevel {
        self.global_level.unwrap_or_default()
    }

    /// The level set on the subject itself, if any.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subjects.get(subject).and_then(|s| s.level)
    }

    /// The level set explicitly on the subject, or globally for `None`.
    pub fn configured_level(&self, subject: Option<&str>) -> Option<CompatibilityLevel> {
        match subject {
            Some(subject) => self.subject_level(subject),
            None => self.global_level,
        }
    }

    /// The level that applies to the subject: its own, else the global one.
    pub fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_level(subject)
            .unwrap_or_else(|| self.global_level())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#;

    fn schema_record(subject: &str, version: u32, id: u32, text: &str) -> LogRecord {
        LogRecord::Schema {
            subject: subject.into(),
            version,
            value: Some(SchemaValue {
                subject: subject.into(),
                version,
                id,
                schema: text.into(),
                deleted: false,
                schema_type: None,
            }),
        }
    }

    fn parsed(text: &str) -> ParsedSchema {
        ParsedSchema::parse(text).unwrap()
    }

    #[test]
    fn version_specs_parse_like_confluent() {
        assert_eq!(VersionSpec::parse("latest").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("3").unwrap(), VersionSpec::Number(3));
        for bad in ["0", "-2", "x", "2147483648", ""] {
            assert!(
                matches!(VersionSpec::parse(bad), Err(ApiError::InvalidVersion(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn identity_ignores_layout_but_not_defaults() {
        let spaced = V1.replace(',', " ,\n ");
        assert_eq!(parsed(V1).identity, parsed(&spaced).identity);
        let with_default = V1.replace(r#""type":"int"}"#, r#""type":"int","default":1}"#);
        assert_ne!(parsed(V1).identity, parsed(&with_default).identity);
        assert!(matches!(
            ParsedSchema::parse("{nope"),
            Err(ApiError::InvalidSchema(_))
        ));
    }

    #[test]
    fn registration_plans_reuse_ids_and_count_versions() {
        let mut state = State::default();
        assert!(matches!(
            state.plan_registration("a", &parsed(V1)),
            Registration::New { id: 1, version: 1, ref previous, .. } if previous.is_empty()
        ));
        state.apply(&schema_record("a", 1, 1, V1));
        assert!(matches!(
            state.plan_registration("a", &parsed(V1)),
            Registration::Existing(1)
        ));
        // The same schema under another subject keeps its id but is a new version there.
        assert!(matches!(
            state.plan_registration("b", &parsed(V1)),
            Registration::New {
                id: 1,
                version: 1,
                ..
            }
        ));
        assert!(matches!(
            state.plan_registration("a", &parsed(V2)),
            Registration::New { id: 2, version: 2, ref previous, .. } if previous.len() == 1
        ));
    }

    #[test]
    fn apply_is_idempotent_and_answers_queries() {
        let mut state = State::default();
        for _ in 0..2 {
            state.apply(&schema_record("a", 1, 1, V1));
            state.apply(&schema_record("a", 2, 2, V2));
            state.apply(&schema_record("b", 1, 1, V1));
        }
        assert_eq!(state.subjects(), ["a", "b"]);
        assert_eq!(state.versions("a").unwrap(), [1, 2]);
        let latest = state.version("a", VersionSpec::Latest).unwrap();
        assert_eq!((latest.version, latest.schema.id), (2, 2));
        assert!(matches!(
            state.version("a", VersionSpec::Number(3)),
            Err(ApiError::VersionNotFound(3))
        ));
        assert!(matches!(
            state.versions("zz"),
            Err(ApiError::SubjectNotFound(_))
        ));
        assert_eq!(
            state.uses_of(1).unwrap(),
            [("a".to_owned(), 1), ("b".to_owned(), 1)]
        );
        assert!(matches!(
            state.schema(9),
            Err(ApiError::SchemaIdNotFound(9))
        ));
        assert_eq!(state.find("a", &parsed(V2)).unwrap().version, 2);
        assert!(matches!(
            state.find("b", &parsed(V2)),
            Err(ApiError::SchemaNotFound)
        ));
    }

    #[test]
    fn levels_fall_back_to_global_and_tombstones_remove_versions() {
        let mut state = State::default();
        assert_eq!(state.effective_level("a"), CompatibilityLevel::Backward);
        state.apply(&LogRecord::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        });
        state.apply(&LogRecord::Config {
            subject: Some("a".into()),
            level: Some(CompatibilityLevel::None),
        });
        assert_eq!(state.effective_level("a"), CompatibilityLevel::None);
        assert_eq!(state.effective_level("b"), CompatibilityLevel::Full);
        // A level alone does not make a subject visible.
        assert!(state.subjects().is_empty());
        state.apply(&schema_record("a", 1, 1, V1));
        state.apply(&LogRecord::Schema {
            subject: "a".into(),
            version: 1,
            value: None,
        });
        assert!(state.subjects().is_empty());
        // Ids stay resolvable, and version numbers are not reused.
        assert!(state.schema(1).is_ok());
        assert!(matches!(
            state.plan_registration("a", &parsed(V1)),
            Registration::New {
                id: 1,
                version: 2,
                ..
            }
        ));
    }

    #[test]
    fn unparsable_and_foreign_records_are_skipped() {
        let mut state = State::default();
        state.apply(&schema_record("a", 1, 1, "{broken"));
        let mut proto = schema_record("p", 1, 2, "syntax = \"proto3\";");
        if let LogRecord::Schema {
            value: Some(value), ..
        } = &mut proto
        {
            value.schema_type = Some("PROTOBUF".into());
        }
        state.apply(&proto);
        assert!(state.subjects().is_empty());
        assert!(state.schema(1).is_err() && state.schema(2).is_err());
        // Their ids and versions are still taken.
        assert!(matches!(
            state.plan_registration("p", &parsed(V1)),
            Registration::New {
                id: 3,
                version: 2,
                ..
            }
        ));
    }
}
