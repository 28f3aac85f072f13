use std::collections::BTreeMap;
use std::io::Write as _;

use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rand_core::OsRng;

use super::*;
use crate::apns_token::verify_provider_token;
use crate::channels::test_support::{closed_port, h2c_server, silent_server};

const TOPIC: &str = "com.sixfold.app";
const TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const NOW_MS: i64 = 1_750_000_000_000;

fn push() -> PushMessage {
    PushMessage {
        notification_id: "n-1".into(),
        title: "New follower".into(),
        body: "Ada followed you".into(),
        data: BTreeMap::from([("deep_link".to_owned(), "sixfold://u/ada".to_owned())]),
        priority: PushPriority::High,
        collapse_id: None,
        expires_at_ms: None,
    }
}

fn header<'a>(request: &'a ApnsRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn build(push: &PushMessage) -> Result<ApnsRequest, Outcome> {
    build_request(TOPIC, TOKEN, push, NOW_MS)
}

#[test]
fn request_has_apple_path_headers_and_payload() {
    let request = build(&push()).expect("request");
    assert_eq!(request.path, format!("/3/device/{TOKEN}"));
    assert_eq!(header(&request, "apns-topic"), Some(TOPIC));
    assert_eq!(header(&request, "apns-push-type"), Some("alert"));
    assert_eq!(header(&request, "apns-priority"), Some("10"));
    assert_eq!(header(&request, "apns-expiration"), Some("0"));
    // Without a collapse id of its own, a push collapses by its notification id.
    assert_eq!(header(&request, "apns-collapse-id"), Some("n-1"));
    assert_eq!(header(&request, "apns-id"), Some(request.apns_id.as_str()));
    assert_eq!(header(&request, "authorization"), None, "added by send");

    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({
            "aps": {
                "alert": {"title": "New follower", "body": "Ada followed you"},
                "sound": "default",
            },
            "deep_link": "sixfold://u/ada",
        })
    );
}

#[test]
fn normal_priority_is_5() {
    let request = build(&PushMessage {
        priority: PushPriority::Normal,
        ..push()
    })
    .expect("request");
    assert_eq!(header(&request, "apns-priority"), Some("5"));
}

#[test]
fn expiration_is_unix_seconds_rounded_up() {
    let request = build(&PushMessage {
        expires_at_ms: Some(NOW_MS + 60_500),
        ..push()
    })
    .expect("request");
    assert_eq!(header(&request, "apns-expiration"), Some("1750000061"));
}

#[test]
fn expired_notification_is_not_sent() {
    for expires_at in [NOW_MS, NOW_MS - 1] {
        let outcome = build(&PushMessage {
            expires_at_ms: Some(expires_at),
            ..push()
        })
        .expect_err("expired");
        assert!(
            matches!(&outcome, Outcome::Permanent { reason } if reason.contains("expired")),
            "{outcome:?}"
        );
    }
}

#[test]
fn collapse_id_up_to_64_bytes_is_sent_and_longer_is_refused() {
    let id = "c".repeat(MAX_COLLAPSE_ID_BYTES);
    let request = build(&PushMessage {
        collapse_id: Some(id.clone()),
        ..push()
    })
    .expect("request");
    assert_eq!(header(&request, "apns-collapse-id"), Some(id.as_str()));

    // 22 three-byte characters: 66 bytes in 22 characters.
    let outcome = build(&PushMessage {
        collapse_id: Some("알".repeat(22)),
        ..push()
    })
    .expect_err("too long");
    assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");
}

#[test]
fn payload_over_4096_bytes_is_refused_without_sending() {
    let mut big = push();
    big.data
        .insert("blob".into(), "x".repeat(MAX_PAYLOAD_BYTES));
    let outcome = build(&big).expect_err("too large");
    assert!(
        matches!(&outcome, Outcome::Permanent { reason } if reason.contains("4096")),
        "{outcome:?}"
    );

    // A payload of exactly the limit is accepted.
    let base = build(&push()).expect("request").body.len();
    let mut exact = push();
    let filler = MAX_PAYLOAD_BYTES - base - r#","pad":"""#.len();
    exact.data.insert("pad".into(), "x".repeat(filler));
    assert_eq!(
        build(&exact).expect("at the limit").body.len(),
        MAX_PAYLOAD_BYTES
    );
}

