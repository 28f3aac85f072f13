//! APNs stand-in: `POST /3/device/<device token>` over HTTP/2, checked as Apple's "Sending
//! notification requests to APNs" and "Handling notification responses from APNs" describe.
//!
//! Checks, in order, each failing with APNs' status and `{"reason": ...}`:
//! - HTTP/2 only: an HTTP/1.x request gets 400 (APNs does not speak HTTP/1 at all);
//! - `POST` (405 `MethodNotAllowed`) to `/3/device/<token>` (404 `BadPath`), the token being
//!   64 or more hexadecimal digits (400 `MissingDeviceToken` / `BadDeviceToken`);
//! - no header given twice (400 `DuplicateHeaders`);
//! - `authorization: bearer <provider token>` verified with the team's public key (403
//!   `MissingProviderToken`, `InvalidProviderToken`, `ExpiredProviderToken`);
//! - `apns-push-type` one of Apple's types (400 `InvalidPushType`);
//! - `apns-topic` the bundle id, with the suffix Apple requires for the push type (`.voip`,
//!   `.complication`, `.pushkit.fileprovider`, `.push-type.liveactivity`, `.location-query`,
//!   `.voip-ptt`) (400 `MissingTopic` / `BadTopic`);
//! - `apns-priority` 1, 5 or 10, and not 10 for a background push (400 `BadPriority`);
//! - `apns-expiration` a Unix time in seconds (400 `BadExpirationDate`);
//! - `apns-collapse-id` at most 64 bytes (400 `BadCollapseId`);
//! - `apns-id` a canonical UUID (400 `BadMessageId`);
//! - a body (400 `PayloadEmpty`) of at most 4096 bytes, 5120 for VoIP (413 `PayloadTooLarge`),
//!   that is a JSON object with an `aps` dictionary (400 `BadPayload`: Apple documents no
//!   reason for this, the stand-in names one so tests can tell it apart).
//!
//! A valid request then gets the next scripted answer for its device token, if any, else 410
//! `Unregistered` (with `timestamp`) for an unregistered token, else 200 with an `apns-id`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse as _, Response};
use p256::pkcs8::DecodePublicKey as _;
use serde_json::{Value, json};
use sixfold_notify::apns_token::verify_provider_token;

use super::{Journal, Scripts, ServerTask, json_answer, lock, unix_now, unix_now_millis};

/// Largest payload for every push type except VoIP.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Largest payload for VoIP pushes.
pub const MAX_VOIP_PAYLOAD_BYTES: usize = 5120;

/// Push types Apple documents for `apns-push-type`, with the suffix the topic needs for each.
const PUSH_TYPES: &[(&str, &str)] = &[
    ("alert", ""),
    ("background", ""),
    ("location", ".location-query"),
    ("voip", ".voip"),
    ("complication", ".complication"),
    ("fileprovider", ".pushkit.fileprovider"),
    ("mdm", ""),
    ("liveactivity", ".push-type.liveactivity"),
    ("pushtotalk", ".voip-ptt"),
];

/// The app and signing key the stand-in accepts pushes for.
#[derive(Debug, Clone)]
pub struct ApnsConfig {
    /// The app's bundle id: the `apns-topic` of alert and background pushes.
    pub bundle_id: String,
    /// The 10-character key id that provider tokens must name in `kid`.
    pub key_id: String,
    /// The team id that provider tokens must name in `iss`.
    pub team_id: String,
    /// Public half of the team's signing key (SPKI PEM), to verify provider tokens.
    pub public_key_pem: String,
}

/// A push the stand-in accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedPush {
    /// Device token from the path.
    pub device_token: String,
    /// `apns-topic`.
    pub topic: String,
    /// `apns-push-type`.
    pub push_type: String,
    /// `apns-priority`, if sent.
    pub priority: Option<u8>,
    /// `apns-expiration`, if sent.
    pub expiration: Option<u64>,
    /// `apns-collapse-id`, if sent.
    pub collapse_id: Option<String>,
    /// `apns-id` as sent, or the one the stand-in assigned.
    pub apns_id: String,
    /// The JSON payload.
    pub payload: Value,
}

/// An answer to give instead of accepting, e.g. `(410, "Unregistered")`,
/// `(429, "TooManyRequests")` or `(503, "ServiceUnavailable")` with a `retry-after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsScriptedAnswer {
    /// HTTP status.
    pub status: u16,
    /// APNs `reason`.
    pub reason: String,
    /// `retry-after` header in seconds, if any.
    pub retry_after: Option<u64>,
}

impl ApnsScriptedAnswer {
    /// An answer with `status` and `reason` and no `retry-after`.
    pub fn new(status: u16, reason: &str) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            retry_after: None,
        }
    }

    /// The same answer with a `retry-after` of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// A refusal: status, APNs reason and, for 410, when the token stopped being valid.
