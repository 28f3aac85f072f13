use super::*;

fn is_prune(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::PruneToken { .. })
}

fn is_retry(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Retry { .. })
}

fn is_permanent(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Permanent { .. })
}

fn retry_after_of(outcome: &Outcome) -> Option<Duration> {
    match outcome {
        Outcome::Retry { retry_after, .. } => *retry_after,
        other => panic!("expected Retry, got {other:?}"),
    }
}

#[test]
fn retry_after_takes_delta_seconds_capped_at_an_hour() {
    assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
    assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("7200"), Some(MAX_RETRY_AFTER));
    assert_eq!(
        parse_retry_after("99999999999999999999999"),
        Some(MAX_RETRY_AFTER)
    );
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(parse_retry_after("-5"), None);
    assert_eq!(parse_retry_after("1.5"), None);
    assert_eq!(parse_retry_after(""), None);
}

#[test]
fn backoff_grows_exponentially_up_to_max_with_full_jitter() {
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(10);
    assert_eq!(backoff(0, base, max, 1.0), base);
    assert_eq!(backoff(1, base, max, 1.0), Duration::from_millis(200));
    assert_eq!(backoff(3, base, max, 0.5), Duration::from_millis(400));
    assert_eq!(backoff(6, base, max, 1.0), Duration::from_millis(6400));
    assert_eq!(backoff(7, base, max, 1.0), max);
    assert_eq!(backoff(7, base, max, 0.25), Duration::from_millis(2500));
    // Huge attempt numbers saturate instead of overflowing.
    assert_eq!(backoff(40, base, max, 1.0), max);
    assert_eq!(backoff(u32::MAX, base, max, 0.5), Duration::from_secs(5));
    // Full jitter can mean "retry now".
    assert_eq!(backoff(5, base, max, 0.0), Duration::ZERO);
    // Out-of-range and NaN jitter are clamped, never a panic.
    assert_eq!(backoff(0, base, max, 2.0), base);
    assert_eq!(backoff(0, base, max, -1.0), Duration::ZERO);
    assert_eq!(backoff(0, base, max, f64::NAN), Duration::ZERO);
    // Same inputs, same delay.
    assert_eq!(backoff(4, base, max, 0.37), backoff(4, base, max, 0.37));
}

