//! `sixfold ingress`: the thin HTTP front door, and the HTTP plumbing every system's routes use.
//!
//! The ingress validates a request, produces an event (waiting for the broker's
//! acknowledgement) and answers; processors do the materializing. The few reads that must be
//! synchronous (a redirect, a timeline page) read views directly.
//!
//! # What every route gets
//! - JSON errors ([`ApiError`]): `{"error": "<code>", "message": "…"}` with the right status;
//!   [`JsonBody`] turns malformed or unknown-field bodies into 400, oversize ones into 413
//!   (`ingress.max_body_bytes`), and unknown routes answer a JSON 404.
//! - API keys ([`auth`]): a system's *protected* routes require `Authorization: Bearer <key>`,
//!   checked against SHA-256 digests in settings; public routes (redirects) need none.
//! - Metrics ([`http_metrics`]): `sixfold_http_requests_total` and
//!   `sixfold_http_request_seconds` by route template, method and status.
//! - `/openapi.json`: OpenAPI 3, generated from the handlers' annotations (`utoipa`), merged
//!   across systems.
//!
//! # Operational endpoints
//! `GET /healthz` (the process is up), `GET /readyz` (broker, registry, Redis and store answer;
//! 503 naming the failing checks), `GET /metrics` (Prometheus text format).

pub mod auth;
pub mod error;
pub mod http_metrics;
mod ops;
pub mod ratelimit;
mod readiness;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use serde::{Deserialize, Serialize};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::metrics::Metrics;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;

pub use auth::{ApiKeyEntry, ApiKeys, Caller};
pub use error::{ApiError, JsonBody, QueryParams};
pub use readiness::{Readiness, ReadinessReport};

/// Settings section `ingress:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngressSettings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Base URL clients reach the ingress at (used to build short URLs and links).
    pub public_url: String,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Keys accepted on protected routes, as SHA-256 digests.
    pub api_keys: Vec<ApiKeyEntry>,
    /// Take the client address for rate limiting from the rightmost `X-Forwarded-For` entry
    /// (only behind one proxy that appends it); otherwise the TCP peer address is used.
    pub trust_forwarded_for: bool,
}

impl Default for IngressSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            api_keys: Vec::new(),
            trust_forwarded_for: false,
        }
    }
}

/// One system's HTTP surface.
pub struct SystemRoutes {
    /// Routes anyone may call (e.g. redirects).
    pub public: Router,
    /// Routes that require an API key (every write).
    pub protected: Router,
    /// The OpenAPI description of both.
    pub openapi: OpenApi,
}

/// Why the ingress could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// An API key entry in settings is malformed.
    #[error("ingress settings: {0}")]
    Settings(String),
    /// A metric could not be registered.
    #[error("ingress metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Assembles the whole router: operational endpoints, each system's routes with API-key checks
/// on the protected ones, rate limiting of every route, body limit, request metrics, JSON 404s
/// and `/openapi.json`.
pub fn app(
    settings: &IngressSettings,
    readiness: Arc<Readiness>,
    metrics: Metrics,
    limiter: RateLimiter,
    systems: Vec<SystemRoutes>,
) -> Result<Router, IngressError> {
    let keys = Arc::new(ApiKeys::new(&settings.api_keys).map_err(IngressError::Settings)?);
    let http_metrics = http_metrics::HttpMetrics::register(metrics.registry())?;
    let mut openapi = ops::openapi();
    let mut router = ops::router(readiness, metrics);
    for system in systems {
        openapi.merge(system.openapi);
        router = router.merge(system.public);
        // A system may have no protected routes (the console checks access itself).
        if system.protected.has_routes() {
            router = router.merge(system.protected.route_layer(
                axum::middleware::from_fn_with_state(keys.clone(), auth::require_api_key),
            ));
        }
    }
    let openapi = Arc::new(openapi);
    Ok(router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(error::fallback)
        .layer(axum::middleware::from_fn_with_state(
            ratelimit::LimiterState {
                limiter,
                trust_forwarded_for: settings.trust_forwarded_for,
            },
            ratelimit::enforce,
        ))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            http_metrics::record,
        )))
}

/// Serves `app` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "ingress listening");
    // The peer address is what `ip` rate-limit rules key on.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}