struct Refusal {
    status: StatusCode,
    reason: String,
    timestamp_ms: Option<u64>,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, reason: &str) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            timestamp_ms: None,
            retry_after: None,
        }
    }

    fn bad(reason: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
}

/// State shared by the server task and the test.
#[derive(Debug)]
struct ApnsState {
    config: ApnsConfig,
    journal: Journal<AcceptedPush>,
    scripts: Scripts<ApnsScriptedAnswer>,
    /// Unregistered device tokens and when they were unregistered (Unix milliseconds).
    unregistered: Mutex<HashMap<String, u64>>,
    /// How long an accepted push waits before its answer, in milliseconds.
    answer_delay_ms: AtomicU64,
}

/// A running APNs stand-in; stops when dropped.
#[derive(Debug)]
pub struct ApnsStandIn {
    state: Arc<ApnsState>,
    server: ServerTask,
}

impl ApnsStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start(config: ApnsConfig) -> anyhow::Result<Self> {
        Self::start_at(super::ANY_LOOPBACK_PORT, config).await
    }

    /// Starts the stand-in on `address`.
    pub async fn start_at(address: SocketAddr, config: ApnsConfig) -> anyhow::Result<Self> {
        p256::PublicKey::from_public_key_pem(&config.public_key_pem)
            .context("the APNs stand-in needs the team key's public half as SPKI PEM")?;
        let state = Arc::new(ApnsState {
            config,
            journal: Journal::default(),
            scripts: Scripts::default(),
            unregistered: Mutex::new(HashMap::new()),
            answer_delay_ms: AtomicU64::new(0),
        });
        let router = Router::new().fallback(answer).with_state(state.clone());
        let server = ServerTask::start(address, router).await?;
        Ok(Self { state, server })
    }

    /// Base URL, `http://127.0.0.1:<port>`; pushes go to `<url>/3/device/<token>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Pushes accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<AcceptedPush> {
        self.state.journal.accepted()
    }

    /// Refusals so far as `(status, reason)`, oldest first, scripted ones included.
    pub fn rejected(&self) -> Vec<(u16, String)> {
        self.state.journal.rejected()
    }

    /// Answers the next valid pushes to `device_token` with `answers`, in order.
    pub fn script(&self, device_token: &str, answers: Vec<ApnsScriptedAnswer>) {
        self.state.scripts.push(device_token, answers);
    }

    /// From now on, answers each accepted push only `delay` after recording it, as a distant
    /// provider does: a sender killed meanwhile never learns that the push was accepted.
    pub fn delay_answers(&self, delay: std::time::Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.answer_delay_ms.store(millis, Ordering::Relaxed);
    }

    /// Marks `device_token` as no longer registered: from now on valid pushes to it get 410
    /// `Unregistered` with the current time as `timestamp`.
    pub fn unregister(&self, device_token: &str) {
        lock(&self.state.unregistered).insert(device_token.to_owned(), unix_now_millis());
    }
}

/// Answers one request and records the outcome.
async fn answer(State(state): State<Arc<ApnsState>>, request: Request) -> Response {
    let outcome = check(&state, request).await.and_then(|push| {
        match scripted_or_unregistered(&state, &push.device_token) {
            Some(refusal) => Err(refusal),
            None => {
                let apns_id = push.apns_id.clone();
                state.journal.accept(push);
                Ok(apns_id)
            }
        }
    });
    match outcome {
        Ok(apns_id) => {
            let delay = state.answer_delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            let mut response = StatusCode::OK.into_response();
            if let Ok(value) = HeaderValue::from_str(&apns_id) {
                response.headers_mut().insert("apns-id", value);
            }
            response
        }
        Err(refusal) => {
            state
                .journal
                .reject(refusal.status.as_u16(), refusal.reason.clone());
            let mut body = json!({ "reason": refusal.reason });
            if let Some(timestamp) = refusal.timestamp_ms {
                body["timestamp"] = json!(timestamp);
            }
            json_answer(refusal.status, &body, refusal.retry_after)
        }
    }
}

