//! Reading and checking a client frame: the only way untrusted text becomes a [`ClientFrame`].
//!
//! Order of checks: size, JSON object, `type`, shape (serde, unknown fields refused, the
//! offending field named), then values. Errors map to the `error` frame's codes
//! ([`FrameError::code`]).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{
    ClientFrame, ContentType, ErrorFrame, Media, ReceiptFrame, SendFrame, ServerFrame, SyncFrame,
};
use crate::conversation::is_valid_conversation_id;

/// Largest client frame, in bytes of JSON text.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Longest `client_msg_id`, in characters (all printable ASCII).
pub const MAX_CLIENT_MSG_ID: usize = 64;
/// Most characters (not bytes) of `content`.
pub const MAX_CONTENT_CHARS: usize = 4096;
/// Longest media URL, in characters (the timeline's limit too).
pub const MAX_MEDIA_URL: usize = 2048;
/// Largest sequence number a frame may carry: sequence numbers are Avro `long`s.
pub const MAX_SEQ: u64 = MAX_AVRO_LONG;
/// Largest value an Avro `long` (the events' integer type) holds.
const MAX_AVRO_LONG: u64 = i64::MAX as u64;
/// Longest media `mime_type` and `file_name`, in characters.
const MAX_MEDIA_TEXT: usize = 255;
/// How much of a client's unknown `type` an error repeats.
const MAX_ECHO: usize = 64;

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The text is over [`MAX_FRAME_BYTES`].
    #[error("frame is {bytes} bytes; the limit is {MAX_FRAME_BYTES}")]
    TooLarge {
        /// Size of the refused text.
        bytes: usize,
    },
    /// Not JSON, not an object, or no string `type`.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A `type` the protocol does not have (repeated up to 64 characters).
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// A field is missing, unknown, of the wrong type or out of range.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// The field, dotted for nested ones (`media.url`).
        field: String,
        /// What is wrong with it.
        reason: String,
        /// The `send` frame's `client_msg_id` when it was itself valid, so that the client
        /// knows which message was refused.
        client_msg_id: Option<String>,
    },
}

impl FrameError {
    /// The `error` frame's `code`: `frame_too_large`, `malformed_frame`, `unknown_type` or
    /// `invalid_field`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "frame_too_large",
            Self::Malformed(_) => "malformed_frame",
            Self::UnknownType(_) => "unknown_type",
            Self::InvalidField { .. } => "invalid_field",
        }
    }

    /// The `error` frame that answers this refusal.
    pub fn to_server_frame(&self) -> ServerFrame {
        let (field, client_msg_id) = match self {
            Self::InvalidField {
                field,
                client_msg_id,
                ..
            } => (Some(field.clone()), client_msg_id.clone()),
            _ => (None, None),
        };
        ServerFrame::Error(ErrorFrame {
            code: self.code().to_owned(),
            message: self.to_string(),
            field,
            client_msg_id,
        })
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> FrameError {
    FrameError::InvalidField {
        field: field.to_owned(),
        reason: reason.into(),
        client_msg_id: None,
    }
}

/// Reads and checks one client frame.
///
/// Refuses frames over [`MAX_FRAME_BYTES`], anything but a JSON object with a string `type`,
/// unknown types, unknown or missing fields, and values outside the protocol's rules:
/// `client_msg_id` 1–64 printable ASCII characters; `conversation_id` as
/// [`is_valid_conversation_id`]; `content` 1–4,096 characters for text and 0–4,096 (a
/// caption) for media; `media` required for `image` and `file` and absent for `text`, with an
/// http(s) URL of at most 2,048 characters, a `type/subtype` MIME type (`image/*` for images)
/// and an optional file name of 1–255 characters; `up_to_seq` and `after_seq` 0..=[`MAX_SEQ`].
/// Membership and authorship are the gateway's checks, not this function's.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { bytes: text.len() });
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(FrameError::Malformed("a frame is a JSON object".into()));
    };
    let kind = match object.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(FrameError::Malformed("`type` must be a string".into())),
        None => return Err(FrameError::Malformed("missing `type`".into())),
    };
    match kind.as_str() {
        "send" => {
            // Echo the client's id in any later error, if the id itself is fine.
            let echo = object
                .get("client_msg_id")
                .and_then(Value::as_str)
                .filter(|id| is_valid_client_msg_id(id))
                .map(str::to_owned);
            body::<SendFrame>(object)
                .and_then(|frame| check_send(&frame).map(|()| frame))
                .map(ClientFrame::Send)
                .map_err(|error| with_client_msg_id(error, echo))
        }
        "receipt" => {
            let frame = body::<ReceiptFrame>(object)?;
            check_conversation_id(&frame.conversation_id)?;
            check_seq("up_to_seq", frame.up_to_seq)?;
            Ok(ClientFrame::Receipt(frame))
        }
        "sync" => {
            let frame = body::<SyncFrame>(object)?;
            check_conversation_id(&frame.conversation_id)?;
            check_seq("after_seq", frame.after_seq)?;
            Ok(ClientFrame::Sync(frame))
        }
        "ping" => match object.keys().next() {
            Some(field) => Err(invalid(field, "unknown field")),
            None => Ok(ClientFrame::Ping),
        },
        other => Err(FrameError::UnknownType(
            other.chars().take(MAX_ECHO).collect(),
        )),
    }
}

