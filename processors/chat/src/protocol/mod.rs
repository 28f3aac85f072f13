//! The JSON frame protocol between a chat client and a gateway, one frame per WebSocket text
//! message.
//!
//! Every frame is a JSON object whose `"type"` names it. Client → gateway:
//!
//! | type      | fields                                                                 |
//! |-----------|------------------------------------------------------------------------|
//! | `send`    | `client_msg_id`, `conversation_id`, `content`, `content_type`, `media?` |
//! | `receipt` | `conversation_id`, `kind` (`delivered`/`read`), `up_to_seq`            |
//! | `sync`    | `conversation_id`, `after_seq`                                         |
//! | `ping`    | (none; WebSocket pings work too)                                       |
//!
//! Gateway → client:
//!
//! | type       | fields                                                                                       |
//! |------------|----------------------------------------------------------------------------------------------|
//! | `ack`      | `client_msg_id`, `conversation_id`, `message_id`, `seq`, `sent_at`                           |
//! | `message`  | `conversation_id`, `message_id`, `seq`, `sender_id`, `sent_at`, `content`, `content_type`, `media?` |
//! | `receipt`  | `conversation_id`, `user_id`, `kind`, `up_to_seq`                                            |
//! | `presence` | `user`, `status` (`online`/`offline`), `last_seen?`                                          |
//! | `error`    | `code`, `message`, `field?`, `client_msg_id?`                                                |
//! | `synced`   | `conversation_id`, `up_to_seq`, `more` (ends the answer to a `sync`)                         |
//! | `pong`     | (none)                                                                                       |
//!
//! Field meanings follow the `chat.sent`, `chat.receipt` and `chat.fanout` Avro schemas:
//! times (`sent_at`, `last_seen`) are milliseconds since the Unix epoch, sequence numbers start
//! at 1 in each conversation (so `up_to_seq: 0` and `after_seq: 0` mean "nothing yet"), and
//! `media` is the `ChatMedia` record (`url`, `mime_type`, `size_bytes`, `file_name?`) that
//! `POST /v1/chat/media` returns. Enum values are the Avro symbols in lower case.
//!
//! Client frames are strict ([`parse_client_frame`] refuses unknown fields and checks every
//! value, see [`parse`]); server frames are not, so that a later gateway may add a field
//! without breaking older clients.
//!
//! Example: `{"type":"send","client_msg_id":"c1","conversation_id":"d-…","content":"hi",
//! "content_type":"text"}` is answered by `{"type":"ack","client_msg_id":"c1",…,"seq":7,…}`.

pub mod parse;

use serde::{Deserialize, Serialize};

pub use parse::{
    FrameError, MAX_CLIENT_MSG_ID, MAX_CONTENT_CHARS, MAX_FRAME_BYTES, MAX_MEDIA_URL, MAX_SEQ,
    check_send, is_valid_client_msg_id, parse_client_frame,
};

/// Kind of message body: the `ContentType` enum of the chat schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    /// Plain text.
    Text,
    /// An image attachment; `content` is its caption.
    Image,
    /// Any other attachment; `content` is its caption.
    File,
}

impl ContentType {
    /// The name in frames: `text`, `image` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::File => "file",
        }
    }

    /// The Avro enum symbol: `TEXT`, `IMAGE` or `FILE`.
    pub fn avro_symbol(self) -> &'static str {
        match self {
            Self::Text => "TEXT",
            Self::Image => "IMAGE",
            Self::File => "FILE",
        }
    }

    /// Reads an Avro symbol; as the schema says, a symbol this reader does not know is a
    /// [`ContentType::File`] (shown as an attachment).
    pub fn from_avro_symbol(symbol: &str) -> Self {
        match symbol {
            "TEXT" => Self::Text,
            "IMAGE" => Self::Image,
            _ => Self::File,
        }
    }
}

/// Which position a receipt moves: the `ReceiptKind` enum of `chat.receipt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// Messages reached the member's device.
    Delivered,
    /// The member saw them (implies delivered).
    Read,
}

impl ReceiptKind {
    /// The name in frames: `delivered` or `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }

    /// The Avro enum symbol: `DELIVERED` or `READ`.
    pub fn avro_symbol(self) -> &'static str {
        match self {
            Self::Delivered => "DELIVERED",
            Self::Read => "READ",
        }
    }

    /// Reads an Avro symbol; as the schema says, a symbol this reader does not know is
    /// [`ReceiptKind::Delivered`], the weaker claim.
    pub fn from_avro_symbol(symbol: &str) -> Self {
        match symbol {
            "READ" => Self::Read,
            _ => Self::Delivered,
        }
    }
}

