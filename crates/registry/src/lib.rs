//! A schema registry that speaks the Confluent Schema Registry REST API — the part of it
//! Sixfold and Confluent's own clients use — for development and tests. Production points
//! [`RegistrySettings::url`] at Confluent Schema Registry, Karapace, Apicurio or Redpanda.
//!
//! # Design
//! - **State lives in a compacted topic** (`_schemas` by default, one partition,
//!   `cleanup.policy=compact`), laid out like Confluent's own `_schemas` topic: one record
//!   per subject version and one per compatibility setting (see [`record`]). The topic is
//!   created through the Admin API when missing.
//! - **Rebuilt on start:** the registry reads the topic from the beginning up to its high
//!   watermark before it answers anything, so ids, versions and levels survive restarts.
//!   Memory holds the folded state; every read is answered from it.
//! - **Single writer:** changes are serialized by one async mutex. A change first reads
//!   whatever the topic gained since (normally nothing), then decides (ids, versions,
//!   compatibility), writes the record with an idempotent `acks=all` producer, waits for the
//!   acknowledgement, and only then applies it and answers. Run one instance per topic:
//!   two writers racing could hand out the same id. Catching up before each write keeps a
//!   restarted or second instance consistent with what was written earlier, and repairs the
//!   state after a write whose outcome was unknown.
//! - **Identity:** a schema is "the same" when apache-avro's normalized JSON of it is equal
//!   (layout and key order do not matter; docs, defaults, aliases do, as in Confluent).
//!   Registering the same schema again answers the existing id; the same schema under
//!   another subject reuses its global id.
//! - **Compatibility** uses apache-avro's schema resolution checks with Confluent's levels
//!   (see [`compat`]); a partial match (unreadable union branches or enum symbols) counts as
//!   incompatible, as in Avro's Java checker.
//!
//! # API subset
//! Answers are `application/vnd.schemaregistry.v1+json`; request bodies are read as JSON
//! whatever their content type (`application/vnd.schemaregistry.v1+json`,
//! `application/json`, `application/vnd.schemaregistry+json`, or curl's default). Errors are
//! `{"error_code": 40401, "message": "Subject 'x' not found."}` with Confluent's codes.
//! - `POST /subjects/{s}/versions` (register), `POST /subjects/{s}` (look up)
//! - `GET /subjects`, `GET /subjects/{s}/versions`, `GET /subjects/{s}/versions/{v|latest}`
//!   and `…/schema`
//! - `GET /schemas/ids/{id}`, `…/schema`, `…/versions`, `…/subjects`; `GET /schemas/types`
//! - `POST /compatibility/subjects/{s}/versions[/{v|latest}]` (`?verbose=true` adds messages)
//! - `GET|PUT /config`, `GET|PUT /config/{s}` (`?defaultToGlobal=true`)
//!
//! Not implemented: deletes, modes (`/mode`), contexts, schema references, Protobuf and JSON
//! Schema, metadata and rule sets (ignored when sent), and leader election.
//!
//! # Layout
//! [`api`] (routes and handlers) → [`registry`] (the writer) → [`state`] (the in-memory
//! model) and [`log`] (the topic), with [`record`] (the topic's records), [`compat`]
//! (levels and checks) and [`error`].

pub mod api;
pub mod compat;
pub mod error;
pub mod log;
pub mod record;
pub mod registry;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sixfold_runtime::settings::KafkaSettings;
use tokio_util::sync::CancellationToken;

pub use api::router;
pub use compat::CompatibilityLevel;
pub use error::{ApiError, RegistryError};
pub use registry::Registry;

/// Settings section `registry:` of the Sixfold settings document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// URL clients (processors, ingress) use to reach a registry. Production points this at
    /// Confluent Schema Registry or Karapace.
    pub url: String,
    /// Address `sixfold registry` listens on.
    pub listen: SocketAddr,
    /// Compacted topic holding the schemas.
    pub topic: String,
    /// Replication factor used when the registry creates its topic (3 or more in production).
    pub replication_factor: i32,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8081".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            topic: "_schemas".to_owned(),
            replication_factor: 1,
        }
    }
}

/// Binds `settings.listen` and serves until `shutdown` is cancelled.
pub async fn run(
    settings: &RegistrySettings,
    kafka: &KafkaSettings,
    shutdown: CancellationToken,
) -> Result<(), RegistryError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| RegistryError::Bind {
            addr: settings.listen,
            source,
        })?;
    serve(listener, settings, kafka, shutdown).await
}

/// Rebuilds the state from the topic, then serves on `listener` until `shutdown` is
/// cancelled. Connections made before the state is rebuilt wait for it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: &RegistrySettings,
    kafka: &KafkaSettings,
    shutdown: CancellationToken,
) -> Result<(), RegistryError> {
    let registry = tokio::select! {
        registry = Registry::open(settings, kafka) => Arc::new(registry?),
        () = shutdown.cancelled() => return Ok(()),
    };
    let address = listener.local_addr().map_err(RegistryError::Serve)?;
    tracing::info!(%address, topic = %settings.topic, "schema registry listening");
    axum::serve(listener, router(registry))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(RegistryError::Serve)?;
    tracing::info!("schema registry stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_confluents_port_and_topic() {
        let settings: RegistrySettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, RegistrySettings::default());
        assert_eq!(settings.listen.port(), 8081);
        assert_eq!(settings.topic, "_schemas");
        assert!(serde_json::from_str::<RegistrySettings>(r#"{"topik":"x"}"#).is_err());
    }
}
