use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex as StdMutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::channels::test_support::closed_port;

fn from() -> Mailbox {
    "Sixfold <noreply@sixfold.local>".parse().expect("mailbox")
}

fn email() -> EmailMessage {
    EmailMessage {
        notification_id: "n-1".into(),
        to: "ada@example.com".into(),
        subject: "Your weekly digest".into(),
        text_body: "Hello Ada".into(),
        html_body: Some("<p>Hello <b>Ada</b></p>".into()),
    }
}

fn formatted(email: &EmailMessage) -> String {
    let message = build_message(&from(), email).expect("message");
    String::from_utf8(message.formatted()).expect("utf-8")
}

/// The header block of a formatted message, with folded lines joined.
fn headers(formatted: &str) -> Vec<String> {
    let head = formatted.split("\r\n\r\n").next().unwrap_or_default();
    let mut headers: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => headers.push(line.to_owned()),
        }
    }
    headers
}

fn header(formatted: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}: ");
    headers(formatted)
        .into_iter()
        .find_map(|h| h.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn html_email_is_multipart_alternative_with_a_derived_message_id() {
    let text = formatted(&email());
    assert_eq!(
        header(&text, "Message-ID").as_deref(),
        Some("<n-1@sixfold>")
    );
    assert_eq!(header(&text, "To").as_deref(), Some("ada@example.com"));
    assert_eq!(
        header(&text, "From").as_deref(),
        Some("Sixfold <noreply@sixfold.local>")
    );
    assert!(
        header(&text, "Content-Type").is_some_and(|v| v.starts_with("multipart/alternative")),
        "{text}"
    );
    let plain = text.find("Content-Type: text/plain").expect("text part");
    let html = text.find("Content-Type: text/html").expect("html part");
    assert!(
        plain < html,
        "the text part comes first, as RFC 2046 orders alternatives"
    );
    assert!(text.contains("Hello Ada"));
    assert!(text.contains("<p>Hello <b>Ada</b></p>"));
}

#[test]
fn email_without_html_is_a_single_text_part() {
    let text = formatted(&EmailMessage {
        html_body: None,
        ..email()
    });
    assert!(
        header(&text, "Content-Type").is_some_and(|v| v.starts_with("text/plain")),
        "{text}"
    );
    assert!(!text.contains("multipart"));
    assert!(!text.contains("text/html"));
}

#[test]
fn korean_subject_is_rfc_2047_encoded_and_round_trips() {
    let subject = "새 팔로워가 있습니다: 에이다님이 회원님을 팔로우하기 시작했습니다";
    let text = formatted(&EmailMessage {
        subject: subject.into(),
        ..email()
    });
    let encoded = header(&text, "Subject").expect("subject");
    assert!(encoded.is_ascii(), "{encoded}");
    let mut decoded = Vec::new();
    for word in encoded.split_whitespace() {
        let payload = word
            .strip_prefix("=?utf-8?b?")
            .and_then(|w| w.strip_suffix("?="))
            .unwrap_or_else(|| panic!("not a base64 encoded-word: {word}"));
        decoded.extend(STANDARD.decode(payload).expect("base64"));
    }
    assert_eq!(String::from_utf8(decoded).expect("utf-8"), subject);
}

#[test]
fn line_breaks_in_the_subject_cannot_add_headers() {
    let text = formatted(&EmailMessage {
        subject: "Hi\r\nBcc: eve@example.com".into(),
        ..email()
    });
    assert!(
        headers(&text).iter().all(|h| !h.starts_with("Bcc")),
        "{text}"
    );
}

#[test]
fn invalid_recipient_is_permanent() {
    for to in ["", "not an address", "ada@", "@example.com"] {
        let outcome = build_message(
            &from(),
            &EmailMessage {
                to: to.into(),
                ..email()
            },
        )
        .expect_err("invalid");
        assert!(matches!(outcome, Outcome::Permanent { .. }), "{to:?}");
    }
}

#[test]
fn message_id_keeps_safe_ids_and_hashes_the_rest() {
    assert_eq!(
        message_id("0197a5c2-7d1e-7b3a-9c1f-2b8e4d6f0a11"),
        "<0197a5c2-7d1e-7b3a-9c1f-2b8e4d6f0a11@sixfold>"
    );
    for unsafe_id in ["", "a b", "a@b", "x>y", ".a", "a..b", "알림"] {
        let id = message_id(unsafe_id);
        assert_eq!(id, message_id(unsafe_id), "deterministic");
        let uuid = id
            .strip_prefix('<')
            .and_then(|i| i.strip_suffix("@sixfold>"))
            .expect("shape");
        assert!(Uuid::parse_str(uuid).is_ok(), "{unsafe_id:?} -> {id}");
    }
    assert_ne!(message_id("a b"), message_id("a  b"));
}

#[test]
fn settings_defaults_and_validation() {
    let settings: EmailSettings = serde_json::from_value(serde_json::json!({
        "host": "smtp.example.com",
        "port": 587,
        "tls": "starttls",
        "username": "notify",
        "password": "hunter2",
        "timeout": "30s",
    }))
    .expect("settings");
    assert_eq!(settings.tls, SmtpTls::Starttls);
    assert_eq!(settings.timeout, Duration::from_secs(30));
    assert_eq!(settings.from, "Sixfold <noreply@sixfold.local>");
    assert!(!format!("{settings:?}").contains("hunter2"));
    assert!(serde_json::from_value::<EmailSettings>(serde_json::json!({"tls": "ssl"})).is_err());
    assert_eq!(EmailSettings::default().port, 2525);
    assert_eq!(EmailSettings::default().tls, SmtpTls::None);
}

#[test]
fn construction_outside_a_runtime_is_an_error_not_a_panic() {
    assert!(matches!(
        EmailClient::new(&EmailSettings::default()),
        Err(ChannelError::NoRuntime("email"))
    ));
}

#[tokio::test]
async fn construction_reports_bad_settings() {
    assert!(EmailClient::new(&EmailSettings::default()).is_ok());
    let tls = EmailClient::new(&EmailSettings {
        tls: SmtpTls::Tls,
        ..EmailSettings::default()
    });
    assert!(tls.is_ok(), "{tls:?}");
    assert!(matches!(
        EmailClient::new(&EmailSettings {
            from: "not a mailbox".into(),
            ..EmailSettings::default()
        }),
        Err(ChannelError::InvalidSetting {
            setting: "email.from",
            ..
        })
    ));
    assert!(matches!(
        EmailClient::new(&EmailSettings {
            username: Some("notify".into()),
            ..EmailSettings::default()
        }),
        Err(ChannelError::InvalidSetting { .. })
    ));
}

/// A loopback SMTP server that answers `RCPT TO` with `rcpt_reply` and records each message's
/// DATA.
async fn smtp_server(rcpt_reply: &'static str) -> (SocketAddr, Arc<StdMutex<Vec<String>>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let messages = Arc::new(StdMutex::new(Vec::new()));
    let recorded = Arc::clone(&messages);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 stub ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let reply = match verb.as_str() {
                        "EHLO" | "HELO" => "250 stub",
                        "RCPT" => rcpt_reply,
                        "DATA" => {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push_str("\r\n");
                            }
                            recorded.lock().expect("lock").push(data);
                            "250 2.0.0 Ok: queued as ABC123"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => "250 2.0.0 Ok",
                    };
                    let _ = write.write_all(format!("{reply}\r\n").as_bytes()).await;
                }
            });
        }
    });
    (addr, messages)
}

