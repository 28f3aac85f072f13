//! FCM HTTP v1 stand-in: Google's OAuth 2.0 token endpoint for a service account and
//! `POST /v1/projects/<project id>/messages:send`.
//!
//! - `POST /token` (HTTP/1.1 or 2) takes the JWT-bearer grant of "Using OAuth 2.0 for Server to
//!   Server Applications": an RS256 assertion signed by the service account's key with `iss`
//!   the client email, `scope` including [`MESSAGING_SCOPE`], `aud` [`FcmStandIn::token_uri`]
//!   and a lifetime of at most an hour. Refusals are 400 with Google's `error` /
//!   `error_description`. Success issues a random access token valid for 3599 s.
//! - `messages:send` needs HTTP/2 (HTTP/1.x gets 400), `authorization: Bearer <issued token>`
//!   (401 `UNAUTHENTICATED`), the configured project (404 `NOT_FOUND`) and a body that is a
//!   valid `{"message": Message, "validate_only": bool}` (400 `INVALID_ARGUMENT`, see
//!   `message.rs`). A valid message to a token then gets the next scripted answer for the
//!   token, or 404 `UNREGISTERED` if the token was unregistered, or else 200
//!   `{"name": "projects/<id>/messages/<number>"}`.
//!
//! Errors are `google.rpc.Status` bodies; FCM-specific ones carry a
//! `google.firebase.fcm.v1.FcmError` detail with the `errorCode`, and argument errors a
//! `google.rpc.BadRequest` detail naming the field.

mod error;
mod message;
mod oauth;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Version};
use axum::response::Response;
use axum::routing::post;
use rsa::pkcs8::DecodePublicKey as _;
use serde_json::{Value, json};
use sha2::Sha256;

use self::error::GoogleError;
use self::message::Target;
use self::oauth::AccessTokens;
use super::{Journal, Scripts, ServerTask, json_answer, lock};

/// The OAuth scope FCM HTTP v1 needs.
pub const MESSAGING_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The Firebase project and service account the stand-in serves.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    /// Firebase project id, the `<project id>` in `/v1/projects/<project id>/messages:send`.
    pub project_id: String,
    /// The service account's `client_email`, the required `iss` of assertions.
    pub client_email: String,
    /// Public half of the service account's RSA key (SPKI PEM), to verify assertions.
    pub public_key_pem: String,
}

/// A message the stand-in accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedMessage {
    /// Project id from the path.
    pub project: String,
    /// `message.token`, when the message was sent to a device.
    pub token: Option<String>,
    /// The whole `message` object as sent.
    pub message: Value,
    /// Whether the request only asked for validation (FCM then sends nothing).
    pub validate_only: bool,
}

/// An FCM error to answer a device token with instead of accepting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcmScriptedAnswer {
    /// 404 `UNREGISTERED`: the app was uninstalled or the token expired.
    Unregistered,
    /// 400 `INVALID_ARGUMENT` about `message.token`: not a valid registration token.
    InvalidToken,
    /// 403 `SENDER_ID_MISMATCH`: the token belongs to another Firebase project.
    SenderIdMismatch,
    /// 429 `QUOTA_EXCEEDED` with a `retry-after` in seconds.
    QuotaExceeded {
        /// `retry-after` seconds.
        retry_after: u64,
    },
    /// 503 `UNAVAILABLE`, optionally with a `retry-after` in seconds.
    Unavailable {
        /// `retry-after` seconds, if any.
        retry_after: Option<u64>,
    },
    /// 500 `INTERNAL`.
    Internal,
    /// 401 `THIRD_PARTY_AUTH_ERROR`: the APNs or web push credentials are wrong.
    ThirdPartyAuthError,
}

/// State shared by the server task and the test.
struct FcmState {
    config: FcmConfig,
    key: rsa::pkcs1v15::VerifyingKey<Sha256>,
    token_uri: String,
    access_tokens: AccessTokens,
    journal: Journal<AcceptedMessage>,
    scripts: Scripts<FcmScriptedAnswer>,
    unregistered: Mutex<HashSet<String>>,
    next_message_number: AtomicU64,
}

/// A running FCM stand-in; stops when dropped.
pub struct FcmStandIn {
    state: Arc<FcmState>,
    server: ServerTask,
}

impl std::fmt::Debug for FcmStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmStandIn")
            .field("url", &self.url())
            .field("project_id", &self.state.config.project_id)
            .finish_non_exhaustive()
    }
}

