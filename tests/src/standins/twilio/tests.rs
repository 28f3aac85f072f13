use sixfold_notify::provider::{self, Outcome};

use super::*;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "secret-auth-token";
const FROM: &str = "+15005550006";
const TO: &str = "+14155552671";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

struct Fixture {
    standin: TwilioStandIn,
    http: reqwest::Client,
}

async fn fixture() -> Fixture {
    let standin = TwilioStandIn::start(TwilioConfig {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        from_numbers: vec![FROM.into()],
    })
    .await
    .expect("start");
    Fixture {
        standin,
        http: reqwest::Client::new(),
    }
}

impl Fixture {
    async fn post_as(
        &self,
        user: &str,
        password: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.http
            .post(format!(
                "{}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                self.standin.url()
            ))
            .basic_auth(user, Some(password))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("send")
    }

    async fn post(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_as(ACCOUNT, TOKEN, form).await
    }
}

/// Form fields of a request.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// Status, Twilio code and message of an error answer.
async fn twilio_error(response: reqwest::Response) -> (u16, u64, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], status);
    assert!(body["more_info"].is_string());
    (
        status,
        body["code"].as_u64().unwrap_or_default(),
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn accepts_and_records_a_well_formed_message() {
    let f = fixture().await;
    let response = f
        .post(&[("To", TO), ("From", FROM), ("Body", "Your code is 123456")])
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    let sid = body["sid"].as_str().expect("sid").to_owned();
    assert!(is_sid(&sid, "SM"), "{sid}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["to"], TO);
    assert_eq!(body["from"], FROM);
    assert_eq!(body["body"], "Your code is 123456");
    assert_eq!(body["account_sid"], ACCOUNT);
    assert_eq!(body["num_segments"], "1");
    assert!(
        body["date_created"]
            .as_str()
            .is_some_and(|d| d.ends_with("+0000"))
    );

    let via_service = f
        .post(&[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "Grüße"),
        ])
        .await;
    assert_eq!(via_service.status(), 201);
    let body: Value = via_service.json().await.expect("json");
    assert_eq!(body["status"], "accepted");

    assert_eq!(
        f.standin.accepted(),
        vec![
            AcceptedSms {
                sid,
                account_sid: ACCOUNT.into(),
                to: TO.into(),
                from: Some(FROM.into()),
                messaging_service_sid: None,
                body: "Your code is 123456".into(),
            },
            AcceptedSms {
                sid: body["sid"].as_str().expect("sid").into(),
                account_sid: ACCOUNT.into(),
                to: TO.into(),
                from: None,
                messaging_service_sid: Some(SERVICE.into()),
                body: "Grüße".into(),
            },
        ]
    );
}

#[tokio::test]
async fn refuses_each_bad_request_with_twilios_code() {
    let f = fixture().await;
    let long = "x".repeat(MAX_BODY_CHARS + 1);
    let longest = "é".repeat(MAX_BODY_CHARS);
    let cases: Vec<(&str, Form, u16, u64)> = vec![
        ("no To", vec![("From", FROM), ("Body", "hi")], 400, 21604),
        (
            "bad To",
            vec![("To", "4155552671"), ("From", FROM), ("Body", "hi")],
            400,
            21211,
        ),
        ("no sender", vec![("To", TO), ("Body", "hi")], 400, 21603),
        (
            "bad From",
            vec![("To", TO), ("From", "Sixfold!"), ("Body", "hi")],
            400,
            21212,
        ),
        (
            "foreign From",
            vec![("To", TO), ("From", "+15005550001"), ("Body", "hi")],
            400,
            21606,
        ),
        (
            "same",
            vec![("To", FROM), ("From", FROM), ("Body", "hi")],
            400,
            21266,
        ),
        (
            "bad service",
            vec![("To", TO), ("MessagingServiceSid", "MG1"), ("Body", "hi")],
            400,
            21701,
        ),
        ("no Body", vec![("To", TO), ("From", FROM)], 400, 21602),
        (
            "empty Body",
            vec![("To", TO), ("From", FROM), ("Body", "")],
            400,
            21602,
        ),
        (
            "long Body",
            vec![("To", TO), ("From", FROM), ("Body", &long)],
            400,
            21617,
        ),
    ];
    for (name, form, status, code) in &cases {
        let (got_status, got_code, _) = twilio_error(f.post(form).await).await;
        assert_eq!((got_status, got_code), (*status, *code), "case {name}");
    }
    let (_, _, message) = twilio_error(
        f.post(&[("To", "12"), ("From", FROM), ("Body", "hi")])
            .await,
    )
    .await;
    assert_eq!(message, "The 'To' number 12 is not a valid phone number.");
    // 1600 characters is fine even when they are not ASCII.
    let ok = f
        .post(&[("To", TO), ("From", FROM), ("Body", &longest)])
        .await;
    assert_eq!(ok.status(), 201);
    assert_eq!(f.standin.accepted().len(), 1);
    assert_eq!(f.standin.rejected().len(), cases.len() + 1);
}

#[tokio::test]
async fn refuses_wrong_credentials_and_paths() {
    let f = fixture().await;
    let form = [("To", TO), ("From", FROM), ("Body", "hi")];
    let response = f
        .post_as("ACffffffffffffffffffffffffffffffff", TOKEN, &form)
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"Twilio API\""
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], 20003);
    assert_eq!(body["message"], "Authentication Error - invalid username");
    assert_eq!(body["status"], 401);
    assert_eq!(
        twilio_error(f.post_as(ACCOUNT, "wrong", &form).await)
            .await
            .1,
        20003
    );

    let anonymous = f
        .http
        .post(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
            f.standin.url()
        ))
        .body("To=%2B14155552671")
        .send()
        .await
        .expect("send");
    assert_eq!(twilio_error(anonymous).await.1, 20003);

    let other_account = f
        .http
        .post(format!(
            "{}/2010-04-01/Accounts/ACffffffffffffffffffffffffffffffff/Messages.json",
            f.standin.url()
        ))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .send()
        .await
        .expect("send");
    assert_eq!(twilio_error(other_account).await.1, 20404);
    assert!(f.standin.accepted().is_empty());
}

