//! The console: a web page, served by every ingress, to watch the pipeline and try each system.
//!
//! - `GET /` is the page; `/console/assets/*` its script and style sheet, built into the binary
//!   (plain HTML, CSS and JavaScript; nothing is built at run time).
//! - `GET /console/api/events` streams the pipeline picture ([`pipeline::Pipeline`]) once a
//!   second as Server-Sent Events, computed from this process's Prometheus registry plus the
//!   `/metrics` pages listed in `console.metrics_urls` (other Sixfold processes).
//! - The page's try-it panels call the public API with an API key: under `sixfold run` the
//!   development key, handed to the page by `GET /console/api/config`.
//! - `GET /console/api/dlq/{processor}` and `POST /console/api/dlq/{processor}/redrive` call
//!   the same functions as `sixfold dlq list` and `sixfold dlq redrive`.
//! - `GET /console/api/topics/{topic}/recent` (newest records, decoded) and
//!   `GET /console/api/mailbox` (newest mails of the SMTP stand-in) show what already happened.
//!
//! # Who may open it
//! Requests from loopback always may. Others get 403 unless `console.expose` is set, and then
//! need an API key: `Authorization: Bearer`, or the cookie `GET /console/login?key=…` sets.
//! State-changing requests must come from the page's own origin (an `Origin` header naming
//! another host is refused), so a web site the user visits cannot re-drive a DLQ.

mod pipeline;
mod recent;
mod samples;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::{Deserialize, Serialize};
use sixfold_ingress::auth::bearer_token;
use sixfold_ingress::{ApiError, ApiKeyEntry, ApiKeys, JsonBody, QueryParams, SystemRoutes};
use sixfold_runtime::shutdown::CancellationToken;

pub use pipeline::{Pipeline, Shape};

use crate::Clients;
use crate::settings::Settings;

/// Cookie that carries an API key for the console when it is exposed beyond loopback.
const KEY_COOKIE: &str = "sixfold_console_key";
/// How often the pipeline picture is sent.
const TICK: Duration = Duration::from_secs(1);
/// How long one scrape of another process's `/metrics` may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(800);

const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_JS: &str = include_str!("../../console/console.js");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// Settings section `console:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Serve the console at all.
    pub enabled: bool,
    /// Answer requests from beyond loopback too (they then need an API key).
    pub expose: bool,
    /// `/metrics` URLs of other Sixfold processes (processors run apart from this ingress),
    /// read for the pipeline picture besides this process's own metrics.
    pub metrics_urls: Vec<String>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            expose: false,
            metrics_urls: Vec::new(),
        }
    }
}

/// The console's shared state.
pub struct Console {
    settings: Settings,
    clients: Arc<Clients>,
    keys: ApiKeys,
    dev_key: Option<String>,
    shapes: Vec<Shape>,
    topics: BTreeSet<String>,
    mailbox: PathBuf,
    scraper: reqwest::Client,
    /// The last samples each `metrics_urls` page gave, used while it does not answer: a page
    /// missing for a second would otherwise look like its counters dropping and then jumping.
    scraped: std::sync::Mutex<std::collections::HashMap<String, Vec<samples::Sample>>>,
    shutdown: CancellationToken,
}

impl Console {
    /// The console over this process's clients; `keys` are the API keys the ingress accepts,
    /// `dev_key` the development key the page may use (under `sixfold run` only).
    pub fn new(
        settings: &Settings,
        clients: Arc<Clients>,
        keys: &[ApiKeyEntry],
        dev_key: Option<String>,
        shapes: Vec<Shape>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let topics = crate::load_catalog(settings)?
            .specs()
            .into_iter()
            .map(|spec| spec.name)
            .collect();
        Ok(Arc::new(Self {
            keys: ApiKeys::new(keys).map_err(anyhow::Error::msg)?,
            mailbox: settings.embedded.data_dir.join("mailbox"),
            scraper: reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build()?,
            scraped: Default::default(),
            settings: settings.clone(),
            clients,
            dev_key,
            shapes,
            topics,
            shutdown,
        }))
    }

