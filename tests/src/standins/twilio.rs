//! Twilio Programmable Messaging stand-in: `POST /2010-04-01/Accounts/<AccountSid>/Messages.json`
//! as Twilio's "Create a Message resource" reference describes it.
//!
//! Checks, each failing with Twilio's status and `{"code", "message", "more_info", "status"}`:
//! - HTTP basic auth `AccountSid:AuthToken` (401 code 20003), for the account in the path
//!   (404 code 20404; unknown paths too);
//! - `To` present (21604) and E.164 (21211), not equal to `From` (21266);
//! - `From` E.164 (21212) and, if the config lists numbers, one of them (21606), or
//!   `MessagingServiceSid` `MG` + 32 hex (21701); neither given → 21603;
//! - `Body` (or a `MediaUrl`) present (21602), at most 1600 characters (21617).
//!
//! A valid request then gets the next scripted answer for its `To`, if any, else 201 with the
//! new Message resource (`sid` `SM` + 32 hex, `status` `queued`, or `accepted` when sent
//! through a Messaging Service).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Journal, Scripts, ServerTask, is_e164, is_sid, json_answer};

/// Longest message body Twilio accepts, in characters.
pub const MAX_BODY_CHARS: usize = 1600;

/// The account the stand-in accepts messages for.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// Account SID (`AC` + 32 hex): the basic-auth user and the account in the path.
    pub account_sid: String,
    /// Auth token: the basic-auth password.
    pub auth_token: String,
    /// Numbers the account owns; `From` must be one of them. Empty means any E.164 number.
    pub from_numbers: Vec<String>,
}

/// A message the stand-in accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedSms {
    /// The Message SID it answered with.
    pub sid: String,
    /// Account SID from the path.
    pub account_sid: String,
    /// `To`.
    pub to: String,
    /// `From`, when given.
    pub from: Option<String>,
    /// `MessagingServiceSid`, when given.
    pub messaging_service_sid: Option<String>,
    /// `Body` (empty for a media-only message).
    pub body: String,
}

/// A Twilio error to answer a `To` number with instead of accepting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioScriptedAnswer {
    /// HTTP status.
    pub status: u16,
    /// Twilio error code.
    pub code: u32,
    /// Twilio error message.
    pub message: String,
    /// `retry-after` header in seconds, if any.
    pub retry_after: Option<u64>,
}

impl TwilioScriptedAnswer {
    /// Any Twilio error.
    pub fn new(status: u16, code: u32, message: &str) -> Self {
        Self {
            status,
            code,
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// 429 code 20429, the account's request concurrency or rate is exceeded.
    pub fn too_many_requests(retry_after: Option<u64>) -> Self {
        Self {
            retry_after,
            ..Self::new(429, 20429, "Too Many Requests")
        }
    }

    /// 503 code 20503, Twilio is temporarily unavailable.
    pub fn service_unavailable() -> Self {
        Self::new(503, 20503, "Service is unavailable. Please try again")
    }

    /// 400 code 21211, the `To` number is not a valid phone number.
    pub fn invalid_to(to: &str) -> Self {
        Self::new(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        )
    }

    /// 400 code 21614, the `To` number is not a mobile number.
    pub fn not_mobile() -> Self {
        Self::new(400, 21614, "'To' number is not a valid mobile number")
    }

    /// 400 code 21610, the recipient replied STOP.
    pub fn unsubscribed() -> Self {
        Self::new(400, 21610, "Attempt to send to unsubscribed recipient")
    }
}

/// State shared by the server task and the test.
#[derive(Debug)]
struct TwilioState {
    config: TwilioConfig,
    journal: Journal<AcceptedSms>,
    scripts: Scripts<TwilioScriptedAnswer>,
}

/// A running Twilio stand-in; stops when dropped.
#[derive(Debug)]
pub struct TwilioStandIn {
    state: Arc<TwilioState>,
    server: ServerTask,
}

impl TwilioStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start(config: TwilioConfig) -> anyhow::Result<Self> {
        Self::start_at(super::ANY_LOOPBACK_PORT, config).await
    }

    /// Starts the stand-in on `address`.
    pub async fn start_at(address: SocketAddr, config: TwilioConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            is_sid(&config.account_sid, "AC"),
            "a Twilio account SID is AC followed by 32 hex digits, not {:?}",
            config.account_sid
        );
        let state = Arc::new(TwilioState {
            config,
            journal: Journal::default(),
            scripts: Scripts::default(),
        });
        let router = Router::new().fallback(answer).with_state(state.clone());
        let server = ServerTask::start(address, router).await?;
        Ok(Self { state, server })
    }

    /// Base URL, `http://127.0.0.1:<port>`: what replaces `https://api.twilio.com`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Messages accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<AcceptedSms> {
        self.state.journal.accepted()
    }

    /// Refusals so far as `(status, Twilio error code)`, oldest first.
    pub fn rejected(&self) -> Vec<(u16, String)> {
        self.state.journal.rejected()
    }

    /// Answers the next valid messages to `to` with `answers`, in order.
    pub fn script(&self, to: &str, answers: Vec<TwilioScriptedAnswer>) {
        self.state.scripts.push(to, answers);
    }
}

