//! Validation of client frames: every refusal and the error it maps to.

use serde_json::{Value, json};

use super::super::*;
use super::{DIRECT, field_of, image, parse, send, with};

#[test]
fn malformed_frames() {
    for text in [
        "",
        "not json",
        "{",
        "[]",
        "42",
        "\"send\"",
        "null",
        r#"{"client_msg_id":"c"}"#,
        r#"{"type":7}"#,
        r#"{"type":null}"#,
        r#"{"type":"ping"} trailing"#,
    ] {
        let error = parse_client_frame(text).unwrap_err();
        assert!(
            matches!(error, FrameError::Malformed(_)),
            "{text:?}: {error:?}"
        );
        assert_eq!(error.code(), "malformed_frame");
    }
}

#[test]
fn unknown_types() {
    for kind in ["typing", "ack", "pong", "Send", "SEND", ""] {
        let error = parse(json!({"type": kind})).unwrap_err();
        assert_eq!(error, FrameError::UnknownType(kind.into()));
        assert_eq!(error.code(), "unknown_type");
    }
    // A huge type is not echoed whole.
    let error = parse(json!({"type": "x".repeat(1000)})).unwrap_err();
    assert_eq!(error, FrameError::UnknownType("x".repeat(64)));
}

#[test]
fn unknown_fields_are_refused() {
    assert_eq!(
        field_of(parse(with(send("x"), &[], "extra", json!(1)))),
        "extra"
    );
    assert_eq!(
        field_of(parse(with(image(), &["media"], "width", json!(1)))),
        "media.width"
    );
    let receipt = json!({"type": "receipt", "conversation_id": DIRECT, "kind": "read",
                         "up_to_seq": 1, "user_id": "mallory"});
    assert_eq!(field_of(parse(receipt)), "user_id");
    let sync = json!({"type": "sync", "conversation_id": DIRECT, "after_seq": 1, "limit": 5});
    assert_eq!(field_of(parse(sync)), "limit");
    assert_eq!(field_of(parse(json!({"type": "ping", "at": 1}))), "at");
    // Serde alone refuses them too.
    let text = with(send("x"), &[], "sender_id", json!("mallory")).to_string();
    assert!(serde_json::from_str::<ClientFrame>(&text).is_err());
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    for key in [
        "client_msg_id",
        "conversation_id",
        "content",
        "content_type",
    ] {
        assert_eq!(field_of(parse(with(send("x"), &[], key, json!(null)))), key);
        assert_eq!(field_of(parse(with(send("x"), &[], key, json!(5)))), key);
    }
    for key in ["url", "mime_type", "size_bytes"] {
        let missing = with(image(), &["media"], key, json!(null));
        assert_eq!(field_of(parse(missing)), format!("media.{key}"));
    }
    let receipt =
        json!({"type": "receipt", "conversation_id": DIRECT, "kind": "read", "up_to_seq": 1});
    assert!(parse(receipt.clone()).is_ok());
    assert_eq!(
        field_of(parse(with(receipt.clone(), &[], "kind", json!("seen")))),
        "kind"
    );
    assert_eq!(
        field_of(parse(with(receipt.clone(), &[], "up_to_seq", json!(-1)))),
        "up_to_seq"
    );
    assert_eq!(
        field_of(parse(with(receipt.clone(), &[], "up_to_seq", json!(1.5)))),
        "up_to_seq"
    );
    assert_eq!(
        field_of(parse(with(receipt, &[], "up_to_seq", json!("3")))),
        "up_to_seq"
    );
    let sync = json!({"type": "sync", "conversation_id": DIRECT});
    assert_eq!(field_of(parse(sync.clone())), "after_seq");
    assert_eq!(
        field_of(parse(with(sync, &[], "after_seq", json!(-7)))),
        "after_seq"
    );
    assert_eq!(
        field_of(parse(with(send("x"), &[], "content_type", json!("video")))),
        "content_type"
    );
    assert_eq!(
        field_of(parse(with(image(), &[], "media", json!("https://a.b/c")))),
        "media"
    );
}