    /// This process's samples and those of every `console.metrics_urls` page (its last
    /// answer when it does not answer now).
    async fn samples(&self) -> Vec<samples::Sample> {
        let mut all = samples::from_registry(self.clients.metrics.registry());
        for url in &self.settings.console.metrics_urls {
            let fresh = match self.scraper.get(url).send().await {
                Ok(response) => match response.text().await {
                    Ok(text) => Some(samples::parse_text(&text)),
                    Err(error) => {
                        tracing::debug!(%url, %error, "metrics page unreadable");
                        None
                    }
                },
                Err(error) => {
                    tracing::debug!(%url, %error, "metrics page did not answer");
                    None
                }
            };
            let Ok(mut scraped) = self.scraped.lock() else {
                continue;
            };
            if let Some(fresh) = fresh {
                scraped.insert(url.clone(), fresh);
            }
            if let Some(last) = scraped.get(url) {
                all.extend(last.iter().cloned());
            }
        }
        all
    }
}

/// The console's routes, for the ingress (public: the console checks access itself).
pub fn routes(console: Arc<Console>) -> SystemRoutes {
    let guarded = Router::new()
        .route("/", get(index))
        .route("/console/assets/{file}", get(asset))
        .route("/console/api/config", get(config))
        .route("/console/api/events", get(events))
        .route("/console/api/dlq/{processor}", get(dlq_list))
        .route("/console/api/dlq/{processor}/redrive", post(dlq_redrive))
        .route("/console/api/topics/{topic}/recent", get(recent_records))
        .route("/console/api/mailbox", get(mailbox))
        .route_layer(axum::middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console.clone());
    let login = Router::new()
        .route("/console/login", get(login))
        .with_state(console);
    SystemRoutes {
        public: guarded.merge(login),
        protected: Router::new(),
        openapi: utoipa::openapi::OpenApiBuilder::new().build(),
    }
}

/// Whether a request may use the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Yes.
    Allowed,
    /// No: status, error code, message.
    Denied(StatusCode, &'static str, &'static str),
}

/// Decides access from where the request came from and the key it carried (`None`: no key;
/// `Some(valid)`: a key, accepted or not).
pub fn access(from_loopback: bool, expose: bool, key: Option<bool>) -> Access {
    match (from_loopback, expose, key) {
        (true, _, _) => Access::Allowed,
        (false, false, _) => Access::Denied(
            StatusCode::FORBIDDEN,
            "console_local_only",
            "the console answers on loopback only; set console.expose to serve it behind an API key",
        ),
        (false, true, Some(true)) => Access::Allowed,
        (false, true, Some(false)) => {
            Access::Denied(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key")
        }
        (false, true, None) => Access::Denied(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "open /console/login?key=<API key> once, or send Authorization: Bearer <API key>",
        ),
    }
}

/// The API key a request carries: the bearer header, else the console cookie.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    {
        return Some(token.to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == KEY_COOKIE).then(|| value.to_owned())
        })
}

/// Whether a request comes from this machine: the TCP peer is a loopback address, nothing
/// forwarded it (a proxy or sidecar on this host would make every request look local), and
/// its `Host` names this machine or the configured public host (a page on another site whose
/// name was rebound to 127.0.0.1 sends its own host name).
fn is_local(request: &Request, public_url: &str) -> bool {
    let peer_loopback = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|axum::extract::ConnectInfo(peer)| peer.ip().is_loopback());
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|name| request.headers().contains_key(*name));
    peer_loopback && !forwarded && local_host(request.headers(), public_url)
}

/// Whether the `Host` header names a loopback host (`localhost`, `127.0.0.1`, `[::1]`) or the
/// host of `public_url`, with any port.
fn local_host(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = |authority: &str| -> String {
        let authority = authority.trim().to_ascii_lowercase();
        if let Some(rest) = authority.strip_prefix('[') {
            return format!("[{}]", rest.split(']').next().unwrap_or_default());
        }
        authority.split(':').next().unwrap_or_default().to_owned()
    };
    let host = name(host);
    let public = public_url
        .split_once("://")
        .map(|(_, rest)| name(rest.split('/').next().unwrap_or_default()));
    host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || host == "[::1]"
        || public.is_some_and(|public| public == host)
}

