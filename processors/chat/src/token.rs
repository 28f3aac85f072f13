//! Per-user chat tokens: `POST /v1/chat/tokens {user_id}` issues one to an API-key holder, and
//! a gateway accepts a WebSocket only with a valid one (`Authorization: Bearer <token>`, or
//! `?token=<token>` for browsers, which cannot set headers on a WebSocket).
//!
//! Format: `v1.<user_id>.<expires_at>.<signature>`, where `expires_at` is Unix seconds in
//! decimal and `signature` is the lowercase hex HMAC-SHA256 of `v1.<user_id>.<expires_at>`
//! under the deployment's secret. User ids contain no `.` ([`crate::user`]), so the four parts
//! are unambiguous, and the token needs no escaping in a URL or a header. Tokens are bearer
//! credentials: anyone holding one is that user until it expires, so keep the TTL short (they
//! are not revocable) and keep them out of logs (the `?token=` form lands in access logs
//! unless the gateway strips it).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::user::is_valid_user_id;

/// Version tag of the only format so far.
pub const TOKEN_VERSION: &str = "v1";
/// Fewest secret bytes a deployment should configure (HMAC-SHA256's block security); the
/// settings check it, [`TokenIssuer::new`] does not.
pub const MIN_SECRET_BYTES: usize = 32;
/// Hex digits of a signature (32 bytes).
const SIGNATURE_HEX: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused (or, for [`TokenError::InvalidUserId`], not issued).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not four dot-separated parts, a bad user id, expiry or signature encoding.
    #[error("malformed chat token")]
    Malformed,
    /// A version (`v<digits>`) other than [`TOKEN_VERSION`], e.g. a token of a newer format.
    #[error("unknown chat token version")]
    UnknownVersion,
    /// The signature does not match (tampered, or another secret).
    #[error("chat token signature does not match")]
    BadSignature,
    /// Signed correctly but past its expiry.
    #[error("chat token expired")]
    Expired,
    /// [`TokenIssuer::issue`] was given a user id outside `[A-Za-z0-9_-]{1,64}`.
    #[error("user id must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    InvalidUserId,
}

/// Issues and verifies chat tokens with one secret.
#[derive(Clone)]
pub struct TokenIssuer {
    /// The HMAC keyed once; cloned per token so the raw secret is not kept around.
    mac: HmacSha256,
    ttl: Duration,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TokenIssuer {
    /// An issuer whose tokens live `ttl` (whole seconds; less than a second is dropped).
    /// `secret` should be at least [`MIN_SECRET_BYTES`] random bytes, the same on every
    /// ingress and gateway.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            // HMAC takes keys of any length, so this cannot fail.
            mac: <HmacSha256 as Mac>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
            ttl,
        }
    }

    /// How long issued tokens live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user_id`, expiring `ttl` after `now`.
    pub fn issue(&self, user_id: &str, now: SystemTime) -> Result<String, TokenError> {
        if !is_valid_user_id(user_id) {
            return Err(TokenError::InvalidUserId);
        }
        let expires = unix_secs(now).saturating_add(self.ttl.as_secs());
        let payload = format!("{TOKEN_VERSION}.{user_id}.{expires}");
        let signature = hex::encode(self.sign(&payload).finalize().into_bytes());
        Ok(format!("{payload}.{signature}"))
    }

    /// The user a token was issued to, if it is well formed, signed with this secret and
    /// not expired at `now` (a token is expired from its `expires_at` second on). The
    /// signature is checked, in constant time, before the expiry, so an altered expiry reads
    /// as a bad signature.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<String, TokenError> {
        let version = token.split('.').next().unwrap_or_default();
        if version != TOKEN_VERSION {
            let versioned = version.len() > 1
                && version.starts_with('v')
                && version[1..].bytes().all(|b| b.is_ascii_digit());
            return Err(if versioned {
                TokenError::UnknownVersion
            } else {
                TokenError::Malformed
            });
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [_, user_id, expires, signature] = parts[..] else {
            return Err(TokenError::Malformed);
        };
        // Canonical forms only: decimal digits without sign or leading zeros, lowercase hex.
        let expires_ok = !expires.is_empty()
            && expires.len() <= 20
            && expires.bytes().all(|b| b.is_ascii_digit())
            && (expires == "0" || !expires.starts_with('0'));
        let signature_ok = signature.len() == SIGNATURE_HEX
            && signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_valid_user_id(user_id) || !expires_ok || !signature_ok {
            return Err(TokenError::Malformed);
        }
        let expires_at: u64 = expires.parse().map_err(|_| TokenError::Malformed)?;
        let signature = hex::decode(signature).map_err(|_| TokenError::Malformed)?;
        let signed_len = token.len() - SIGNATURE_HEX - 1;
        self.sign(&token[..signed_len])
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        if unix_secs(now) >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(user_id.to_owned())
    }

    fn sign(&self, payload: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac
    }
}

/// Whole seconds since the Unix epoch; 0 before it.
fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
