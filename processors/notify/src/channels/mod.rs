//! Channel clients: the calls a channel worker makes to deliver one rendered message (a
//! `notify.push`, `notify.email` or `notify.sms` event) and the [`Outcome`] it acts on.
//!
//! - [`apns::ApnsClient`]: Apple Push Notification service over HTTP/2, token-based auth.
//! - [`fcm::FcmClient`]: Firebase Cloud Messaging HTTP v1 with a service-account OAuth token.
//! - [`email::EmailClient`]: SMTP through a pooled `lettre` transport.
//! - [`sms::SmsClient`]: the Twilio Messages API.
//!
//! Every `send` returns an [`Outcome`] and never fails otherwise: provider answers are
//! classified by [`crate::provider`], and transport failures (connection refused, TLS, timeout,
//! a connection cut mid-answer) become [`Outcome::Retry`]. Only construction can fail, with a
//! [`ChannelError`] for a bad setting, an unreadable key or a client that cannot be built.
//!
//! # Endpoints are settings
//! Each provider's host is a setting with the real host as default, so tests and `make run`
//! point the clients at local stand-ins. An `http://` push endpoint is spoken to in HTTP/2
//! cleartext with prior knowledge (the stand-ins are h2c servers, as APNs is HTTP/2 only); an
//! `https://` endpoint negotiates HTTP/2 through ALPN over rustls.
//!
//! # Why not `a2` for APNs
//! The `a2` crate hard-codes Apple's production and sandbox hosts, so it cannot talk to a
//! stand-in, and it would bring a second HTTP stack. The client here keeps to Apple's
//! documented headers and error reasons instead, signs provider tokens with
//! [`crate::apns_token`] and classifies answers with [`crate::provider::apns`].
//!
//! # Idempotency
//! A redelivered event is sent again (at-least-once), so the identifiers a provider or a mail
//! client can de-duplicate on are derived from the notification id rather than drawn at
//! random: the APNs `apns-id` is a UUID v5 of the notification id and device token
//! ([`apns::apns_id`]), and the email `Message-ID` is `<notification_id@sixfold>`
//! ([`email::message_id`]). FCM and Twilio have no idempotency key for sends.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use crate::apns_token::ApnsTokenError;
use crate::provider::Outcome;

pub mod apns;
pub mod email;
pub mod fcm;
pub mod sms;

#[cfg(test)]
mod test_support;

pub use apns::{ApnsClient, ApnsSettings};
pub use email::{EmailClient, EmailSettings, SmtpTls};
pub use fcm::{FcmClient, FcmSettings};
pub use sms::{SmsClient, SmsSettings};

/// Delivery priority of a push notification. The event's `LOW` maps to [`PushPriority::Normal`]
/// (neither provider has a lower priority that still shows an alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushPriority {
    /// Delivered when convenient for the device's power use (APNs 5, FCM `NORMAL`).
    #[default]
    Normal,
    /// Delivered immediately (APNs 10, FCM `HIGH`).
    High,
}

/// A rendered push notification for one device, from a `notify.push` event; shared by APNs
/// and FCM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushMessage {
    /// Id of the notification; with the device, the idempotency key of the send.
    pub notification_id: String,
    /// Notification title.
    pub title: String,
    /// Notification body text.
    pub body: String,
    /// Custom key/value payload delivered to the app alongside the alert.
    pub data: BTreeMap<String, String>,
    /// Delivery priority.
    pub priority: PushPriority,
    /// Newer notifications with the same id replace older ones on the device.
    pub collapse_id: Option<String>,
    /// Drop the notification if it cannot be delivered by then (Unix milliseconds); `None`
    /// leaves it to the provider's default.
    pub expires_at_ms: Option<i64>,
}

/// A rendered email for one recipient, from a `notify.email` event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailMessage {
    /// Id of the notification; the `Message-ID` is derived from it.
    pub notification_id: String,
    /// Recipient address (RFC 5322 addr-spec, or a mailbox with a display name).
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text_body: String,
    /// HTML part; `None` sends a text-only message.
    pub html_body: Option<String>,
}

/// A rendered text message for one phone number, from a `notify.sms` event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmsMessage {
    /// Id of the notification (for logs; Twilio has no idempotency key).
    pub notification_id: String,
    /// Recipient phone number in E.164 form.
    pub to: String,
    /// Message text.
    pub body: String,
}