/// Whether an `Origin` header (if any) names the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// The key the page's panels use, found by [`guard`].
#[derive(Clone)]
struct PageKey(Option<String>);

async fn guard(State(console): State<Arc<Console>>, mut request: Request, next: Next) -> Response {
    let from_loopback = is_local(&request, &console.settings.ingress.public_url);
    let key = presented_key(request.headers());
    let key_ok = key.as_deref().map(|k| console.keys.holder(k).is_some());
    if let Access::Denied(status, code, message) =
        access(from_loopback, console.settings.console.expose, key_ok)
    {
        return ApiError::new(status, code, message).into_response();
    }
    if request.method() != Method::GET && !same_origin(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "console actions are accepted from the console's own page only",
        )
        .into_response();
    }
    let page_key = if key_ok == Some(true) {
        key
    } else {
        console.dev_key.clone()
    };
    request.extensions_mut().insert(PageKey(page_key));
    next.run(request).await
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
            ),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (content_type, body) = match file.as_str() {
        "console.js" => ("text/javascript; charset=utf-8", CONSOLE_JS),
        "console.css" => ("text/css; charset=utf-8", CONSOLE_CSS),
        _ => return Err(ApiError::not_found(format!("no console asset {file:?}"))),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// What the page needs to know at start.
#[derive(Serialize)]
struct PageConfig {
    /// API key for the try-it panels (None: the page asks for one).
    api_key: Option<String>,
    /// The processors and their input topics, in picture order.
    shapes: Vec<Shape>,
    /// Base URL of short links.
    public_url: String,
    /// Where the SMTP stand-in's mails are, if it writes any.
    mailbox: Option<String>,
}

async fn config(
    State(console): State<Arc<Console>>,
    axum::Extension(PageKey(api_key)): axum::Extension<PageKey>,
) -> axum::Json<PageConfig> {
    axum::Json(PageConfig {
        api_key,
        shapes: console.shapes.clone(),
        public_url: console.settings.ingress.public_url.clone(),
        mailbox: console
            .mailbox
            .exists()
            .then(|| console.mailbox.display().to_string()),
    })
}

/// The pipeline picture every [`TICK`] until the client goes or the process stops.
async fn events(
    State(console): State<Arc<Console>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let tracker = pipeline::Tracker::new(console.shapes.clone());
    let stream = futures::stream::unfold(
        (console, tracker, true),
        |(console, mut tracker, first)| async move {
            if !first {
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = console.shutdown.cancelled() => return None,
                }
            }
            let samples = console.samples().await;
            let picture = tracker.observe(&samples, Instant::now(), now_ms());
            let event = Event::default()
                .event("pipeline")
                .json_data(&picture)
                .unwrap_or_else(|_| Event::default().comment("unserializable picture"));
            Some((Ok(event), (console, tracker, false)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs an operator function that blocks on the broker off the request threads.
async fn blocking<T: Send + 'static>(
    step: &'static str,
    work: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
) -> Result<T, ApiError> {
    let handle = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || handle.block_on(work)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ApiError::dependency_failed(step, format!("{error:#}"))),
        Err(error) => Err(ApiError::dependency_failed(step, error)),
    }
}

fn known_processor(name: &str) -> Result<(), ApiError> {
    crate::check_processor(name).map_err(|e| ApiError::not_found(e.to_string()))
}

/// `?examples=` of the DLQ listing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DlqQuery {
    #[serde(default = "default_examples")]
    examples: usize,
}

fn default_examples() -> usize {
    1
}

async fn dlq_list(
    State(console): State<Arc<Console>>,
    Path(processor): Path<String>,
    QueryParams(query): QueryParams<DlqQuery>,
) -> Result<axum::Json<crate::dlq::DlqSummary>, ApiError> {
    known_processor(&processor)?;
    let examples = query.examples.min(20);
    let summary = blocking("read the dead-letter topic", async move {
        crate::dlq::list(&console.settings, &console.clients, &processor, examples).await
    })
    .await?;
    Ok(axum::Json(summary))
}

/// `POST /console/api/dlq/{processor}/redrive` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveRequest {
    /// Only this error class (all when absent).
    #[serde(default)]
    error_class: Option<String>,
    /// Count only.
    #[serde(default)]
    dry_run: bool,
}

