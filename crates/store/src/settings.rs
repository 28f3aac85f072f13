//! [`StoreSettings`], the `store:` section of the settings document.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Which adapter [`connect`](crate::connect) opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite file; the default for development and tests.
    #[default]
    Sqlite,
    /// A ScyllaDB (or Cassandra-protocol) cluster; the production choice.
    Scylla,
}

impl Backend {
    /// The name used in settings and logs: `sqlite` or `scylla`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Scylla => "scylla",
        }
    }
}

/// Settings section `store:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Which adapter: `sqlite` (default) or `scylla`.
    pub backend: Backend,
    /// SQLite database file, default `var/sixfold.db`; its directory is created if missing.
    /// `:memory:` gives a private in-memory database (one connection, nothing kept).
    pub sqlite_path: PathBuf,
    /// Scylla contact points, e.g. `["127.0.0.1:9042"]`; the driver discovers the other nodes.
    pub scylla_nodes: Vec<String>,
    /// Scylla keyspace, default `sixfold`: lowercase letters, digits and `_`, at most 48.
    pub keyspace: String,
    /// Replication factor used when the adapter creates the keyspace (with `SimpleStrategy`;
    /// production clusters create it beforehand with `NetworkTopologyStrategy`).
    pub replication_factor: u32,
    /// Per-request timeout: bounds every store call (and SQLite's wait for a file lock).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            sqlite_path: PathBuf::from("var/sixfold.db"),
            scylla_nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "sixfold".into(),
            replication_factor: 1,
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl StoreSettings {
    /// Checks the fields the selected backend uses; [`connect`](crate::connect) calls this.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.request_timeout.is_zero() {
            return Err(StoreError::Settings(
                "request_timeout must be above zero".into(),
            ));
        }
        match self.backend {
            Backend::Sqlite if self.sqlite_path.as_os_str().is_empty() => {
                Err(StoreError::Settings("sqlite_path is empty".into()))
            }
            Backend::Sqlite => Ok(()),
            Backend::Scylla => self.validate_scylla(),
        }
    }

    fn validate_scylla(&self) -> Result<(), StoreError> {
        if self.scylla_nodes.is_empty() {
            return Err(StoreError::Settings("scylla_nodes is empty".into()));
        }
        if self.replication_factor == 0 {
            return Err(StoreError::Settings(
                "replication_factor must be at least 1".into(),
            ));
        }
        // The name is spliced into CQL (a keyspace cannot be a bind marker), so only plain
        // unquoted identifiers are accepted.
        let ks = &self.keyspace;
        let well_formed = (1..=48).contains(&ks.len())
            && ks.starts_with(|c: char| c.is_ascii_lowercase())
            && ks
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(StoreError::Settings(format!(
                "keyspace {ks:?} must be 1-48 of [a-z0-9_], starting with a letter"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_overrides_defaults_and_rejects_unknown_keys() {
        let s: StoreSettings =
            serde_yaml::from_str("backend: scylla\nrequest_timeout: 250ms\nkeyspace: views\n")
                .unwrap();
        assert_eq!(s.backend, Backend::Scylla);
        assert_eq!(s.request_timeout, Duration::from_millis(250));
        assert_eq!(s.keyspace, "views");
        assert_eq!(s.sqlite_path, PathBuf::from("var/sixfold.db"));
        assert!(serde_yaml::from_str::<StoreSettings>("keyspcae: x\n").is_err());
    }

    #[test]
    fn scylla_settings_are_checked() {
        let ok = StoreSettings {
            backend: Backend::Scylla,
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        for bad in ["", "1abc", "Sixfold", "a-b", "x\"; DROP", &"k".repeat(49)] {
            let s = StoreSettings {
                keyspace: bad.into(),
                ..ok.clone()
            };
            assert!(s.validate().is_err(), "{bad:?} accepted");
        }
        let no_nodes = StoreSettings {
            scylla_nodes: vec![],
            ..ok.clone()
        };
        assert!(no_nodes.validate().is_err());
        let rf0 = StoreSettings {
            replication_factor: 0,
            ..ok
        };
        assert!(rf0.validate().is_err());
    }
}
