//! The FCM client: sends one push to one Android or web device through Firebase Cloud
//! Messaging HTTP v1 (`POST /v1/projects/{project}/messages:send`).
//!
//! Authentication is an OAuth 2.0 access token for the `firebase.messaging` scope, obtained
//! with the service account's key by the JWT-bearer grant at the key file's `token_uri`.
//! `yup-oauth2` signs the assertion (RS256 through rustls' aws-lc-rs provider) and posts it;
//! this module caches the access token until 5 minutes before it expires and drops it when FCM
//! answers 401. The `google-fcm1` crate is not used: only this one endpoint is called.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use yup_oauth2::authenticator::DefaultAuthenticator;
use yup_oauth2::{ServiceAccountAuthenticator, ServiceAccountKey};

use super::{
    ChannelError, Cleartext, PushMessage, PushPriority, ceil_secs, endpoint_base, error_chain,
    header_text, http_client, transport_retry, unix_now_ms,
};
use crate::provider::{self, Outcome};

/// Google's FCM host.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";
/// The OAuth 2.0 scope for sending with FCM HTTP v1.
pub const MESSAGING_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// An access token is refreshed this long before it expires (or halfway through its life, if
/// that is sooner), so that no request goes out with a token about to lapse.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Longest Android `ttl` FCM accepts: 4 weeks.
pub const MAX_TTL_SECS: i64 = 28 * 24 * 3600;

/// Largest `apns-collapse-id` APNs accepts, in bytes (FCM forwards it to APNs).
const MAX_APNS_COLLAPSE_ID_BYTES: usize = 64;

/// Settings of the FCM client (section `notify.fcm:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FcmSettings {
    /// Base URL of FCM: [`DEFAULT_ENDPOINT`], or a local stand-in such as
    /// `http://127.0.0.1:8444` (spoken to in HTTP/2 cleartext).
    pub endpoint: String,
    /// Firebase project id; when unset, the `project_id` of the service account file.
    pub project_id: Option<String>,
    /// Path of the service account key (JSON with `client_email`, `private_key`, `token_uri`).
    /// Required.
    pub service_account_path: PathBuf,
    /// Timeout of connecting and of each request, to FCM and to the token endpoint.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for FcmSettings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            project_id: None,
            service_account_path: PathBuf::new(),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Builds the `messages:send` body for `push` to the registration token `device_token` at
/// `now_ms` (Unix milliseconds), or the outcome that makes sending pointless: a data key FCM
/// reserves (`from`, `notification`, `message_type`, or starting with `google` or `gcm`) or an
/// `expires_at` already past → [`Outcome::Permanent`].
///
/// A collapse id becomes the Android `collapse_key`, and the `apns-collapse-id` when it fits
/// APNs' 64 bytes (longer ones are left out of the APNs headers only).
pub fn build_message(
    device_token: &str,
    push: &PushMessage,
    now_ms: i64,
) -> Result<serde_json::Value, Outcome> {
    let permanent = |reason: String| Outcome::Permanent {
        reason: format!("fcm: {reason} (not sent)"),
    };
    if let Some(key) = push.data.keys().find(|key| is_reserved_data_key(key)) {
        return Err(permanent(format!(
            "the data key {key:?} is reserved by FCM"
        )));
    }
    let (android_priority, apns_priority) = match push.priority {
        PushPriority::High => ("HIGH", "10"),
        PushPriority::Normal => ("NORMAL", "5"),
    };
    let mut android = serde_json::json!({ "priority": android_priority });
    let mut apns_headers = serde_json::json!({ "apns-priority": apns_priority });
    if let Some(expires_at) = push.expires_at_ms {
        if expires_at <= now_ms {
            return Err(permanent(format!(
                "the notification expired at {expires_at} ms, before it could be sent"
            )));
        }
        let ttl = ceil_secs(expires_at - now_ms).min(MAX_TTL_SECS);
        android["ttl"] = format!("{ttl}s").into();
    }
    if let Some(collapse_id) = &push.collapse_id {
        android["collapse_key"] = collapse_id.as_str().into();
        if collapse_id.len() <= MAX_APNS_COLLAPSE_ID_BYTES {
            apns_headers["apns-collapse-id"] = collapse_id.as_str().into();
        }
    }
    Ok(serde_json::json!({
        "message": {
            "token": device_token,
            "notification": { "title": push.title, "body": push.body },
            "data": push.data,
            "android": android,
            "apns": { "headers": apns_headers },
        }
    }))
}

/// Whether FCM rejects `key` as a data key ("Build send requests": reserved words).
fn is_reserved_data_key(key: &str) -> bool {
    matches!(key, "from" | "notification" | "message_type")
        || key.starts_with("google")
        || key.starts_with("gcm")
}

/// An access token and when to stop using it.
struct CachedAccessToken {
    value: String,
    refresh_at_unix: i64,
}

/// When an access token expiring at `expires_at_unix` should be replaced: [`TOKEN_REFRESH_MARGIN`]
/// before expiry, or halfway through its remaining life if that is shorter. A token without an
/// expiry is used for one margin's length.
fn refresh_at(expires_at_unix: Option<i64>, now_unix: i64) -> i64 {
    let margin = i64::try_from(TOKEN_REFRESH_MARGIN.as_secs()).unwrap_or(i64::MAX);
    match expires_at_unix {
        Some(expires_at) => expires_at - margin.min((expires_at - now_unix).max(0) / 2),
        None => now_unix + margin,
    }
}