#[test]
fn data_key_aps_is_refused() {
    let mut message = push();
    message.data.insert("aps".into(), "oops".into());
    assert!(matches!(build(&message), Err(Outcome::Permanent { .. })));
}

#[test]
fn malformed_device_token_is_pruned_without_sending() {
    for token in ["", "not-hex", "abcd/../x"] {
        assert!(
            matches!(
                build_request(TOPIC, token, &push(), NOW_MS),
                Err(Outcome::PruneToken { .. })
            ),
            "{token:?}"
        );
    }
}

#[test]
fn apns_id_is_a_stable_v5_uuid_per_notification_and_device() {
    let id = apns_id("n-1", TOKEN);
    assert_eq!(id, apns_id("n-1", TOKEN));
    assert_eq!(id.get_version_num(), 5);
    assert_ne!(id, apns_id("n-2", TOKEN));
    assert_ne!(id, apns_id("n-1", "ffff"));
    assert_ne!(apns_id("ab", "c"), apns_id("a", "bc"));
    // Canonical lowercase 8-4-4-4-12 form, as APNs expects.
    let text = build(&push()).expect("request").apns_id;
    assert_eq!(text, id.to_string());
    assert_eq!(text.len(), 36);
    assert_eq!(text, text.to_lowercase());
}

#[test]
fn settings_have_defaults_and_read_humantime_durations() {
    let settings: ApnsSettings = serde_json::from_value(serde_json::json!({
        "endpoint": SANDBOX_ENDPOINT,
        "topic": TOPIC,
        "key_id": "ABC123DEFG",
        "team_id": "DEF123GHIJ",
        "key_path": "/etc/sixfold/apns.p8",
        "token_refresh": "45m",
    }))
    .expect("settings");
    assert_eq!(settings.token_refresh, Duration::from_secs(45 * 60));
    assert_eq!(settings.request_timeout, Duration::from_secs(10));
    assert_eq!(ApnsSettings::default().endpoint, PRODUCTION_ENDPOINT);
    assert!(serde_json::from_value::<ApnsSettings>(serde_json::json!({"topik": "x"})).is_err());
}

/// A client's settings, with a fresh key written to a temporary file, and the key's public
/// half (SPKI PEM).
fn settings_with_key(endpoint: String) -> (ApnsSettings, tempfile::NamedTempFile) {
    let (settings, file, _) = settings_and_public_key(endpoint);
    (settings, file)
}

fn settings_and_public_key(endpoint: String) -> (ApnsSettings, tempfile::NamedTempFile, String) {
    let key = SigningKey::random(&mut OsRng);
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("encode public key");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("encode key");
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(pem.as_bytes()).expect("write key");
    let settings = ApnsSettings {
        endpoint,
        topic: TOPIC.into(),
        key_id: "ABC123DEFG".into(),
        team_id: "DEF123GHIJ".into(),
        key_path: file.path().to_owned(),
        request_timeout: Duration::from_millis(300),
        ..ApnsSettings::default()
    };
    (settings, file, public)
}

