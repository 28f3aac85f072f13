//! The SMS client: sends one text message through the Twilio Programmable Messaging API
//! (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP basic auth, form-encoded).
//!
//! The form is built by the pure [`build_form`]; [`SmsClient::send`] posts it and classifies
//! the answer with [`provider::twilio`]. Twilio has no idempotency key for creating messages,
//! so a retry after a lost answer can send the text twice.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    ChannelError, Cleartext, SmsMessage, endpoint_base, header_text, http_client, required,
    transport_retry,
};
use crate::provider::{self, Outcome};

/// Twilio's API host.
pub const DEFAULT_ENDPOINT: &str = "https://api.twilio.com";

/// Settings of the SMS client (section `notify.sms:`). Exactly one of `from` and
/// `messaging_service_sid` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    /// Base URL of the Twilio API: [`DEFAULT_ENDPOINT`], or a local stand-in such as
    /// `http://127.0.0.1:8445`.
    pub endpoint: String,
    /// Account SID (`AC...`), the basic-auth user name. Required.
    pub account_sid: String,
    /// Auth token, the basic-auth password. Required.
    #[serde(serialize_with = "sixfold_runtime::settings::expose_secret")]
    pub auth_token: SecretString,
    /// Sender phone number in E.164 form (or an alphanumeric sender id where allowed).
    pub from: Option<String>,
    /// Messaging Service SID (`MG...`), sending from the service's number pool instead.
    pub messaging_service_sid: Option<String>,
    /// Timeout of connecting and of each request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            account_sid: String::new(),
            auth_token: SecretString::default(),
            from: None,
            messaging_service_sid: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Who a text message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsSender {
    /// A phone number or sender id, sent as `From`.
    From(String),
    /// A Messaging Service, sent as `MessagingServiceSid`.
    MessagingService(String),
}

/// The form fields of a "create Message" request: `To`, `From` or `MessagingServiceSid`, and
/// `Body`.
pub fn build_form(sender: &SmsSender, sms: &SmsMessage) -> Vec<(&'static str, String)> {
    let sender_field = match sender {
        SmsSender::From(from) => ("From", from.clone()),
        SmsSender::MessagingService(sid) => ("MessagingServiceSid", sid.clone()),
    };
    vec![
        ("To", sms.to.clone()),
        sender_field,
        ("Body", sms.body.clone()),
    ]
}

/// Sends text messages through Twilio.
pub struct SmsClient {
    messages_url: String,
    account_sid: String,
    auth_token: SecretString,
    sender: SmsSender,
    http: reqwest::Client,
}

impl std::fmt::Debug for SmsClient {
    // Written by hand to make plain that the auth token is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsClient")
            .field("messages_url", &self.messages_url)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl SmsClient {
    /// Checks the settings and builds the HTTP client.
    pub fn new(settings: &SmsSettings) -> Result<Self, ChannelError> {
        let endpoint = endpoint_base("sms.endpoint", &settings.endpoint)?;
        required("sms.account_sid", &settings.account_sid)?;
        if !settings
            .account_sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ChannelError::InvalidSetting {
                setting: "sms.account_sid",
                reason: "expected letters and digits (AC...)".into(),
            });
        }
        required("sms.auth_token", settings.auth_token.expose_secret())?;
        let non_blank = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let sender = match (
            non_blank(&settings.from),
            non_blank(&settings.messaging_service_sid),
        ) {
            (Some(from), None) => SmsSender::From(from),
            (None, Some(sid)) => SmsSender::MessagingService(sid),
            (None, None) => return Err(ChannelError::MissingSetting("sms.from")),
            (Some(_), Some(_)) => {
                return Err(ChannelError::InvalidSetting {
                    setting: "sms.from",
                    reason: "set either from or messaging_service_sid, not both".into(),
                });
            }
        };
        let http = http_client(&endpoint, Cleartext::Http1, settings.request_timeout)?;
        Ok(Self {
            messages_url: format!(
                "{endpoint}/2010-04-01/Accounts/{}/Messages.json",
                settings.account_sid
            ),
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
            sender,
            http,
        })
    }

    /// Sends `sms` and says what to do next.
    pub async fn send(&self, sms: &SmsMessage) -> Outcome {
        let request = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&build_form(&self.sender, sms));
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_retry("twilio", &error),
        };
        let status = response.status().as_u16();
        let retry_after = header_text(response.headers(), "retry-after");
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) => return transport_retry("twilio", &error),
        };
        provider::twilio(status, &body, retry_after.as_deref())
    }
}

#[cfg(test)]
mod tests;
