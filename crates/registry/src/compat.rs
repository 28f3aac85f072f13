//! Compatibility levels and the checks behind them, with Confluent's meaning:
//! BACKWARD means consumers using the new schema can read data written with the previous one,
//! FORWARD means consumers still on the previous schema can read data written with the new one,
//! FULL means both, and the `_TRANSITIVE` variants check against every version of the subject
//! instead of only the latest.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A subject's (or the global) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompatibilityLevel {
    /// No check at all.
    None,
    /// The new schema can read data written with the latest version (Confluent's default).
    #[default]
    Backward,
    /// The new schema can read data written with every version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

/// The message Confluent answers when a level name is not one of the seven.
pub const INVALID_LEVEL_MESSAGE: &str = "Invalid compatibility level. Valid values are none, \
     backward, forward, full, backward_transitive, forward_transitive, and full_transitive";

impl CompatibilityLevel {
    /// Every level, in the order Confluent documents them.
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    /// The upper-case name used on the wire (`"BACKWARD_TRANSITIVE"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// Does the new schema have to read data written with the earlier ones?
    fn backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// Do the earlier schemas have to read data written with the new one?
    fn forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// Checks `new` against `previous` (oldest first) as this level demands and returns one
    /// message per problem found; an empty list means compatible.
    ///
    /// Non-transitive levels look at the last element of `previous` only, as Confluent does.
    pub fn check(self, new: &Schema, previous: &[&Schema]) -> Vec<String> {
        let against: &[&Schema] = if self.transitive() {
            previous
        } else {
            previous.last().map(std::slice::from_ref).unwrap_or(&[])
        };
        let mut problems = Vec::new();
        for old in against {
            if self.backward()
                && let Some(problem) = can_read(old, new)
            {
                problems.push(format!(
                    "new schema cannot read data written with an earlier one: {problem}"
                ));
            }
            if self.forward()
                && let Some(problem) = can_read(new, old)
            {
                problems.push(format!(
                    "an earlier schema cannot read data written with the new one: {problem}"
                ));
            }
        }
        problems
    }
}

/// `None` when `reader` can resolve everything written with `writer`, else why not.
///
/// apache-avro's `Partial` (some union branches or enum symbols unreadable) counts as
/// incompatible: Avro's Java checker, which Confluent uses, rejects those cases too.
fn can_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "only partially compatible: some union branches or enum symbols of the writer \
             cannot be read"
                .to_owned(),
        ),
        Err(error) => Some(error.to_string()),
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is not one of the seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{INVALID_LEVEL_MESSAGE}")]
pub struct InvalidLevel;

impl FromStr for CompatibilityLevel {
    type Err = InvalidLevel;

    /// Case-insensitive, like Confluent (`"full"` and `"FULL"` both work).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(InvalidLevel)
    }
}

impl Serialize for CompatibilityLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CompatibilityLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","namespace":"t","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn level_names_round_trip_and_parse_case_insensitively() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().parse::<CompatibilityLevel>(), Ok(level));
            assert_eq!(level.as_str().to_lowercase().parse(), Ok(level));
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{level}\""));
            assert_eq!(
                serde_json::from_str::<CompatibilityLevel>(&json).unwrap(),
                level
            );
        }
        assert_eq!("sideways".parse::<CompatibilityLevel>(), Err(InvalidLevel));
        assert!(serde_json::from_str::<CompatibilityLevel>("\"sideways\"").is_err());
        assert_eq!(CompatibilityLevel::default(), CompatibilityLevel::Backward);
    }

    #[test]
    fn adding_a_field_with_a_default_is_fully_compatible() {
        let v1 = record(r#"{"name":"a","type":"int"}"#);
        let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#);
        for level in CompatibilityLevel::ALL {
            assert!(level.check(&v2, &[&v1]).is_empty(), "{level}");
        }
    }

    #[test]
    fn adding_a_field_without_default_breaks_backward_only() {
        let v1 = record(r#"{"name":"a","type":"int"}"#);
        let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#);
        assert_eq!(CompatibilityLevel::Backward.check(&v2, &[&v1]).len(), 1);
        assert_eq!(CompatibilityLevel::Full.check(&v2, &[&v1]).len(), 1);
        assert!(CompatibilityLevel::Forward.check(&v2, &[&v1]).is_empty());
        assert!(CompatibilityLevel::None.check(&v2, &[&v1]).is_empty());
    }

    #[test]
    fn removing_a_field_without_default_breaks_forward_only() {
        let v1 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#);
        let v2 = record(r#"{"name":"a","type":"int"}"#);
        assert!(CompatibilityLevel::Backward.check(&v2, &[&v1]).is_empty());
        assert_eq!(CompatibilityLevel::Forward.check(&v2, &[&v1]).len(), 1);
    }

    #[test]
    fn transitive_levels_check_every_version() {
        // v1 has b without default; v2 drops b; v3 adds b back as a long without default.
        let v1 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#);
        let v2 = record(r#"{"name":"a","type":"int"}"#);
        let v3 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"long","default":0}"#);
        // Against the latest (v2) alone, v3 is fine; v1's string b cannot be read as a long.
        assert!(
            CompatibilityLevel::Backward
                .check(&v3, &[&v1, &v2])
                .is_empty()
        );
        assert_eq!(
            CompatibilityLevel::BackwardTransitive
                .check(&v3, &[&v1, &v2])
                .len(),
            1
        );
    }

    #[test]
    fn partial_compatibility_counts_as_incompatible() {
        let writer =
            Schema::parse_str(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#).unwrap();
        let reader = Schema::parse_str(r#"{"type":"enum","name":"E","symbols":["A"]}"#).unwrap();
        assert_eq!(
            CompatibilityLevel::Backward
                .check(&reader, &[&writer])
                .len(),
            1
        );
    }

    #[test]
    fn nothing_to_check_against_is_compatible() {
        let v1 = record(r#"{"name":"a","type":"int"}"#);
        assert!(
            CompatibilityLevel::FullTransitive
                .check(&v1, &[])
                .is_empty()
        );
    }
}
