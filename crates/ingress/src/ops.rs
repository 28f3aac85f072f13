//! `/healthz`, `/readyz`, `/metrics` and the base of the OpenAPI document.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sixfold_runtime::metrics::Metrics;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::readiness::{Readiness, ReadinessReport};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sixfold", description = "Six large-scale systems as one Kafka pipeline."),
    paths(healthz, readyz, metrics),
    components(schemas(crate::error::ApiError, ReadinessReport)),
    modifiers(&BearerKey)
)]
struct OpsDoc;

/// Declares the `api_key` bearer scheme protected routes refer to.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of the operational endpoints; systems merge theirs into it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpsDoc::openapi()
}

/// Routes `/healthz`, `/readyz` and `/metrics`.
pub fn router(readiness: Arc<Readiness>, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(readiness))
        .route("/metrics", get(self::metrics).with_state(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up")))]
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Whether broker, registry, Redis and store all answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Every dependency answers", body = ReadinessReport),
    (status = 503, description = "Some dependency does not", body = ReadinessReport)))]
async fn readyz(
    State(readiness): State<Arc<Readiness>>,
) -> (StatusCode, axum::Json<ReadinessReport>) {
    let report = readiness.check().await;
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report))
}

/// Prometheus metrics of this process.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
