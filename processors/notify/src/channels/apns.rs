//! The APNs client: sends one push to one iOS device over HTTP/2 with token-based (JWT)
//! authentication, as Apple documents in "Sending notification requests to APNs".
//!
//! The request is built by the pure [`build_request`]; [`ApnsClient::send`] adds the provider
//! token, sends it and classifies the answer with [`provider::apns`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ChannelError, Cleartext, PushMessage, PushPriority, ceil_secs, endpoint_base, header_text,
    http_client, required, transport_retry, unix_now_ms,
};
use crate::apns_token::{ApnsTokenSigner, DEFAULT_REFRESH_AGE};
use crate::provider::{self, Outcome};

/// Apple's production host.
pub const PRODUCTION_ENDPOINT: &str = "https://api.push.apple.com";
/// Apple's development (sandbox) host, for apps built with the `development` APNs environment.
/// Tokens of one environment are `BadDeviceToken` on the other host.
pub const SANDBOX_ENDPOINT: &str = "https://api.sandbox.push.apple.com";
/// Largest payload APNs accepts for a regular remote notification, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Largest `apns-collapse-id` APNs accepts, in bytes.
pub const MAX_COLLAPSE_ID_BYTES: usize = 64;

/// Namespace of the UUID v5 `apns-id`s, so they cannot collide with v5 ids made elsewhere.
const APNS_ID_NAMESPACE: Uuid = Uuid::from_u128(0x96d0_ca45_6984_4e55_a393_d4e9_8a17_6221);

/// Settings of the APNs client (section `notify.apns:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApnsSettings {
    /// Base URL of APNs: [`PRODUCTION_ENDPOINT`] (default), [`SANDBOX_ENDPOINT`], or a local
    /// stand-in such as `http://127.0.0.1:8443` (spoken to in HTTP/2 cleartext).
    pub endpoint: String,
    /// The app's bundle id, sent as `apns-topic`. Required.
    pub topic: String,
    /// Id of the signing key (10 characters, from the developer account). Required.
    pub key_id: String,
    /// Apple developer team id, the `iss` of provider tokens. Required.
    pub team_id: String,
    /// Path of the signing key, the `.p8` file (PKCS#8 PEM). Required.
    pub key_path: PathBuf,
    /// How old a provider token may get before a new one is signed; clamped to Apple's 20 to
    /// 60 minutes.
    #[serde(with = "humantime_serde")]
    pub token_refresh: Duration,
    /// Timeout of connecting and of each request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for ApnsSettings {
    fn default() -> Self {
        Self {
            endpoint: PRODUCTION_ENDPOINT.into(),
            topic: String::new(),
            key_id: String::new(),
            team_id: String::new(),
            key_path: PathBuf::new(),
            token_refresh: DEFAULT_REFRESH_AGE,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// An APNs request without its `authorization` header, which [`ApnsClient::send`] adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsRequest {
    /// Request path: `/3/device/<device token>`.
    pub path: String,
    /// Headers as (lowercase name, value).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON payload.
    pub body: Vec<u8>,
    /// The `apns-id` header's value, also the provider message id if APNs does not echo it.
    pub apns_id: String,
}

/// The `apns-id` of a notification to a device: a UUID v5 of both, so a retried send carries
/// the same id and shows up as the same notification in Apple's delivery logs.
pub fn apns_id(notification_id: &str, device_token: &str) -> Uuid {
    // A NUL between the parts keeps ("ab", "c") and ("a", "bc") apart.
    let name = [notification_id.as_bytes(), b"\0", device_token.as_bytes()].concat();
    Uuid::new_v5(&APNS_ID_NAMESPACE, &name)
}

/// Builds the request for `push` to `device_token` at `now_ms` (Unix milliseconds), or the
/// outcome that makes sending pointless:
/// - a device token that is not hexadecimal → [`Outcome::PruneToken`] (APNs would answer
///   `BadDeviceToken`; registration validates tokens, so only corrupt data gets here);
/// - a collapse id over [`MAX_COLLAPSE_ID_BYTES`], a data key `aps` (it would overwrite the
///   alert), a payload over [`MAX_PAYLOAD_BYTES`], or an `expires_at` already past →
///   [`Outcome::Permanent`]. A long collapse id is refused rather than cut, since two cut ids
///   could collapse unrelated notifications into one.
///
/// Without a collapse id of its own, a push collapses by its notification id (when that fits).
pub fn build_request(
    topic: &str,
    device_token: &str,
    push: &PushMessage,
    now_ms: i64,
) -> Result<ApnsRequest, Outcome> {
    let permanent = |reason: String| Outcome::Permanent {
        reason: format!("apns: {reason} (not sent)"),
    };
    if device_token.is_empty() || !device_token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Outcome::PruneToken {
            reason: "apns BadDeviceToken: the device token is not hexadecimal (not sent)".into(),
        });
    }
    if push.data.contains_key("aps") {
        return Err(permanent(
            "the data key \"aps\" is reserved for the alert".into(),
        ));
    }
    let expiration = match push.expires_at_ms {
        None => 0,
        Some(expires_at) if expires_at <= now_ms => {
            return Err(permanent(format!(
                "the notification expired at {expires_at} ms, before it could be sent"
            )));
        }
        // Rounded up so that the notification never expires earlier than asked.
        Some(expires_at) => ceil_secs(expires_at),
    };

    let mut payload = serde_json::Map::new();
    for (key, value) in &push.data {
        payload.insert(key.clone(), value.clone().into());
    }
    payload.insert(
        "aps".into(),
        serde_json::json!({
            "alert": { "title": push.title, "body": push.body },
            "sound": "default",
        }),
    );
    let body = serde_json::Value::Object(payload).to_string().into_bytes();
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(permanent(format!(
            "payload is {} bytes, more than APNs' {MAX_PAYLOAD_BYTES}",
            body.len()
        )));
    }

    let apns_id = apns_id(&push.notification_id, device_token).to_string();
    let priority = match push.priority {
        PushPriority::High => "10",
        PushPriority::Normal => "5",
    };
    let mut headers = vec![
        ("apns-topic", topic.to_owned()),
        ("apns-push-type", "alert".to_owned()),
        ("apns-priority", priority.to_owned()),
        ("apns-expiration", expiration.to_string()),
        ("apns-id", apns_id.clone()),
    ];
    match &push.collapse_id {
        Some(collapse_id) if collapse_id.len() > MAX_COLLAPSE_ID_BYTES => {
            return Err(permanent(format!(
                "collapse id is {} bytes, more than APNs' {MAX_COLLAPSE_ID_BYTES}",
                collapse_id.len()
            )));
        }
        Some(collapse_id) => headers.push(("apns-collapse-id", collapse_id.clone())),
        // A resend after a crash between APNs' answer and the sent marker then replaces the
        // first copy on the device instead of showing twice.
        None if push.notification_id.len() <= MAX_COLLAPSE_ID_BYTES => {
            headers.push(("apns-collapse-id", push.notification_id.clone()));
        }
        None => {}
    }
    Ok(ApnsRequest {
        path: format!("/3/device/{device_token}"),
        headers,
        body,
        apns_id,
    })
}