/// Sends pushes through FCM HTTP v1. Share one client: it caches the access token and
/// multiplexes one HTTP/2 connection.
pub struct FcmClient {
    send_url: String,
    auth: DefaultAuthenticator,
    http: reqwest::Client,
    /// Behind an async lock so that concurrent sends wait for one token refresh instead of each
    /// starting their own; it is held across `.await` only while refreshing.
    access_token: Mutex<Option<CachedAccessToken>>,
}

impl std::fmt::Debug for FcmClient {
    // Written by hand: the authenticator holds the private key and the cache a bearer token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmClient")
            .field("send_url", &self.send_url)
            .finish_non_exhaustive()
    }
}

impl FcmClient {
    /// Reads the service account file, builds the token flow and the HTTP/2 client. No token
    /// is fetched until the first send.
    pub async fn new(settings: &FcmSettings) -> Result<Self, ChannelError> {
        let endpoint = endpoint_base("fcm.endpoint", &settings.endpoint)?;
        let path = &settings.service_account_path;
        if path.as_os_str().is_empty() {
            return Err(ChannelError::MissingSetting("fcm.service_account_path"));
        }
        let json = tokio::fs::read(path)
            .await
            .map_err(|source| ChannelError::ReadFile {
                what: "FCM service account",
                path: path.clone(),
                source,
            })?;
        let key = parse_service_account(&json).map_err(|reason| service_account(path, reason))?;
        let project_id = settings
            .project_id
            .as_deref()
            .or(key.project_id.as_deref())
            .filter(|id| !id.trim().is_empty())
            .ok_or(ChannelError::MissingSetting("fcm.project_id"))?
            .to_owned();
        if !project_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
        {
            return Err(ChannelError::InvalidSetting {
                setting: "fcm.project_id",
                reason: format!("{project_id:?} is not a Google Cloud project id"),
            });
        }
        let auth = ServiceAccountAuthenticator::builder(key)
            .with_timeout(settings.request_timeout)
            .build()
            .await
            .map_err(|error| service_account(path, error_chain(&error)))?;
        let http = http_client(
            &endpoint,
            Cleartext::Http2PriorKnowledge,
            settings.request_timeout,
        )?;
        Ok(Self {
            send_url: format!("{endpoint}/v1/projects/{project_id}/messages:send"),
            auth,
            http,
            access_token: Mutex::new(None),
        })
    }

    /// Sends `push` to the device with registration token `device_token` and says what to do
    /// next. A failure to get an access token is a [`Outcome::Retry`]; a 401 from FCM drops
    /// the cached token so the retry fetches a new one.
    pub async fn send(&self, device_token: &str, push: &PushMessage) -> Outcome {
        let now_ms = unix_now_ms();
        let message = match build_message(device_token, push, now_ms) {
            Ok(message) => message,
            Err(outcome) => return outcome,
        };
        let token = match self.access_token(now_ms / 1000).await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let request = self
            .http
            .post(&self.send_url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(message.to_string());
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_retry("fcm", &error),
        };
        let status = response.status().as_u16();
        let retry_after = header_text(response.headers(), "retry-after");
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) => return transport_retry("fcm", &error),
        };
        if status == 401 {
            self.forget_access_token(&token).await;
        }
        provider::fcm(status, &body, retry_after.as_deref())
    }

    /// The cached access token, or a new one from the token endpoint.
    async fn access_token(&self, now_unix: i64) -> Result<String, Outcome> {
        let mut cached = self.access_token.lock().await;
        if let Some(token) = cached.as_ref()
            && now_unix < token.refresh_at_unix
        {
            return Ok(token.value.clone());
        }
        let retry = |reason: String| Outcome::Retry {
            reason: format!("fcm access token: {reason}"),
            retry_after: None,
        };
        // Always a new token: the cache above decides freshness, with a wider margin than
        // yup-oauth2's own one minute.
        let fresh = self
            .auth
            .force_refreshed_token(&[MESSAGING_SCOPE])
            .await
            .map_err(|error| retry(error_chain(&error)))?;
        let value = fresh
            .token()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| retry("the token endpoint returned no access token".into()))?
            .to_owned();
        let expires_at = fresh.expiration_time().map(|t| t.unix_timestamp());
        *cached = Some(CachedAccessToken {
            value: value.clone(),
            refresh_at_unix: refresh_at(expires_at, now_unix),
        });
        Ok(value)
    }

    /// Drops the cached access token if it is still `rejected` (another send may have
    /// replaced it already).
    async fn forget_access_token(&self, rejected: &str) {
        let mut cached = self.access_token.lock().await;
        if cached.as_ref().is_some_and(|token| token.value == rejected) {
            *cached = None;
        }
    }
}

/// Parses a service account key file and checks the fields the token flow needs.
fn parse_service_account(json: &[u8]) -> Result<ServiceAccountKey, String> {
    let key = yup_oauth2::parse_service_account_key(json).map_err(|e| e.to_string())?;
    if key.client_email.trim().is_empty() {
        return Err("client_email is empty".into());
    }
    if key.private_key.trim().is_empty() {
        return Err("private_key is empty".into());
    }
    if !(key.token_uri.starts_with("https://") || key.token_uri.starts_with("http://")) {
        return Err(format!(
            "token_uri {:?} is not an http(s) URL",
            key.token_uri
        ));
    }
    Ok(key)
}

/// A [`ChannelError::ServiceAccount`] for the file at `path`.
fn service_account(path: &Path, reason: String) -> ChannelError {
    ChannelError::ServiceAccount {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests;
