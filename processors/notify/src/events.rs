//! Notification events, as serde types matching `schemas/avro/notify.*.avsc`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::template::Channel;

/// `schemas/avro/notify.requested.avsc`.
pub const NOTIFY_REQUESTED_SCHEMA: &str =
    include_str!("../../../schemas/avro/notify.requested.avsc");
/// `schemas/avro/notify.push.avsc`.
pub const NOTIFY_PUSH_SCHEMA: &str = include_str!("../../../schemas/avro/notify.push.avsc");
/// `schemas/avro/notify.email.avsc`.
pub const NOTIFY_EMAIL_SCHEMA: &str = include_str!("../../../schemas/avro/notify.email.avsc");
/// `schemas/avro/notify.sms.avsc`.
pub const NOTIFY_SMS_SCHEMA: &str = include_str!("../../../schemas/avro/notify.sms.avsc");
/// `schemas/avro/notify.status.avsc`.
pub const NOTIFY_STATUS_SCHEMA: &str = include_str!("../../../schemas/avro/notify.status.avsc");

/// The `Channel` enum as Avro symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AvroChannel {
    /// A channel this reader does not know; skipped (counted).
    Unknown,
    /// APNs and FCM.
    Push,
    /// SMTP.
    Email,
    /// Twilio.
    Sms,
}

impl AvroChannel {
    /// The template channel, `None` for [`AvroChannel::Unknown`].
    pub fn channel(self) -> Option<Channel> {
        match self {
            Self::Unknown => None,
            Self::Push => Some(Channel::Push),
            Self::Email => Some(Channel::Email),
            Self::Sms => Some(Channel::Sms),
        }
    }
}

impl From<Channel> for AvroChannel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Push => Self::Push,
            Channel::Email => Self::Email,
            Channel::Sms => Self::Sms,
        }
    }
}

/// Delivery priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    /// May wait.
    Low,
    /// The default.
    #[default]
    Normal,
    /// APNs priority 10, FCM high.
    High,
}

/// Outcome of one step of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// A symbol this reader does not know.
    Unknown,
    /// Rendered and handed to the channel topic.
    Queued,
    /// Held until `deferred_until` (quiet hours or `send_at`).
    Deferred,
    /// Accepted by the provider.
    Sent,
    /// A transient failure, sent to a retry topic.
    Retrying,
    /// A permanent failure or retries exhausted.
    Failed,
    /// The user disabled the channel.
    DroppedByPreference,
    /// Over the user's frequency cap.
    RateLimited,
    /// The notification id was seen within 24 h.
    Duplicate,
}

/// Another system asked to notify a user (key: user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyRequested {
    /// Unique event id.
    pub event_id: String,
    /// When it was asked, ms since the epoch.
    pub occurred_at: i64,
    /// The idempotency key.
    pub notification_id: String,
    /// Recipient; the record key.
    pub user_id: String,
    /// Template to render.
    pub template_id: String,
    /// Channels asked for; empty means every channel the template has.
    pub channels: Vec<AvroChannel>,
    /// Template variables.
    pub data: BTreeMap<String, String>,
    /// Priority.
    pub priority: Priority,
    /// Send no earlier than this.
    #[serde(default)]
    pub send_at: Option<i64>,
    /// Locale for rendering.
    #[serde(default)]
    pub locale: Option<String>,
}

/// A rendered push notification for every device of a user (key: user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyPush {
    /// Unique event id.
    pub event_id: String,
    /// When it was rendered.
    pub occurred_at: i64,
    /// The notification.
    pub notification_id: String,
    /// Recipient.
    pub user_id: String,
    /// Template it was rendered from.
    pub template_id: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Custom data for the app.
    pub data: BTreeMap<String, String>,
    /// Priority.
    pub priority: Priority,
    /// Replaces an earlier notification with the same id on the device.
    #[serde(default)]
    pub collapse_id: Option<String>,
    /// Not delivered after this.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A rendered email (key: user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyEmail {
    /// Unique event id.
    pub event_id: String,
    /// When it was rendered.
    pub occurred_at: i64,
    /// The notification.
    pub notification_id: String,
    /// Recipient user.
    pub user_id: String,
    /// Template it was rendered from.
    pub template_id: String,
    /// Address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text part.
    pub text_body: String,
    /// HTML part.
    #[serde(default)]
    pub html_body: Option<String>,
}

/// A rendered text message (key: user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifySms {
    /// Unique event id.
    pub event_id: String,
    /// When it was rendered.
    pub occurred_at: i64,
    /// The notification.
    pub notification_id: String,
    /// Recipient user.
    pub user_id: String,
    /// Template it was rendered from.
    pub template_id: String,
    /// E.164 number.
    pub to: String,
    /// Text.
    pub body: String,
}

/// What happened to a notification on a channel (key: notification id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyStatus {
    /// Unique event id.
    pub event_id: String,
    /// When it happened.
    pub occurred_at: i64,
    /// The notification.
    pub notification_id: String,
    /// Recipient.
    pub user_id: String,
    /// The channel, when the outcome is about one.
    #[serde(default)]
    pub channel: Option<AvroChannel>,
    /// The outcome.
    pub status: DeliveryStatus,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// The device, for push.
    #[serde(default)]
    pub device_id: Option<String>,
    /// `apns`, `fcm`, `smtp`, `twilio`.
    #[serde(default)]
    pub provider: Option<String>,
    /// The provider's id for the message.
    #[serde(default)]
    pub provider_message_id: Option<String>,
    /// Machine-readable reason of a failure.
    #[serde(default)]
    pub error_code: Option<String>,
    /// Human-readable reason.
    #[serde(default)]
    pub error: Option<String>,
    /// With `DEFERRED`: when it will be sent.
    #[serde(default)]
    pub deferred_until: Option<i64>,
    /// With `DEFERRED`: the held request as JSON, for a replay to hold it again.
    #[serde(default)]
    pub held_request: Option<String>,
}

impl NotifyStatus {
    /// A status event for `notification_id` with the optional fields empty.
    pub fn new(
        notification_id: &str,
        user_id: &str,
        channel: Option<Channel>,
        status: DeliveryStatus,
        now_ms: i64,
    ) -> Self {
        Self {
            event_id: new_event_id(),
            occurred_at: now_ms,
            notification_id: notification_id.to_owned(),
            user_id: user_id.to_owned(),
            channel: channel.map(Into::into),
            status,
            attempt: 1,
            device_id: None,
            provider: None,
            provider_message_id: None,
            error_code: None,
            error: None,
            deferred_until: None,
            held_request: None,
        }
    }
}

/// A fresh event id.
pub fn new_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
