//! Which redirects the client follows by itself.
//!
//! Pages follow redirects only within one origin (scheme, host and port): a redirect to another
//! host or scheme is a new URL for the frontier, which applies that host's robots.txt,
//! politeness delay and crawl scope before fetching it. robots.txt follows redirects across
//! hosts, as RFC 9309 section 2.3.1.2 asks (`http://a/robots.txt` → `https://www.a/robots.txt`
//! is common); IP literal targets are checked here because the resolver never sees them.

use std::net::IpAddr;
use std::sync::Arc;

use reqwest::redirect::{Attempt, Policy};
use url::Url;

use super::address::{AddressRule, BlockedAddress};

/// Where redirects may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedirectScope {
    /// Only to the origin of the response that redirects.
    SameOrigin,
    /// Anywhere the address rule allows.
    AnyHost,
}

/// What to do with one redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hop {
    /// Follow it.
    Follow,
    /// Return the 3xx response to the caller.
    Stop,
    /// Fail the request: the target's host is this IP literal, which the rule refuses.
    Refuse(IpAddr),
}

/// The reqwest policy for `scope`, following at most `max_redirects` hops.
pub(crate) fn policy(scope: RedirectScope, max_redirects: usize, rule: Arc<AddressRule>) -> Policy {
    Policy::custom(move |attempt: Attempt| {
        match next_hop(
            attempt.url(),
            attempt.previous(),
            scope,
            max_redirects,
            &rule,
        ) {
            Hop::Follow => attempt.follow(),
            Hop::Stop => attempt.stop(),
            Hop::Refuse(ip) => {
                let host = attempt.url().host_str().unwrap_or_default().to_owned();
                attempt.error(BlockedAddress {
                    host,
                    refused: vec![ip],
                })
            }
        }
    })
}

/// The decision for a redirect to `next`; `previous` holds the URLs requested so far, the one
/// that answered with this redirect last.
pub(crate) fn next_hop(
    next: &Url,
    previous: &[Url],
    scope: RedirectScope,
    max_redirects: usize,
    rule: &AddressRule,
) -> Hop {
    // `previous.len() - 1` redirects were followed to get here.
    if previous.len() > max_redirects {
        return Hop::Stop;
    }
    match scope {
        RedirectScope::SameOrigin => match previous.last() {
            Some(from) if from.origin() == next.origin() => Hop::Follow,
            _ => Hop::Stop,
        },
        RedirectScope::AnyHost => match rule.refuses_host(next) {
            Some(ip) => Hop::Refuse(ip),
            None => Hop::Follow,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn rule() -> AddressRule {
        AddressRule {
            allow_private: false,
            allowed: Vec::new(),
        }
    }

    #[test]
    fn same_origin_follows_only_within_the_origin() {
        let previous = [url("http://a.example/start")];
        let hop =
            |next: &str| next_hop(&url(next), &previous, RedirectScope::SameOrigin, 5, &rule());
        assert_eq!(hop("http://a.example/next"), Hop::Follow);
        assert_eq!(hop("http://a.example:80/next"), Hop::Follow);
        assert_eq!(hop("https://a.example/next"), Hop::Stop);
        assert_eq!(hop("http://a.example:8080/next"), Hop::Stop);
        assert_eq!(hop("http://b.example/next"), Hop::Stop);
        assert_eq!(hop("http://www.a.example/next"), Hop::Stop);
    }

    #[test]
    fn same_origin_compares_with_the_last_hop() {
        // Only reachable through an earlier same-origin hop in practice; the rule is per hop.
        let previous = [url("http://a.example/"), url("http://b.example/")];
        let hop = next_hop(
            &url("http://b.example/x"),
            &previous,
            RedirectScope::SameOrigin,
            5,
            &rule(),
        );
        assert_eq!(hop, Hop::Follow);
    }

    #[test]
    fn stops_after_max_redirects() {
        let chain: Vec<Url> = (0..=5)
            .map(|i| url(&format!("http://a.example/{i}")))
            .collect();
        let next = url("http://a.example/next");
        for scope in [RedirectScope::SameOrigin, RedirectScope::AnyHost] {
            // Five requests made, four redirects followed: one more is allowed.
            assert_eq!(next_hop(&next, &chain[..5], scope, 5, &rule()), Hop::Follow);
            assert_eq!(next_hop(&next, &chain, scope, 5, &rule()), Hop::Stop);
            assert_eq!(next_hop(&next, &chain[..1], scope, 0, &rule()), Hop::Stop);
        }
    }

    #[test]
    fn any_host_follows_elsewhere_but_not_to_refused_ip_literals() {
        let previous = [url("http://a.example/robots.txt")];
        let hop = |next: &str| next_hop(&url(next), &previous, RedirectScope::AnyHost, 5, &rule());
        assert_eq!(hop("https://www.a.example/robots.txt"), Hop::Follow);
        assert_eq!(hop("http://8.8.8.8/robots.txt"), Hop::Follow);
        assert_eq!(
            hop("http://169.254.169.254/latest/meta-data/"),
            Hop::Refuse("169.254.169.254".parse().unwrap())
        );
    }
}
