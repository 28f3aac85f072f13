use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::*;
use crate::channels::test_support::{RecordedRequest, closed_port, h2c_server, http1_server};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

const TOKEN: &str = "fcm-token-1:APA91b_x";
const NOW_MS: i64 = 1_750_000_000_000;
const CLIENT_EMAIL: &str = "notify@sixfold-test.iam.gserviceaccount.com";

fn push() -> PushMessage {
    PushMessage {
        notification_id: "n-1".into(),
        title: "새 팔로워".into(),
        body: "Ada followed you".into(),
        data: BTreeMap::from([
            ("deep_link".to_owned(), "sixfold://u/ada".to_owned()),
            ("count".to_owned(), "3".to_owned()),
        ]),
        priority: PushPriority::High,
        collapse_id: Some("follows".into()),
        expires_at_ms: Some(NOW_MS + 3_600_000),
    }
}

/// A push without an expiry, for sends at the real current time.
fn live_push() -> PushMessage {
    PushMessage {
        expires_at_ms: None,
        ..push()
    }
}

#[test]
fn message_has_the_http_v1_shape() {
    let message = build_message(TOKEN, &push(), NOW_MS).expect("message");
    assert_eq!(
        message,
        serde_json::json!({
            "message": {
                "token": TOKEN,
                "notification": {"title": "새 팔로워", "body": "Ada followed you"},
                "data": {"count": "3", "deep_link": "sixfold://u/ada"},
                "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "follows"},
                "apns": {"headers": {"apns-priority": "10", "apns-collapse-id": "follows"}},
            }
        })
    );
    // FCM rejects data values that are not strings.
    let data = message["message"]["data"].as_object().expect("data object");
    assert!(data.values().all(serde_json::Value::is_string));
}

#[test]
fn normal_priority_without_expiry_or_collapse_leaves_them_out() {
    let message = build_message(
        TOKEN,
        &PushMessage {
            priority: PushPriority::Normal,
            collapse_id: None,
            expires_at_ms: None,
            data: BTreeMap::new(),
            ..push()
        },
        NOW_MS,
    )
    .expect("message");
    assert_eq!(
        message["message"]["android"],
        serde_json::json!({"priority": "NORMAL"})
    );
    assert_eq!(
        message["message"]["apns"],
        serde_json::json!({"headers": {"apns-priority": "5"}})
    );
    assert_eq!(message["message"]["data"], serde_json::json!({}));
}

#[test]
fn ttl_is_rounded_up_and_capped_at_four_weeks() {
    let ttl = |expires_at_ms| {
        build_message(
            TOKEN,
            &PushMessage {
                expires_at_ms: Some(expires_at_ms),
                ..push()
            },
            NOW_MS,
        )
        .expect("message")["message"]["android"]["ttl"]
            .clone()
    };
    assert_eq!(ttl(NOW_MS + 1), "1s");
    assert_eq!(ttl(NOW_MS + 60_001), "61s");
    assert_eq!(ttl(NOW_MS + 365 * 24 * 3_600_000), "2419200s");
}

#[test]
fn expired_notification_is_not_sent() {
    let outcome = build_message(
        TOKEN,
        &PushMessage {
            expires_at_ms: Some(NOW_MS - 1),
            ..push()
        },
        NOW_MS,
    )
    .expect_err("expired");
    assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");
}

#[test]
fn long_collapse_id_is_kept_for_android_and_left_out_for_apns() {
    let long = "c".repeat(65);
    let message = build_message(
        TOKEN,
        &PushMessage {
            collapse_id: Some(long.clone()),
            ..push()
        },
        NOW_MS,
    )
    .expect("message");
    assert_eq!(message["message"]["android"]["collapse_key"], long.as_str());
    assert!(message["message"]["apns"]["headers"]["apns-collapse-id"].is_null());
}

#[test]
fn reserved_data_keys_are_refused() {
    for key in ["from", "notification", "message_type", "google.x", "gcm.n"] {
        let mut message = push();
        message.data.insert(key.into(), "v".into());
        assert!(
            matches!(
                build_message(TOKEN, &message, NOW_MS),
                Err(Outcome::Permanent { .. })
            ),
            "{key}"
        );
    }
}

#[test]
fn access_token_is_refreshed_five_minutes_before_expiry() {
    let now = 1_000_000;
    assert_eq!(refresh_at(Some(now + 3600), now), now + 3600 - 300);
    // Short-lived tokens are used for half their life rather than refetched on every send.
    assert_eq!(refresh_at(Some(now + 60), now), now + 30);
    assert_eq!(refresh_at(Some(now - 10), now), now - 10);
    assert_eq!(refresh_at(None, now), now + 300);
}

