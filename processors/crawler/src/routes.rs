//! The crawler's HTTP routes: seed a crawl (API key), watch hosts and results.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixfold_ingress::{ApiError, JsonBody, QueryParams, SystemRoutes};
use sixfold_runtime::failure::now_ms;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::Crawler;
use crate::events::{CrawlDiscovered, DiscoverySource};
use crate::normalize::{host_key, normalize};

/// Seeds accepted in one request, at most.
const MAX_SEEDS: usize = 1000;

#[derive(OpenApi)]
#[openapi(
    paths(seed, hosts, pages),
    components(schemas(Seeds, Seeded, Refused, HostStatus)),
    tags((name = "crawler", description = "Web crawler"))
)]
struct CrawlerDoc;

/// The routes, for the ingress.
pub fn routes(crawler: Arc<Crawler>) -> SystemRoutes {
    SystemRoutes {
        public: Router::new(),
        protected: Router::new()
            .route("/v1/crawl/seeds", post(seed))
            .route("/v1/crawl/hosts", get(hosts))
            .route("/v1/crawl/hosts/{host}/pages", get(pages))
            .with_state(crawler),
        openapi: CrawlerDoc::openapi(),
    }
}

/// `POST /v1/crawl/seeds` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Seeds {
    /// Absolute http(s) URLs (1–1000).
    urls: Vec<String>,
    /// The crawl's id; generated when absent.
    crawl_id: Option<String>,
    /// Links followed from a seed, at most (settings default when absent).
    max_depth: Option<u32>,
    /// Domains the crawl may enter (subdomains included); any when empty.
    #[serde(default)]
    allowed_domains: Vec<String>,
}

/// `202` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Seeded {
    /// The crawl.
    pub crawl_id: String,
    /// Seeds produced to `crawl.discovered`.
    pub accepted: usize,
    /// Seeds refused, with why.
    pub refused: Vec<Refused>,
}

/// A refused seed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Refused {
    /// As given.
    pub url: String,
    /// Why.
    pub error: String,
}

/// A host with work.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HostStatus {
    /// Host key.
    pub host: String,
    /// URLs queued.
    pub queued: u64,
    /// Milliseconds until its next fetch is due (0: due now).
    pub next_fetch_in_ms: i64,
    /// Current 429/503 backoff, if any (ms).
    pub backoff_ms: Option<u64>,
}

/// Paging of results.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PagesQuery {
    /// Results per page, 1–1000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous answer.
    after: Option<String>,
}

/// Seed a crawl.
#[utoipa::path(post, path = "/v1/crawl/seeds", tag = "crawler", request_body = Seeds,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Seeds produced to crawl.discovered", body = Seeded),
        (status = 400, description = "No seed, too many, or every seed invalid", body = ApiError),
        (status = 503, description = "Broker unavailable", body = ApiError)))]
async fn seed(
    State(crawler): State<Arc<Crawler>>,
    JsonBody(body): JsonBody<Seeds>,
) -> Result<(StatusCode, Json<Seeded>), ApiError> {
    let seeded = crawler
        .seed(
            body.urls,
            body.crawl_id,
            body.max_depth,
            body.allowed_domains,
        )
        .await
        .map_err(|e| match e {
            SeedError::Invalid(message) => ApiError::bad_request("invalid_seeds", message),
            SeedError::Produce(error) => {
                tracing::warn!(%error, "seeds not produced");
                ApiError::unavailable("could not record the seeds; try again shortly")
            }
        })?;
    Ok((StatusCode::ACCEPTED, Json(seeded)))
}

/// Why seeds were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// No valid seed, too many, or a bad crawl id.
    #[error("{0}")]
    Invalid(String),
    /// The broker did not take them.
    #[error("produce: {0}")]
    Produce(String),
}

