use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use sixfold_notify::provider::{self, Outcome};

use super::*;
use crate::standins::credentials::{self, KeyPair};
use crate::standins::unix_now;

const PROJECT: &str = "sixfold-test";
const EMAIL: &str = "notify@sixfold-test.iam.gserviceaccount.com";
const DEVICE: &str = "fcm-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx";

/// RSA key generation is slow in debug builds, so all tests share two keys.
static KEY: LazyLock<KeyPair> =
    LazyLock::new(|| credentials::service_account_key().expect("RSA key"));
static OTHER_KEY: LazyLock<KeyPair> =
    LazyLock::new(|| credentials::service_account_key().expect("RSA key"));

struct Fixture {
    standin: FcmStandIn,
    http: reqwest::Client,
}

async fn fixture() -> Fixture {
    let standin = FcmStandIn::start(FcmConfig {
        project_id: PROJECT.into(),
        client_email: EMAIL.into(),
        public_key_pem: KEY.public_pem.clone(),
    })
    .await
    .expect("start");
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    Fixture { standin, http }
}

/// A JWT with `header` and `claims` signed RS256 with `key`.
fn sign(key: &KeyPair, header: &Value, claims: &Value) -> String {
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&key.private_pem).expect("private key");
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer.sign(input.as_bytes()).to_vec();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn rs256() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": "0123abcd"})
}

impl Fixture {
    /// Claims a service account sends.
    fn claims(&self) -> Value {
        let now = unix_now();
        json!({
            "iss": EMAIL,
            "scope": format!("https://www.googleapis.com/auth/cloud-platform {MESSAGING_SCOPE}"),
            "aud": self.standin.token_uri(),
            "iat": now,
            "exp": now + 3600,
        })
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.http
            .post(self.standin.token_uri())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("send")
    }

    async fn exchange(&self, assertion: &str) -> reqwest::Response {
        self.token_request(&[("grant_type", oauth_grant()), ("assertion", assertion)])
            .await
    }

    async fn access_token(&self) -> String {
        let response = self.exchange(&sign(&KEY, &rs256(), &self.claims())).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    async fn send(&self, access_token: &str, project: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/v1/projects/{project}/messages:send",
                self.standin.url()
            ))
            .bearer_auth(access_token)
            .json(body)
            .send()
            .await
            .expect("send")
    }
}

fn oauth_grant() -> &'static str {
    "urn:ietf:params:oauth:grant-type:jwt-bearer"
}

fn to_device(token: &str) -> Value {
    json!({"message": {
        "token": token,
        "notification": {"title": "New follower", "body": "Ada follows you"},
        "data": {"kind": "follow", "user": "42"},
        "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "follow"},
        "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"badge": 1}}},
        "fcmOptions": {"analyticsLabel": "follow"},
    }})
}

/// Status, FCM error code (or the rpc status name) and message of an error answer.
async fn google_error(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    let error = &body["error"];
    assert_eq!(error["code"], status);
    let code = error["details"]
        .as_array()
        .and_then(|d| d.iter().find_map(|d| d["errorCode"].as_str()))
        .or(error["status"].as_str())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        code,
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn exchanges_an_assertion_and_accepts_a_message() {
    let f = fixture().await;
    let response = f.exchange(&sign(&KEY, &rs256(), &f.claims())).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().expect("token").to_owned();

    let response = f.send(&access, PROJECT, &to_device(DEVICE)).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let name = body["name"].as_str().expect("name");
    let number = name
        .strip_prefix(&format!("projects/{PROJECT}/messages/"))
        .expect("name prefix");
    assert!(number.parse::<u64>().is_ok(), "{name}");

    let topic = json!({"message": {"topic": "news", "data": {"a": "b"}}, "validate_only": true});
    let response = f.send(&access, PROJECT, &topic).await;
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["name"],
        format!("projects/{PROJECT}/messages/fake_message_id")
    );

    assert_eq!(
        f.standin.accepted(),
        vec![
            AcceptedMessage {
                project: PROJECT.into(),
                token: Some(DEVICE.into()),
                message: to_device(DEVICE)["message"].clone(),
                validate_only: false,
            },
            AcceptedMessage {
                project: PROJECT.into(),
                token: None,
                message: topic["message"].clone(),
                validate_only: true,
            },
        ]
    );
    assert_eq!(f.standin.access_tokens_issued(), 1);
    assert!(f.standin.rejected().is_empty());
}