/// A fresh RSA key: (PKCS#8 PEM as in a service account file, PKCS#1 DER public key).
fn rsa_key() -> (String, Vec<u8>) {
    let key = KeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
    let der = key.as_der().expect("PKCS#8");
    let base64 = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    (pem, key.public_key().as_ref().to_vec())
}

/// A service account file as the Google Cloud console writes it.
fn service_account_json(private_key: &str, token_uri: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "service_account",
        "project_id": "sixfold-test",
        "private_key_id": "0123456789abcdef",
        "private_key": private_key,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/notify",
        "universe_domain": "googleapis.com",
    })
}

fn write_json(value: &serde_json::Value) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), value.to_string()).expect("write");
    file
}

#[test]
fn service_account_parsing_reads_the_token_flow_fields() {
    let json = service_account_json("-----BEGIN PRIVATE KEY-----\n", "https://oauth2.test/token");
    let key = parse_service_account(json.to_string().as_bytes()).expect("key");
    assert_eq!(key.client_email, CLIENT_EMAIL);
    assert_eq!(key.token_uri, "https://oauth2.test/token");
    assert_eq!(key.project_id.as_deref(), Some("sixfold-test"));

    let mut no_token_uri = json.clone();
    no_token_uri
        .as_object_mut()
        .expect("object")
        .remove("token_uri");
    assert!(parse_service_account(no_token_uri.to_string().as_bytes()).is_err());

    let mut no_email = json.clone();
    no_email["client_email"] = "".into();
    assert!(parse_service_account(no_email.to_string().as_bytes()).is_err());

    let mut bad_uri = json;
    bad_uri["token_uri"] = "ftp://oauth2.test/token".into();
    assert!(parse_service_account(bad_uri.to_string().as_bytes()).is_err());

    assert!(parse_service_account(b"not json").is_err());
}

#[tokio::test]
async fn construction_reports_missing_and_bad_settings() {
    let (pem, _) = rsa_key();
    let file = write_json(&service_account_json(&pem, "http://127.0.0.1:1/token"));
    let settings = FcmSettings {
        endpoint: "http://127.0.0.1:1".into(),
        service_account_path: file.path().to_owned(),
        ..FcmSettings::default()
    };
    let client = FcmClient::new(&settings).await.expect("client");
    assert!(
        client
            .send_url
            .ends_with("/v1/projects/sixfold-test/messages:send")
    );

    let overridden = FcmSettings {
        project_id: Some("other-project".into()),
        ..settings.clone()
    };
    let client = FcmClient::new(&overridden).await.expect("client");
    assert!(
        client
            .send_url
            .ends_with("/v1/projects/other-project/messages:send")
    );

    let mut no_project = service_account_json(&pem, "http://127.0.0.1:1/token");
    no_project["project_id"] = serde_json::Value::Null;
    let no_project_file = write_json(&no_project);
    let no_project = FcmSettings {
        service_account_path: no_project_file.path().to_owned(),
        ..settings.clone()
    };
    assert!(matches!(
        FcmClient::new(&no_project).await,
        Err(ChannelError::MissingSetting("fcm.project_id"))
    ));

    let bad_key_file = write_json(&service_account_json(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "http://127.0.0.1:1/token",
    ));
    let bad_key = FcmSettings {
        service_account_path: bad_key_file.path().to_owned(),
        ..settings.clone()
    };
    assert!(matches!(
        FcmClient::new(&bad_key).await,
        Err(ChannelError::ServiceAccount { .. })
    ));

    let missing = FcmSettings {
        service_account_path: "/nonexistent/service-account.json".into(),
        ..settings
    };
    assert!(matches!(
        FcmClient::new(&missing).await,
        Err(ChannelError::ReadFile { .. })
    ));
}

/// A loopback OAuth token endpoint (HTTP/1.1) handing out `access-<n>` tokens valid for an
/// hour.
async fn token_endpoint() -> (SocketAddr, Arc<Mutex<Vec<RecordedRequest>>>) {
    http1_server("200 OK", "", |n| {
        format!(r#"{{"access_token":"access-{n}","expires_in":3599,"token_type":"Bearer"}}"#)
    })
    .await
}

/// Decodes a base64url JWT part; yup-oauth2 pads its parts, which Google accepts.
fn base64url(part: &str) -> Vec<u8> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(part).expect("base64url")
}