impl Crawler {
    /// Normalizes `urls` and produces each valid one to `crawl.discovered` (depth 0); the
    /// crawl id is generated when absent.
    pub async fn seed(
        &self,
        urls: Vec<String>,
        crawl_id: Option<String>,
        max_depth: Option<u32>,
        allowed_domains: Vec<String>,
    ) -> Result<Seeded, SeedError> {
        if urls.is_empty() || urls.len() > MAX_SEEDS {
            return Err(SeedError::Invalid(format!("give 1-{MAX_SEEDS} urls")));
        }
        let crawl_id = crawl_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        if crawl_id.is_empty() || crawl_id.len() > 64 {
            return Err(SeedError::Invalid(
                "crawl_id must be 1-64 characters".into(),
            ));
        }
        let mut refused = Vec::new();
        let mut events = Vec::new();
        for raw in &urls {
            match normalize(raw, None, &self.normalize) {
                Ok(url) => events.push(CrawlDiscovered {
                    event_id: uuid::Uuid::new_v4().to_string(),
                    occurred_at: now_ms(),
                    host: host_key(&url),
                    url: url.to_string(),
                    crawl_id: crawl_id.clone(),
                    depth: 0,
                    priority: 0,
                    source: DiscoverySource::Seed,
                    discovered_from: None,
                    max_depth: max_depth.map(|d| d.min(i32::MAX as u32) as i32),
                    allowed_domains: allowed_domains.clone(),
                }),
                Err(error) => refused.push(Refused {
                    url: raw.clone(),
                    error: error.to_string(),
                }),
            }
        }
        if events.is_empty() {
            return Err(SeedError::Invalid(format!(
                "no valid seed: {}",
                refused[0].error
            )));
        }
        let topic = &self.settings.discovered_topic;
        futures::future::try_join_all(
            events
                .iter()
                .map(|e| self.produce(topic, &self.discovered_schema, &e.host, e)),
        )
        .await
        .map_err(SeedError::Produce)?;
        Ok(Seeded {
            crawl_id,
            accepted: events.len(),
            refused,
        })
    }
}

/// Hosts with queued work.
#[utoipa::path(get, path = "/v1/crawl/hosts", tag = "crawler",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Hosts with work", body = [HostStatus]),
        (status = 503, description = "Store unavailable", body = ApiError)))]
async fn hosts(State(crawler): State<Arc<Crawler>>) -> Result<Json<Vec<HostStatus>>, ApiError> {
    let unavailable = |e: sixfold_store::StoreError| {
        tracing::warn!(error = %e, "crawl hosts not read");
        ApiError::unavailable("could not read the frontier; try again shortly")
    };
    let now = now_ms();
    let mut out = Vec::new();
    for (host, state) in crawler.frontier.active_hosts().await.map_err(unavailable)? {
        out.push(HostStatus {
            queued: crawler.frontier.queued(&host).await.map_err(unavailable)?,
            next_fetch_in_ms: (state.next_fetch_ms - now).max(0),
            backoff_ms: state.backoff_ms,
            host,
        });
    }
    Ok(Json(out))
}

/// Fetch results of a host (`crawl.fetched` records, by URL hash).
#[utoipa::path(get, path = "/v1/crawl/hosts/{host}/pages", tag = "crawler",
    params(("host" = String, Path, description = "Host key, e.g. example.com or 127.0.0.1:8000"), PagesQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "{pages: [...], next}"),
        (status = 400, description = "Invalid limit", body = ApiError),
        (status = 503, description = "Store unavailable", body = ApiError)))]
async fn pages(
    State(crawler): State<Arc<Crawler>>,
    Path(host): Path<String>,
    QueryParams(query): QueryParams<PagesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > sixfold_store::MAX_LIST_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be 1-1000",
        ));
    }
    let rows = crawler
        .frontier
        .pages(&host, query.after.as_deref(), limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "crawl pages not read");
            ApiError::unavailable("could not read the pages; try again shortly")
        })?;
    let next = (rows.len() == limit).then(|| rows[rows.len() - 1].0.clone());
    let pages: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|(_, bytes)| serde_json::from_slice(bytes).ok())
        .collect();
    Ok(Json(
        serde_json::json!({"host": host, "pages": pages, "next": next}),
    ))
}
