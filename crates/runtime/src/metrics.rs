//! Prometheus metrics: one registry per process, the counters every processor reports, and the
//! `/metrics` + `/healthz` HTTP server.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Settings section `metrics:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of the `/metrics` and `/healthz` server of a processor process.
    pub listen: SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// The process's metrics: a registry plus the named events every processor counts.
///
/// Cloning is cheap and shares the same counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Records read from a topic, by processor and topic.
    pub consumed: IntCounterVec,
    /// Records written to a topic, by topic.
    pub produced: IntCounterVec,
    /// Records handed to a retry tier, by processor and tier.
    pub retried: IntCounterVec,
    /// Records handed to the dead-letter topic, by processor and error class.
    pub dead_lettered: IntCounterVec,
    /// Views written (store rows, Redis structures), by processor and view.
    pub materialized: IntCounterVec,
    /// Messages delivered to an outside channel, by processor and channel.
    pub delivered: IntCounterVec,
    /// Time spent handling one record, by processor and topic.
    pub processing_seconds: HistogramVec,
    /// Records not yet processed (high watermark − position), by processor, topic and partition.
    pub consumer_lag: IntGaugeVec,
}

impl Metrics {
    /// Creates a fresh registry with the standard metrics registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition is valid");
            registry
                .register(Box::new(vec.clone()))
                .expect("metric names are unique");
            vec
        };
        let consumed = counter(
            "sixfold_consumed_total",
            "Records read from a topic.",
            &["processor", "topic"],
        );
        let produced = counter(
            "sixfold_produced_total",
            "Records acknowledged by the broker.",
            &["topic"],
        );
        let retried = counter(
            "sixfold_retried_total",
            "Records handed to a retry tier.",
            &["processor", "tier"],
        );
        let dead_lettered = counter(
            "sixfold_dead_lettered_total",
            "Records handed to the dead-letter topic.",
            &["processor", "error_class"],
        );
        let materialized = counter(
            "sixfold_materialized_total",
            "Views written by a processor.",
            &["processor", "view"],
        );
        let delivered = counter(
            "sixfold_delivered_total",
            "Messages delivered to an outside channel.",
            &["processor", "channel"],
        );
        let processing_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sixfold_processing_seconds",
                "Time to handle one record, effects included.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["processor", "topic"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(processing_seconds.clone()))
            .expect("metric names are unique");
        let consumer_lag = IntGaugeVec::new(
            Opts::new("sixfold_consumer_lag", "Records behind the high watermark."),
            &["processor", "topic", "partition"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(consumer_lag.clone()))
            .expect("metric names are unique");
        Self {
            registry,
            consumed,
            produced,
            retried,
            dead_lettered,
            materialized,
            delivered,
            processing_seconds,
            consumer_lag,
        }
    }

    /// The registry, for components that add their own collectors (e.g. HTTP request metrics).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The registry rendered in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Routes `/metrics` and `/healthz`; the ingress merges these into its own router.
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        )
        .route("/healthz", get(healthz))
}

async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
}

/// Serves [`router`] on `listen` until `shutdown` is cancelled.
pub async fn serve(
    listen: SocketAddr,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "metrics server listening");
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters() {
        let metrics = Metrics::new();
        metrics
            .dead_lettered
            .with_label_values(&["urls", "decode"])
            .inc();
        let text = metrics.render();
        assert!(
            text.contains(
                r#"sixfold_dead_lettered_total{error_class="decode",processor="urls"} 1"#
            ),
            "{text}"
        );
    }
}