/// An attachment uploaded before the message was sent: the `ChatMedia` record of the schemas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// Where the attachment can be fetched (an http(s) URL of at most [`MAX_MEDIA_URL`]
    /// characters, as returned by `POST /v1/chat/media`).
    pub url: String,
    /// The attachment's content type, e.g. `image/png`.
    pub mime_type: String,
    /// The attachment's size in bytes.
    pub size_bytes: u64,
    /// Original file name, if the client gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// `send`: post a message to a conversation the user belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendFrame {
    /// The client's id for the message (1–64 printable ASCII characters); with the sender it
    /// is the idempotency key, so a resend after a lost ack is not a second message.
    pub client_msg_id: String,
    /// Conversation to post to.
    pub conversation_id: String,
    /// Text, 1–4,096 characters; for media, a caption of 0–4,096 characters.
    pub content: String,
    /// Kind of message.
    pub content_type: ContentType,
    /// The attachment: required for `image` and `file`, absent for `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
}

/// `receipt` from a client: the user's delivered or read position moved forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptFrame {
    /// Conversation the receipt is for.
    pub conversation_id: String,
    /// Which position moved.
    pub kind: ReceiptKind,
    /// Every message up to and including this sequence number is covered.
    pub up_to_seq: u64,
}

/// `sync`: send me the messages of a conversation after this sequence number (on reconnect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncFrame {
    /// Conversation to catch up on.
    pub conversation_id: String,
    /// The last sequence number the client has; 0 for everything.
    pub after_seq: u64,
}

/// A frame from a client to a gateway. Parse untrusted text with [`parse_client_frame`],
/// which also checks every value; serde alone only checks the shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Post a message.
    Send(SendFrame),
    /// Move a delivered or read position.
    Receipt(ReceiptFrame),
    /// Catch up on a conversation.
    Sync(SyncFrame),
    /// Application-level heartbeat; answered by [`ServerFrame::Pong`].
    Ping,
}

impl ClientFrame {
    /// The frame as JSON text (what a client sends).
    pub fn to_text(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `ack`: the sender's message is durable and has its place in the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckFrame {
    /// The id the client gave the message.
    pub client_msg_id: String,
    /// Conversation the message was posted to.
    pub conversation_id: String,
    /// Id of the persisted message (see [`crate::sequence::message_id`]).
    pub message_id: String,
    /// The message's sequence number in the conversation.
    pub seq: u64,
    /// When the message was accepted, ms since the Unix epoch.
    pub sent_at: i64,
}

/// `message`: a message for one of the user's conversations (live or through `sync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFrame {
    /// Conversation the message belongs to.
    pub conversation_id: String,
    /// Id of the persisted message.
    pub message_id: String,
    /// The message's sequence number in the conversation.
    pub seq: u64,
    /// Who sent it.
    pub sender_id: String,
    /// When the message was accepted, ms since the Unix epoch.
    pub sent_at: i64,
    /// Text, or a media caption.
    pub content: String,
    /// Kind of message.
    pub content_type: ContentType,
    /// The attachment of an image or file message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
}

/// `receipt` to a client: a member's delivered or read position moved (sent to the senders of
/// the covered messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptNotice {
    /// Conversation the receipt is for.
    pub conversation_id: String,
    /// Member whose position moved (the reader, not the sender).
    pub user_id: String,
    /// Which position moved.
    pub kind: ReceiptKind,
    /// Every message up to and including this sequence number is covered.
    pub up_to_seq: u64,
}

/// Whether a user is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// Has a live socket on some gateway.
    Online,
    /// Has none (their presence key expired or they disconnected).
    Offline,
}

/// `presence`: one of the user's contacts came online or went offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceFrame {
    /// The contact.
    pub user: String,
    /// Their new status.
    pub status: PresenceStatus,
    /// When they were last seen, ms since the Unix epoch (with `offline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
}

/// `error`: a frame was refused; the socket stays usable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// Machine-readable reason, e.g. `malformed_frame`, `unknown_type`, `invalid_field`,
    /// `frame_too_large` (see [`FrameError::code`]); the gateway adds its own.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The offending field (with `invalid_field`), e.g. `content` or `media.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The refused `send` frame's `client_msg_id`, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// `synced`: the answer to a `sync` ends here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedFrame {
    /// Conversation that was synced.
    pub conversation_id: String,
    /// The last sequence number sent; the client's position in the conversation.
    pub up_to_seq: u64,
    /// True when more messages follow `up_to_seq` than one sync sends: sync again from there.
    pub more: bool,
}

/// A frame from a gateway to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The sender's message is durable.
    Ack(AckFrame),
    /// A message for the user.
    Message(MessageFrame),
    /// A member's position moved.
    Receipt(ReceiptNotice),
    /// A contact's presence changed.
    Presence(PresenceFrame),
    /// A frame was refused.
    Error(ErrorFrame),
    /// A `sync` is complete: every message up to `up_to_seq` was sent before this frame.
    Synced(SyncedFrame),
    /// Answer to [`ClientFrame::Ping`].
    Pong,
}

impl ServerFrame {
    /// The frame as JSON text, ready for a WebSocket text message.
    pub fn to_text(&self) -> String {
        // Serializing these types cannot fail: every map key is a string. Should that ever
        // change, the client still gets a well-formed frame rather than a panicking gateway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"frame could not be encoded"}"#
                .to_owned()
        })
    }

    /// Reads a frame a gateway sent (for clients and tests; lenient about unknown fields).
    pub fn from_text(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests;