#[tokio::test]
async fn scripted_answers_come_in_order_then_normal_service_resumes() {
    let f = fixture().await;
    f.standin.script(
        TO,
        vec![
            TwilioScriptedAnswer::too_many_requests(Some(2)),
            TwilioScriptedAnswer::service_unavailable(),
            TwilioScriptedAnswer::not_mobile(),
            TwilioScriptedAnswer::invalid_to(TO),
        ],
    );
    let form = [("To", TO), ("From", FROM), ("Body", "hi")];
    let mut outcomes = Vec::new();
    for expected in [(429, 20429), (503, 20503), (400, 21614), (400, 21211)] {
        let response = f.post(&form).await;
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            (status, body["code"].as_u64().unwrap_or_default()),
            expected
        );
        outcomes.push(provider::twilio(status, &text, retry_after.as_deref()));
    }
    assert!(matches!(outcomes[0], Outcome::Retry { retry_after: Some(d), .. } if d.as_secs() == 2));
    assert!(matches!(outcomes[1], Outcome::Retry { .. }));
    assert!(matches!(outcomes[2], Outcome::Permanent { .. }));

    assert_eq!(f.post(&form).await.status(), 201);
    assert_eq!(f.standin.accepted().len(), 1);
    assert_eq!(
        f.standin.rejected(),
        vec![
            (429, "20429".into()),
            (503, "20503".into()),
            (400, "21614".into()),
            (400, "21211".into())
        ]
    );
}

#[test]
fn segment_counts() {
    assert_eq!(segments("hi"), 1);
    assert_eq!(segments(&"a".repeat(160)), 1);
    assert_eq!(segments(&"a".repeat(161)), 2);
    assert_eq!(segments(&"é".repeat(70)), 1);
    assert_eq!(segments(&"é".repeat(71)), 2);
}
