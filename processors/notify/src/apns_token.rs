//! APNs provider authentication tokens: the JSON Web Token (ES256) that goes in the
//! `authorization: bearer <token>` header of every request to APNs.
//!
//! Apple's rules ("Establishing a token-based connection to APNs"):
//! - header `{"alg":"ES256","kid":<10-character key id>}`, claims `{"iss":<team id>,
//!   "iat":<Unix seconds>}`, signed with the team's P-256 key (the `.p8` file, PKCS#8 PEM);
//! - refresh the token no more often than every 20 minutes (APNs answers 429
//!   `TooManyProviderTokenUpdates`) and no less often than every 60 minutes (APNs answers 403
//!   `ExpiredProviderToken`).
//!
//! [`ApnsTokenSigner`] is shared by all APNs workers and signs a new token only when the cached
//! one reaches its refresh age. [`verify_provider_token`] is the check the local APNs stand-in
//! server applies, the way APNs does.
//!
//! Signing is done here with `p256` and base64url rather than a general JWT library: the token
//! has one fixed shape, ECDSA over P-256 with RFC 6979 nonces cannot fail at signing time, and
//! verification accepts exactly `ES256` so no algorithm-confusion path exists.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use serde::Deserialize;

/// Refresh age used unless the signer is configured otherwise.
pub const DEFAULT_REFRESH_AGE: Duration = Duration::from_secs(40 * 60);
/// Shortest refresh age Apple allows (more frequent updates are throttled).
pub const MIN_REFRESH_AGE: Duration = Duration::from_secs(20 * 60);
/// Longest refresh age Apple allows (older tokens are rejected as expired).
pub const MAX_REFRESH_AGE: Duration = Duration::from_secs(60 * 60);
/// How far in the future an `iat` may be before [`verify_provider_token`] rejects it, to absorb
/// small clock differences between the signer and the verifier.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(60);

/// Why a signer could not be built or a token did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApnsTokenError {
    /// The private key is not a PKCS#8 PEM P-256 key (the `.p8` file from Apple).
    #[error("invalid APNs private key: {0}")]
    InvalidPrivateKey(String),
    /// The public key is not an SPKI PEM P-256 key.
    #[error("invalid APNs public key: {0}")]
    InvalidPublicKey(String),
    /// The key id is empty or not ASCII letters and digits.
    #[error("invalid APNs key id {0:?}")]
    InvalidKeyId(String),
    /// The team id is empty or not ASCII letters and digits.
    #[error("invalid APNs team id {0:?}")]
    InvalidTeamId(String),
    /// The token is not three base64url parts with a JSON header and claims.
    #[error("malformed provider token: {0}")]
    MalformedToken(&'static str),
    /// The header names an algorithm other than ES256.
    #[error("provider token algorithm {0:?} is not ES256")]
    WrongAlgorithm(String),
    /// The header's `kid` is not the expected key id.
    #[error("provider token key id {found:?} is not {expected:?}")]
    WrongKeyId {
        /// Key id the verifier expected.
        expected: String,
        /// Key id in the token.
        found: String,
    },
    /// The `iss` claim is not the expected team id.
    #[error("provider token issuer {found:?} is not {expected:?}")]
    WrongIssuer {
        /// Team id the verifier expected.
        expected: String,
        /// Issuer in the token.
        found: String,
    },
    /// The signature does not verify with the public key.
    #[error("provider token signature does not verify")]
    BadSignature,
    /// The token was issued more than an hour ago.
    #[error("provider token is {age_secs} s old, more than an hour")]
    Expired {
        /// Age of the token in seconds.
        age_secs: u64,
    },
    /// The token claims to be issued in the future, beyond [`CLOCK_SKEW_ALLOWANCE`].
    #[error("provider token is issued {ahead_secs} s in the future")]
    IssuedInFuture {
        /// How far ahead of the verifier's clock `iat` is, in seconds.
        ahead_secs: u64,
    },
}

impl ApnsTokenError {
    /// The `reason` APNs sends with its 403 answer for this verification failure:
    /// `ExpiredProviderToken` for an expired token, `InvalidProviderToken` otherwise.
    pub fn apns_reason(&self) -> &'static str {
        match self {
            ApnsTokenError::Expired { .. } => "ExpiredProviderToken",
            _ => "InvalidProviderToken",
        }
    }
}

/// A token signed at a known time.
struct CachedToken {
    issued_at: u64,
    token: String,
}

/// Signs APNs provider tokens for one key and team, and reuses each token until it reaches its
/// refresh age. Thread-safe: share one signer (for example in an `Arc`) between workers.
pub struct ApnsTokenSigner {
    key_id: String,
    team_id: String,
    key: SigningKey,
    refresh_age_secs: u64,
    cached: Mutex<Option<CachedToken>>,
}

impl fmt::Debug for ApnsTokenSigner {
    // Written by hand so that the private key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsTokenSigner")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("refresh_age_secs", &self.refresh_age_secs)
            .finish_non_exhaustive()
    }
}

