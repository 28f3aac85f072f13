//! `/readyz`: whether every dependency of the ingress answers right now.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;
use sixfold_runtime::settings::KafkaSettings;
use sixfold_store::Store;

/// Each check gets this long before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The dependencies `/readyz` checks.
pub struct Readiness {
    broker: Arc<BaseConsumer>,
    registry_url: String,
    http: reqwest::Client,
    /// One client per node to try: the single node, or a cluster's seeds.
    redis: Vec<redis::Client>,
    store: Arc<dyn Store>,
}

/// Result of one readiness probe: `ok` plus, per dependency, `"ok"` or the error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadinessReport {
    /// True when every check passed.
    pub ok: bool,
    /// Check name → `"ok"` or the error message.
    pub checks: std::collections::BTreeMap<&'static str, String>,
}

impl Readiness {
    /// Prepares the checks; `redis` holds one client per node to try (Redis answers when any
    /// of them does). Nothing is contacted until [`Readiness::check`].
    pub fn new(
        kafka: &KafkaSettings,
        registry_url: &str,
        redis: Vec<redis::Client>,
        store: Arc<dyn Store>,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let broker: BaseConsumer = kafka.client_config().create()?;
        Ok(Self {
            broker: Arc::new(broker),
            registry_url: registry_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            redis,
            store,
        })
    }

    /// Runs every check concurrently.
    pub async fn check(&self) -> ReadinessReport {
        let (broker, registry, redis, store) = tokio::join!(
            self.check_broker(),
            self.check_registry(),
            self.check_redis(),
            self.check_store()
        );
        let checks = [
            ("broker", broker),
            ("registry", registry),
            ("redis", redis),
            ("store", store),
        ];
        let ok = checks.iter().all(|(_, r)| r.is_ok());
        ReadinessReport {
            ok,
            checks: checks
                .into_iter()
                .map(|(name, r)| (name, r.err().unwrap_or_else(|| "ok".into())))
                .collect(),
        }
    }

    async fn check_broker(&self) -> Result<(), String> {
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || {
            broker
                .fetch_metadata(None, CHECK_TIMEOUT)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn check_registry(&self) -> Result<(), String> {
        let response = self
            .http
            .get(format!("{}/subjects", self.registry_url))
            .timeout(CHECK_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("registry answered {}", response.status()))
        }
    }

    async fn check_redis(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        for client in &self.redis {
            let ping = async {
                let mut connection = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
            };
            match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(_) => errors.push("timed out".into()),
            }
        }
        Err(if errors.is_empty() {
            "no Redis node configured".into()
        } else {
            errors.join("; ")
        })
    }

    async fn check_store(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, self.store.ping()).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}