#[test]
fn apns_reason_reads_the_error_body() {
    assert_eq!(
        apns_reason(r#"{"reason":"BadDeviceToken"}"#).as_deref(),
        Some("BadDeviceToken")
    );
    assert_eq!(
        apns_reason(r#"{"reason":"Unregistered","timestamp":1700000000000}"#).as_deref(),
        Some("Unregistered")
    );
    assert_eq!(apns_reason(""), None);
    assert_eq!(apns_reason("not json"), None);
    assert_eq!(apns_reason(r#"{"other":1}"#), None);
}

#[test]
fn apns_success_carries_the_apns_id() {
    let id = "eabeae54-14a8-11e5-b60b-1697f925ec7b";
    assert_eq!(
        apns(200, None, Some(id), None),
        Outcome::Sent {
            provider_message_id: Some(id.to_owned())
        }
    );
    assert_eq!(
        apns(200, None, None, None),
        Outcome::Sent {
            provider_message_id: None
        }
    );
}

#[test]
fn apns_dead_tokens_are_pruned() {
    for (status, reason) in [
        (410, Some("Unregistered")),
        (410, Some("ExpiredToken")),
        (410, None),
        (400, Some("BadDeviceToken")),
        (400, Some("DeviceTokenNotForTopic")),
    ] {
        let outcome = apns(status, reason, None, None);
        assert!(is_prune(&outcome), "{status} {reason:?}: {outcome:?}");
    }
    assert_eq!(
        apns(410, Some("Unregistered"), None, None),
        Outcome::PruneToken {
            reason: "apns 410 Unregistered".to_owned()
        }
    );
}

#[test]
fn apns_transient_failures_are_retried() {
    for (status, reason) in [
        (429, Some("TooManyRequests")),
        (429, Some("TooManyProviderTokenUpdates")),
        (500, Some("InternalServerError")),
        (503, Some("ServiceUnavailable")),
        (503, Some("Shutdown")),
        (502, None),
        (403, Some("ExpiredProviderToken")),
        (403, Some("InvalidProviderToken")),
    ] {
        let outcome = apns(status, reason, None, None);
        assert!(is_retry(&outcome), "{status} {reason:?}: {outcome:?}");
    }
    let outcome = apns(503, Some("ServiceUnavailable"), None, Some("30"));
    assert_eq!(retry_after_of(&outcome), Some(Duration::from_secs(30)));
}

#[test]
fn apns_request_errors_are_permanent() {
    for (status, reason) in [
        (400, "BadCollapseId"),
        (400, "BadExpirationDate"),
        (400, "BadMessageId"),
        (400, "BadPriority"),
        (400, "BadTopic"),
        (400, "DuplicateHeaders"),
        (400, "MissingDeviceToken"),
        (400, "MissingTopic"),
        (400, "PayloadEmpty"),
        (400, "TopicDisallowed"),
        (403, "BadCertificate"),
        (403, "MissingProviderToken"),
        (404, "BadPath"),
        (405, "MethodNotAllowed"),
        (413, "PayloadTooLarge"),
    ] {
        let outcome = apns(status, Some(reason), None, None);
        assert!(is_permanent(&outcome), "{status} {reason}: {outcome:?}");
    }
    assert!(is_permanent(&apns(302, None, None, None)));
}

fn fcm_error(code: u16, status: &str, message: &str, error_code: Option<&str>) -> String {
    let details = match error_code {
        Some(error_code) => serde_json::json!([{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": error_code,
        }]),
        None => serde_json::json!([]),
    };
    serde_json::json!({
        "error": {"code": code, "message": message, "status": status, "details": details}
    })
    .to_string()
}

#[test]
fn fcm_success_carries_the_message_name() {
    assert_eq!(
        fcm(200, r#"{"name":"projects/p/messages/123"}"#, None),
        Outcome::Sent {
            provider_message_id: Some("projects/p/messages/123".to_owned())
        }
    );
    assert_eq!(
        fcm(200, "", None),
        Outcome::Sent {
            provider_message_id: None
        }
    );
}

#[test]
fn fcm_unregistered_and_sender_mismatch_prune_the_token() {
    let body = fcm_error(
        404,
        "NOT_FOUND",
        "Requested entity was not found.",
        Some("UNREGISTERED"),
    );
    assert_eq!(
        fcm(404, &body, None),
        Outcome::PruneToken {
            reason: "fcm 404 UNREGISTERED: Requested entity was not found.".to_owned()
        }
    );
    let body = fcm_error(
        403,
        "PERMISSION_DENIED",
        "SenderId mismatch",
        Some("SENDER_ID_MISMATCH"),
    );
    assert!(is_prune(&fcm(403, &body, None)));
}

#[test]
fn fcm_not_found_without_fcm_detail_is_not_a_dead_token() {
    // A wrong project id also answers 404; only an explicit UNREGISTERED prunes.
    let body = fcm_error(404, "NOT_FOUND", "Requested entity was not found.", None);
    assert!(is_permanent(&fcm(404, &body, None)));
}

#[test]
fn fcm_invalid_argument_prunes_only_when_about_the_token() {
    let bad_token = fcm_error(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        Some("INVALID_ARGUMENT"),
    );
    assert!(is_prune(&fcm(400, &bad_token, None)));

    let field_violation = serde_json::json!({"error": {
        "code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "message.token", "description": "Invalid token"}]
        }]
    }})
    .to_string();
    assert!(is_prune(&fcm(400, &field_violation, None)));

    let bad_payload = fcm_error(
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received. Unknown name \"titel\"",
        Some("INVALID_ARGUMENT"),
    );
    assert!(is_permanent(&fcm(400, &bad_payload, None)));
}

#[test]
fn fcm_transient_failures_are_retried_with_retry_after() {
    for (code, status, error_code) in [
        (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
        (503, "UNAVAILABLE", "UNAVAILABLE"),
        (500, "INTERNAL", "INTERNAL"),
    ] {
        let body = fcm_error(code, status, "try later", Some(error_code));
        let outcome = fcm(code, &body, Some("60"));
        assert_eq!(
            retry_after_of(&outcome),
            Some(Duration::from_secs(60)),
            "{error_code}"
        );
    }
    // A bare 5xx from a proxy, with no JSON at all.
    assert!(is_retry(&fcm(502, "<html>Bad Gateway</html>", None)));
    assert!(is_retry(&fcm(429, "", None)));
}

#[test]
fn fcm_unauthenticated_is_retried_after_a_token_refresh() {
    let body = fcm_error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.",
        None,
    );
    assert!(is_retry(&fcm(401, &body, None)));
}

#[test]
fn fcm_credential_and_permission_errors_are_permanent() {
    let body = fcm_error(
        401,
        "UNAUTHENTICATED",
        "Auth error from APNS or Web Push Service",
        Some("THIRD_PARTY_AUTH_ERROR"),
    );
    assert!(is_permanent(&fcm(401, &body, None)));
    let body = fcm_error(
        403,
        "PERMISSION_DENIED",
        "Permission 'cloudmessaging.messages.create' denied",
        None,
    );
    assert!(is_permanent(&fcm(403, &body, None)));
    assert!(is_permanent(&fcm(413, "", None)));
}

#[test]
fn twilio_success_carries_the_sid() {
    let body = r#"{"sid":"SM1234567890abcdef1234567890abcdef","status":"queued"}"#;
    assert_eq!(
        twilio(201, body, None),
        Outcome::Sent {
            provider_message_id: Some("SM1234567890abcdef1234567890abcdef".to_owned())
        }
    );
}

fn twilio_error(status: u16, code: u32, message: &str) -> String {
    serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
    .to_string()
}

#[test]
fn twilio_rate_limits_and_server_errors_are_retried() {
    let body = twilio_error(429, 20429, "Too Many Requests");
    assert_eq!(
        retry_after_of(&twilio(429, &body, Some("5"))),
        Some(Duration::from_secs(5))
    );
    assert!(is_retry(&twilio(500, "", None)));
    assert!(is_retry(&twilio(503, "", None)));
}

#[test]
fn twilio_bad_numbers_are_permanent_and_say_so() {
    let body = twilio_error(
        400,
        21211,
        "The 'To' number +1555 is not a valid phone number.",
    );
    assert_eq!(
        twilio(400, &body, None),
        Outcome::Permanent {
            reason: "twilio 400 21211: the phone number is not valid".to_owned()
        }
    );
    let body = twilio_error(400, 21614, "'To' number is not a valid mobile number");
    assert_eq!(
        twilio(400, &body, None),
        Outcome::Permanent {
            reason: "twilio 400 21614: the phone number is not a mobile number".to_owned()
        }
    );
    let body = twilio_error(400, 21610, "Attempt to send to unsubscribed recipient");
    assert!(is_permanent(&twilio(400, &body, None)));
}

#[test]
fn twilio_other_client_errors_are_permanent() {
    let body = twilio_error(401, 20003, "Authenticate");
    assert_eq!(
        twilio(401, &body, None),
        Outcome::Permanent {
            reason: "twilio 401 20003: Authenticate".to_owned()
        }
    );
    assert_eq!(
        twilio(404, "", None),
        Outcome::Permanent {
            reason: "twilio 404".to_owned()
        }
    );
}
