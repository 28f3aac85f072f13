//! Validation of an FCM HTTP v1 `messages:send` body against the `Message` resource of the
//! REST reference, with Google's error wording.
//!
//! Field names are accepted in both spellings proto3 JSON allows (`fcm_options` and
//! `fcmOptions`). Free-form parts (`apns.payload`, `webpush.notification`,
//! `android.notification`) are only checked to be objects.

use serde_json::{Map, Value};

/// What a field of the message must hold.
#[derive(Clone, Copy)]
enum Kind {
    String,
    Bool,
    /// A `map<string, string>`.
    StringMap,
    /// Any JSON object.
    Object,
    /// One of the listed enum names.
    Enum(&'static [&'static str]),
    /// A protobuf `Duration` in JSON: seconds with up to nine decimals and an `s`.
    Duration,
    /// A message with its type name and fields.
    Message(&'static str, &'static [(&'static str, Kind)]),
}

const FCM_OPTIONS: &[(&str, Kind)] = &[("analytics_label", Kind::String)];
const NOTIFICATION: &[(&str, Kind)] = &[
    ("title", Kind::String),
    ("body", Kind::String),
    ("image", Kind::String),
];
const ANDROID: &[(&str, Kind)] = &[
    ("collapse_key", Kind::String),
    ("priority", Kind::Enum(&["NORMAL", "HIGH"])),
    ("ttl", Kind::Duration),
    ("restricted_package_name", Kind::String),
    ("data", Kind::StringMap),
    ("notification", Kind::Object),
    (
        "fcm_options",
        Kind::Message("AndroidFcmOptions", FCM_OPTIONS),
    ),
    ("direct_boot_ok", Kind::Bool),
];
const APNS: &[(&str, Kind)] = &[
    ("headers", Kind::StringMap),
    ("payload", Kind::Object),
    (
        "fcm_options",
        Kind::Message(
            "ApnsFcmOptions",
            &[("analytics_label", Kind::String), ("image", Kind::String)],
        ),
    ),
    ("live_activity_token", Kind::String),
];
const WEBPUSH: &[(&str, Kind)] = &[
    ("headers", Kind::StringMap),
    ("data", Kind::StringMap),
    ("notification", Kind::Object),
    (
        "fcm_options",
        Kind::Message(
            "WebpushFcmOptions",
            &[("link", Kind::String), ("analytics_label", Kind::String)],
        ),
    ),
];
const MESSAGE: &[(&str, Kind)] = &[
    ("name", Kind::String),
    ("data", Kind::StringMap),
    ("notification", Kind::Message("Notification", NOTIFICATION)),
    ("android", Kind::Message("AndroidConfig", ANDROID)),
    ("webpush", Kind::Message("WebpushConfig", WEBPUSH)),
    ("apns", Kind::Message("ApnsConfig", APNS)),
    ("fcm_options", Kind::Message("FcmOptions", FCM_OPTIONS)),
    ("token", Kind::String),
    ("topic", Kind::String),
    ("condition", Kind::String),
];

/// Why a body is not a valid send request: Google's message and the offending field.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Invalid {
    pub(super) message: String,
    pub(super) field: String,
}

impl Invalid {
    fn new(field: &str, message: String) -> Self {
        Self {
            message,
            field: field.to_owned(),
        }
    }

    fn value(field: &str, type_name: &str, value: &Value) -> Self {
        Self::new(
            field,
            format!("Invalid value at '{field}' ({type_name}), {value}"),
        )
    }
}

/// The message's recipient: exactly one of these is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Token(String),
    Topic(String),
    Condition(String),
}

/// A valid send request.
#[derive(Debug)]
pub(super) struct SendRequest {
    pub(super) message: Value,
    pub(super) target: Target,
    pub(super) validate_only: bool,
}

/// Parses and checks a `messages:send` body.
pub(super) fn validate(body: &[u8]) -> Result<SendRequest, Invalid> {
    let request: Value = serde_json::from_slice(body).map_err(|error| {
        Invalid::new(
            "",
            format!("Invalid JSON payload received. Unexpected token. {error}"),
        )
    })?;
    let Value::Object(fields) = &request else {
        return Err(Invalid::new(
            "",
            "Invalid JSON payload received. Expected an object.".into(),
        ));
    };
    let mut validate_only = false;
    for (name, value) in fields {
        match (snake_case(name).as_str(), value) {
            ("message", _) => {}
            ("validate_only", Value::Bool(flag)) => validate_only = *flag,
            ("validate_only", other) => {
                return Err(Invalid::value("validate_only", "TYPE_BOOL", other));
            }
            _ => {
                return Err(Invalid::new(
                    name,
                    format!(
                        "Invalid JSON payload received. Unknown name \"{name}\": Cannot find field."
                    ),
                ));
            }
        }
    }
    let message = fields.get("message").cloned().unwrap_or(Value::Null);
    if !message.is_null() {
        check(&message, "message", Kind::Message("Message", MESSAGE))?;
    }
    let target = target(message.as_object())?;
    Ok(SendRequest {
        message,
        target,
        validate_only,
    })
}

