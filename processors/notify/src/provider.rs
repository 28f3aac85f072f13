//! What a push or SMS provider's answer means for the channel worker: the message went out, the
//! device token is dead and must be deleted, the attempt should be retried later, or the message
//! can never be delivered as it is.
//!
//! The classification follows each provider's documentation:
//! - APNs: "Handling notification responses from APNs" (HTTP/2 status plus a JSON `reason`).
//! - FCM HTTP v1: `POST https://fcm.googleapis.com/v1/projects/{id}/messages:send`; errors are
//!   a `google.rpc.Status` body whose `details` carry a `google.firebase.fcm.v1.FcmError` with
//!   an `errorCode`.
//! - Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{sid}/Messages.json` answers
//!   `201 Created` with the message `sid`, or an error body with a numeric Twilio `code`.
//!   Failures found after acceptance (carrier rejections, 30xxx codes) arrive through status
//!   callbacks and are not classified here.
//!
//! The functions are pure; the worker turns [`Outcome::Retry`] into a delay with the provider's
//! `retry_after` when there is one and [`backoff`] otherwise.

use std::time::Duration;

use serde::Deserialize;

/// Longest `Retry-After` honoured; a provider asking for more is treated as asking for this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What the worker should do after a provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted the message.
    Sent {
        /// The provider's id for the message (APNs `apns-id`, FCM message `name`, Twilio
        /// `sid`), when it returned one.
        provider_message_id: Option<String>,
    },
    /// The device token is no longer valid: delete the device registration and do not retry.
    PruneToken {
        /// The provider's reason, for logs and the dead-letter record.
        reason: String,
    },
    /// A transient failure: try again later.
    Retry {
        /// The provider's reason.
        reason: String,
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The message cannot be delivered as it is; send it to the dead-letter topic.
    Permanent {
        /// The provider's reason.
        reason: String,
    },
}

/// Parses a `Retry-After` header given in delta-seconds, capped at [`MAX_RETRY_AFTER`].
///
/// The HTTP-date form (`Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`) returns `None`: none of
/// the providers here send it, and honouring it would need a clock; the caller then falls back
/// to [`backoff`].
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits, so the only failure is overflow: a huge number means "a long time".
    let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// Delay before retry number `attempt` (0 for the first retry): exponential backoff with "full
/// jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter").
///
/// The ceiling is `base * 2^attempt`, capped at `max`, and the delay is `ceiling * jitter`.
/// `jitter` is a uniform random number in `0..1` that the caller draws, which keeps this
/// function deterministic and testable; values outside `0..=1` are clamped and NaN counts as 0.
pub fn backoff(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let ceiling = 2u32
        .checked_pow(attempt)
        .and_then(|factor| base.checked_mul(factor))
        .map_or(max, |delay| delay.min(max));
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    ceiling.mul_f64(jitter)
}

/// Extracts `reason` from an APNs error body such as `{"reason":"BadDeviceToken"}`.
pub fn apns_reason(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct ApnsError {
        reason: String,
    }
    serde_json::from_str::<ApnsError>(body)
        .ok()
        .map(|e| e.reason)
}