async fn dlq_redrive(
    State(console): State<Arc<Console>>,
    Path(processor): Path<String>,
    JsonBody(body): JsonBody<RedriveRequest>,
) -> Result<axum::Json<crate::dlq::RedriveReport>, ApiError> {
    known_processor(&processor)?;
    let report = blocking("re-drive the dead-letter topic", async move {
        crate::dlq::redrive(
            &console.settings,
            &console.clients,
            &processor,
            body.error_class.as_deref(),
            body.dry_run,
        )
        .await
    })
    .await?;
    Ok(axum::Json(report))
}

/// `?limit=` of recent records and mails.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

fn check_limit(limit: usize) -> Result<usize, ApiError> {
    if (1..=200).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be 1-200",
        ))
    }
}

async fn recent_records(
    State(console): State<Arc<Console>>,
    Path(topic): Path<String>,
    QueryParams(query): QueryParams<LimitQuery>,
) -> Result<axum::Json<Vec<recent::RecentRecord>>, ApiError> {
    let limit = check_limit(query.limit)?;
    if !console.topics.contains(&topic) {
        return Err(ApiError::not_found(format!(
            "{topic:?} is not a topic of topics.yaml"
        )));
    }
    let records = blocking("read the topic", async move {
        recent::records(&console.settings, &console.clients, &topic, limit).await
    })
    .await?;
    Ok(axum::Json(records))
}

async fn mailbox(
    State(console): State<Arc<Console>>,
    QueryParams(query): QueryParams<LimitQuery>,
) -> Result<axum::Json<Vec<recent::Mail>>, ApiError> {
    let limit = check_limit(query.limit)?;
    let mails = blocking("read the mailbox", async move {
        recent::mails(&console.mailbox, limit)
    })
    .await?;
    Ok(axum::Json(mails))
}

/// `?key=` of the login.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginQuery {
    key: String,
}

/// Sets the key cookie and goes to the page.
async fn login(
    State(console): State<Arc<Console>>,
    QueryParams(query): QueryParams<LoginQuery>,
) -> Result<Response, ApiError> {
    if console.keys.holder(&query.key).is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown API key",
        ));
    }
    let cookie = format!(
        "{KEY_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        query.key
    );
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|_| ApiError::bad_request("invalid_key", "the key is not a header value"))?,
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_in_others_only_when_exposed_and_with_a_key() {
        assert_eq!(access(true, false, None), Access::Allowed);
        assert_eq!(access(true, true, Some(false)), Access::Allowed);
        assert!(matches!(
            access(false, false, Some(true)),
            Access::Denied(StatusCode::FORBIDDEN, "console_local_only", _)
        ));
        assert!(matches!(
            access(false, true, None),
            Access::Denied(StatusCode::UNAUTHORIZED, ..)
        ));
        assert!(matches!(
            access(false, true, Some(false)),
            Access::Denied(StatusCode::UNAUTHORIZED, ..)
        ));
        assert_eq!(access(false, true, Some(true)), Access::Allowed);
    }

    #[test]
    fn the_key_comes_from_the_bearer_header_or_the_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sixfold_console_key=k2; b=2"),
        );
        assert_eq!(presented_key(&headers).as_deref(), Some("k2"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k1"));
        assert_eq!(presented_key(&headers).as_deref(), Some("k1"));
    }

    #[test]
    fn only_this_machines_host_names_count_as_local() {
        let with_host = |host: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(host));
            headers
        };
        let public = "https://sixfold.example.com";
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.0.0.2",
        ] {
            assert!(local_host(&with_host(host), public), "{host}");
        }
        assert!(local_host(&with_host("sixfold.example.com"), public));
        // A rebound name, or no Host at all, is not this machine.
        assert!(!local_host(&with_host("evil.example:8080"), public));
        assert!(!local_host(&HeaderMap::new(), public));
    }

    #[test]
    fn actions_from_another_origin_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers), "no Origin: not a browser page");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
    }
}
