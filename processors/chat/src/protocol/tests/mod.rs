//! Frame tests: shapes and round trips here, validation of client frames in [`validation`].

mod validation;

use serde_json::{Value, json};

use super::*;

const DIRECT: &str = "d-0123456789abcdef0123456789abcdef";

fn parse(value: Value) -> Result<ClientFrame, FrameError> {
    parse_client_frame(&value.to_string())
}

fn send(content: &str) -> Value {
    json!({
        "type": "send",
        "client_msg_id": "c-1",
        "conversation_id": DIRECT,
        "content": content,
        "content_type": "text",
    })
}

fn image() -> Value {
    json!({
        "type": "send",
        "client_msg_id": "c-2",
        "conversation_id": DIRECT,
        "content": "",
        "content_type": "image",
        "media": {"url": "https://media.example/a.png", "mime_type": "image/png", "size_bytes": 1234},
    })
}

/// `value` with `key` set (or removed when `new` is null), at `path` of nested objects.
fn with(mut value: Value, path: &[&str], key: &str, new: Value) -> Value {
    let mut object = &mut value;
    for step in path {
        object = &mut object[*step];
    }
    let map = object.as_object_mut().unwrap();
    if new.is_null() {
        map.remove(key);
    } else {
        map.insert(key.into(), new);
    }
    value
}

/// The field an `invalid_field` error names.
fn field_of(result: Result<ClientFrame, FrameError>) -> String {
    match result {
        Err(FrameError::InvalidField { field, .. }) => field,
        other => panic!("expected invalid_field, got {other:?}"),
    }
}

#[test]
fn client_frames_round_trip() {
    let frames = [
        ClientFrame::Send(SendFrame {
            client_msg_id: "c-1".into(),
            conversation_id: DIRECT.into(),
            content: "안녕하세요 👋".into(),
            content_type: ContentType::Text,
            media: None,
        }),
        ClientFrame::Send(SendFrame {
            client_msg_id: "~ !".into(),
            conversation_id: crate::conversation::new_group_id(),
            content: "report".into(),
            content_type: ContentType::File,
            media: Some(Media {
                url: "http://media.example/r.pdf".into(),
                mime_type: "application/pdf".into(),
                size_bytes: 0,
                file_name: Some("보고서.pdf".into()),
            }),
        }),
        ClientFrame::Receipt(ReceiptFrame {
            conversation_id: DIRECT.into(),
            kind: ReceiptKind::Read,
            up_to_seq: MAX_SEQ,
        }),
        ClientFrame::Receipt(ReceiptFrame {
            conversation_id: DIRECT.into(),
            kind: ReceiptKind::Delivered,
            up_to_seq: 0,
        }),
        ClientFrame::Sync(SyncFrame {
            conversation_id: DIRECT.into(),
            after_seq: 41,
        }),
        ClientFrame::Ping,
    ];
    for frame in frames {
        let text = frame.to_text();
        assert_eq!(parse_client_frame(&text), Ok(frame.clone()), "{text}");
        assert_eq!(serde_json::from_str::<ClientFrame>(&text).unwrap(), frame);
    }
}