#[tokio::test]
async fn token_flow_posts_a_signed_jwt_bearer_grant_to_the_token_uri_and_caches_the_token() {
    let (pem, public_key) = rsa_key();
    let (token_addr, requests) = token_endpoint().await;
    let token_uri = format!("http://{token_addr}/token");
    let file = write_json(&service_account_json(&pem, &token_uri));
    let settings = FcmSettings {
        endpoint: format!("http://{}", closed_port()),
        service_account_path: file.path().to_owned(),
        request_timeout: Duration::from_secs(5),
        ..FcmSettings::default()
    };
    let client = FcmClient::new(&settings).await.expect("client");

    // FCM itself is unreachable: the send is retried, after the token was fetched.
    let outcome = client.send(TOKEN, &live_push()).await;
    assert!(
        matches!(&outcome, Outcome::Retry { reason, .. } if reason.starts_with("fcm transport error")),
        "{outcome:?}"
    );
    let outcome = client.send(TOKEN, &live_push()).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    let requests = requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1, "the second send reuses the cached token");
    assert!(
        requests[0].head.starts_with("POST /token "),
        "{}",
        requests[0].head
    );

    let form: BTreeMap<String, String> = requests[0].form().into_iter().collect();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    let assertion = form.get("assertion").expect("assertion");
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&base64url(parts[0])).expect("header");
    assert_eq!(header["alg"], "RS256");
    let claims: serde_json::Value = serde_json::from_slice(&base64url(parts[1])).expect("claims");
    assert_eq!(claims["iss"], CLIENT_EMAIL);
    assert_eq!(claims["scope"], MESSAGING_SCOPE);
    assert_eq!(claims["aud"], token_uri.as_str());
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!((3500..=3600).contains(&(exp - iat)), "{claims}");
    assert!((iat - unix_now_ms() / 1000).abs() < 60, "{claims}");

    let signed = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public_key)
        .verify(signed.as_bytes(), &base64url(parts[2]))
        .expect("the assertion verifies with the service account's public key");
}

#[tokio::test]
async fn unreachable_token_endpoint_is_retried() {
    let (pem, _) = rsa_key();
    let file = write_json(&service_account_json(
        &pem,
        &format!("http://{}/token", closed_port()),
    ));
    let settings = FcmSettings {
        endpoint: format!("http://{}", closed_port()),
        service_account_path: file.path().to_owned(),
        ..FcmSettings::default()
    };
    let client = FcmClient::new(&settings).await.expect("client");
    let outcome = client.send(TOKEN, &live_push()).await;
    assert!(
        matches!(&outcome, Outcome::Retry { reason, retry_after: None } if reason.starts_with("fcm access token")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn sends_over_h2c_with_the_access_token_and_drops_it_on_401() {
    let (pem, _) = rsa_key();
    let (token_addr, token_requests) = token_endpoint().await;
    let (fcm_addr, fcm_requests) = h2c_server(|n| match n {
        2 => (
            401,
            vec![],
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#.to_owned(),
        ),
        _ => (
            200,
            vec![],
            format!(r#"{{"name":"projects/sixfold-test/messages/{n}"}}"#),
        ),
    })
    .await;
    let file = write_json(&service_account_json(
        &pem,
        &format!("http://{token_addr}/token"),
    ));
    let settings = FcmSettings {
        endpoint: format!("http://{fcm_addr}"),
        service_account_path: file.path().to_owned(),
        request_timeout: Duration::from_secs(5),
        ..FcmSettings::default()
    };
    let client = FcmClient::new(&settings).await.expect("client");

    assert_eq!(
        client.send(TOKEN, &live_push()).await,
        Outcome::Sent {
            provider_message_id: Some("projects/sixfold-test/messages/1".into())
        }
    );
    assert!(matches!(
        client.send(TOKEN, &live_push()).await,
        Outcome::Retry { .. }
    ));
    assert_eq!(
        client.send(TOKEN, &live_push()).await,
        Outcome::Sent {
            provider_message_id: Some("projects/sixfold-test/messages/3".into())
        }
    );

    assert_eq!(token_requests.lock().expect("lock").len(), 2);
    let requests = fcm_requests.lock().expect("lock").clone();
    let bearers: Vec<_> = requests
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        bearers,
        ["Bearer access-1", "Bearer access-1", "Bearer access-2"]
    );
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/projects/sixfold-test/messages:send");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
    assert_eq!(
        body,
        build_message(TOKEN, &live_push(), unix_now_ms()).expect("message")
    );
}
