//! The email client: sends one rendered email over SMTP through a pooled `lettre` transport.
//!
//! The message is built by the pure [`build_message`]: `multipart/alternative` with a text and
//! an HTML part (text only when there is no HTML), and a `Message-ID` derived from the
//! notification id, so a message sent twice after a redelivery is recognisable as one.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ChannelError, EmailMessage, error_chain, expose_optional_secret, required, transport_retry,
};
use crate::provider::Outcome;

/// Domain part of every `Message-ID`.
pub const MESSAGE_ID_DOMAIN: &str = "sixfold";

/// Namespace of the UUID v5 used as `Message-ID` for notification ids that cannot be one.
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5be1_8a0c_3d0f_4f7e_9a51_07c2_e4d6_b318);

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text, for the local development SMTP server only (the default, with port 2525).
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    Starttls,
    /// TLS from the first byte, "implicit TLS" (usually port 465).
    Tls,
}

/// Settings of the email client (section `notify.email:`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// SMTP server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// Connection security; `none` only for a development server on loopback.
    pub tls: SmtpTls,
    /// User name for SMTP AUTH; set together with `password`, or neither.
    pub username: Option<String>,
    /// Password for SMTP AUTH.
    #[serde(serialize_with = "expose_optional_secret")]
    pub password: Option<SecretString>,
    /// Sender mailbox, e.g. `Sixfold <noreply@sixfold.local>`.
    pub from: String,
    /// Timeout of each SMTP command, connecting included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Most SMTP connections kept open at once.
    pub max_connections: u32,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Sixfold <noreply@sixfold.local>".into(),
            timeout: Duration::from_secs(10),
            max_connections: 10,
        }
    }
}

/// The `Message-ID` of a notification's email: `<notification_id@sixfold>`, or a UUID v5 of
/// the id in its place when the id is not a valid `id-left` (RFC 5322 dot-atom; only
/// `[A-Za-z0-9._-]` is kept as is).
pub fn message_id(notification_id: &str) -> String {
    let usable = !notification_id.is_empty()
        && notification_id.len() <= 128
        && notification_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !notification_id.starts_with('.')
        && !notification_id.ends_with('.')
        && !notification_id.contains("..");
    if usable {
        format!("<{notification_id}@{MESSAGE_ID_DOMAIN}>")
    } else {
        let id = Uuid::new_v5(&MESSAGE_ID_NAMESPACE, notification_id.as_bytes());
        format!("<{id}@{MESSAGE_ID_DOMAIN}>")
    }
}

/// Builds the message for `email` from `from`, or [`Outcome::Permanent`] when the recipient
/// address is not valid. Line breaks in the subject become spaces, so a rendered subject can
/// never add a header.
pub fn build_message(from: &Mailbox, email: &EmailMessage) -> Result<Message, Outcome> {
    let to: Mailbox = email.to.parse().map_err(|error| Outcome::Permanent {
        reason: format!("email: invalid recipient address {:?}: {error}", email.to),
    })?;
    let subject: String = email
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id(&email.notification_id)));
    let built = match &email.html_body {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            email.text_body.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(email.text_body.clone())),
    };
    built.map_err(|error| Outcome::Permanent {
        reason: format!("email: cannot build the message: {error}"),
    })
}

/// What to do after the SMTP server refused or the connection failed: a 5xx reply is
/// permanent (unknown mailbox, policy rejection), a 4xx reply transient; a failure to connect,
/// a TLS failure, a timeout or a broken connection is retried.
pub fn classify_smtp_error(error: &smtp::Error) -> Outcome {
    if error.is_permanent() {
        Outcome::Permanent {
            reason: format!("smtp {}", error_chain(error)),
        }
    } else if error.is_transient() {
        Outcome::Retry {
            reason: format!("smtp {}", error_chain(error)),
            retry_after: None,
        }
    } else {
        transport_retry("smtp", error)
    }
}

/// Sends emails over SMTP; connections are pooled and reused between sends.
pub struct EmailClient {
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for EmailClient {
    // Written by hand so that the transport's credentials never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailClient")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailClient {
    /// Checks the settings and sets up the pooled transport. No connection is opened until the
    /// first send. Must be called inside a Tokio runtime: the pool starts a cleanup task.
    pub fn new(settings: &EmailSettings) -> Result<Self, ChannelError> {
        required("email.host", &settings.host)?;
        let from: Mailbox =
            settings
                .from
                .parse()
                .map_err(|error| ChannelError::InvalidSetting {
                    setting: "email.from",
                    reason: format!("{:?}: {error}", settings.from),
                })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ChannelError::NoRuntime("email"));
        }
        let builder = match settings.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(ChannelError::Smtp)?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(ChannelError::Smtp)?,
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(settings.timeout))
            .pool_config(PoolConfig::new().max_size(settings.max_connections.max(1)));
        match (&settings.username, &settings.password) {
            (Some(username), Some(password)) => {
                builder = builder.credentials(Credentials::new(
                    username.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            (None, None) => {}
            _ => {
                return Err(ChannelError::InvalidSetting {
                    setting: "email.username",
                    reason: "set username and password together, or neither".into(),
                });
            }
        }
        Ok(Self {
            from,
            transport: builder.build(),
        })
    }

    /// Sends `email` and says what to do next. The provider message id of a sent email is the
    /// server's reply text (for example `2.0.0 Ok: queued as 4F3A1`).
    pub async fn send(&self, email: &EmailMessage) -> Outcome {
        let message = match build_message(&self.from, email) {
            Ok(message) => message,
            Err(outcome) => return outcome,
        };
        match self.transport.send(message).await {
            Ok(response) => {
                let text = response.message().collect::<Vec<_>>().join(" ");
                Outcome::Sent {
                    provider_message_id: (!text.is_empty()).then_some(text),
                }
            }
            Err(error) => classify_smtp_error(&error),
        }
    }
}

#[cfg(test)]
mod tests;
