//! The shortener's HTTP routes: create (API key), redirect and stats (public).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use sixfold_ingress::{ApiError, Caller, JsonBody, SystemRoutes};
use sixfold_runtime::failure::now_ms;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{OpenApi, ToSchema};

use crate::Urls;
use crate::clicks::ClickCounts;
use crate::events::UrlClicked;
use crate::link::{
    Invalid, Link, MAX_EXPIRY_MS, RedirectStatus, could_be_code, validate_alias, validate_long_url,
};

#[derive(OpenApi)]
#[openapi(
    paths(create, redirect, stats),
    components(schemas(CreateUrl, CreatedUrl, UrlStats)),
    tags((name = "urls", description = "URL shortener"))
)]
struct UrlsDoc;

/// `POST /v1/urls` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUrl {
    /// http(s) URL, at most 2048 characters.
    long_url: String,
    /// 4–32 of `[A-Za-z0-9_-]`; a generated 7-character code when absent.
    custom_alias: Option<String>,
    /// RFC 3339 time after which the link answers 410 Gone.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// 301 or 302; the configured default when absent.
    redirect: Option<u16>,
}

/// `201` answer of `POST /v1/urls`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedUrl {
    /// Code or alias.
    pub short_code: String,
    /// Full short URL.
    pub short_url: String,
    /// Target.
    pub long_url: String,
    /// Expiry (RFC 3339), if any.
    pub expires_at: Option<String>,
    /// Redirect status.
    pub redirect: u16,
}

/// `GET /v1/urls/{code}` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UrlStats {
    /// Code or alias.
    pub short_code: String,
    /// Full short URL.
    pub short_url: String,
    /// Target.
    pub long_url: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Expiry (RFC 3339), if any.
    pub expires_at: Option<String>,
    /// Redirect status.
    pub redirect: u16,
    /// Whether the code is a custom alias.
    pub custom_alias: bool,
    /// Clicks counted so far.
    pub clicks_total: u64,
    /// Clicks per UTC day (last 90 days).
    pub clicks_by_day: BTreeMap<String, u64>,
}

/// The routes, for the ingress.
pub fn routes(urls: Arc<Urls>) -> SystemRoutes {
    SystemRoutes {
        public: Router::new()
            .route("/v1/urls/{code}", get(stats))
            .route("/{code}", get(redirect))
            .with_state(urls.clone()),
        protected: Router::new()
            .route("/v1/urls", post(create))
            .with_state(urls),
        openapi: UrlsDoc::openapi(),
    }
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn invalid(error: Invalid) -> ApiError {
    let code = match error {
        Invalid::Url(_) => "invalid_url",
        Invalid::Alias(_) => "invalid_alias",
        Invalid::PastExpiry | Invalid::FarExpiry => "invalid_expiry",
        Invalid::Redirect => "invalid_redirect",
    };
    ApiError::bad_request(code, error.to_string())
}

/// Shorten a URL.
#[utoipa::path(post, path = "/v1/urls", tag = "urls", request_body = CreateUrl,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedUrl),
        (status = 400, description = "Invalid URL, alias, expiry or body", body = ApiError),
        (status = 401, description = "Missing or unknown API key", body = ApiError),
        (status = 409, description = "Alias taken", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 503, description = "Broker, store or Redis unavailable", body = ApiError)))]
async fn create(
    State(urls): State<Arc<Urls>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateUrl>,
) -> Result<(StatusCode, Json<CreatedUrl>), ApiError> {
    let long_url = validate_long_url(&body.long_url).map_err(invalid)?;
    let now = now_ms();
    let expires_at_ms = match &body.expires_at {
        None => None,
        Some(text) => {
            let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
                ApiError::bad_request(
                    "invalid_expiry",
                    format!("expires_at must be RFC 3339: {e}"),
                )
            })?;
            let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
            if ms <= now {
                return Err(invalid(Invalid::PastExpiry));
            }
            if ms - now > MAX_EXPIRY_MS {
                return Err(invalid(Invalid::FarExpiry));
            }
            Some(ms)
        }
    };
    let redirect = match body.redirect {
        None => urls.default_redirect(),
        Some(code) => RedirectStatus::from_code(code).ok_or(invalid(Invalid::Redirect))?,
    };
    if let Some(alias) = &body.custom_alias {
        validate_alias(alias).map_err(invalid)?;
    }
    let code = match &body.custom_alias {
        Some(alias) => alias.clone(),
        None => urls
            .allocator
            .next()
            .await
            .map_err(|e| ApiError::dependency_failed("allocate a short code", e))?,
    };
    let link = Link {
        code,
        long_url: long_url.to_string(),
        created_at_ms: now,
        expires_at_ms,
        redirect,
        custom: body.custom_alias.is_some(),
        created_by: Some(caller.0),
    };
    urls.create(&link).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUrl {
            short_url: urls.short_url(&link.code),
            short_code: link.code,
            long_url: link.long_url,
            expires_at: link.expires_at_ms.map(rfc3339),
            redirect: link.redirect.code(),
        }),
    ))
}

/// Follow a short link.
#[utoipa::path(get, path = "/{code}", tag = "urls",
    params(("code" = String, Path, description = "Short code or alias")),
    responses(
        (status = 301, description = "Permanent redirect to the long URL"),
        (status = 302, description = "Redirect to the long URL"),
        (status = 404, description = "No such link", body = ApiError),
        (status = 410, description = "The link has expired", body = ApiError)))]
async fn redirect(
    State(urls): State<Arc<Urls>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !could_be_code(&code) {
        return Err(ApiError::not_found("no such link"));
    }
    let now = now_ms();
    let link = urls.lookup(&code).await?;
    if link.is_expired(now) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            "this link has expired",
        ));
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    urls.clicks.record(UrlClicked {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: now,
        short_code: link.code.clone(),
        referrer: text(header::REFERER),
        user_agent: text(header::USER_AGENT),
        // The rightmost entry is the one the nearest proxy added; earlier ones are the client's.
        ip: text(header::HeaderName::from_static("x-forwarded-for"))
            .and_then(|v| v.rsplit(',').next().map(|ip| ip.trim().to_owned())),
        country: None,
    });
    let status = StatusCode::from_u16(link.redirect.code()).unwrap_or(StatusCode::FOUND);
    Ok((status, [(header::LOCATION, link.long_url.clone())]).into_response())
}

/// A link and its click counts.
#[utoipa::path(get, path = "/v1/urls/{code}", tag = "urls",
    params(("code" = String, Path, description = "Short code or alias")),
    responses(
        (status = 200, description = "The link", body = UrlStats),
        (status = 404, description = "No such link", body = ApiError)))]
async fn stats(
    State(urls): State<Arc<Urls>>,
    Path(code): Path<String>,
) -> Result<Json<UrlStats>, ApiError> {
    if !could_be_code(&code) {
        return Err(ApiError::not_found("no such link"));
    }
    let link = urls.lookup(&code).await?;
    let counts: ClickCounts = urls.clicks_of(&code).await?;
    Ok(Json(UrlStats {
        short_url: urls.short_url(&link.code),
        short_code: link.code.clone(),
        long_url: link.long_url.clone(),
        created_at: rfc3339(link.created_at_ms),
        expires_at: link.expires_at_ms.map(rfc3339),
        redirect: link.redirect.code(),
        custom_alias: link.custom,
        clicks_total: counts.total,
        clicks_by_day: counts.by_day,
    }))
}
