//! A short link, and the rules for what may become one.

use serde::{Deserialize, Serialize};

use crate::code::is_generated_shape;

/// Longest accepted long URL, in characters.
pub const MAX_URL_LEN: usize = 2048;
/// Furthest expiry accepted, from now: 100 years, in milliseconds.
pub const MAX_EXPIRY_MS: i64 = 100 * 366 * 24 * 3600 * 1000;
/// Shortest and longest custom alias.
pub const ALIAS_LEN: std::ops::RangeInclusive<usize> = 4..=32;

/// Words that cannot be aliases: they are, or may become, routes of the ingress.
const RESERVED: &[&str] = &[
    "v1",
    "v2",
    "api",
    "admin",
    "healthz",
    "readyz",
    "metrics",
    "openapi",
    "openapi.json",
    "static",
    "assets",
    "console",
    "login",
    "logout",
    "docs",
    "help",
    "favicon.ico",
    "robots.txt",
];

/// The HTTP status a redirect answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectStatus {
    /// 301: browsers cache it; later clicks may not reach the service.
    MovedPermanently,
    /// 302: every click reaches the service and is counted.
    Found,
}

impl RedirectStatus {
    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            RedirectStatus::MovedPermanently => 301,
            RedirectStatus::Found => 302,
        }
    }

    /// From a status code; only 301 and 302 are redirects here.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            301 => Some(RedirectStatus::MovedPermanently),
            302 => Some(RedirectStatus::Found),
            _ => None,
        }
    }
}

/// A materialized link, as the store and the cache keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Short code or custom alias.
    pub code: String,
    /// Where the link points.
    pub long_url: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Expiry, ms since the epoch; never when absent.
    pub expires_at_ms: Option<i64>,
    /// Redirect status.
    pub redirect: RedirectStatus,
    /// Whether the code is a custom alias.
    pub custom: bool,
    /// API key holder that created it.
    pub created_by: Option<String>,
}

impl Link {
    /// Whether the link has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// Why a request cannot become a link. The text is the 400's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The long URL is unusable.
    #[error("long_url {0}")]
    Url(String),
    /// The alias breaks a rule.
    #[error("custom_alias {0}")]
    Alias(String),
    /// Expiry is not in the future.
    #[error("expires_at must be in the future")]
    PastExpiry,
    /// Expiry is further away than links are kept.
    #[error("expires_at must be within 100 years")]
    FarExpiry,
    /// Redirect status is not 301 or 302.
    #[error("redirect must be 301 or 302")]
    Redirect,
}

/// Checks a long URL: http or https, at most 2048 characters, with a host.
pub fn validate_long_url(raw: &str) -> Result<url::Url, Invalid> {
    if raw.chars().count() > MAX_URL_LEN {
        return Err(Invalid::Url(format!(
            "is longer than {MAX_URL_LEN} characters"
        )));
    }
    let parsed = url::Url::parse(raw).map_err(|e| Invalid::Url(format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid::Url(format!(
            "must be http or https, not {}",
            parsed.scheme()
        )));
    }
    match parsed.host_str() {
        Some(host) if !host.is_empty() => Ok(parsed),
        _ => Err(Invalid::Url("has no host".into())),
    }
}

/// Checks a custom alias: 4–32 of `[A-Za-z0-9_-]`, not a reserved word, and not shaped like a
/// generated code (7 Base62 characters) — generated codes and aliases live in disjoint sets,
/// which is what lets generated codes skip a collision check.
pub fn validate_alias(alias: &str) -> Result<(), Invalid> {
    if !ALIAS_LEN.contains(&alias.len()) {
        return Err(Invalid::Alias(format!(
            "must be {} to {} characters",
            ALIAS_LEN.start(),
            ALIAS_LEN.end()
        )));
    }
    if !alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Invalid::Alias("may use only A-Z, a-z, 0-9, _ and -".into()));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(alias)) {
        return Err(Invalid::Alias(format!("{alias:?} is reserved")));
    }
    if is_generated_shape(alias) {
        return Err(Invalid::Alias(
            "of 7 letters and digits only is reserved for generated codes; add - or _ or change its length".into(),
        ));
    }
    Ok(())
}

/// Whether `code` could name a link at all (a generated code or a valid alias); anything else
/// is a 404 without a lookup.
pub fn could_be_code(code: &str) -> bool {
    is_generated_shape(code) || validate_alias(code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_urls() {
        assert!(validate_long_url("https://example.com/a?b=c").is_ok());
        assert!(validate_long_url("http://127.0.0.1:8080/").is_ok());
        let msg = |u: &str| validate_long_url(u).unwrap_err().to_string();
        assert!(msg("ftp://example.com/").contains("http or https"));
        assert!(msg("javascript:alert(1)").contains("http or https"));
        assert!(msg("not a url").contains("is not a URL"));
        assert!(msg("https://").contains("not a URL") || msg("https://").contains("no host"));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(msg(&long).contains("longer than 2048"));
        let exactly = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(exactly.len(), MAX_URL_LEN);
        assert!(validate_long_url(&exactly).is_ok());
    }

    #[test]
    fn aliases() {
        assert!(validate_alias("my-link").is_ok());
        assert!(validate_alias("spring_sale_2026").is_ok());
        assert!(validate_alias("abcd").is_ok());
        assert!(validate_alias("abc").is_err());
        assert!(validate_alias(&"a".repeat(33)).is_err());
        assert!(validate_alias("has space").is_err());
        assert!(
            validate_alias("Metrics")
                .unwrap_err()
                .to_string()
                .contains("reserved")
        );
        assert!(
            validate_alias("abcDE12")
                .unwrap_err()
                .to_string()
                .contains("generated")
        );
        assert!(validate_alias("abc-E12").is_ok());
    }

    #[test]
    fn redirect_codes() {
        assert_eq!(RedirectStatus::from_code(301).unwrap().code(), 301);
        assert_eq!(RedirectStatus::from_code(302).unwrap().code(), 302);
        assert_eq!(RedirectStatus::from_code(307), None);
    }
}