#[test]
fn client_frames_have_the_documented_shape() {
    let ping = ClientFrame::Ping.to_text();
    assert_eq!(ping, r#"{"type":"ping"}"#);
    let frame = parse(image()).unwrap();
    let back: Value = serde_json::from_str(&frame.to_text()).unwrap();
    assert_eq!(back, image());
    // Optional fields may be null, like absent.
    assert!(parse(with(send("x"), &[], "media", json!(null))).is_ok());
    let mut explicit_null = send("x");
    explicit_null["media"] = Value::Null;
    assert!(parse(explicit_null).is_ok());
}

#[test]
fn server_frames_round_trip_with_the_documented_shape() {
    let media = Media {
        url: "https://media.example/a.png".into(),
        mime_type: "image/png".into(),
        size_bytes: 10,
        file_name: None,
    };
    let cases = [
        (
            ServerFrame::Ack(AckFrame {
                client_msg_id: "c-1".into(),
                conversation_id: DIRECT.into(),
                message_id: format!("{DIRECT}:00000000000000000007"),
                seq: 7,
                sent_at: 1_700_000_000_000,
            }),
            json!({"type": "ack", "client_msg_id": "c-1", "conversation_id": DIRECT,
                   "message_id": format!("{DIRECT}:00000000000000000007"), "seq": 7,
                   "sent_at": 1_700_000_000_000_i64}),
        ),
        (
            ServerFrame::Message(MessageFrame {
                conversation_id: DIRECT.into(),
                message_id: "m".into(),
                seq: 8,
                sender_id: "bob".into(),
                sent_at: 5,
                content: "".into(),
                content_type: ContentType::Image,
                media: Some(media.clone()),
            }),
            json!({"type": "message", "conversation_id": DIRECT, "message_id": "m", "seq": 8,
                   "sender_id": "bob", "sent_at": 5, "content": "", "content_type": "image",
                   "media": {"url": "https://media.example/a.png", "mime_type": "image/png",
                             "size_bytes": 10}}),
        ),
        (
            ServerFrame::Message(MessageFrame {
                conversation_id: DIRECT.into(),
                message_id: "m2".into(),
                seq: 9,
                sender_id: "bob".into(),
                sent_at: 6,
                content: "hi".into(),
                content_type: ContentType::Text,
                media: None,
            }),
            json!({"type": "message", "conversation_id": DIRECT, "message_id": "m2", "seq": 9,
                   "sender_id": "bob", "sent_at": 6, "content": "hi", "content_type": "text"}),
        ),
        (
            ServerFrame::Receipt(ReceiptNotice {
                conversation_id: DIRECT.into(),
                user_id: "bob".into(),
                kind: ReceiptKind::Delivered,
                up_to_seq: 8,
            }),
            json!({"type": "receipt", "conversation_id": DIRECT, "user_id": "bob",
                   "kind": "delivered", "up_to_seq": 8}),
        ),
        (
            ServerFrame::Presence(PresenceFrame {
                user: "bob".into(),
                status: PresenceStatus::Offline,
                last_seen: Some(99),
            }),
            json!({"type": "presence", "user": "bob", "status": "offline", "last_seen": 99}),
        ),
        (
            ServerFrame::Presence(PresenceFrame {
                user: "bob".into(),
                status: PresenceStatus::Online,
                last_seen: None,
            }),
            json!({"type": "presence", "user": "bob", "status": "online"}),
        ),
        (
            ServerFrame::Error(ErrorFrame {
                code: "not_member".into(),
                message: "no".into(),
                field: None,
                client_msg_id: Some("c-1".into()),
            }),
            json!({"type": "error", "code": "not_member", "message": "no", "client_msg_id": "c-1"}),
        ),
        (ServerFrame::Pong, json!({"type": "pong"})),
    ];
    for (frame, shape) in cases {
        let text = frame.to_text();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            shape,
            "{text}"
        );
        assert_eq!(ServerFrame::from_text(&text).unwrap(), frame);
    }
}

#[test]
fn server_frames_tolerate_fields_added_later() {
    let text = r#"{"type":"pong","server_time":1}"#;
    assert_eq!(ServerFrame::from_text(text).unwrap(), ServerFrame::Pong);
    let text = r#"{"type":"presence","user":"a","status":"online","device":"web"}"#;
    assert!(ServerFrame::from_text(text).is_ok());
}

#[test]
fn enum_names_match_the_avro_symbols() {
    for kind in [ContentType::Text, ContentType::Image, ContentType::File] {
        assert_eq!(kind.avro_symbol(), kind.as_str().to_uppercase());
        assert_eq!(ContentType::from_avro_symbol(kind.avro_symbol()), kind);
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    assert_eq!(ContentType::from_avro_symbol("VIDEO"), ContentType::File);
    for kind in [ReceiptKind::Delivered, ReceiptKind::Read] {
        assert_eq!(kind.avro_symbol(), kind.as_str().to_uppercase());
        assert_eq!(ReceiptKind::from_avro_symbol(kind.avro_symbol()), kind);
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    assert_eq!(
        ReceiptKind::from_avro_symbol("PLAYED"),
        ReceiptKind::Delivered
    );
}