#[tokio::test]
async fn token_endpoint_also_answers_http1() {
    let f = fixture().await;
    let http1 = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let form = format!(
        "grant_type={}&assertion={}",
        oauth_grant(),
        sign(&KEY, &rs256(), &f.claims())
    );
    let response = http1
        .post(f.standin.token_uri())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("send");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn refuses_bad_assertions_with_googles_oauth_errors() {
    let f = fixture().await;
    let now = unix_now();
    let with = |changes: &[(&str, Value)]| {
        let mut claims = f.claims();
        for (key, value) in changes {
            claims[*key] = value.clone();
        }
        claims
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "foreign key",
            sign(&OTHER_KEY, &rs256(), &f.claims()),
            "invalid_grant",
        ),
        (
            "wrong issuer",
            sign(&KEY, &rs256(), &with(&[("iss", json!("x@y.com"))])),
            "invalid_grant",
        ),
        (
            "wrong audience",
            sign(
                &KEY,
                &rs256(),
                &with(&[("aud", json!("https://oauth2.googleapis.com/token"))]),
            ),
            "invalid_grant",
        ),
        (
            "no FCM scope",
            sign(
                &KEY,
                &rs256(),
                &with(&[(
                    "scope",
                    json!("https://www.googleapis.com/auth/cloud-platform"),
                )]),
            ),
            "invalid_scope",
        ),
        (
            "too long-lived",
            sign(
                &KEY,
                &rs256(),
                &with(&[("iat", json!(now)), ("exp", json!(now + 3601))]),
            ),
            "invalid_grant",
        ),
        (
            "expired",
            sign(
                &KEY,
                &rs256(),
                &with(&[("iat", json!(now - 7200)), ("exp", json!(now - 3600))]),
            ),
            "invalid_grant",
        ),
        (
            "not RS256",
            sign(&KEY, &json!({"alg": "HS256", "typ": "JWT"}), &f.claims()),
            "invalid_grant",
        ),
        ("garbage", "not.a.jwt".to_owned(), "invalid_grant"),
    ];
    for (name, assertion, expected) in &cases {
        let response = f.exchange(assertion).await;
        assert_eq!(response.status(), 400, "case {name}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], *expected, "case {name}: {body}");
        assert!(body["error_description"].is_string());
    }

    let wrong_grant = f
        .token_request(&[("grant_type", "client_credentials")])
        .await;
    let body: Value = wrong_grant.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
    let missing = f.token_request(&[("grant_type", oauth_grant())]).await;
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(f.standin.access_tokens_issued(), 0);
    assert_eq!(f.standin.rejected().len(), cases.len() + 2);
}

#[tokio::test]
async fn refuses_bad_credentials_projects_and_messages() {
    let f = fixture().await;
    let access = f.access_token().await;

    let anonymous = f
        .http
        .post(format!(
            "{}/v1/projects/{PROJECT}/messages:send",
            f.standin.url()
        ))
        .json(&to_device(DEVICE))
        .send()
        .await
        .expect("send");
    assert_eq!(google_error(anonymous).await.1, "UNAUTHENTICATED");

    let forged = f.send("ya29.forged", PROJECT, &to_device(DEVICE)).await;
    assert_eq!(
        forged.headers()["www-authenticate"],
        "Bearer realm=\"https://accounts.google.com/\""
    );
    let body: Value = forged.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": {
            "code": 401,
            "message": "Request had invalid authentication credentials.",
            "status": "UNAUTHENTICATED",
        }})
    );

    let other_project = f.send(&access, "someone-else", &to_device(DEVICE)).await;
    assert_eq!(
        google_error(other_project).await,
        (
            404,
            "NOT_FOUND".into(),
            "Requested entity was not found.".into()
        )
    );

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "number in data",
            json!({"message": {"token": DEVICE, "data": {"n": 1}}}),
            "message.data[0].value",
        ),
        (
            "unknown top-level",
            json!({"message": {"token": DEVICE}, "dry_run": true}),
            "Unknown name \"dry_run\"",
        ),
        (
            "unknown in message",
            json!({"message": {"token": DEVICE, "priority": "high"}}),
            "Unknown name \"priority\" at 'message'",
        ),
        (
            "two targets",
            json!({"message": {"token": DEVICE, "topic": "news"}}),
            "oneof field 'target' is already set",
        ),
        (
            "no target",
            json!({"message": {"data": {"a": "b"}}}),
            "Recipient of the message is not set.",
        ),
        (
            "no message",
            json!({}),
            "Recipient of the message is not set.",
        ),
        (
            "bad token",
            json!({"message": {"token": "has spaces"}}),
            "not a valid FCM registration token",
        ),
        (
            "bad topic",
            json!({"message": {"topic": "/topics/news"}}),
            "Invalid topic name",
        ),
        (
            "title not text",
            json!({"message": {"token": DEVICE, "notification": {"title": 5}}}),
            "message.notification.title",
        ),
        (
            "android priority",
            json!({"message": {"token": DEVICE, "android": {"priority": "URGENT"}}}),
            "message.android.priority",
        ),
        (
            "android ttl",
            json!({"message": {"token": DEVICE, "android": {"ttl": 3600}}}),
            "message.android.ttl",
        ),
        (
            "apns not object",
            json!({"message": {"token": DEVICE, "apns": "x"}}),
            "message.apns",
        ),
        (
            "validate_only text",
            json!({"message": {"token": DEVICE}, "validate_only": "yes"}),
            "validate_only",
        ),
    ];
    for (name, body, expected) in &cases {
        let (status, code, message) = google_error(f.send(&access, PROJECT, body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "INVALID_ARGUMENT"),
            "case {name}"
        );
        assert!(message.contains(expected), "case {name}: {message}");
    }
    assert!(f.standin.accepted().is_empty());
    assert_eq!(f.standin.rejected().len(), 3 + cases.len());
}