impl ApnsTokenSigner {
    /// Builds a signer from Apple's key id, the team id and the `.p8` private key (PKCS#8 PEM).
    pub fn new(key_id: &str, team_id: &str, pem: &str) -> Result<Self, ApnsTokenError> {
        if !is_apple_id(key_id) {
            return Err(ApnsTokenError::InvalidKeyId(key_id.to_owned()));
        }
        if !is_apple_id(team_id) {
            return Err(ApnsTokenError::InvalidTeamId(team_id.to_owned()));
        }
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| ApnsTokenError::InvalidPrivateKey(e.to_string()))?;
        Ok(ApnsTokenSigner {
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            key,
            refresh_age_secs: DEFAULT_REFRESH_AGE.as_secs(),
            cached: Mutex::new(None),
        })
    }

    /// Sets how old a cached token may get before a new one is signed, clamped to Apple's
    /// [`MIN_REFRESH_AGE`]..=[`MAX_REFRESH_AGE`].
    pub fn with_refresh_age(mut self, age: Duration) -> Self {
        self.refresh_age_secs = age.clamp(MIN_REFRESH_AGE, MAX_REFRESH_AGE).as_secs();
        self
    }

    /// How old a cached token may get before a new one is signed.
    pub fn refresh_age(&self) -> Duration {
        Duration::from_secs(self.refresh_age_secs)
    }

    /// The token to send at `now_unix` (Unix seconds): the cached one while it is younger than
    /// the refresh age, otherwise a newly signed one with `iat = now_unix`. A clock that went
    /// backwards past the cached token's `iat` also gets a new token, so that `iat` is never in
    /// the caller's future.
    pub fn token_at(&self, now_unix: u64) -> String {
        // The cache is always in a consistent state, so a panic elsewhere while it was locked
        // does not make it unusable.
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = cached.as_ref()
            && let Some(age) = now_unix.checked_sub(token.issued_at)
            && age < self.refresh_age_secs
        {
            return token.token.clone();
        }
        let token = self.sign(now_unix);
        *cached = Some(CachedToken {
            issued_at: now_unix,
            token: token.clone(),
        });
        token
    }

    /// Drops the cached token so that the next [`ApnsTokenSigner::token_at`] signs a new one.
    /// Call it when APNs answers `ExpiredProviderToken` or `InvalidProviderToken`; calling it
    /// more often than every 20 minutes makes APNs answer `TooManyProviderTokenUpdates`.
    pub fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn sign(&self, issued_at: u64) -> String {
        let header = serde_json::json!({ "alg": "ES256", "kid": self.key_id });
        let claims = serde_json::json!({ "iss": self.team_id, "iat": issued_at });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // JWS ES256 signatures are the raw 64-byte r || s, not DER.
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// Apple key and team ids are 10 characters of ASCII letters and digits; accept any non-empty
/// run of those so that test fixtures can use readable ids.
fn is_apple_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks a provider token as APNs does: algorithm ES256, the expected key id and team id, a
/// signature that verifies with the team key's public half (SPKI PEM), and an `iat` no more
/// than 60 minutes before `now_unix` (older tokens get `ExpiredProviderToken`) and no more than
/// [`CLOCK_SKEW_ALLOWANCE`] after it.
///
/// Used by the local APNs stand-in server; [`ApnsTokenError::apns_reason`] gives the reason it
/// should answer with.
pub fn verify_provider_token(
    token: &str,
    public_key_pem: &str,
    key_id: &str,
    team_id: &str,
    now_unix: u64,
) -> Result<(), ApnsTokenError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: Option<String>,
    }
    #[derive(Deserialize)]
    struct Claims {
        iss: String,
        iat: u64,
    }

    let key = VerifyingKey::from_public_key_pem(public_key_pem)
        .map_err(|e| ApnsTokenError::InvalidPublicKey(e.to_string()))?;
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ApnsTokenError::MalformedToken(
            "expected three dot-separated parts",
        ));
    };

    let header: Header = decode_json(header_b64, "header is not base64url JSON with alg and kid")?;
    if header.alg != "ES256" {
        return Err(ApnsTokenError::WrongAlgorithm(header.alg));
    }
    let kid = header.kid.unwrap_or_default();
    if kid != key_id {
        return Err(ApnsTokenError::WrongKeyId {
            expected: key_id.to_owned(),
            found: kid,
        });
    }

    let signature_bytes = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| ApnsTokenError::MalformedToken("signature is not base64url"))?;
    let signature =
        Signature::from_slice(&signature_bytes).map_err(|_| ApnsTokenError::BadSignature)?;
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    key.verify(signing_input.as_bytes(), &signature)
        .map_err(|_| ApnsTokenError::BadSignature)?;

    let claims: Claims = decode_json(claims_b64, "claims are not base64url JSON with iss and iat")?;
    if claims.iss != team_id {
        return Err(ApnsTokenError::WrongIssuer {
            expected: team_id.to_owned(),
            found: claims.iss,
        });
    }
    if claims.iat > now_unix {
        let ahead_secs = claims.iat - now_unix;
        if ahead_secs > CLOCK_SKEW_ALLOWANCE.as_secs() {
            return Err(ApnsTokenError::IssuedInFuture { ahead_secs });
        }
    } else {
        let age_secs = now_unix - claims.iat;
        if age_secs > MAX_REFRESH_AGE.as_secs() {
            return Err(ApnsTokenError::Expired { age_secs });
        }
    }
    Ok(())
}

/// Decodes one base64url JSON part of a token, reporting `malformed` if it is not one.
fn decode_json<T: for<'de> Deserialize<'de>>(
    part: &str,
    malformed: &'static str,
) -> Result<T, ApnsTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ApnsTokenError::MalformedToken(malformed))?;
    serde_json::from_slice(&bytes).map_err(|_| ApnsTokenError::MalformedToken(malformed))
}

#[cfg(test)]
mod tests;
