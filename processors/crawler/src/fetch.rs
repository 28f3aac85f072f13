//! The HTTP fetcher: one GET per call, with the crawler's safety limits built in.
//!
//! [`Fetcher::fetch`] never fails: every way a fetch can end, from a refused address to a body
//! that is too large, is an [`Outcome`] in the returned [`FetchResult`], so the caller records
//! it like any other result. What the fetcher enforces:
//! - only public addresses ([`is_public`]) unless the settings allow more, checked for the
//!   addresses a host name resolves to and for IP literal hosts (see `address`);
//! - redirects followed only within one origin, at most [`FetchSettings::max_redirects`]; any
//!   other redirect is returned as [`Outcome::Redirect`] for the frontier to judge. robots.txt
//!   follows redirects across hosts (see `redirect`);
//! - a connect timeout and a deadline for the whole request, body included;
//! - a body read only when the status is 2xx and the content type is one the caller can use,
//!   and never more than [`FetchSettings::max_body_bytes`] of it.
//!
//! No proxy is used, even if the environment names one: a proxy would resolve host names
//! itself, out of reach of the address check.

mod address;
mod body;
mod redirect;
#[cfg(test)]
mod tests;

use std::error::Error as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Client, Response};
use url::Url;

pub use address::is_public;
use address::{AddressRule, BlockedAddress, PublicResolver};
use body::{BodyRead, read_body};
use redirect::RedirectScope;

/// How the fetcher connects, identifies itself and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// The `User-Agent` header; its first word is the product token sites name in robots.txt.
    pub user_agent: String,
    /// Longest wait for a TCP connection (per address tried).
    pub connect_timeout: Duration,
    /// Deadline for a whole request: resolution, connection, redirects and body.
    pub timeout: Duration,
    /// Largest body read, after decompression. Pages and sitemaps over it are
    /// [`Outcome::TooLarge`]; robots.txt is cut at it instead.
    pub max_body_bytes: usize,
    /// Most redirects followed in one fetch.
    pub max_redirects: usize,
    /// Redirect hops a page fetch follows in place (same origin only). 0, the default, hands
    /// every page redirect on as a new URL instead ([`Outcome::Redirect`]), so that the
    /// target gets its own politeness delay, robots.txt check and dedup; robots.txt fetches
    /// still follow up to `max_redirects` (RFC 9309 asks for five).
    pub page_redirects: usize,
    /// Connect to any address, loopback and private ones included. For tests and for crawls
    /// of a private network on purpose; never for the open web.
    pub allow_private_addresses: bool,
    /// Non-public addresses allowed anyway, e.g. one internal site the crawler must reach.
    pub allowed_addresses: Vec<IpAddr>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            user_agent: "sixfold-crawler/0.1 (+https://github.com/sixfold)".to_owned(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            max_body_bytes: 5 * 1024 * 1024,
            max_redirects: 5,
            page_redirects: 0,
            allow_private_addresses: false,
            allowed_addresses: Vec::new(),
        }
    }
}

/// What the caller will do with the body, which decides the content types worth reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// A page to extract links from: `text/html` or `application/xhtml+xml`.
    Html,
    /// A sitemap: `application/xml`, `text/xml` or `text/plain` (sitemaps may be plain lists
    /// of URLs).
    Sitemap,
    /// A robots.txt: any content type, and a body over the limit is cut rather than refused.
    Robots,
}

impl Accept {
    /// Whether a response with this `Content-Type` header is read. A missing header is
    /// accepted for robots.txt only: the crawler does not sniff content.
    fn accepts(self, content_type: Option<&str>) -> bool {
        let essence = content_type.map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        match self {
            Accept::Robots => true,
            Accept::Html => matches!(
                essence.as_deref(),
                Some("text/html" | "application/xhtml+xml")
            ),
            Accept::Sitemap => matches!(
                essence.as_deref(),
                Some("application/xml" | "text/xml" | "text/plain")
            ),
        }
    }
}

/// How a fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx with an accepted content type; the body is in [`FetchResult::body`].
    Fetched,
    /// A final status that is neither 2xx nor a redirect (4xx, 5xx, or a 3xx without a
    /// usable `Location`).
    HttpError,
    /// The host is, or resolves only to, addresses the fetcher may not connect to. Nothing
    /// was sent.
    BlockedAddress,
    /// The body is larger than [`FetchSettings::max_body_bytes`].
    TooLarge,
    /// 2xx, but a content type the caller cannot use; the body was not read.
    UnsupportedContentType,
    /// The connection or the request took too long.
    Timeout,
    /// Resolution, connection, TLS or protocol failure; see [`FetchResult::error`].
    NetworkError,
    /// A redirect the fetcher did not follow (another origin, or over the limit); the target
    /// is [`FetchResult::redirect_to`].
    Redirect,
}

/// Everything the crawler records about one fetch.
#[derive(Debug, Clone)]
pub struct FetchResult {
    /// The URL asked for.
    pub url: Url,
    /// The URL of the last response, after the redirects that were followed.
    pub final_url: Url,
    /// The status of the last response; `None` if no response arrived.
    pub status: Option<u16>,
    /// The last response's `Retry-After` header, unparsed (seconds or an HTTP date).
    pub headers_retry_after: Option<String>,
    /// The last response's `Content-Type` header.
    pub content_type: Option<String>,
    /// The decoded body, for [`Outcome::Fetched`] only.
    pub body: Option<Bytes>,
    /// From sending the request to the last response's headers, redirects included. When no
    /// response arrived, the time until the fetch gave up, so that a slow host still slows
    /// the crawler down.
    pub ttfb: Duration,
    /// From sending the request to the end of the body.
    pub elapsed: Duration,
    /// How the fetch ended.
    pub outcome: Outcome,
    /// For [`Outcome::Redirect`]: the `Location` not followed, resolved against
    /// [`FetchResult::final_url`].
    pub redirect_to: Option<Url>,
    /// What went wrong, for outcomes other than [`Outcome::Fetched`], [`Outcome::HttpError`]
    /// and [`Outcome::Redirect`] (whose status says it).
    pub error: Option<String>,
}

