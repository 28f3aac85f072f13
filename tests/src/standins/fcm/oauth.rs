//! The OAuth 2.0 token endpoint of the FCM stand-in: Google's "Using OAuth 2.0 for Server to
//! Server Applications" JWT-bearer grant, where a service account signs an RS256 assertion and
//! trades it for a short-lived access token.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use super::{FcmState, MESSAGING_SCOPE};
use crate::standins::{json_answer, lock, unix_now};

/// The only grant type Google accepts for service-account assertions.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of issued access tokens, as Google reports it.
pub(super) const ACCESS_TOKEN_SECONDS: u64 = 3599;
/// Longest lifetime Google allows an assertion (`exp - iat`).
const MAX_ASSERTION_SECONDS: u64 = 3600;
/// Clock difference tolerated on `iat`.
const CLOCK_SKEW_SECONDS: u64 = 60;

/// A refused token request: Google's OAuth error code and description.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct OAuthError {
    pub(super) error: &'static str,
    pub(super) description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: &str) -> Self {
        Self {
            error,
            description: description.to_owned(),
        }
    }

    fn bad_timing() -> Self {
        Self::new(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
             timeframe. Check your iat and exp values in the JWT claim.",
        )
    }
}

/// What the stand-in knows to verify an assertion with.
pub(super) struct AssertionRules<'a> {
    pub(super) key: &'a VerifyingKey<Sha256>,
    pub(super) client_email: &'a str,
    pub(super) audience: &'a str,
}

/// Access tokens issued so far, with the Unix time each one expires.
#[derive(Debug, Default)]
pub(super) struct AccessTokens {
    expiries: Mutex<HashMap<String, u64>>,
}

impl AccessTokens {
    /// Issues a new random access token.
    pub(super) fn issue(&self) -> String {
        let token = format!("ya29.standin-{}", uuid::Uuid::new_v4().simple());
        lock(&self.expiries).insert(token.clone(), unix_now() + ACCESS_TOKEN_SECONDS);
        token
    }

    /// Whether `token` was issued here and has not expired.
    pub(super) fn is_valid(&self, token: &str) -> bool {
        lock(&self.expiries)
            .get(token)
            .is_some_and(|expiry| unix_now() < *expiry)
    }

    /// How many tokens were issued.
    pub(super) fn count(&self) -> usize {
        lock(&self.expiries).len()
    }
}

/// `POST /token`: checks the form and the assertion, then issues an access token.
pub(super) async fn token_endpoint(
    State(state): State<std::sync::Arc<FcmState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rules = AssertionRules {
        key: &state.key,
        client_email: &state.config.client_email,
        audience: &state.token_uri,
    };
    match exchange(&headers, &body, &rules, unix_now()) {
        Ok(()) => {
            let token = state.access_tokens.issue();
            json_answer(
                StatusCode::OK,
                &json!({
                    "access_token": token,
                    "expires_in": ACCESS_TOKEN_SECONDS,
                    "token_type": "Bearer",
                }),
                None,
            )
        }
        Err(refusal) => {
            state.journal.reject(400, refusal.error);
            json_answer(
                StatusCode::BAD_REQUEST,
                &json!({ "error": refusal.error, "error_description": refusal.description }),
                None,
            )
        }
    }
}

/// Checks a token request: form encoding, grant type and assertion.
fn exchange(
    headers: &HeaderMap,
    body: &[u8],
    rules: &AssertionRules<'_>,
    now: u64,
) -> Result<(), OAuthError> {
    let form_encoded = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return Err(OAuthError::new(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    match form.get("grant_type").map(String::as_str) {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            ));
        }
        None => {
            return Err(OAuthError::new(
                "invalid_request",
                "Missing required parameter: grant_type",
            ));
        }
    }
    let assertion = form.get("assertion").ok_or_else(|| {
        OAuthError::new("invalid_request", "Missing required parameter: assertion")
    })?;
    verify_assertion(assertion, rules, now)
}

/// Verifies a service-account assertion: RS256 signature by the configured key, `iss` the
/// client email, `scope` including FCM's, `aud` the token URI, and `iat`/`exp` at most an hour
/// apart around `now`.
pub(super) fn verify_assertion(
    assertion: &str,
    rules: &AssertionRules<'_>,
    now: u64,
) -> Result<(), OAuthError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    #[derive(Deserialize)]
    struct Claims {
        iss: String,
        #[serde(default)]
        scope: String,
        aud: String,
        iat: u64,
        exp: u64,
    }

    let malformed = || OAuthError::new("invalid_grant", "Invalid JWT: malformed assertion.");
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts[..] else {
        return Err(malformed());
    };
    let header: Header = decode_json(header_b64).ok_or_else(malformed)?;
    if header.alg != "RS256" {
        return Err(OAuthError::new(
            "invalid_grant",
            "Invalid JWT: only RS256 is accepted.",
        ));
    }
    let bad_signature = || OAuthError::new("invalid_grant", "Invalid JWT Signature.");
    // Google accepts base64url with or without padding (yup-oauth2 pads its signature).
    let signature_bytes = URL_SAFE_NO_PAD
        .decode(signature_b64.trim_end_matches('='))
        .map_err(|_| bad_signature())?;
    let signature = Signature::try_from(signature_bytes.as_slice()).map_err(|_| bad_signature())?;
    let signing_input = &assertion[..header_b64.len() + 1 + claims_b64.len()];
    rules
        .key
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| bad_signature())?;

    let claims: Claims = decode_json(claims_b64).ok_or_else(malformed)?;
    if claims.iss != rules.client_email {
        return Err(OAuthError::new(
            "invalid_grant",
            "Invalid grant: account not found",
        ));
    }
    if claims.aud != rules.audience {
        return Err(OAuthError::new(
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        ));
    }
    if !claims
        .scope
        .split(' ')
        .any(|scope| scope == MESSAGING_SCOPE)
    {
        return Err(OAuthError::new(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    let lifetime_ok = claims.exp > claims.iat && claims.exp - claims.iat <= MAX_ASSERTION_SECONDS;
    let current = claims.iat <= now + CLOCK_SKEW_SECONDS && claims.exp > now;
    if !lifetime_ok || !current {
        return Err(OAuthError::bad_timing());
    }
    Ok(())
}

/// Decodes one base64url JSON part of a JWT.
fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}
