use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const TTL: Duration = Duration::from_secs(3600);

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SECRET, TTL)
}

/// Re-signs `payload` with `SECRET`, for tokens that are well signed but otherwise odd.
fn signed(payload: &str) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(SECRET).unwrap();
    mac.update(payload.as_bytes());
    format!("{payload}.{}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn round_trip() {
    let token = issuer().issue("alice_01-x", at(1_000)).unwrap();
    assert!(token.starts_with("v1.alice_01-x.4600."), "{token}");
    assert_eq!(token.len(), "v1.alice_01-x.4600.".len() + 64);
    assert_eq!(issuer().verify(&token, at(1_000)).unwrap(), "alice_01-x");
    assert_eq!(issuer().verify(&token, at(4_599)).unwrap(), "alice_01-x");
    assert_eq!(token, signed("v1.alice_01-x.4600"));
}

#[test]
fn expires_at_its_second() {
    let token = issuer().issue("alice", at(1_000)).unwrap();
    assert_eq!(issuer().verify(&token, at(4_600)), Err(TokenError::Expired));
    assert_eq!(
        issuer().verify(&token, at(u64::MAX / 2)),
        Err(TokenError::Expired)
    );
    // A clock before the epoch reads as 0 and a huge TTL saturates instead of wrapping.
    let forever = TokenIssuer::new(SECRET, Duration::from_secs(u64::MAX));
    let token = forever
        .issue("alice", UNIX_EPOCH - Duration::from_secs(5))
        .unwrap();
    assert_eq!(token, signed(&format!("v1.alice.{}", u64::MAX)));
    assert_eq!(forever.verify(&token, at(10)).unwrap(), "alice");
}

#[test]
fn sub_second_ttl_is_dropped() {
    let short = TokenIssuer::new(SECRET, Duration::from_millis(1_500));
    assert_eq!(short.ttl(), Duration::from_millis(1_500));
    let token = short.issue("alice", at(10)).unwrap();
    assert!(token.starts_with("v1.alice.11."), "{token}");
}

#[test]
fn tampering_breaks_the_signature() {
    let token = issuer().issue("alice", at(1_000)).unwrap();
    let sig = &token["v1.alice.4600.".len()..];
    // Another user, a later expiry, a flipped signature digit.
    let tampered = [
        format!("v1.mallory.4600.{sig}"),
        format!("v1.alice.9999999.{sig}"),
        format!("v1.alice.4601.{sig}"),
        {
            let mut flipped = token.clone();
            let last = if flipped.ends_with('0') { "1" } else { "0" };
            flipped.replace_range(flipped.len() - 1.., last);
            flipped
        },
    ];
    for token in tampered {
        assert_eq!(
            issuer().verify(&token, at(1_000)),
            Err(TokenError::BadSignature),
            "{token}"
        );
    }
    // The expiry is checked after the signature: a forged, expired token is a bad signature.
    assert_eq!(
        issuer().verify(&format!("v1.alice.5.{sig}"), at(1_000)),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn another_secret_refuses() {
    let token = issuer().issue("alice", at(1_000)).unwrap();
    let other = TokenIssuer::new(b"another secret of enough length!", TTL);
    assert_eq!(
        other.verify(&token, at(1_000)),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn unknown_versions() {
    let token = issuer().issue("alice", at(1_000)).unwrap();
    let v2 = token.replacen("v1.", "v2.", 1);
    assert_eq!(
        issuer().verify(&v2, at(1_000)),
        Err(TokenError::UnknownVersion)
    );
    assert_eq!(
        issuer().verify("v10.a.1.x", at(0)),
        Err(TokenError::UnknownVersion)
    );
    assert_eq!(
        issuer().verify("v2", at(0)),
        Err(TokenError::UnknownVersion)
    );
}

#[test]
fn malformed_tokens() {
    let token = issuer().issue("alice", at(1_000)).unwrap();
    let sig = token["v1.alice.4600.".len()..].to_owned();
    let malformed = [
        String::new(),
        "garbage".into(),
        "v".into(),
        "V1.alice.4600.x".into(),
        "v1".into(),
        "v1.alice".into(),
        "v1.alice.4600".into(),
        format!("{token}.extra"),
        format!("v1..4600.{sig}"),
        format!("v1.al ice.4600.{sig}"),
        format!("v1.alicé.4600.{sig}"),
        format!("v1.alice..{sig}"),
        format!("v1.alice.+4600.{sig}"),
        format!("v1.alice.-4600.{sig}"),
        format!("v1.alice.04600.{sig}"),
        format!("v1.alice.4600x.{sig}"),
        format!("v1.alice.99999999999999999999.{sig}"),
        format!("v1.alice.4600.{}", sig.to_uppercase()),
        format!("v1.alice.4600.{}", &sig[..62]),
        format!("v1.alice.4600.{sig}00"),
        format!("v1.alice.4600.{}zz", &sig[..62]),
        format!("v1.alice.4600.{}", "é".repeat(32)),
        format!(" {token}"),
        format!("{token}\n"),
    ];
    for bad in malformed {
        assert_eq!(
            issuer().verify(&bad, at(1_000)),
            Err(TokenError::Malformed),
            "{bad:?}"
        );
    }
}

#[test]
fn expiry_zero_is_canonical_but_expired() {
    let token = signed("v1.alice.0");
    assert_eq!(issuer().verify(&token, at(0)), Err(TokenError::Expired));
}

#[test]
fn issue_refuses_bad_user_ids() {
    for bad in ["", "a.b", "a b", "ü", &"x".repeat(65)] {
        assert_eq!(
            issuer().issue(bad, at(0)),
            Err(TokenError::InvalidUserId),
            "{bad:?}"
        );
    }
}

#[test]
fn debug_hides_the_secret() {
    let shown = format!("{:?}", issuer());
    assert!(
        shown.contains("redacted") && !shown.contains("0123456789abcdef"),
        "{shown}"
    );
}
