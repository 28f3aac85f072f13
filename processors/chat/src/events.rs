//! Chat's events, as serde types matching `schemas/avro/chat.*.avsc`.

use serde::{Deserialize, Serialize};

use crate::protocol::{self, ContentType, ReceiptKind};

/// `schemas/avro/chat.sent.avsc`.
pub const CHAT_SENT_SCHEMA: &str = include_str!("../../../schemas/avro/chat.sent.avsc");
/// `schemas/avro/chat.receipt.avsc`.
pub const CHAT_RECEIPT_SCHEMA: &str = include_str!("../../../schemas/avro/chat.receipt.avsc");
/// `schemas/avro/chat.fanout.avsc`.
pub const CHAT_FANOUT_SCHEMA: &str = include_str!("../../../schemas/avro/chat.fanout.avsc");
/// `schemas/avro/chat.membership.avsc`.
pub const CHAT_MEMBERSHIP_SCHEMA: &str = include_str!("../../../schemas/avro/chat.membership.avsc");

/// The `ContentType` enum as Avro symbols; unknown symbols read as `FILE` (the schema default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AvroContentType {
    /// Plain text.
    Text,
    /// An image with a caption.
    Image,
    /// Any other attachment with a caption.
    File,
}

impl From<ContentType> for AvroContentType {
    fn from(value: ContentType) -> Self {
        match value {
            ContentType::Text => Self::Text,
            ContentType::Image => Self::Image,
            ContentType::File => Self::File,
        }
    }
}

impl From<AvroContentType> for ContentType {
    fn from(value: AvroContentType) -> Self {
        match value {
            AvroContentType::Text => Self::Text,
            AvroContentType::Image => Self::Image,
            AvroContentType::File => Self::File,
        }
    }
}

/// The `ReceiptKind` enum as Avro symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AvroReceiptKind {
    /// Reached the device.
    Delivered,
    /// Seen.
    Read,
}

impl From<ReceiptKind> for AvroReceiptKind {
    fn from(value: ReceiptKind) -> Self {
        match value {
            ReceiptKind::Delivered => Self::Delivered,
            ReceiptKind::Read => Self::Read,
        }
    }
}

impl From<AvroReceiptKind> for ReceiptKind {
    fn from(value: AvroReceiptKind) -> Self {
        match value {
            AvroReceiptKind::Delivered => Self::Delivered,
            AvroReceiptKind::Read => Self::Read,
        }
    }
}

/// The `ChatMedia` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMedia {
    /// Where the attachment can be fetched.
    pub url: String,
    /// Its content type.
    pub mime_type: String,
    /// Its size in bytes.
    pub size_bytes: i64,
    /// Original file name.
    #[serde(default)]
    pub file_name: Option<String>,
}

impl From<&protocol::Media> for ChatMedia {
    fn from(media: &protocol::Media) -> Self {
        Self {
            url: media.url.clone(),
            mime_type: media.mime_type.clone(),
            size_bytes: i64::try_from(media.size_bytes).unwrap_or(i64::MAX),
            file_name: media.file_name.clone(),
        }
    }
}

impl From<&ChatMedia> for protocol::Media {
    fn from(media: &ChatMedia) -> Self {
        Self {
            url: media.url.clone(),
            mime_type: media.mime_type.clone(),
            size_bytes: u64::try_from(media.size_bytes).unwrap_or(0),
            file_name: media.file_name.clone(),
        }
    }
}

/// A member sent a message (key: conversation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatSent {
    /// Unique event id.
    pub event_id: String,
    /// When the message was accepted, ms since the epoch.
    pub occurred_at: i64,
    /// Conversation; the record key.
    pub conversation_id: String,
    /// Authenticated sender.
    pub sender_id: String,
    /// The client's id for the message; with the sender, the idempotency key.
    pub client_msg_id: String,
    /// Text or caption.
    pub content: String,
    /// Kind of message.
    pub content_type: AvroContentType,
    /// Attachment.
    #[serde(default)]
    pub media: Option<ChatMedia>,
    /// Gateway holding the sender's socket (where the ack goes).
    #[serde(default)]
    pub gateway_id: Option<String>,
}

/// A member's delivered or read position moved (key: conversation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatReceipt {
    /// Unique event id.
    pub event_id: String,
    /// When it happened.
    pub occurred_at: i64,
    /// Conversation; the record key.
    pub conversation_id: String,
    /// Member whose position moved.
    pub user_id: String,
    /// Which position.
    pub kind: AvroReceiptKind,
    /// Covered up to and including this sequence number.
    pub up_to_seq: i64,
}

/// Delivery of one persisted message to a batch of members (key: conversation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatFanout {
    /// Unique event id.
    pub event_id: String,
    /// When the fan-out was planned.
    pub occurred_at: i64,
    /// Conversation; the record key.
    pub conversation_id: String,
    /// Id of the persisted message.
    pub message_id: String,
    /// Its sequence number.
    pub seq: i64,
    /// Who sent it.
    pub sender_id: String,
    /// When it was accepted.
    pub sent_at: i64,
    /// Text or caption.
    pub content: String,
    /// Kind of message.
    pub content_type: AvroContentType,
    /// Attachment.
    #[serde(default)]
    pub media: Option<ChatMedia>,
    /// Members this batch delivers to.
    pub recipient_ids: Vec<String>,
}

/// What a membership event changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MembershipAction {
    /// A symbol this reader does not know; the event is refused.
    Unknown,
    /// The conversation was created.
    Created,
    /// Members were added.
    Added,
    /// Members were removed (or left).
    Removed,
    /// A member's role changed.
    RoleChanged,
    /// Ownership moved to another member.
    Transferred,
}

/// A conversation was created or its members changed (key: conversation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMembership {
    /// Unique event id.
    pub event_id: String,
    /// When it happened.
    pub occurred_at: i64,
    /// Conversation; the record key.
    pub conversation_id: String,
    /// What changed.
    pub action: MembershipAction,
    /// Who changed it.
    pub actor_id: String,
    /// Whom it applies to.
    pub user_ids: Vec<String>,
    /// New role with `ROLE_CHANGED`.
    #[serde(default)]
    pub role: Option<String>,
    /// Group name with `CREATED`.
    #[serde(default)]
    pub name: Option<String>,
}

/// A fresh event id.
pub fn new_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