/// Whether `id` is 1–64 printable ASCII characters (space through `~`).
pub fn is_valid_client_msg_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_MSG_ID
        && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

fn with_client_msg_id(error: FrameError, echo: Option<String>) -> FrameError {
    match error {
        FrameError::InvalidField { field, reason, .. } => FrameError::InvalidField {
            field,
            reason,
            client_msg_id: echo,
        },
        other => other,
    }
}

/// Deserializes a frame's fields (without `type`), naming the field serde stumbled on.
fn body<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, FrameError> {
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|error| {
        let path = error.path().to_string();
        let reason = error.into_inner().to_string();
        // A missing field is reported at the enclosing object (path `.` at the top); serde's
        // message names it in backquotes. Unknown and mistyped fields have their own path.
        let missing = reason
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (missing, path.as_str()) {
            (Some(name), ".") => name.to_owned(),
            (Some(name), parent) => format!("{parent}.{name}"),
            (None, path) => path.to_owned(),
        };
        invalid(&field, reason)
    })
}

/// Checks a `send` frame's values (the rules of [`parse_client_frame`]); the `chat.sent`
/// processor holds events from other producers to the same rules.
pub fn check_send(frame: &SendFrame) -> Result<(), FrameError> {
    if !is_valid_client_msg_id(&frame.client_msg_id) {
        return Err(invalid(
            "client_msg_id",
            format!("must be 1-{MAX_CLIENT_MSG_ID} printable ASCII characters"),
        ));
    }
    check_conversation_id(&frame.conversation_id)?;
    let min = match frame.content_type {
        ContentType::Text => 1,
        ContentType::Image | ContentType::File => 0,
    };
    let chars = frame.content.chars().count();
    if chars < min || chars > MAX_CONTENT_CHARS {
        return Err(invalid(
            "content",
            format!(
                "must be {min}-{MAX_CONTENT_CHARS} characters for {}, got {chars}",
                frame.content_type.as_str()
            ),
        ));
    }
    match (frame.content_type, &frame.media) {
        (ContentType::Text, None) => Ok(()),
        (ContentType::Text, Some(_)) => Err(invalid("media", "text messages carry no media")),
        (kind, None) => Err(invalid(
            "media",
            format!("required for {} messages", kind.as_str()),
        )),
        (kind, Some(media)) => check_media(kind, media),
    }
}

fn check_media(kind: ContentType, media: &Media) -> Result<(), FrameError> {
    let url_ok = media.url.chars().count() <= MAX_MEDIA_URL
        && url::Url::parse(&media.url).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty())
        });
    if !url_ok {
        return Err(invalid(
            "media.url",
            format!("must be an http(s) URL of at most {MAX_MEDIA_URL} characters"),
        ));
    }
    if !is_mime_type(&media.mime_type) {
        return Err(invalid(
            "media.mime_type",
            "must be a type/subtype MIME type",
        ));
    }
    if kind == ContentType::Image && !media.mime_type.to_ascii_lowercase().starts_with("image/") {
        return Err(invalid(
            "media.mime_type",
            "must be image/* for image messages",
        ));
    }
    if media.size_bytes > MAX_AVRO_LONG {
        return Err(invalid(
            "media.size_bytes",
            format!("must be at most {MAX_AVRO_LONG}"),
        ));
    }
    if let Some(name) = &media.file_name {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_MEDIA_TEXT || name.chars().any(char::is_control) {
            return Err(invalid(
                "media.file_name",
                format!("must be 1-{MAX_MEDIA_TEXT} characters without control characters"),
            ));
        }
    }
    Ok(())
}

/// `type/subtype` with RFC 6838 name characters, parameters allowed after `;`.
fn is_mime_type(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or_default().trim();
    let name_ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    mime.len() <= MAX_MEDIA_TEXT
        && !mime.chars().any(char::is_control)
        && essence
            .split_once('/')
            .is_some_and(|(kind, sub)| name_ok(kind) && name_ok(sub))
}

fn check_conversation_id(id: &str) -> Result<(), FrameError> {
    if is_valid_conversation_id(id) {
        Ok(())
    } else {
        Err(invalid(
            "conversation_id",
            "must be d-<32 hex> (1:1) or g-<UUIDv7, 32 hex> (group)",
        ))
    }
}

fn check_seq(field: &str, seq: u64) -> Result<(), FrameError> {
    if seq > MAX_SEQ {
        return Err(invalid(field, format!("must be 0-{MAX_SEQ}")));
    }
    Ok(())
}
