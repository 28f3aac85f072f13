//! The answer for one request over all its rules, and the HTTP fields it implies.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::{Decision, Limit};
use crate::rules::{Rule, RuleName};

/// One enforced limit that applied to a request (an item of `RateLimit-Policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `<rule>.<limit name>`, e.g. `api-key-writes.1s`.
    pub name: Arc<str>,
    /// The rule it belongs to.
    pub rule: RuleName,
    /// The limit.
    pub limit: Limit,
}

impl Policy {
    pub(crate) fn of(rule: &Rule, index: usize) -> Self {
        let limit = &rule.limits[index];
        Self {
            name: format!("{}.{}", rule.name, limit.name).into(),
            rule: rule.name.clone(),
            limit: limit.limit,
        }
    }
}

/// What the limiter says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// False only if a non-shadow rule denied (or failed closed).
    pub allowed: bool,
    /// The most restrictive decision of the non-shadow rules (for `X-RateLimit-*`), or `None`
    /// when no enforced rule applied or Redis failed open for all of them.
    pub decisive: Option<(RuleName, Decision)>,
    /// The policy of `decisive` (for the `RateLimit` field).
    pub decisive_policy: Option<Policy>,
    /// Every limit of every non-shadow rule that applied (for `RateLimit-Policy`).
    pub policies: Vec<Policy>,
    /// Leaky bucket: the longest wait any allowing limit asks for before processing.
    pub delay: Option<Duration>,
    /// A shadow rule would have denied (the request goes on; counted in the metrics).
    pub shadow_denied: bool,
    /// Redis failed for a rule that fails open.
    pub failed_open: bool,
    /// Redis failed for a non-shadow rule that fails closed (the request is refused).
    pub failed_closed: bool,
    /// The denial came from the local over-limit cache, without a Redis round trip.
    pub from_local_cache: bool,
}

impl Verdict {
    /// Allowed, with no rule applying (nothing matched, or the limiter is disabled).
    pub fn unlimited() -> Self {
        Self {
            allowed: true,
            decisive: None,
            decisive_policy: None,
            policies: Vec::new(),
            delay: None,
            shadow_denied: false,
            failed_open: false,
            failed_closed: false,
            from_local_cache: false,
        }
    }

    /// Takes one non-shadow rule's decision (made by its limit `index`) into account.
    pub(crate) fn enforce(&mut self, rule: &Rule, index: usize, decision: Decision) {
        self.allowed &= decision.allowed;
        if decision.allowed {
            self.delay = self.delay.max(decision.delay);
        }
        let more = match &self.decisive {
            None => true,
            Some((_, best)) => decision.is_more_restrictive_than(best),
        };
        if more {
            self.decisive = Some((rule.name.clone(), decision));
            self.decisive_policy = Some(Policy::of(rule, index));
        }
    }

    /// The IETF `RateLimit-Policy` field value (draft-ietf-httpapi-ratelimit-headers):
    /// `"<name>";q=<limit>;w=<window s>` per enforced limit, or `None` if none applied.
    pub fn ratelimit_policy_field(&self) -> Option<String> {
        let mut field = String::new();
        for policy in &self.policies {
            if !field.is_empty() {
                field.push_str(", ");
            }
            let _ = write!(
                field,
                "{};q={};w={}",
                sf_string(&policy.name),
                policy.limit.limit,
                ceil_secs(policy.limit.window)
            );
        }
        (!field.is_empty()).then_some(field)
    }

    /// The IETF `RateLimit` field value for the decisive policy:
    /// `"<name>";r=<remaining>;t=<seconds until reset>`.
    pub fn ratelimit_field(&self) -> Option<String> {
        let ((_, decision), policy) = (self.decisive.as_ref()?, self.decisive_policy.as_ref()?);
        Some(format!(
            "{};r={};t={}",
            sf_string(&policy.name),
            decision.remaining,
            ceil_secs(decision.reset_after)
        ))
    }
}

/// Whole seconds, rounded up (headers must never invite a retry that is too early).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A structured-field string (RFC 9651): quoted, with `"` and `\` escaped.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Algorithm;
    use crate::rules::RuleSet;

    fn rules() -> RuleSet {
        RuleSet::parse(
            "rules:
  - name: writes
    key: api_key
    limits:
      - {name: burst, algorithm: token_bucket, limit: 10, window: 1s}
      - {limit: 100, window: 1m}
  - {name: ip, key: ip, limit: 50, window: 1s}",
        )
        .unwrap()
    }

    fn allowed(remaining: u64) -> Decision {
        Decision {
            remaining,
            reset_after: Duration::from_millis(1500),
            ..Decision::unlimited(100)
        }
    }

    #[test]
    fn the_most_restrictive_rule_decides_and_fields_name_it() {
        let set = rules();
        let (writes, ip) = (&set.rules[0], &set.rules[1]);
        let mut v = Verdict::unlimited();
        v.policies = vec![
            Policy::of(writes, 0),
            Policy::of(writes, 1),
            Policy::of(ip, 0),
        ];
        v.enforce(writes, 1, allowed(7));
        v.enforce(ip, 0, allowed(40));
        assert!(v.allowed);
        assert_eq!(v.decisive.as_ref().unwrap().0.as_ref(), "writes");
        assert_eq!(v.ratelimit_field().unwrap(), r#""writes.1m";r=7;t=2"#);
        assert_eq!(
            v.ratelimit_policy_field().unwrap(),
            r#""writes.burst";q=10;w=1, "writes.1m";q=100;w=60, "ip.1s";q=50;w=1"#
        );
        v.enforce(ip, 0, Decision::unavailable(50));
        assert!(!v.allowed);
        assert_eq!(v.decisive_policy.as_ref().unwrap().name.as_ref(), "ip.1s");
        assert_eq!(
            v.decisive_policy.as_ref().unwrap().limit.algorithm,
            Algorithm::SlidingWindowCounter
        );
    }

    #[test]
    fn nothing_applied_means_no_fields() {
        let v = Verdict::unlimited();
        assert_eq!(v.ratelimit_field(), None);
        assert_eq!(v.ratelimit_policy_field(), None);
        assert_eq!(sf_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::from_secs(3)), 3);
    }
}