#[test]
fn client_msg_id_rules() {
    for good in ["a", "~", " x ", &"x".repeat(64)] {
        assert!(
            parse(with(send("x"), &[], "client_msg_id", json!(good))).is_ok(),
            "{good:?}"
        );
    }
    for bad in ["", "é", "a\tb", "a\nb", "\u{7f}", &"x".repeat(65)] {
        let error = parse(with(send("x"), &[], "client_msg_id", json!(bad))).unwrap_err();
        assert!(
            matches!(&error, FrameError::InvalidField { field, client_msg_id: None, .. } if field == "client_msg_id"),
            "{bad:?}: {error:?}"
        );
    }
}

#[test]
fn conversation_id_rules() {
    for bad in [
        "",
        "d-123",
        "x-0123456789abcdef0123456789abcdef",
        "D-0123456789ABCDEF0123456789ABCDEF",
    ] {
        assert_eq!(
            field_of(parse(with(send("x"), &[], "conversation_id", json!(bad)))),
            "conversation_id"
        );
        let sync = json!({"type": "sync", "conversation_id": bad, "after_seq": 0});
        assert_eq!(field_of(parse(sync)), "conversation_id");
        let receipt =
            json!({"type": "receipt", "conversation_id": bad, "kind": "read", "up_to_seq": 0});
        assert_eq!(field_of(parse(receipt)), "conversation_id");
    }
}

#[test]
fn content_counts_characters_not_bytes() {
    // 4,096 Hangul syllables are 12,288 bytes but 4,096 characters: accepted.
    let korean = "가".repeat(MAX_CONTENT_CHARS);
    assert_eq!(korean.len(), 3 * MAX_CONTENT_CHARS);
    assert!(parse(send(&korean)).is_ok());
    let too_long = "가".repeat(MAX_CONTENT_CHARS + 1);
    assert_eq!(field_of(parse(send(&too_long))), "content");
    // Emoji are four bytes, one character each.
    assert!(parse(send(&"👋".repeat(MAX_CONTENT_CHARS))).is_ok());
    assert_eq!(field_of(parse(send(""))), "content");
    // A caption may be empty, not too long.
    assert!(parse(image()).is_ok());
    let long_caption = with(
        image(),
        &[],
        "content",
        json!("x".repeat(MAX_CONTENT_CHARS + 1)),
    );
    assert_eq!(field_of(parse(long_caption)), "content");
}

#[test]
fn media_rules() {
    assert_eq!(
        field_of(parse(with(image(), &[], "media", json!(null)))),
        "media"
    );
    let file_without = with(
        with(image(), &[], "content_type", json!("file")),
        &[],
        "media",
        json!(null),
    );
    assert_eq!(field_of(parse(file_without)), "media");
    let text_with = with(image(), &[], "content_type", json!("text"));
    let text_with = with(text_with, &[], "content", json!("hi"));
    assert_eq!(field_of(parse(text_with)), "media");

    let longest = format!("https://m.example/{}", "a".repeat(MAX_MEDIA_URL - 18));
    assert_eq!(longest.len(), MAX_MEDIA_URL);
    assert!(parse(with(image(), &["media"], "url", json!(longest))).is_ok());
    for bad in [
        format!("{longest}a"),
        "ftp://m.example/a.png".into(),
        "javascript:alert(1)".into(),
        "/relative.png".into(),
        "https://".into(),
        "file:///etc/passwd".into(),
        "".into(),
    ] {
        assert_eq!(
            field_of(parse(with(image(), &["media"], "url", json!(bad)))),
            "media.url",
            "{bad}"
        );
    }

    for bad in [
        "",
        "image",
        "image/",
        "/png",
        "image/p ng",
        "image/png\n",
        "application/pdf",
    ] {
        let frame = with(image(), &["media"], "mime_type", json!(bad));
        assert_eq!(field_of(parse(frame)), "media.mime_type", "{bad:?}");
    }
    assert!(parse(with(image(), &["media"], "mime_type", json!("IMAGE/PNG"))).is_ok());
    let file = with(image(), &[], "content_type", json!("file"));
    assert!(
        parse(with(
            file.clone(),
            &["media"],
            "mime_type",
            json!("application/pdf; q=1")
        ))
        .is_ok()
    );

    let size = with(image(), &["media"], "size_bytes", json!(u64::MAX));
    assert_eq!(field_of(parse(size)), "media.size_bytes");
    let size = with(image(), &["media"], "size_bytes", json!(-1));
    assert_eq!(field_of(parse(size)), "media.size_bytes");

    assert!(
        parse(with(
            file.clone(),
            &["media"],
            "file_name",
            json!("사진 1.png")
        ))
        .is_ok()
    );
    for bad in [
        json!(""),
        json!("a\u{0}b"),
        json!("x".repeat(256)),
        json!(3),
    ] {
        let frame = with(file.clone(), &["media"], "file_name", bad.clone());
        assert_eq!(field_of(parse(frame)), "media.file_name", "{bad}");
    }
}

