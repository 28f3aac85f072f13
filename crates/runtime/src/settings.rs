//! Typed settings: defaults in code, then a YAML file, then `SIXFOLD__SECTION__KEY`
//! environment variables, each layer overriding the one before.
//!
//! Every library owns the settings section it reads (`KafkaSettings` here, the store's in
//! `sixfold-store`, …); the `sixfold` binary composes them into one document.

use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Prefix of environment overrides; `SIXFOLD__KAFKA__BROKERS` sets `kafka.brokers`.
pub const ENV_PREFIX: &str = "SIXFOLD__";

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings: {0}")]
pub struct SettingsError(#[from] Box<figment::Error>);

/// Checks a system's `namespace` setting, the prefix of its store namespaces and Redis keys:
/// non-empty, of `[A-Za-z0-9_.-]` only (no `:`, `{` or `}`, which the key layouts use).
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if !namespace.is_empty()
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        Ok(())
    } else {
        Err(format!(
            "namespace {namespace:?} must be non-empty [A-Za-z0-9_.-]"
        ))
    }
}

/// Serializes a secret setting in clear text. Settings are serialized only to layer them
/// (defaults under file under environment), so a secret must survive that round trip;
/// `Debug` of a `SecretString` still redacts it. Use as
/// `#[serde(serialize_with = "sixfold_runtime::settings::expose_secret")]`.
pub fn expose_secret<S: serde::Serializer>(
    secret: &secrecy::SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    serializer.serialize_str(secret.expose_secret())
}

/// Loads `T` from its defaults, the optional YAML file at `path`, and the environment.
///
/// Unknown keys are rejected by the `deny_unknown_fields` on each settings struct, so a typo in
/// the file or in an environment variable name is an error rather than a silently ignored value.
pub fn load<T>(path: Option<&Path>) -> Result<T, SettingsError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = path {
        figment = figment.merge(Yaml::file_exact(path));
    }
    figment
        .merge(Env::prefixed(ENV_PREFIX).split("__").lowercase(true))
        .extract()
        .map_err(|e| SettingsError(Box::new(e)))
}

/// How to reach the Kafka-protocol broker, shared by every producer and consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// `client.id` reported to the broker; the process name is appended.
    pub client_id: String,
    /// Producer `linger.ms`: how long to wait to fill a batch.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Producer `compression.type`. `zstd` or `lz4`: the local broker cannot read snappy back.
    pub compression: String,
    /// How long a produce may wait for the broker's acknowledgement before it fails.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// Consumer `fetch.wait.max.ms`: how long the broker may hold a fetch that found too
    /// little data. librdkafka's default (500 ms) costs nothing on Apache Kafka, which answers
    /// as soon as data arrives; the local broker holds the fetch for the whole wait, which adds
    /// up to that much to every hop of a multi-stage pipeline (docs/broker.md).
    #[serde(with = "humantime_serde")]
    pub fetch_wait: Duration,
    /// Consumer `session.timeout.ms`: how long a silent group member keeps its partitions.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Extra librdkafka properties passed as they are (e.g. `security.protocol`, SASL).
    pub extra: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            client_id: "sixfold".into(),
            linger: Duration::from_millis(5),
            compression: "zstd".into(),
            delivery_timeout: Duration::from_secs(30),
            fetch_wait: Duration::from_millis(50),
            session_timeout: Duration::from_secs(10),
            extra: Default::default(),
        }
    }
}

impl KafkaSettings {
    /// A librdkafka configuration with the connection settings common to every client.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            // The local broker and most production ones resolve to IPv4 loopback/hosts; this
            // avoids a slow first connection attempt over IPv6 for `localhost`.
            .set("broker.address.family", "v4");
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Doc {
        kafka: KafkaSettings,
    }

    // figment's `Jail` closure returns figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    #[test]
    fn file_and_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, "kafka:\n  brokers: file:1\n  linger: 20ms\n").unwrap();
        figment::Jail::expect_with(|jail| {
            // The test run itself may set SIXFOLD__ variables (make test points at its broker).
            jail.clear_env();
            jail.set_env("SIXFOLD__KAFKA__CLIENT_ID", "from-env");
            let doc: Doc = load(Some(&path)).map_err(|e| e.to_string())?;
            assert_eq!(doc.kafka.brokers, "file:1");
            assert_eq!(doc.kafka.linger, Duration::from_millis(20));
            assert_eq!(doc.kafka.client_id, "from-env");
            assert_eq!(doc.kafka.compression, "zstd");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, "kafka:\n  brokerz: x\n").unwrap();
        let err = load::<Doc>(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("brokerz"), "{err}");
    }
}