impl FcmStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start(config: FcmConfig) -> anyhow::Result<Self> {
        Self::start_at(super::ANY_LOOPBACK_PORT, config).await
    }

    /// Starts the stand-in on `address`.
    pub async fn start_at(address: SocketAddr, config: FcmConfig) -> anyhow::Result<Self> {
        let public_key = rsa::RsaPublicKey::from_public_key_pem(&config.public_key_pem)
            .context("the FCM stand-in needs the service account's public key as SPKI PEM")?;
        let (listener, address) = super::bind(address).await?;
        let state = Arc::new(FcmState {
            config,
            key: rsa::pkcs1v15::VerifyingKey::new(public_key),
            token_uri: format!("http://{address}/token"),
            access_tokens: AccessTokens::default(),
            journal: Journal::default(),
            scripts: Scripts::default(),
            unregistered: Mutex::new(HashSet::new()),
            // Message ids look like FCM's: large, unique within the run.
            next_message_number: AtomicU64::new(super::unix_now_millis() * 1000),
        });
        let router = Router::new()
            .route("/token", post(oauth::token_endpoint))
            .fallback(send)
            .with_state(state.clone());
        let server = ServerTask::spawn(listener, address, router);
        Ok(Self { state, server })
    }

    /// Base URL, `http://127.0.0.1:<port>`: what replaces `https://fcm.googleapis.com`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The OAuth token endpoint, `<url>/token`: the service account's `token_uri` and the
    /// `aud` its assertions must carry.
    pub fn token_uri(&self) -> String {
        self.state.token_uri.clone()
    }

    /// Messages accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<AcceptedMessage> {
        self.state.journal.accepted()
    }

    /// Refusals so far as `(status, reason)`, oldest first, where the reason is the FCM
    /// `errorCode`, else the `google.rpc.Code` name, else (token endpoint) the OAuth `error`.
    pub fn rejected(&self) -> Vec<(u16, String)> {
        self.state.journal.rejected()
    }

    /// Answers the next valid messages to `token` with `answers`, in order.
    pub fn script(&self, token: &str, answers: Vec<FcmScriptedAnswer>) {
        self.state.scripts.push(token, answers);
    }

    /// From now on, valid messages to `token` get 404 `UNREGISTERED`.
    pub fn unregister(&self, token: &str) {
        lock(&self.state.unregistered).insert(token.to_owned());
    }

    /// Issues an access token without the OAuth exchange, for tests about sending only.
    pub fn issue_access_token(&self) -> String {
        self.state.access_tokens.issue()
    }

    /// How many access tokens were issued (to check that a client reuses its token).
    pub fn access_tokens_issued(&self) -> usize {
        self.state.access_tokens.count()
    }
}

/// Answers a request to anything but `/token` and records the outcome.
async fn send(State(state): State<Arc<FcmState>>, request: Request) -> Response {
    match check_and_answer(&state, request).await {
        Ok((project, request)) => {
            let name = if request.validate_only {
                format!("projects/{project}/messages/fake_message_id")
            } else {
                let number = state.next_message_number.fetch_add(1, Ordering::Relaxed);
                format!("projects/{project}/messages/{number}")
            };
            let token = match request.target {
                Target::Token(token) => Some(token),
                Target::Topic(_) | Target::Condition(_) => None,
            };
            state.journal.accept(AcceptedMessage {
                project,
                token,
                message: request.message,
                validate_only: request.validate_only,
            });
            json_answer(StatusCode::OK, &json!({ "name": name }), None)
        }
        Err(error) => {
            state.journal.reject(error.status.as_u16(), error.reason());
            error.into_response()
        }
    }
}

/// Checks a `messages:send` request and applies scripts and unregistered tokens.
async fn check_and_answer(
    state: &FcmState,
    request: Request,
) -> Result<(String, message::SendRequest), GoogleError> {
    if request.version() != Version::HTTP_2 {
        return Err(GoogleError::new(
            StatusCode::BAD_REQUEST,
            "HTTP/2 is required for messages:send.",
        ));
    }
    let not_found = || GoogleError::new(StatusCode::NOT_FOUND, "Requested entity was not found.");
    let project = request
        .uri()
        .path()
        .strip_prefix("/v1/projects/")
        .and_then(|rest| rest.strip_suffix("/messages:send"))
        .filter(|project| !project.is_empty() && !project.contains('/'))
        .ok_or_else(not_found)?
        .to_owned();
    if request.method() != Method::POST {
        return Err(GoogleError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed.",
        ));
    }
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            GoogleError::new(
                StatusCode::UNAUTHORIZED,
                "Request is missing required authentication credential. Expected OAuth 2 \
                 access token, login cookie or other valid authentication credential.",
            )
        })?;
    let authenticated = authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, token)| state.access_tokens.is_valid(token.trim()));
    if !authenticated {
        return Err(GoogleError::new(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
        ));
    }
    if project != state.config.project_id {
        return Err(not_found());
    }
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .map_err(|_| {
            GoogleError::invalid_argument("Request payload size exceeds the limit.", "")
        })?;
    let request = message::validate(&body)
        .map_err(|invalid| GoogleError::invalid_argument(&invalid.message, &invalid.field))?;
    if let Target::Token(token) = &request.target {
        if let Some(answer) = state.scripts.next(token) {
            return Err(answer.into_error());
        }
        if lock(&state.unregistered).contains(token) {
            return Err(FcmScriptedAnswer::Unregistered.into_error());
        }
    }
    Ok((project, request))
}

#[cfg(test)]
mod tests;