#[test]
fn sequence_numbers_fit_an_avro_long() {
    let receipt = |seq: Value| json!({"type": "receipt", "conversation_id": DIRECT, "kind": "read", "up_to_seq": seq});
    assert!(parse(receipt(json!(MAX_SEQ))).is_ok());
    assert_eq!(field_of(parse(receipt(json!(MAX_SEQ + 1)))), "up_to_seq");
    let sync = json!({"type": "sync", "conversation_id": DIRECT, "after_seq": u64::MAX});
    assert_eq!(field_of(parse(sync)), "after_seq");
}

#[test]
fn errors_echo_a_valid_client_msg_id() {
    let error = parse(send("")).unwrap_err();
    assert_eq!(
        error,
        FrameError::InvalidField {
            field: "content".into(),
            reason: "must be 1-4096 characters for text, got 0".into(),
            client_msg_id: Some("c-1".into()),
        }
    );
    let mistyped = parse(with(send("x"), &[], "content_type", json!("video"))).unwrap_err();
    assert!(
        matches!(mistyped, FrameError::InvalidField { client_msg_id: Some(ref id), .. } if id == "c-1")
    );
    let ServerFrame::Error(frame) = error.to_server_frame() else {
        panic!("not an error frame");
    };
    assert_eq!(frame.code, "invalid_field");
    assert_eq!(frame.field.as_deref(), Some("content"));
    assert_eq!(frame.client_msg_id.as_deref(), Some("c-1"));
    assert!(frame.message.contains("content"), "{}", frame.message);
    let shape: Value = serde_json::from_str(&error.to_server_frame().to_text()).unwrap();
    assert_eq!(shape["type"], "error");
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    // A valid frame padded with whitespace to just over the limit.
    let text = send("x").to_string();
    let at_limit = format!("{text}{}", " ".repeat(MAX_FRAME_BYTES - text.len()));
    assert!(parse_client_frame(&at_limit).is_ok());
    let over = format!("{at_limit} ");
    let error = parse_client_frame(&over).unwrap_err();
    assert_eq!(
        error,
        FrameError::TooLarge {
            bytes: MAX_FRAME_BYTES + 1
        }
    );
    assert_eq!(error.code(), "frame_too_large");
    // Not JSON at all, but too large is what the client hears.
    assert!(matches!(
        parse_client_frame(&"{".repeat(MAX_FRAME_BYTES + 1)),
        Err(FrameError::TooLarge { .. })
    ));
    let ServerFrame::Error(frame) = error.to_server_frame() else {
        panic!("not an error frame");
    };
    assert_eq!((frame.field, frame.client_msg_id), (None, None));
}