/// Answers one request and records the outcome.
async fn answer(State(state): State<Arc<TwilioState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let outcome = check(
        &state,
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        &body,
    )
    .and_then(|sms| match state.scripts.next(&sms.to) {
        Some(scripted) => Err(scripted),
        None => Ok(sms),
    });
    match outcome {
        Ok(sms) => {
            let resource = resource(&sms);
            state.journal.accept(sms);
            json_answer(StatusCode::CREATED, &resource, None)
        }
        Err(error) => {
            state.journal.reject(error.status, error.code.to_string());
            let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
            let body = json!({
                "code": error.code,
                "message": error.message,
                "more_info": format!("https://www.twilio.com/docs/errors/{}", error.code),
                "status": error.status,
            });
            let mut response = json_answer(status, &body, error.retry_after);
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"Twilio API\""),
                );
            }
            response
        }
    }
}

/// Checks the request as Twilio does and returns the message it asks for.
fn check(
    state: &TwilioState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<AcceptedSms, TwilioScriptedAnswer> {
    let config = &state.config;
    let not_found = || {
        TwilioScriptedAnswer::new(
            404,
            20404,
            &format!("The requested resource {path} was not found"),
        )
    };
    let account = path
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.strip_suffix("/Messages.json"))
        .ok_or_else(not_found)?;
    check_basic_auth(config, headers)?;
    if account != config.account_sid {
        return Err(not_found());
    }
    if method != Method::POST {
        return Err(TwilioScriptedAnswer::new(405, 20004, "Method not allowed"));
    }

    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let param = |name: &str| form.get(name).filter(|value| !value.is_empty()).cloned();
    let to = param("To")
        .ok_or_else(|| TwilioScriptedAnswer::new(400, 21604, "A 'To' phone number is required."))?;
    if !is_e164(&to) {
        return Err(TwilioScriptedAnswer::invalid_to(&to));
    }
    let from = param("From");
    let messaging_service_sid = param("MessagingServiceSid");
    match (&from, &messaging_service_sid) {
        (None, None) => {
            return Err(TwilioScriptedAnswer::new(
                400,
                21603,
                "A 'From' phone number is required.",
            ));
        }
        (Some(from), _) if !is_e164(from) => {
            return Err(TwilioScriptedAnswer::new(
                400,
                21212,
                &format!(
                    "The 'From' number {from} is not a valid phone number, shortcode, or \
                     alphanumeric sender ID."
                ),
            ));
        }
        (Some(from), _)
            if !config.from_numbers.is_empty() && !config.from_numbers.contains(from) =>
        {
            return Err(TwilioScriptedAnswer::new(
                400,
                21606,
                &format!(
                    "The From phone number {from} is not a valid, SMS-capable inbound phone \
                     number or short code for your account."
                ),
            ));
        }
        (Some(from), _) if *from == to => {
            return Err(TwilioScriptedAnswer::new(
                400,
                21266,
                "'To' and 'From' number cannot be the same",
            ));
        }
        (_, Some(service)) if !is_sid(service, "MG") => {
            return Err(TwilioScriptedAnswer::new(
                400,
                21701,
                &format!("The Messaging Service Sid {service} is invalid."),
            ));
        }
        _ => {}
    }
    let text = form.get("Body").cloned().unwrap_or_default();
    if text.is_empty() && param("MediaUrl").is_none() {
        return Err(TwilioScriptedAnswer::new(
            400,
            21602,
            "Message body is required.",
        ));
    }
    if text.chars().count() > MAX_BODY_CHARS {
        return Err(TwilioScriptedAnswer::new(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    Ok(AcceptedSms {
        sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        account_sid: account.to_owned(),
        to,
        from,
        messaging_service_sid,
        body: text,
    })
}

/// Checks `authorization: Basic base64(AccountSid:AuthToken)`.
fn check_basic_auth(
    config: &TwilioConfig,
    headers: &HeaderMap,
) -> Result<(), TwilioScriptedAnswer> {
    let refuse = |message: &str| TwilioScriptedAnswer::new(401, 20003, message);
    let encoded = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim())
        .ok_or_else(|| refuse("Authentication Error - No credentials provided"))?;
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| refuse("Authentication Error - invalid username"))?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    if user != config.account_sid {
        return Err(refuse("Authentication Error - invalid username"));
    }
    if password != config.auth_token {
        return Err(refuse("Authentication Error - invalid password"));
    }
    Ok(())
}

/// The Message resource Twilio answers a create with.
fn resource(sms: &AcceptedSms) -> Value {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let uri = format!(
        "/2010-04-01/Accounts/{}/Messages/{}.json",
        sms.account_sid, sms.sid
    );
    json!({
        "account_sid": sms.account_sid,
        "api_version": "2010-04-01",
        "body": sms.body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": sms.from,
        "messaging_service_sid": sms.messaging_service_sid,
        "num_media": "0",
        "num_segments": segments(&sms.body).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sms.sid,
        "status": if sms.from.is_some() { "queued" } else { "accepted" },
        "subresource_uris": { "media": uri.replace(".json", "/Media.json") },
        "to": sms.to,
        "uri": uri,
    })
}

/// Roughly how many SMS segments `body` takes: GSM-7 (approximated as ASCII) fits 160
/// characters in one segment and 153 per part, UCS-2 70 and 67.
fn segments(body: &str) -> usize {
    let (single, part, length) = if body.is_ascii() {
        (160, 153, body.len())
    } else {
        (70, 67, body.encode_utf16().count())
    };
    if length <= single {
        1
    } else {
        length.div_ceil(part)
    }
}

#[cfg(test)]
mod tests;
