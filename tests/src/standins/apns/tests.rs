use super::*;
use crate::standins::credentials;
use sixfold_notify::apns_token::ApnsTokenSigner;

const KEY_ID: &str = "KEYID00001";
const TEAM_ID: &str = "TEAMID0001";
const BUNDLE: &str = "com.example.sixfold";
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";

struct Fixture {
    standin: ApnsStandIn,
    signer: ApnsTokenSigner,
    private_pem: String,
    http: reqwest::Client,
}

async fn fixture() -> Fixture {
    let key = credentials::apns_key().expect("key");
    let standin = ApnsStandIn::start(ApnsConfig {
        bundle_id: BUNDLE.into(),
        key_id: KEY_ID.into(),
        team_id: TEAM_ID.into(),
        public_key_pem: key.public_pem.clone(),
    })
    .await
    .expect("start");
    Fixture {
        standin,
        signer: ApnsTokenSigner::new(KEY_ID, TEAM_ID, &key.private_pem).expect("signer"),
        private_pem: key.private_pem,
        http: reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .expect("client"),
    }
}

fn device() -> String {
    "a1".repeat(32)
}

fn alert() -> String {
    json!({"aps": {"alert": {"title": "Hi", "body": "There"}}}).to_string()
}

/// A push request to build up and send.
#[derive(Clone)]
struct Push {
    token: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Push {
    /// Sets header `name` to `value`, replacing any earlier value.
    fn set(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds another `name` header, keeping earlier ones.
    fn add(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    fn to(mut self, token: &str) -> Self {
        self.token = token.to_owned();
        self
    }
}

impl Fixture {
    /// A well-formed alert push to [`device`] with a fresh provider token.
    fn push(&self) -> Push {
        Push {
            token: device(),
            headers: vec![
                (
                    "authorization".into(),
                    format!("bearer {}", self.signer.token_at(unix_now())),
                ),
                ("apns-topic".into(), BUNDLE.into()),
                ("apns-push-type".into(), "alert".into()),
            ],
            body: alert(),
        }
    }

    async fn send(&self, push: Push) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/3/device/{}", self.standin.url(), push.token));
        for (name, value) in &push.headers {
            request = request.header(name, value);
        }
        request.body(push.body).send().await.expect("send")
    }
}

async fn reason(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error body");
    (
        status,
        body["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn accepts_and_records_a_well_formed_push() {
    let f = fixture().await;
    let push = f
        .push()
        .set("apns-priority", "10")
        .set("apns-expiration", "1900000000")
        .set("apns-collapse-id", "chat-42")
        .set("apns-id", UUID);
    let response = f.send(push).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.headers()["apns-id"], UUID);
    assert!(response.bytes().await.expect("body").is_empty());

    let second = f.send(f.push()).await;
    assert_eq!(second.status(), 200);
    let assigned = second.headers()["apns-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(is_canonical_uuid(&assigned));

    let accepted = f.standin.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(
        accepted[0],
        AcceptedPush {
            device_token: device(),
            topic: BUNDLE.into(),
            push_type: "alert".into(),
            priority: Some(10),
            expiration: Some(1_900_000_000),
            collapse_id: Some("chat-42".into()),
            apns_id: UUID.into(),
            payload: serde_json::from_str(&alert()).expect("json"),
        }
    );
    assert_eq!(accepted[1].apns_id, assigned);
    assert_eq!(accepted[1].priority, None);
    assert!(f.standin.rejected().is_empty());
}

#[tokio::test]
async fn refuses_each_bad_request_with_apples_reason() {
    let f = fixture().await;
    let other_key = credentials::apns_key().expect("key");
    let stranger = ApnsTokenSigner::new(KEY_ID, TEAM_ID, &other_key.private_pem).expect("signer");
    let old = ApnsTokenSigner::new(KEY_ID, TEAM_ID, &f.private_pem).expect("signer");
    let background = f
        .push()
        .set("apns-push-type", "background")
        .body(r#"{"aps":{"content-available":1}}"#);
    let cases: Vec<(&str, Push, u16, &str)> = vec![
        (
            "no device token",
            f.push().to(""),
            400,
            "MissingDeviceToken",
        ),
        ("short token", f.push().to("abc123"), 400, "BadDeviceToken"),
        (
            "non-hex token",
            f.push().to(&"zz".repeat(32)),
            400,
            "BadDeviceToken",
        ),
        (
            "no authorization",
            f.push().without("authorization"),
            403,
            "MissingProviderToken",
        ),
        (
            "not bearer",
            f.push().set("authorization", "basic abc"),
            403,
            "InvalidProviderToken",
        ),
        (
            "foreign key",
            f.push().set(
                "authorization",
                &format!("bearer {}", stranger.token_at(unix_now())),
            ),
            403,
            "InvalidProviderToken",
        ),
        (
            "expired",
            f.push().set(
                "authorization",
                &format!("bearer {}", old.token_at(unix_now() - 3700)),
            ),
            403,
            "ExpiredProviderToken",
        ),
        (
            "no push type",
            f.push().without("apns-push-type"),
            400,
            "InvalidPushType",
        ),
        (
            "bad push type",
            f.push().set("apns-push-type", "loud"),
            400,
            "InvalidPushType",
        ),
        (
            "no topic",
            f.push().without("apns-topic"),
            400,
            "MissingTopic",
        ),
        (
            "wrong topic",
            f.push().set("apns-topic", "com.other"),
            400,
            "BadTopic",
        ),
        (
            "voip without .voip",
            f.push().set("apns-push-type", "voip"),
            400,
            "BadTopic",
        ),
        (
            "duplicate",
            f.push().add("apns-topic", BUNDLE),
            400,
            "DuplicateHeaders",
        ),
        (
            "priority",
            f.push().set("apns-priority", "7"),
            400,
            "BadPriority",
        ),
        (
            "background at 10",
            background.set("apns-priority", "10"),
            400,
            "BadPriority",
        ),
        (
            "expiration",
            f.push().set("apns-expiration", "tomorrow"),
            400,
            "BadExpirationDate",
        ),
        (
            "collapse id",
            f.push().set("apns-collapse-id", &"c".repeat(65)),
            400,
            "BadCollapseId",
        ),
        (
            "apns-id",
            f.push().set("apns-id", "not-a-uuid"),
            400,
            "BadMessageId",
        ),
        ("empty", f.push().body(""), 400, "PayloadEmpty"),
        ("not json", f.push().body("hello"), 400, "BadPayload"),
        ("no aps", f.push().body(r#"{"x":1}"#), 400, "BadPayload"),
        (
            "too large",
            f.push()
                .body(json!({"aps": {}, "pad": "x".repeat(4096)}).to_string()),
            413,
            "PayloadTooLarge",
        ),
    ];
    for (name, push, status, expected) in cases.iter().cloned() {
        let got = reason(f.send(push).await).await;
        assert_eq!(got, (status, expected.to_owned()), "case {name}");
    }
    assert!(f.standin.accepted().is_empty());
    assert_eq!(f.standin.rejected().len(), cases.len());

    let url = format!("{}/2/device/{}", f.standin.url(), device());
    let bad_path = f.http.post(url).send().await.expect("send");
    assert_eq!(reason(bad_path).await, (404, "BadPath".into()));
    let url = format!("{}/3/device/{}", f.standin.url(), device());
    let get = f.http.get(url).send().await.expect("send");
    assert_eq!(reason(get).await, (405, "MethodNotAllowed".into()));
}

#[tokio::test]
async fn accepts_other_push_types_with_their_topics_and_limits() {
    let f = fixture().await;
    let voip = f
        .push()
        .set("apns-push-type", "voip")
        .set("apns-topic", &format!("{BUNDLE}.voip"))
        .body(json!({"aps": {}, "pad": "x".repeat(4500)}).to_string());
    assert_eq!(f.send(voip).await.status(), 200);
    let background = f
        .push()
        .set("apns-push-type", "background")
        .set("apns-priority", "5")
        .body(r#"{"aps":{"content-available":1}}"#);
    assert_eq!(f.send(background).await.status(), 200);
    let types: Vec<String> = f
        .standin
        .accepted()
        .into_iter()
        .map(|p| p.push_type)
        .collect();
    assert_eq!(types, ["voip", "background"]);
}

#[tokio::test]
async fn scripted_answers_come_in_order_then_normal_service_resumes() {
    let f = fixture().await;
    let token = device();
    let other = "b2".repeat(32);
    f.standin.script(
        &token,
        vec![
            ApnsScriptedAnswer::new(503, "ServiceUnavailable").with_retry_after(7),
            ApnsScriptedAnswer::new(429, "TooManyRequests"),
            ApnsScriptedAnswer::new(410, "Unregistered"),
        ],
    );

    let first = f.send(f.push()).await;
    assert_eq!(first.headers()["retry-after"], "7");
    assert_eq!(reason(first).await, (503, "ServiceUnavailable".into()));
    // Other tokens are not affected by the script.
    assert_eq!(f.send(f.push().to(&other)).await.status(), 200);
    assert_eq!(
        reason(f.send(f.push()).await).await,
        (429, "TooManyRequests".into())
    );
    let gone: Value = f.send(f.push()).await.json().await.expect("json");
    assert_eq!(gone["reason"], "Unregistered");
    assert!(
        gone["timestamp"]
            .as_u64()
            .is_some_and(|ms| ms > 1_600_000_000_000)
    );
    assert_eq!(f.send(f.push()).await.status(), 200);

    let tokens: Vec<String> = f
        .standin
        .accepted()
        .into_iter()
        .map(|p| p.device_token)
        .collect();
    assert_eq!(tokens, vec![other, token]);
    assert_eq!(
        f.standin.rejected(),
        vec![
            (503, "ServiceUnavailable".into()),
            (429, "TooManyRequests".into()),
            (410, "Unregistered".into())
        ]
    );
}

#[tokio::test]
async fn unregistered_tokens_get_410_with_a_timestamp() {
    let f = fixture().await;
    f.standin.unregister(&device());
    for _ in 0..2 {
        let response = f.send(f.push()).await;
        assert_eq!(response.status(), 410);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["reason"], "Unregistered");
        assert!(body["timestamp"].is_u64());
    }
    assert!(f.standin.accepted().is_empty());
}

#[tokio::test]
async fn refuses_http1() {
    let f = fixture().await;
    let http1 = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let push = f.push();
    let mut request = http1.post(format!("{}/3/device/{}", f.standin.url(), push.token));
    for (name, value) in &push.headers {
        request = request.header(name, value);
    }
    let response = request.body(push.body).send().await.expect("send");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 400);
    assert!(f.standin.accepted().is_empty());
    assert_eq!(f.standin.rejected().len(), 1);
}
