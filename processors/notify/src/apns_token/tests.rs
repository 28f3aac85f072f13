use super::*;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rand_core::OsRng;
use std::sync::Arc;

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "DEF123GHIJ";
const T0: u64 = 1_750_000_000;

/// A fresh key pair: (private PKCS#8 PEM as Apple ships it, public SPKI PEM).
fn key_pair() -> (String, String) {
    let key = SigningKey::random(&mut OsRng);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encode private key");
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("encode public key");
    (private.to_string(), public)
}

fn decode_part(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

#[test]
fn token_has_apple_header_claims_and_a_valid_es256_signature() {
    let (private, public) = key_pair();
    let signer = ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private).expect("signer");
    let token = signer.token_at(T0);

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        decode_part(parts[0]),
        serde_json::json!({"alg": "ES256", "kid": KEY_ID})
    );
    assert_eq!(
        decode_part(parts[1]),
        serde_json::json!({"iss": TEAM_ID, "iat": T0})
    );

    // Verify independently of verify_provider_token.
    let key = VerifyingKey::from_public_key_pem(&public).expect("public key");
    let signature_bytes = URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("signature base64url");
    assert_eq!(signature_bytes.len(), 64, "JWS ES256 signature is r || s");
    let signature = Signature::from_slice(&signature_bytes).expect("signature");
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    assert!(key.verify(signing_input.as_bytes(), &signature).is_ok());

    assert_eq!(
        verify_provider_token(&token, &public, KEY_ID, TEAM_ID, T0),
        Ok(())
    );
}

#[test]
fn token_is_cached_until_the_refresh_age() {
    let (private, _) = key_pair();
    let signer = ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private).expect("signer");
    assert_eq!(signer.refresh_age(), DEFAULT_REFRESH_AGE);
    let first = signer.token_at(T0);
    assert_eq!(signer.token_at(T0 + 19 * 60), first);
    assert_eq!(signer.token_at(T0 + 40 * 60 - 1), first);

    let second = signer.token_at(T0 + 41 * 60);
    assert_ne!(second, first);
    let claims = decode_part(second.split('.').nth(1).expect("claims part"));
    assert_eq!(claims["iat"], T0 + 41 * 60);
    assert_eq!(signer.token_at(T0 + 60 * 60), second);
}

#[test]
fn invalidate_and_a_clock_going_backwards_sign_a_new_token() {
    let (private, _) = key_pair();
    let signer = ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private).expect("signer");
    let first = signer.token_at(T0);
    signer.invalidate();
    let second = signer.token_at(T0 + 60);
    assert_ne!(second, first);
    let earlier = signer.token_at(T0);
    let claims = decode_part(earlier.split('.').nth(1).expect("claims part"));
    assert_eq!(claims["iat"], T0);
}

#[test]
fn refresh_age_is_clamped_to_apples_limits() {
    let (private, _) = key_pair();
    let signer = || ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private).expect("signer");
    assert_eq!(
        signer()
            .with_refresh_age(Duration::from_secs(60))
            .refresh_age(),
        MIN_REFRESH_AGE
    );
    assert_eq!(
        signer()
            .with_refresh_age(Duration::from_secs(7200))
            .refresh_age(),
        MAX_REFRESH_AGE
    );
    let short = signer().with_refresh_age(Duration::from_secs(25 * 60));
    let first = short.token_at(T0);
    assert_eq!(short.token_at(T0 + 24 * 60), first);
    assert_ne!(short.token_at(T0 + 25 * 60), first);
}

#[test]
fn signer_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ApnsTokenSigner>();

    let (private, _) = key_pair();
    let signer = Arc::new(ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private).expect("signer"));
    let expected = signer.token_at(T0);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let signer = Arc::clone(&signer);
            std::thread::spawn(move || signer.token_at(T0 + i * 60))
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("thread"), expected);
    }
}

#[test]
fn malformed_keys_and_ids_are_errors() {
    let (private, public) = key_pair();
    for bad in [
        "",
        "not a pem",
        public.as_str(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        &private[..private.len() / 2],
    ] {
        assert!(matches!(
            ApnsTokenSigner::new(KEY_ID, TEAM_ID, bad),
            Err(ApnsTokenError::InvalidPrivateKey(_))
        ));
    }
    assert!(matches!(
        ApnsTokenSigner::new("", TEAM_ID, &private),
        Err(ApnsTokenError::InvalidKeyId(_))
    ));
    assert!(matches!(
        ApnsTokenSigner::new(KEY_ID, "team\"id", &private),
        Err(ApnsTokenError::InvalidTeamId(_))
    ));
    let debug = format!(
        "{:?}",
        ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private).expect("signer")
    );
    assert!(debug.contains(KEY_ID) && !debug.contains("PRIVATE"));
}

#[test]
fn verify_rejects_wrong_ids_keys_and_tampering() {
    let (private, public) = key_pair();
    let (_, other_public) = key_pair();
    let token = ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private)
        .expect("signer")
        .token_at(T0);
    let verify =
        |token: &str, public: &str| verify_provider_token(token, public, KEY_ID, TEAM_ID, T0);

    assert!(matches!(
        verify_provider_token(&token, &public, "OTHERKEYID", TEAM_ID, T0),
        Err(ApnsTokenError::WrongKeyId { .. })
    ));
    assert!(matches!(
        verify_provider_token(&token, &public, KEY_ID, "OTHERTEAM1", T0),
        Err(ApnsTokenError::WrongIssuer { .. })
    ));
    assert_eq!(
        verify(&token, &other_public),
        Err(ApnsTokenError::BadSignature)
    );

    // Same header and signature, claims rewritten to another team.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = URL_SAFE_NO_PAD.encode(r#"{"iss":"EVILTEAM99","iat":1750000000}"#);
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert_eq!(verify(&forged, &public), Err(ApnsTokenError::BadSignature));

    let hs256 = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{KEY_ID}"}}"#));
    let forged = format!("{hs256}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        verify(&forged, &public),
        Err(ApnsTokenError::WrongAlgorithm("HS256".to_owned()))
    );

    for malformed in ["", "abc", "a.b", "a.b.c.d", "!!.??.**"] {
        assert!(
            matches!(
                verify(malformed, &public),
                Err(ApnsTokenError::MalformedToken(_))
            ),
            "{malformed}"
        );
    }
    assert!(matches!(
        verify(&token, "nope"),
        Err(ApnsTokenError::InvalidPublicKey(_))
    ));
    assert!(matches!(
        verify(&token, &private),
        Err(ApnsTokenError::InvalidPublicKey(_))
    ));
}

#[test]
fn verify_enforces_the_one_hour_lifetime() {
    let (private, public) = key_pair();
    let token = ApnsTokenSigner::new(KEY_ID, TEAM_ID, &private)
        .expect("signer")
        .token_at(T0);
    let verify_at = |now| verify_provider_token(&token, &public, KEY_ID, TEAM_ID, now);
    assert_eq!(verify_at(T0 + 60 * 60), Ok(()));
    let expired = verify_at(T0 + 60 * 60 + 1);
    assert_eq!(expired, Err(ApnsTokenError::Expired { age_secs: 3601 }));
    assert_eq!(
        expired.map_err(|e| e.apns_reason()),
        Err("ExpiredProviderToken")
    );
    assert_eq!(verify_at(T0 - 60), Ok(()));
    let future = verify_at(T0 - 61);
    assert_eq!(
        future,
        Err(ApnsTokenError::IssuedInFuture { ahead_secs: 61 })
    );
    assert_eq!(
        future.map_err(|e| e.apns_reason()),
        Err("InvalidProviderToken")
    );
}