/// Why a channel client could not be built. Sending never fails with this: it returns an
/// [`Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A required setting is empty.
    #[error("setting {0} is not set")]
    MissingSetting(&'static str),
    /// A setting has a value the client cannot use.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// Name of the setting, as in the settings file.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A key or credentials file could not be read.
    #[error("cannot read {what} {path}")]
    ReadFile {
        /// What the file is (`APNs key`, `FCM service account`).
        what: &'static str,
        /// Path from the settings.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The APNs signing key, key id or team id was rejected.
    #[error("invalid APNs signing key")]
    ApnsKey(#[from] ApnsTokenError),
    /// The FCM service-account file is not a usable service-account key.
    #[error("invalid FCM service account {path}: {reason}")]
    ServiceAccount {
        /// Path from the settings.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up failed).
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The SMTP transport could not be set up.
    #[error("cannot set up the SMTP transport")]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// The client was built outside a Tokio runtime, which its connection pool needs.
    #[error("the {0} client must be built inside a Tokio runtime")]
    NoRuntime(&'static str),
}

/// How a client speaks HTTP/2 to a cleartext (`http://`) endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cleartext {
    /// HTTP/2 with prior knowledge (h2c): for APNs and FCM stand-ins.
    Http2PriorKnowledge,
    /// HTTP/1.1: for the Twilio stand-in, as Twilio's API is plain HTTPS.
    Http1,
}

/// Checks that `endpoint` is an `http://` or `https://` base URL without path, query or
/// fragment, and returns it without a trailing slash.
fn endpoint_base(setting: &'static str, endpoint: &str) -> Result<String, ChannelError> {
    let invalid = |reason: &str| ChannelError::InvalidSetting {
        setting,
        reason: format!("{endpoint:?}: {reason}"),
    };
    let url = reqwest::Url::parse(endpoint).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("expected an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("expected scheme, host and port only"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Builds the HTTP client for `endpoint` (already checked by [`endpoint_base`]): rustls with
/// ALPN for `https://`, the `cleartext` mode for `http://`, and `timeout` for connecting and
/// for the whole request.
fn http_client(
    endpoint: &str,
    cleartext: Cleartext,
    timeout: Duration,
) -> Result<reqwest::Client, ChannelError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout);
    if endpoint.starts_with("http://") && cleartext == Cleartext::Http2PriorKnowledge {
        builder = builder.http2_prior_knowledge();
    }
    builder.build().map_err(ChannelError::HttpClient)
}

/// Checks a required text setting is not blank.
fn required(setting: &'static str, value: &str) -> Result<(), ChannelError> {
    if value.trim().is_empty() {
        Err(ChannelError::MissingSetting(setting))
    } else {
        Ok(())
    }
}

/// The retry outcome for a request that failed before a complete answer arrived.
fn transport_retry(provider: &str, error: &dyn StdError) -> Outcome {
    Outcome::Retry {
        reason: format!("{provider} transport error: {}", error_chain(error)),
        retry_after: None,
    }
}

/// An error and its sources joined with `": "`, so the reason in a retry or dead-letter record
/// says what actually failed (`connection refused`, `operation timed out`), not only
/// "error sending request".
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some libraries repeat their source's text in their own; skip the repetition.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A response header as text, if present and valid UTF-8.
fn header_text(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Milliseconds since the Unix epoch; a clock before 1970 counts as the epoch.
fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whole seconds in `ms` milliseconds, rounded up (towards positive infinity), so that an
/// expiry converted to seconds is never earlier than asked.
fn ceil_secs(ms: i64) -> i64 {
    ms / 1000 + i64::from(ms % 1000 > 0)
}

/// Serializes an optional secret setting in clear text, for the settings loader's layering
/// (see `sixfold_runtime::settings::expose_secret`).
fn expose_optional_secret<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => sixfold_runtime::settings::expose_secret(secret, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_base_accepts_scheme_host_port_and_strips_the_slash() {
        assert_eq!(
            endpoint_base("x", "http://127.0.0.1:8443/").expect("valid"),
            "http://127.0.0.1:8443"
        );
        assert_eq!(
            endpoint_base("x", "https://api.push.apple.com").expect("valid"),
            "https://api.push.apple.com"
        );
        for bad in [
            "ftp://example.com",
            "http://example.com/v1",
            "https://example.com/?a=b",
            "not a url",
        ] {
            assert!(
                matches!(
                    endpoint_base("x", bad),
                    Err(ChannelError::InvalidSetting { setting: "x", .. })
                ),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn ceil_secs_rounds_up() {
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(1000), 1);
        assert_eq!(ceil_secs(1001), 2);
        assert_eq!(ceil_secs(-1500), -1);
    }

    #[test]
    fn error_chain_joins_sources_without_repeating_them() {
        #[derive(Debug, thiserror::Error)]
        #[error("error sending request")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(
            error_chain(&error),
            "error sending request: connection refused"
        );
    }
}
