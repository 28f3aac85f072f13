//! `sixfold ingress`: the thin HTTP front door.
//!
//! It validates requests, produces events (waiting for the broker's acknowledgement) and
//! answers; processors do the materializing. Today it serves the operational endpoints every
//! deployment needs; each system adds its routes here as it lands:
//!
//! - `GET /healthz` — the process is up (no dependencies checked).
//! - `GET /readyz` — broker, schema registry, Redis and store all answer; 503 with the failing
//!   checks otherwise, so a load balancer stops sending traffic.
//! - `GET /metrics` — Prometheus text format, the process's whole registry.

mod readiness;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};
use sixfold_runtime::metrics::{self, Metrics};
use tokio_util::sync::CancellationToken;

pub use readiness::{Readiness, ReadinessReport};

/// Settings section `ingress:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngressSettings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
}

impl Default for IngressSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// The ingress's whole router.
pub fn router(readiness: Arc<Readiness>, metrics: Metrics) -> Router {
    metrics::router(metrics).merge(readiness::router(readiness))
}

/// Serves the ingress on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    readiness: Arc<Readiness>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "ingress listening");
    axum::serve(listener, router(readiness, metrics))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