#[tokio::test]
async fn scripted_answers_come_in_order_then_normal_service_resumes() {
    let f = fixture().await;
    let access = f.access_token().await;
    f.standin.script(
        DEVICE,
        vec![
            FcmScriptedAnswer::QuotaExceeded { retry_after: 30 },
            FcmScriptedAnswer::Unavailable { retry_after: None },
            FcmScriptedAnswer::Internal,
            FcmScriptedAnswer::InvalidToken,
            FcmScriptedAnswer::Unregistered,
        ],
    );
    let expected = [
        (429, "QUOTA_EXCEEDED", Some("30")),
        (503, "UNAVAILABLE", None),
        (500, "INTERNAL", None),
        (400, "INVALID_ARGUMENT", None),
        (404, "UNREGISTERED", None),
    ];
    let mut outcomes = Vec::new();
    for (status, code, retry_after) in expected {
        let response = f.send(&access, PROJECT, &to_device(DEVICE)).await;
        let header = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii").to_owned());
        assert_eq!(header.as_deref(), retry_after);
        let text = response.text().await.expect("body");
        outcomes.push(provider::fcm(status, &text, header.as_deref()));
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(body["error"]["code"], status);
        assert_eq!(body["error"]["details"][0]["errorCode"], code);
    }
    // The answers are the ones Sixfold's classifier knows.
    assert!(
        matches!(outcomes[0], Outcome::Retry { retry_after: Some(d), .. } if d.as_secs() == 30)
    );
    assert!(matches!(outcomes[1], Outcome::Retry { .. }));
    assert!(matches!(outcomes[2], Outcome::Retry { .. }));
    assert!(matches!(outcomes[3], Outcome::PruneToken { .. }));
    assert!(matches!(outcomes[4], Outcome::PruneToken { .. }));

    assert_eq!(
        f.send(&access, PROJECT, &to_device(DEVICE)).await.status(),
        200
    );
    assert_eq!(f.standin.accepted().len(), 1);
    let reasons: Vec<String> = f.standin.rejected().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        reasons,
        [
            "QUOTA_EXCEEDED",
            "UNAVAILABLE",
            "INTERNAL",
            "INVALID_ARGUMENT",
            "UNREGISTERED"
        ]
    );

    f.standin.unregister(DEVICE);
    let gone = f.send(&access, PROJECT, &to_device(DEVICE)).await;
    assert_eq!(google_error(gone).await.1, "UNREGISTERED");
}

#[tokio::test]
async fn messages_endpoint_refuses_http1() {
    let f = fixture().await;
    let access = f.standin.issue_access_token();
    let http1 = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let response = http1
        .post(format!(
            "{}/v1/projects/{PROJECT}/messages:send",
            f.standin.url()
        ))
        .bearer_auth(access)
        .json(&to_device(DEVICE))
        .send()
        .await
        .expect("send");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 400);
    assert!(f.standin.accepted().is_empty());
}
