//! Redis key layout. Every key of one identity shares one Cluster hash tag (the part in
//! braces), so one script call can touch all of its limits on one slot:
//!
//! ```text
//! {<prefix>:<rule>:<value>:<value>…}:<algorithm code>:<window ms>     rules
//! {<prefix>:direct:<key>}:<algorithm code>:<window ms>                  RateLimiter::check_key
//! ```
//!
//! Descriptor values are percent-encoded where they could break the layout (`{`, `}`, `:`,
//! `%`, spaces, control and non-ASCII bytes); API keys are secrets and appear only as the first
//! 128 bits of their SHA-256. A rule without key descriptors (one global counter) uses `*`.

use std::fmt::Write;

use sha2::{Digest, Sha256};

use crate::algorithm::Limit;
use crate::rules::Descriptor;

/// The rule name reserved for keys of [`crate::RateLimiter::check_key`] (and its metric label).
pub const DIRECT: &str = "direct";

/// `{<prefix>:<rule>:<identity>}` for the descriptor values of one request.
pub(crate) fn rule_base(prefix: &str, rule: &str, values: &[(Descriptor, &str)]) -> String {
    let mut base = format!("{{{prefix}:{rule}");
    if values.is_empty() {
        base.push_str(":*");
    }
    for (descriptor, value) in values {
        base.push(':');
        if *descriptor == Descriptor::ApiKey {
            let digest = Sha256::digest(value.as_bytes());
            base.push_str(&hex::encode(&digest[..16]));
        } else {
            escape_into(&mut base, value, true);
        }
    }
    base.push('}');
    base
}

/// `{<prefix>:direct:<key>}` for a caller-chosen key (its `:` kept, as callers namespace with it).
pub(crate) fn direct_base(prefix: &str, key: &str) -> String {
    let mut base = format!("{{{prefix}:{DIRECT}:");
    escape_into(&mut base, key, false);
    base.push('}');
    base
}

/// The key of one limit under an identity's base.
pub(crate) fn limit_key(base: &str, limit: &Limit) -> String {
    format!("{base}:{}:{}", limit.algorithm.code(), limit.window_ms())
}

fn escape_into(out: &mut String, value: &str, escape_colon: bool) {
    for byte in value.bytes() {
        let plain = byte.is_ascii_graphic()
            && !matches!(byte, b'{' | b'}' | b'%')
            && (byte != b':' || !escape_colon);
        if plain {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::algorithm::Algorithm;

    #[test]
    fn rule_keys_share_one_hash_tag_and_escape_values() {
        let base = rule_base(
            "rl",
            "per-ip",
            &[(Descriptor::Ip, "::1"), (Descriptor::Route, "/{code}")],
        );
        assert_eq!(base, "{rl:per-ip:%3A%3A1:/%7Bcode%7D}");
        let limit = Limit::new(Algorithm::TokenBucket, 10, Duration::from_secs(1));
        assert_eq!(
            limit_key(&base, &limit),
            "{rl:per-ip:%3A%3A1:/%7Bcode%7D}:tb:1000"
        );
        // Values that differ only in separators stay distinct.
        let a = rule_base(
            "rl",
            "r",
            &[(Descriptor::UserId, "a:b"), (Descriptor::Ip, "c")],
        );
        let b = rule_base(
            "rl",
            "r",
            &[(Descriptor::UserId, "a"), (Descriptor::Ip, "b:c")],
        );
        assert_ne!(a, b);
        assert_eq!(rule_base("rl", "global", &[]), "{rl:global:*}");
    }

    #[test]
    fn api_keys_never_appear_in_keys() {
        let base = rule_base("rl", "writes", &[(Descriptor::ApiKey, "sixfold-dev-key")]);
        assert!(!base.contains("sixfold-dev-key"));
        assert_eq!(base.len(), "{rl:writes:}".len() + 32);
    }

    #[test]
    fn direct_keys_keep_colons_and_escape_braces() {
        assert_eq!(
            direct_base("rl", "notify:42:email"),
            "{rl:direct:notify:42:email}"
        );
        assert_eq!(direct_base("rl", "a}b{c d"), "{rl:direct:a%7Db%7Bc%20d}");
    }
}
