//! [`StoreError`]: what can go wrong in a store call, and whether trying again can help.

use std::time::Duration;

/// Any error a backend reports, boxed so that driver types stay out of this crate's API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store call failed.
///
/// Processors ask [`StoreError::is_transient`] to choose between a retry topic (transient) and
/// the dead-letter topic (permanent). After a transient error the outcome of a write is
/// unknown: it may or may not have been applied, which is why every materialization is
/// idempotent.
///
/// The underlying driver error, when there is one, is the [`source`](std::error::Error::source)
/// and is not repeated in the message, so an error chain prints each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The caller passed a namespace, key or limit the store never accepts.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A value is larger than [`MAX_VALUE_BYTES`](crate::MAX_VALUE_BYTES).
    #[error("value of {size} bytes is larger than the {max}-byte limit")]
    ValueTooLarge {
        /// Size of the rejected value in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },

    /// The backend could not be reached or is temporarily unable to serve: connection refused
    /// or lost, node down or overloaded, server-side timeout, SQLite database busy or locked.
    #[error("{op}: store unavailable")]
    Unavailable {
        /// The operation that failed, e.g. `kv.put`.
        op: &'static str,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },

    /// The call did not finish within `request_timeout`.
    #[error("{op}: no answer within {after:?}")]
    Timeout {
        /// The operation that failed, e.g. `kv.get`.
        op: &'static str,
        /// The timeout that expired.
        after: Duration,
    },

    /// A write broke a constraint of the schema (e.g. a uniqueness rule of a later table).
    #[error("{op}: constraint violated")]
    Constraint {
        /// The operation that failed.
        op: &'static str,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },

    /// A schema migration could not be applied while connecting.
    #[error("schema migration {version} ({name}) failed")]
    Migration {
        /// Version number of the migration.
        version: u32,
        /// Name of the migration, e.g. `kv`.
        name: &'static str,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },

    /// The `store:` settings are unusable (no Scylla nodes, a bad keyspace name, …).
    #[error("invalid store settings: {0}")]
    Settings(String),

    /// Any other backend failure that retrying will not fix: malformed statement, unexpected
    /// result shape, corrupt database file, a panicked worker thread.
    #[error("{op}: store failed")]
    Backend {
        /// The operation that failed.
        op: &'static str,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// True when the same call may succeed later: the backend was unreachable, busy or slow.
    /// False for bad input, constraint violations, bad settings and other permanent failures.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    /// A permanent backend failure of `op` with `source` as its cause.
    pub(crate) fn backend(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            op,
            source: source.into(),
        }
    }

    /// A transient failure of `op` with `source` as its cause.
    pub(crate) fn unavailable(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            op,
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_availability_problems_are_transient() {
        assert!(StoreError::unavailable("kv.get", "refused").is_transient());
        let timeout = StoreError::Timeout {
            op: "kv.get",
            after: Duration::from_secs(1),
        };
        assert!(timeout.is_transient());
        assert!(!StoreError::InvalidInput("empty key".into()).is_transient());
        assert!(!StoreError::ValueTooLarge { size: 2, max: 1 }.is_transient());
        assert!(!StoreError::backend("kv.put", "syntax").is_transient());
        assert!(!StoreError::Settings("no nodes".into()).is_transient());
    }

    #[test]
    fn message_names_the_operation_and_keeps_the_cause_as_source() {
        let e = StoreError::unavailable("kv.put", "database is locked");
        assert_eq!(e.to_string(), "kv.put: store unavailable");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("database is locked"));
    }
}