/// Sends pushes to APNs. Cheap to share: one HTTP/2 connection is multiplexed by all sends.
#[derive(Debug)]
pub struct ApnsClient {
    endpoint: String,
    topic: String,
    signer: ApnsTokenSigner,
    http: reqwest::Client,
}

impl ApnsClient {
    /// Reads the signing key, builds the token signer and the HTTP/2 client.
    pub fn new(settings: &ApnsSettings) -> Result<Self, ChannelError> {
        let endpoint = endpoint_base("apns.endpoint", &settings.endpoint)?;
        required("apns.topic", &settings.topic)?;
        required("apns.key_id", &settings.key_id)?;
        required("apns.team_id", &settings.team_id)?;
        if settings.key_path.as_os_str().is_empty() {
            return Err(ChannelError::MissingSetting("apns.key_path"));
        }
        let pem = std::fs::read_to_string(&settings.key_path).map_err(|source| {
            ChannelError::ReadFile {
                what: "APNs key",
                path: settings.key_path.clone(),
                source,
            }
        })?;
        let signer = ApnsTokenSigner::new(&settings.key_id, &settings.team_id, &pem)?
            .with_refresh_age(settings.token_refresh);
        let http = http_client(
            &endpoint,
            Cleartext::Http2PriorKnowledge,
            settings.request_timeout,
        )?;
        Ok(Self {
            endpoint,
            topic: settings.topic.clone(),
            signer,
            http,
        })
    }

    /// Sends `push` to the device with `device_token` and says what to do next.
    ///
    /// On 403 `ExpiredProviderToken` or `InvalidProviderToken` the cached provider token is
    /// dropped (once, even if many sends fail with it at the same time), so the retry signs a
    /// fresh one.
    pub async fn send(&self, device_token: &str, push: &PushMessage) -> Outcome {
        let now_ms = unix_now_ms();
        let request = match build_request(&self.topic, device_token, push, now_ms) {
            Ok(request) => request,
            Err(outcome) => return outcome,
        };
        let now_unix = unix_secs(now_ms);
        let token = self.signer.token_at(now_unix);
        let mut builder = self
            .http
            .post(format!("{}{}", self.endpoint, request.path))
            .header("authorization", format!("bearer {token}"));
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let response = match builder.body(request.body).send().await {
            Ok(response) => response,
            Err(error) => return transport_retry("apns", &error),
        };
        let status = response.status().as_u16();
        let echoed_id = header_text(response.headers(), "apns-id");
        let retry_after = header_text(response.headers(), "retry-after");
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) => return transport_retry("apns", &error),
        };
        let reason = provider::apns_reason(&body);
        if status == 403
            && matches!(
                reason.as_deref(),
                Some("ExpiredProviderToken" | "InvalidProviderToken")
            )
        {
            self.invalidate_if_current(&token, now_unix);
        }
        provider::apns(
            status,
            reason.as_deref(),
            Some(echoed_id.as_deref().unwrap_or(&request.apns_id)),
            retry_after.as_deref(),
        )
    }

    /// Drops the cached provider token if it is still `rejected`. Concurrent sends that were
    /// rejected with the same token then cause one new signature, not one each: Apple throttles
    /// token updates (`TooManyProviderTokenUpdates`).
    fn invalidate_if_current(&self, rejected: &str, now_unix: u64) {
        if self.signer.token_at(now_unix) == rejected {
            self.signer.invalidate();
        }
    }
}

/// Unix seconds of a Unix-milliseconds instant; negative instants count as the epoch.
fn unix_secs(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests;