/// The one recipient of the message.
fn target(message: Option<&Map<String, Value>>) -> Result<Target, Invalid> {
    let mut found = None;
    for (name, value) in message.into_iter().flatten() {
        let Some(text) = value.as_str() else { continue };
        let target = match snake_case(name).as_str() {
            "token" => Target::Token(text.to_owned()),
            "topic" => Target::Topic(text.to_owned()),
            "condition" => Target::Condition(text.to_owned()),
            _ => continue,
        };
        if found.is_some() {
            return Err(Invalid::new(
                "message",
                format!(
                    "Invalid value at 'message' (oneof), oneof field 'target' is already set. \
                     Cannot set '{name}'"
                ),
            ));
        }
        found = Some(target);
    }
    match found {
        None => Err(Invalid::new(
            "message",
            "Recipient of the message is not set.".into(),
        )),
        Some(Target::Token(token)) if !is_registration_token(&token) => Err(Invalid::new(
            "message.token",
            "The registration token is not a valid FCM registration token".into(),
        )),
        Some(Target::Topic(topic)) if !is_topic_name(&topic) => {
            Err(Invalid::new("message.topic", "Invalid topic name".into()))
        }
        Some(target) => Ok(target),
    }
}

/// Checks `value` found at `path` against `kind`.
fn check(value: &Value, path: &str, kind: Kind) -> Result<(), Invalid> {
    match (kind, value) {
        (Kind::String, Value::String(_))
        | (Kind::Bool, Value::Bool(_))
        | (Kind::Object, Value::Object(_)) => Ok(()),
        (Kind::String, _) => Err(Invalid::value(path, "TYPE_STRING", value)),
        (Kind::Bool, _) => Err(Invalid::value(path, "TYPE_BOOL", value)),
        (Kind::Object, _) => Err(Invalid::value(
            path,
            "type.googleapis.com/google.protobuf.Struct",
            value,
        )),
        (Kind::StringMap, Value::Object(entries)) => {
            for (index, entry) in entries.values().enumerate() {
                if !entry.is_string() {
                    let field = format!("{path}[{index}].value");
                    return Err(Invalid::value(&field, "TYPE_STRING", entry));
                }
            }
            Ok(())
        }
        (Kind::StringMap, _) => Err(Invalid::value(path, "TYPE_MESSAGE", value)),
        (Kind::Enum(names), Value::String(name)) if names.contains(&name.as_str()) => Ok(()),
        (Kind::Enum(_), _) => Err(Invalid::value(path, "TYPE_ENUM", value)),
        (Kind::Duration, Value::String(text)) if is_duration(text) => Ok(()),
        (Kind::Duration, _) => Err(Invalid::value(
            path,
            "type.googleapis.com/google.protobuf.Duration",
            value,
        )),
        (Kind::Message(_, fields), Value::Object(members)) => {
            for (name, member) in members {
                let canonical = snake_case(name);
                let Some((_, member_kind)) = fields.iter().find(|(field, _)| *field == canonical)
                else {
                    return Err(Invalid::new(
                        path,
                        format!(
                            "Invalid JSON payload received. Unknown name \"{name}\" at '{path}': \
                             Cannot find field."
                        ),
                    ));
                };
                check(member, &format!("{path}.{canonical}"), *member_kind)?;
            }
            Ok(())
        }
        (Kind::Message(type_name, _), _) => Err(Invalid::value(
            path,
            &format!("type.googleapis.com/google.firebase.fcm.v1.{type_name}"),
            value,
        )),
    }
}

/// `fcmOptions` → `fcm_options`: proto3 JSON accepts the lowerCamelCase spelling too.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// Registration tokens are opaque, but always non-empty runs of URL-safe characters and `:`.
fn is_registration_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

/// Topic names as FCM documents them: `[a-zA-Z0-9-_.~%]+`, without a `/topics/` prefix.
fn is_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%'))
}

/// A JSON `Duration`: digits, optionally a dot and one to nine digits, then `s`.
fn is_duration(text: &str) -> bool {
    let Some(number) = text.strip_suffix('s') else {
        return false;
    };
    let (seconds, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(seconds) && digits(fraction) && fraction.len() <= 9
}
