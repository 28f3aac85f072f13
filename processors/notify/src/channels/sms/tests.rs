use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::channels::test_support::{closed_port, http1_server, silent_server};

const SID: &str = "AC0123456789abcdef0123456789abcdef";

fn sms() -> SmsMessage {
    SmsMessage {
        notification_id: "n-1".into(),
        to: "+821012345678".into(),
        body: "인증 코드: 123456 & more".into(),
    }
}

fn settings(endpoint: String) -> SmsSettings {
    SmsSettings {
        endpoint,
        account_sid: SID.into(),
        auth_token: "secret-token".into(),
        from: Some("+14155550100".into()),
        messaging_service_sid: None,
        request_timeout: Duration::from_millis(500),
    }
}

#[test]
fn form_has_to_sender_and_body() {
    assert_eq!(
        build_form(&SmsSender::From("+14155550100".into()), &sms()),
        vec![
            ("To", "+821012345678".to_owned()),
            ("From", "+14155550100".to_owned()),
            ("Body", "인증 코드: 123456 & more".to_owned()),
        ]
    );
    assert_eq!(
        build_form(&SmsSender::MessagingService("MG123".into()), &sms())[1],
        ("MessagingServiceSid", "MG123".to_owned())
    );
}

#[test]
fn settings_need_exactly_one_sender_and_credentials() {
    assert!(SmsClient::new(&settings("http://127.0.0.1:1".into())).is_ok());
    let both = SmsSettings {
        messaging_service_sid: Some("MG123".into()),
        ..settings("http://127.0.0.1:1".into())
    };
    assert!(matches!(
        SmsClient::new(&both),
        Err(ChannelError::InvalidSetting {
            setting: "sms.from",
            ..
        })
    ));
    let neither = SmsSettings {
        from: None,
        ..settings("http://127.0.0.1:1".into())
    };
    assert!(matches!(
        SmsClient::new(&neither),
        Err(ChannelError::MissingSetting("sms.from"))
    ));
    let no_token = SmsSettings {
        auth_token: SecretString::default(),
        ..settings("http://127.0.0.1:1".into())
    };
    assert!(matches!(
        SmsClient::new(&no_token),
        Err(ChannelError::MissingSetting("sms.auth_token"))
    ));
    let bad_sid = SmsSettings {
        account_sid: "AC/../x".into(),
        ..settings("http://127.0.0.1:1".into())
    };
    assert!(matches!(
        SmsClient::new(&bad_sid),
        Err(ChannelError::InvalidSetting { .. })
    ));
    let client = SmsClient::new(&settings("http://127.0.0.1:1".into())).expect("client");
    assert!(!format!("{client:?}").contains("secret-token"));
    assert_eq!(SmsSettings::default().endpoint, DEFAULT_ENDPOINT);
}

#[tokio::test]
async fn sends_a_basic_auth_form_post_and_reads_the_sid() {
    let (addr, requests) = http1_server("201 Created", "", |_| {
        r#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}"#.to_owned()
    })
    .await;
    let client = SmsClient::new(&settings(format!("http://{addr}"))).expect("client");
    let outcome = client.send(&sms()).await;
    assert_eq!(
        outcome,
        Outcome::Sent {
            provider_message_id: Some("SM0123456789abcdef0123456789abcdef".into())
        }
    );

    let requests = requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(
        request.head.starts_with(&format!(
            "POST /2010-04-01/Accounts/{SID}/Messages.json HTTP/1.1"
        )),
        "{}",
        request.head
    );
    let expected_auth = format!("Basic {}", STANDARD.encode(format!("{SID}:secret-token")));
    assert_eq!(
        request.header("authorization"),
        Some(expected_auth.as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.form(),
        vec![
            ("To".to_owned(), "+821012345678".to_owned()),
            ("From".to_owned(), "+14155550100".to_owned()),
            ("Body".to_owned(), "인증 코드: 123456 & more".to_owned()),
        ]
    );
}

#[tokio::test]
async fn twilio_errors_are_classified() {
    let (addr, _) = http1_server("400 Bad Request", "", |_| {
        r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#
            .to_owned()
    })
    .await;
    let client = SmsClient::new(&settings(format!("http://{addr}"))).expect("client");
    assert!(matches!(
        client.send(&sms()).await,
        Outcome::Permanent { .. }
    ));

    let (addr, _) = http1_server("429 Too Many Requests", "retry-after: 7\r\n", |_| {
        r#"{"code":20429,"message":"Too Many Requests","status":429}"#.to_owned()
    })
    .await;
    let client = SmsClient::new(&settings(format!("http://{addr}"))).expect("client");
    assert!(matches!(
        client.send(&sms()).await,
        Outcome::Retry { retry_after: Some(after), .. } if after == Duration::from_secs(7)
    ));
}

#[tokio::test]
async fn connection_refused_and_timeouts_are_retried() {
    let client = SmsClient::new(&settings(format!("http://{}", closed_port()))).expect("client");
    let outcome = client.send(&sms()).await;
    assert!(
        matches!(&outcome, Outcome::Retry { reason, retry_after: None } if reason.starts_with("twilio transport error")),
        "{outcome:?}"
    );

    let client =
        SmsClient::new(&settings(format!("http://{}", silent_server().await))).expect("client");
    let outcome = client.send(&sms()).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
}