fn client_for(addr: SocketAddr) -> EmailClient {
    EmailClient::new(&EmailSettings {
        port: addr.port(),
        timeout: Duration::from_secs(5),
        ..EmailSettings::default()
    })
    .expect("client")
}

#[tokio::test]
async fn accepted_message_is_sent_with_the_servers_reply_as_id() {
    let (addr, messages) = smtp_server("250 2.1.5 Ok").await;
    let outcome = client_for(addr).send(&email()).await;
    assert_eq!(
        outcome,
        Outcome::Sent {
            provider_message_id: Some("2.0.0 Ok: queued as ABC123".into())
        }
    );
    let messages = messages.lock().expect("lock").clone();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains("Message-ID: <n-1@sixfold>"),
        "{}",
        messages[0]
    );
}

#[tokio::test]
async fn permanent_rejection_is_permanent_and_transient_is_retried() {
    let (addr, _) = smtp_server("550 5.1.1 No such user").await;
    let outcome = client_for(addr).send(&email()).await;
    assert!(
        matches!(&outcome, Outcome::Permanent { reason } if reason.contains("550")),
        "{outcome:?}"
    );

    let (addr, _) = smtp_server("451 4.3.0 Try again later").await;
    let outcome = client_for(addr).send(&email()).await;
    assert!(
        matches!(&outcome, Outcome::Retry { reason, .. } if reason.contains("451")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let outcome = client_for(closed_port()).send(&email()).await;
    assert!(
        matches!(&outcome, Outcome::Retry { reason, retry_after: None } if reason.starts_with("smtp transport error")),
        "{outcome:?}"
    );
}