/// The scripted answer for `device_token`, or 410 if it is unregistered.
fn scripted_or_unregistered(state: &ApnsState, device_token: &str) -> Option<Refusal> {
    if let Some(scripted) = state.scripts.next(device_token) {
        let status =
            StatusCode::from_u16(scripted.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(Refusal {
            status,
            timestamp_ms: (status == StatusCode::GONE).then(unix_now_millis),
            reason: scripted.reason,
            retry_after: scripted.retry_after,
        });
    }
    let unregistered_at = lock(&state.unregistered).get(device_token).copied();
    unregistered_at.map(|at| Refusal {
        timestamp_ms: Some(at),
        ..Refusal::new(StatusCode::GONE, "Unregistered")
    })
}

/// Checks the request as APNs does and returns the push it describes.
async fn check(state: &ApnsState, request: Request) -> Result<AcceptedPush, Refusal> {
    if request.version() != Version::HTTP_2 {
        return Err(Refusal::bad("HTTP/2 is required"));
    }
    if request.method() != Method::POST {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
        ));
    }
    let device_token = device_token(request.uri().path())?;
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if has_duplicate_headers(headers) {
        return Err(Refusal::bad("DuplicateHeaders"));
    }
    check_provider_token(&state.config, headers)?;

    let push_type = header(headers, "apns-push-type", "InvalidPushType")?;
    let Some((push_type, topic_suffix)) =
        PUSH_TYPES.iter().find(|(name, _)| Some(*name) == push_type)
    else {
        return Err(Refusal::bad("InvalidPushType"));
    };
    let topic =
        header(headers, "apns-topic", "BadTopic")?.ok_or_else(|| Refusal::bad("MissingTopic"))?;
    if topic != format!("{}{topic_suffix}", state.config.bundle_id) {
        return Err(Refusal::bad("BadTopic"));
    }
    let priority = match header(headers, "apns-priority", "BadPriority")? {
        None => None,
        Some("10") if *push_type == "background" => return Err(Refusal::bad("BadPriority")),
        Some(value @ ("1" | "5" | "10")) => value.parse::<u8>().ok(),
        Some(_) => return Err(Refusal::bad("BadPriority")),
    };
    let expiration = header(headers, "apns-expiration", "BadExpirationDate")?
        .map(|value| {
            value
                .parse::<u64>()
                .map_err(|_| Refusal::bad("BadExpirationDate"))
        })
        .transpose()?;
    let collapse_id = header(headers, "apns-collapse-id", "BadCollapseId")?;
    if collapse_id.is_some_and(|id| id.len() > 64) {
        return Err(Refusal::bad("BadCollapseId"));
    }
    let apns_id = match header(headers, "apns-id", "BadMessageId")? {
        Some(id) if is_canonical_uuid(id) => id.to_owned(),
        Some(_) => return Err(Refusal::bad("BadMessageId")),
        None => uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase(),
    };

    let limit = if *push_type == "voip" {
        MAX_VOIP_PAYLOAD_BYTES
    } else {
        MAX_PAYLOAD_BYTES
    };
    let too_large = || Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| too_large())?;
    if body.is_empty() {
        return Err(Refusal::bad("PayloadEmpty"));
    }
    if body.len() > limit {
        return Err(too_large());
    }
    let payload: Value = serde_json::from_slice(&body).map_err(|_| Refusal::bad("BadPayload"))?;
    if !payload.get("aps").is_some_and(Value::is_object) {
        return Err(Refusal::bad("BadPayload"));
    }

    Ok(AcceptedPush {
        device_token,
        topic: topic.to_owned(),
        push_type: (*push_type).to_owned(),
        priority,
        expiration,
        collapse_id: collapse_id.map(str::to_owned),
        apns_id,
        payload,
    })
}

/// The device token from a `/3/device/<token>` path.
fn device_token(path: &str) -> Result<String, Refusal> {
    let token = path
        .strip_prefix("/3/device/")
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, "BadPath"))?;
    if token.is_empty() {
        return Err(Refusal::bad("MissingDeviceToken"));
    }
    if token.len() < 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::bad("BadDeviceToken"));
    }
    Ok(token.to_owned())
}

/// Whether any header APNs reads was sent more than once.
fn has_duplicate_headers(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .filter(|name| name.as_str() == "authorization" || name.as_str().starts_with("apns-"))
        .any(|name| headers.get_all(name).iter().count() > 1)
}

/// The value of header `name`, refusing with `bad_reason` if it is not visible ASCII.
fn header<'a>(
    headers: &'a HeaderMap,
    name: &str,
    bad_reason: &str,
) -> Result<Option<&'a str>, Refusal> {
    headers
        .get(name)
        .map(|value| value.to_str().map_err(|_| Refusal::bad(bad_reason)))
        .transpose()
}

/// Checks `authorization: bearer <token>` against the configured key, team and the clock.
fn check_provider_token(config: &ApnsConfig, headers: &HeaderMap) -> Result<(), Refusal> {
    let forbidden = |reason: &str| Refusal::new(StatusCode::FORBIDDEN, reason);
    let value = header(headers, "authorization", "InvalidProviderToken")
        .map_err(|_| forbidden("InvalidProviderToken"))?
        .ok_or_else(|| forbidden("MissingProviderToken"))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| forbidden("InvalidProviderToken"))?;
    verify_provider_token(
        token,
        &config.public_key_pem,
        &config.key_id,
        &config.team_id,
        unix_now(),
    )
    .map_err(|error| forbidden(error.apns_reason()))
}

/// Whether `id` is a UUID in the 8-4-4-4-12 hexadecimal form APNs requires.
fn is_canonical_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests;