#[test]
fn construction_reports_missing_and_bad_settings() {
    let (settings, _key) = settings_with_key("http://127.0.0.1:1".into());
    assert!(ApnsClient::new(&settings).is_ok());

    let missing_topic = ApnsSettings {
        topic: " ".into(),
        ..settings.clone()
    };
    assert!(matches!(
        ApnsClient::new(&missing_topic),
        Err(ChannelError::MissingSetting("apns.topic"))
    ));

    let missing_file = ApnsSettings {
        key_path: "/nonexistent/apns.p8".into(),
        ..settings.clone()
    };
    assert!(matches!(
        ApnsClient::new(&missing_file),
        Err(ChannelError::ReadFile { .. })
    ));

    let mut garbage = tempfile::NamedTempFile::new().expect("temp file");
    garbage.write_all(b"not a key").expect("write");
    let bad_key = ApnsSettings {
        key_path: garbage.path().to_owned(),
        ..settings.clone()
    };
    assert!(matches!(
        ApnsClient::new(&bad_key),
        Err(ChannelError::ApnsKey(_))
    ));

    let bad_endpoint = ApnsSettings {
        endpoint: "api.push.apple.com".into(),
        ..settings
    };
    assert!(matches!(
        ApnsClient::new(&bad_endpoint),
        Err(ChannelError::InvalidSetting { .. })
    ));
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let (settings, _key) = settings_with_key(format!("http://{}", closed_port()));
    let client = ApnsClient::new(&settings).expect("client");
    let outcome = client.send(TOKEN, &push()).await;
    assert!(
        matches!(&outcome, Outcome::Retry { reason, retry_after: None } if reason.starts_with("apns transport error")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_into_a_retry() {
    let (settings, _key) = settings_with_key(format!("http://{}", silent_server().await));
    let client = ApnsClient::new(&settings).expect("client");
    let outcome = client.send(TOKEN, &push()).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
}

#[tokio::test]
async fn sends_over_h2c_with_a_valid_provider_token_and_reads_the_apns_id() {
    let (addr, requests) = h2c_server(|_| {
        (
            200,
            vec![("apns-id", "ECHOED-ID".to_owned())],
            String::new(),
        )
    })
    .await;
    let (settings, _key, public) = settings_and_public_key(format!("http://{addr}"));
    let client = ApnsClient::new(&settings).expect("client");
    let outcome = client.send(TOKEN, &push()).await;
    assert_eq!(
        outcome,
        Outcome::Sent {
            provider_message_id: Some("ECHOED-ID".into())
        }
    );

    let requests = requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let expected = build(&push()).expect("request");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, expected.path);
    for (name, value) in &expected.headers {
        assert_eq!(request.header(name), Some(value.as_str()), "{name}");
    }
    assert_eq!(request.body, expected.body);
    let jwt = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("bearer "))
        .expect("bearer token");
    let now = u64::try_from(unix_now_ms() / 1000).expect("now");
    verify_provider_token(jwt, &public, "ABC123DEFG", "DEF123GHIJ", now)
        .expect("the provider token verifies as APNs checks it");
}

#[tokio::test]
async fn apns_errors_are_classified() {
    let (addr, _) = h2c_server(|n| match n {
        1 => (
            403,
            vec![],
            r#"{"reason":"ExpiredProviderToken"}"#.to_owned(),
        ),
        2 => (410, vec![], r#"{"reason":"Unregistered"}"#.to_owned()),
        _ => (
            429,
            vec![("retry-after", "30".to_owned())],
            r#"{"reason":"TooManyRequests"}"#.to_owned(),
        ),
    })
    .await;
    let (settings, _key) = settings_with_key(format!("http://{addr}"));
    let client = ApnsClient::new(&settings).expect("client");
    assert!(matches!(
        client.send(TOKEN, &push()).await,
        Outcome::Retry { reason, retry_after: None } if reason.contains("ExpiredProviderToken")
    ));
    assert!(matches!(
        client.send(TOKEN, &push()).await,
        Outcome::PruneToken { .. }
    ));
    assert_eq!(
        client.send(TOKEN, &push()).await,
        Outcome::Retry {
            reason: "apns 429 TooManyRequests".into(),
            retry_after: Some(Duration::from_secs(30)),
        }
    );
}

#[test]
fn a_rejected_token_is_dropped_only_while_it_is_still_the_cached_one() {
    const T0: u64 = 1_750_000_000;
    let (settings, _key) = settings_with_key("http://127.0.0.1:1".into());
    let client = ApnsClient::new(&settings).expect("client");
    let first = client.signer.token_at(T0);

    // A token that is no longer cached (another send already replaced it) changes nothing.
    client.invalidate_if_current("an-older-token", T0);
    assert_eq!(client.signer.token_at(T0 + 1), first);

    // The cached token itself is dropped: the next one is signed anew (with a later iat).
    client.invalidate_if_current(&first, T0);
    assert_ne!(client.signer.token_at(T0 + 1), first);
}
