//! Rate limiting of every route by the rules of `sixfold-ratelimit`.
//!
//! Each request is described by its route template, method, client address, API key and user
//! (`X-User-Id`, set by a trusted gateway in front of the ingress, which must drop any
//! `X-User-Id` a client sends) and checked against the rules. A denied request gets `429 Too Many Requests` with the seed's JSON body; every
//! answer a rule applied to carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
//! `X-RateLimit-Reset` (seconds until the quota is whole again), `Retry-After` (on 429) and the
//! IETF `RateLimit` / `RateLimit-Policy` fields. A leaky-bucket rule that admits a request with
//! a delay holds the request for that delay before handling it (the queue drains at its rate).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sixfold_ratelimit::{RateLimiter, RequestInfo, Verdict, ceil_secs};

use crate::error::ApiError;

/// Header a trusted gateway sets to the authenticated user, for `user_id` rules.
pub const USER_HEADER: &str = "x-user-id";

/// Where the client address comes from.
#[derive(Clone)]
pub struct LimiterState {
    /// The limiter.
    pub limiter: RateLimiter,
    /// Take the client address from the first `X-Forwarded-For` entry (only behind a proxy
    /// that sets it); otherwise the TCP peer address.
    pub trust_forwarded_for: bool,
}

/// Middleware: checks the request and answers 429, or handles it and adds the headers.
pub async fn enforce(State(state): State<LimiterState>, request: Request, next: Next) -> Response {
    if !state.limiter.enabled() {
        return next.run(request).await;
    }
    let headers = request.headers();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let ip = client_ip(&request, state.trust_forwarded_for);
    let api_key = header_text(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| crate::auth::bearer_token(&v).map(str::to_owned));
    let user_id = header_text(headers, USER_HEADER);
    let method = request.method().as_str().to_owned();
    let verdict = state
        .limiter
        .check(&RequestInfo {
            user_id: user_id.as_deref(),
            ip: ip.as_deref(),
            api_key: api_key.as_deref(),
            route: &route,
            method: &method,
        })
        .await;
    if !verdict.allowed {
        let mut response = denied(&verdict).into_response();
        add_headers(response.headers_mut(), &verdict, true);
        return response;
    }
    if let Some(delay) = verdict.delay.filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
    let mut response = next.run(request).await;
    add_headers(response.headers_mut(), &verdict, false);
    response
}

/// The client's address: the rightmost `X-Forwarded-For` entry when the ingress runs behind
/// one trusted proxy (`trust_forwarded_for`), otherwise the TCP peer.
pub fn client_ip(request: &Request, trust_forwarded_for: bool) -> Option<String> {
    let forwarded = trust_forwarded_for
        .then(|| header_text(request.headers(), "x-forwarded-for"))
        .flatten()
        // The rightmost entry is the one the trusted proxy appended; anything left of it came
        // from the client and can be forged.
        .and_then(|v| v.rsplit(',').next().map(|ip| ip.trim().to_owned()));
    forwarded.or_else(|| {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_string())
    })
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn denied(verdict: &Verdict) -> ApiError {
    if verdict.failed_closed {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
            "The rate limiter is unavailable and this route fails closed; try again in 1 seconds.",
        );
    }
    let retry = verdict
        .decisive
        .as_ref()
        .and_then(|(_, d)| d.retry_after)
        .map_or(1, ceil_secs);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
        format!("You have sent too many requests; try again in {retry} seconds."),
    )
}

fn add_headers(headers: &mut HeaderMap, verdict: &Verdict, denied: bool) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    if let Some((_, decision)) = &verdict.decisive {
        set("x-ratelimit-limit", decision.limit.to_string());
        set("x-ratelimit-remaining", decision.remaining.to_string());
        set(
            "x-ratelimit-reset",
            ceil_secs(decision.reset_after).to_string(),
        );
        if denied {
            let retry = decision.retry_after.map_or(1, ceil_secs);
            set("retry-after", retry.to_string());
        }
    } else if denied {
        set("retry-after", "1".into());
    }
    if let Some(field) = verdict.ratelimit_field() {
        set("ratelimit", field);
    }
    if let Some(field) = verdict.ratelimit_policy_field() {
        set("ratelimit-policy", field);
    }
}