/// Classifies an APNs response from its status, the `reason` of its body (see
/// [`apns_reason`]), and its `apns-id` and `Retry-After` headers.
///
/// - 200 → [`Outcome::Sent`] with the `apns-id`.
/// - 410 (`Unregistered`, `ExpiredToken`) and 400 `BadDeviceToken` or
///   `DeviceTokenNotForTopic` → [`Outcome::PruneToken`]. `BadDeviceToken` also shows up when a
///   sandbox token is sent to the production host; the worker must use the host that matches
///   the app's `aps-environment`, otherwise it would prune good tokens.
/// - 403 `ExpiredProviderToken` or `InvalidProviderToken` → [`Outcome::Retry`]: the provider
///   token (JWT) is stale or was rejected, and the caller signs a fresh one before retrying.
///   A key that is really wrong keeps failing and ends in the dead-letter topic once the retry
///   budget is spent.
/// - 429 (`TooManyRequests`, `TooManyProviderTokenUpdates`), 500 (`InternalServerError`),
///   503 (`ServiceUnavailable`, `Shutdown`) and any other 5xx → [`Outcome::Retry`].
/// - Every other 4xx (`BadCollapseId`, `BadExpirationDate`, `BadMessageId`, `BadPriority`,
///   `BadTopic`, `DuplicateHeaders`, `MissingDeviceToken`, `MissingTopic`, `PayloadEmpty`,
///   `PayloadTooLarge`, `TopicDisallowed`, `BadCertificate`, `Forbidden`, `BadPath`,
///   `MethodNotAllowed`, ...) and any unexpected status → [`Outcome::Permanent`].
pub fn apns(
    status: u16,
    reason: Option<&str>,
    apns_id: Option<&str>,
    retry_after: Option<&str>,
) -> Outcome {
    let reason_text = || format!("apns {status} {}", reason.unwrap_or("(no reason)"));
    match (status, reason) {
        (200, _) => Outcome::Sent {
            provider_message_id: apns_id.map(str::to_owned),
        },
        (410, _) | (400, Some("BadDeviceToken" | "DeviceTokenNotForTopic")) => {
            Outcome::PruneToken {
                reason: reason_text(),
            }
        }
        (403, Some("ExpiredProviderToken" | "InvalidProviderToken"))
        | (429, _)
        | (500..=599, _) => Outcome::Retry {
            reason: reason_text(),
            retry_after: retry_after.and_then(parse_retry_after),
        },
        _ => Outcome::Permanent {
            reason: reason_text(),
        },
    }
}

/// The parts of an FCM v1 error body that decide the outcome.
struct FcmError {
    /// `error.status`, the `google.rpc.Code` name such as `NOT_FOUND`.
    status: Option<String>,
    /// `error.message`.
    message: String,
    /// `errorCode` of the `google.firebase.fcm.v1.FcmError` detail.
    error_code: Option<String>,
    /// Whether a `google.rpc.BadRequest` detail names `message.token` as the bad field.
    token_field_violation: bool,
}

fn parse_fcm_error(body: &str) -> Option<FcmError> {
    #[derive(Deserialize)]
    struct Body {
        error: Error,
    }
    #[derive(Deserialize)]
    struct Error {
        #[serde(default)]
        message: String,
        status: Option<String>,
        #[serde(default)]
        details: Vec<Detail>,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(rename = "@type", default)]
        kind: String,
        #[serde(rename = "errorCode")]
        error_code: Option<String>,
        #[serde(rename = "fieldViolations", default)]
        field_violations: Vec<FieldViolation>,
    }
    #[derive(Deserialize)]
    struct FieldViolation {
        #[serde(default)]
        field: String,
    }

    let error = serde_json::from_str::<Body>(body).ok()?.error;
    let error_code = error
        .details
        .iter()
        .find(|d| d.kind.ends_with("google.firebase.fcm.v1.FcmError"))
        .and_then(|d| d.error_code.clone());
    let token_field_violation = error
        .details
        .iter()
        .filter(|d| d.kind.ends_with("google.rpc.BadRequest"))
        .flat_map(|d| &d.field_violations)
        .any(|v| v.field == "message.token");
    Some(FcmError {
        status: error.status,
        message: error.message,
        error_code,
        token_field_violation,
    })
}