/// The HTTP client could not be built (for instance a user agent that is not a valid
/// header value, or no TLS root certificates).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the crawler's HTTP client")]
pub struct FetchSetupError(#[source] reqwest::Error);

/// Fetches URLs under [`FetchSettings`]. Cheap to clone: clones share connection pools.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// Follows same-origin redirects only.
    pages: Client,
    /// Follows redirects across hosts, for robots.txt.
    robots: Client,
    rule: Arc<AddressRule>,
    max_body_bytes: usize,
}

impl Fetcher {
    /// A fetcher with `settings`.
    pub fn new(settings: FetchSettings) -> Result<Self, FetchSetupError> {
        let rule = Arc::new(AddressRule {
            allow_private: settings.allow_private_addresses,
            allowed: settings.allowed_addresses.clone(),
        });
        let client = |scope, max_redirects| {
            Client::builder()
                .user_agent(settings.user_agent.as_str())
                .connect_timeout(settings.connect_timeout)
                .timeout(settings.timeout)
                .redirect(redirect::policy(scope, max_redirects, Arc::clone(&rule)))
                .dns_resolver(PublicResolver {
                    rule: Arc::clone(&rule),
                })
                .no_proxy()
                .build()
                .map_err(FetchSetupError)
        };
        Ok(Self {
            pages: client(RedirectScope::SameOrigin, settings.page_redirects)?,
            robots: client(RedirectScope::AnyHost, settings.max_redirects)?,
            rule,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    /// GETs `url` and reads as much of the response as `accept` asks for. Never fails: see
    /// [`FetchResult::outcome`].
    pub async fn fetch(&self, url: &Url, accept: Accept) -> FetchResult {
        let started = Instant::now();
        let mut result = FetchResult {
            url: url.clone(),
            final_url: url.clone(),
            status: None,
            headers_retry_after: None,
            content_type: None,
            body: None,
            ttfb: Duration::ZERO,
            elapsed: Duration::ZERO,
            outcome: Outcome::NetworkError,
            redirect_to: None,
            error: None,
        };
        self.fetch_into(&mut result, accept, started).await;
        result.elapsed = started.elapsed();
        tracing::debug!(
            url = %result.url,
            outcome = ?result.outcome,
            status = result.status,
            ttfb_ms = result.ttfb.as_millis() as u64,
            elapsed_ms = result.elapsed.as_millis() as u64,
            error = result.error.as_deref(),
            "fetched"
        );
        result
    }

    async fn fetch_into(&self, result: &mut FetchResult, accept: Accept, started: Instant) {
        // hyper connects to IP literal hosts without asking the resolver, so check them here.
        // Redirects need no check: pages stay on this origin, and robots.txt redirects are
        // checked by their policy.
        if let Some(ip) = self.rule.refuses_host(&result.url) {
            let blocked = BlockedAddress {
                host: ip.to_string(),
                refused: vec![ip],
            };
            result.outcome = Outcome::BlockedAddress;
            result.error = Some(blocked.to_string());
            return;
        }
        let client = match accept {
            Accept::Robots => &self.robots,
            Accept::Html | Accept::Sitemap => &self.pages,
        };
        let response = client.get(result.url.clone()).send().await;
        result.ttfb = started.elapsed();
        let response = match response {
            Ok(response) => response,
            Err(error) => return fail(result, &error),
        };
        read_head(result, &response);
        let status = response.status();
        if status.is_redirection() {
            result.redirect_to = response
                .headers()
                .get(LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| result.final_url.join(location).ok());
            result.outcome = match result.redirect_to {
                Some(_) => Outcome::Redirect,
                None => Outcome::HttpError,
            };
        } else if !status.is_success() {
            result.outcome = Outcome::HttpError;
        } else if !accept.accepts(result.content_type.as_deref()) {
            result.outcome = Outcome::UnsupportedContentType;
            result.error = Some(format!(
                "content type {:?} is not read for {accept:?}",
                result.content_type.as_deref().unwrap_or("(none)")
            ));
        } else {
            let truncate = accept == Accept::Robots;
            match read_body(response, self.max_body_bytes, truncate).await {
                Ok(BodyRead::Complete(body)) => {
                    result.body = Some(body);
                    result.outcome = Outcome::Fetched;
                }
                Ok(BodyRead::TooLarge) => {
                    result.outcome = Outcome::TooLarge;
                    result.error = Some(format!("body over {} bytes", self.max_body_bytes));
                }
                Err(error) => fail(result, &error),
            }
        }
    }
}

/// Copies what the caller records from the last response's head into `result`.
fn read_head(result: &mut FetchResult, response: &Response) {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    result.final_url = response.url().clone();
    result.status = Some(response.status().as_u16());
    result.content_type = header(CONTENT_TYPE);
    result.headers_retry_after = header(RETRY_AFTER);
}

/// Records a request that failed without a usable response.
fn fail(result: &mut FetchResult, error: &reqwest::Error) {
    result.outcome = outcome_of(error);
    result.error = Some(error_chain(error));
}

/// The [`Outcome`] of a failed request.
fn outcome_of(error: &reqwest::Error) -> Outcome {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.is::<BlockedAddress>() {
            return Outcome::BlockedAddress;
        }
        source = cause.source();
    }
    if error.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::NetworkError
    }
}

/// `error` and its causes, outermost first: reqwest's own message ("error sending request")
/// rarely says what went wrong.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