/// Classifies an FCM HTTP v1 `messages:send` response from its status, body and `Retry-After`.
///
/// - 2xx with `{"name":"projects/p/messages/123"}` → [`Outcome::Sent`] with the name.
/// - `errorCode` `UNREGISTERED` (404) or `SENDER_ID_MISMATCH` (403) → [`Outcome::PruneToken`]:
///   the token is gone or belongs to another Firebase project.
/// - `INVALID_ARGUMENT` (400) → [`Outcome::PruneToken`] only when it is about the token (the
///   message mentions "registration token" or a `BadRequest` detail names `message.token`);
///   otherwise the payload is wrong → [`Outcome::Permanent`].
/// - `QUOTA_EXCEEDED` (429), `UNAVAILABLE` (503), `INTERNAL` (500), and any 429 or 5xx without
///   a more specific code → [`Outcome::Retry`], honouring `Retry-After` as FCM asks.
/// - `THIRD_PARTY_AUTH_ERROR` (401: the APNs key or web push credentials in the Firebase
///   project are wrong) and `PERMISSION_DENIED` (403) → [`Outcome::Permanent`].
/// - 401 `UNAUTHENTICATED` → [`Outcome::Retry`]: the OAuth 2.0 access token expired, and the
///   caller fetches a new one before retrying.
/// - Anything else → [`Outcome::Permanent`].
pub fn fcm(status: u16, body: &str, retry_after: Option<&str>) -> Outcome {
    if (200..300).contains(&status) {
        #[derive(Deserialize)]
        struct Sent {
            name: String,
        }
        return Outcome::Sent {
            provider_message_id: serde_json::from_str::<Sent>(body).ok().map(|s| s.name),
        };
    }
    let error = parse_fcm_error(body);
    let code = error
        .as_ref()
        .and_then(|e| e.error_code.as_deref().or(e.status.as_deref()))
        .unwrap_or("");
    let reason = match &error {
        Some(e) if !e.message.is_empty() => format!("fcm {status} {code}: {}", e.message),
        _ => format!("fcm {status} {code}").trim_end().to_owned(),
    };
    let about_token = error.as_ref().is_some_and(|e| {
        e.token_field_violation
            || e.message
                .to_ascii_lowercase()
                .contains("registration token")
    });
    let retry = |reason| Outcome::Retry {
        reason,
        retry_after: retry_after.and_then(parse_retry_after),
    };
    match code {
        "UNREGISTERED" | "SENDER_ID_MISMATCH" => Outcome::PruneToken { reason },
        "INVALID_ARGUMENT" if about_token => Outcome::PruneToken { reason },
        "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL" | "UNAUTHENTICATED" => retry(reason),
        "INVALID_ARGUMENT" | "THIRD_PARTY_AUTH_ERROR" | "PERMISSION_DENIED" => {
            Outcome::Permanent { reason }
        }
        _ if status == 401 || status == 429 || (500..600).contains(&status) => retry(reason),
        _ => Outcome::Permanent { reason },
    }
}

/// Classifies a Twilio "create Message" response from its status, body and `Retry-After`.
///
/// - 2xx (Twilio answers 201) with `{"sid":"SM..."}` → [`Outcome::Sent`] with the sid.
/// - 429 (code 20429) and 5xx → [`Outcome::Retry`].
/// - 400 code 21211 (invalid `To` number) or 21614 (`To` is not a mobile number) →
///   [`Outcome::Permanent`] saying the user's number is bad; SMS has no token to prune, so
///   fixing it is up to the user (the profile can flag the number).
/// - 400 code 21610 (the recipient replied STOP) → [`Outcome::Permanent`].
/// - Any other 4xx (including 401 code 20003, wrong credentials: Twilio uses static account
///   credentials, so retrying does not help) → [`Outcome::Permanent`].
pub fn twilio(status: u16, body: &str, retry_after: Option<&str>) -> Outcome {
    #[derive(Deserialize)]
    struct Reply {
        sid: Option<String>,
        code: Option<u32>,
        message: Option<String>,
    }
    let reply = serde_json::from_str::<Reply>(body).ok();
    if (200..300).contains(&status) {
        return Outcome::Sent {
            provider_message_id: reply.and_then(|r| r.sid),
        };
    }
    let code = reply.as_ref().and_then(|r| r.code);
    let message = reply.and_then(|r| r.message).unwrap_or_default();
    let describe = |what: &str| {
        let mut reason = format!("twilio {status}");
        if let Some(code) = code {
            reason.push_str(&format!(" {code}"));
        }
        if !what.is_empty() {
            reason.push_str(&format!(": {what}"));
        }
        reason
    };
    if status == 429 || (500..600).contains(&status) {
        return Outcome::Retry {
            reason: describe(&message),
            retry_after: retry_after.and_then(parse_retry_after),
        };
    }
    let reason = match code {
        Some(21211) => describe("the phone number is not valid"),
        Some(21614) => describe("the phone number is not a mobile number"),
        Some(21610) => describe("the recipient has unsubscribed (STOP)"),
        _ => describe(&message),
    };
    Outcome::Permanent { reason }
}

#[cfg(test)]
mod tests;
