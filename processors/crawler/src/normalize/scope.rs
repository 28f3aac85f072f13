//! Crawl scope: which normalized URLs the crawler follows at all.
//!
//! Checked after [`super::normalize`], before a URL enters the frontier. The limits keep a crawl
//! to the sites it was asked for and out of the endless URL spaces (calendars, session ids,
//! relative links that nest forever) that crawler traps are made of.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::MAX_URL_LEN;

/// Limits on what the crawler follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Deepest link depth followed; seeds are depth 0, links found on them depth 1.
    pub max_depth: u32,
    /// Domains the crawl stays inside: `example.com` allows `example.com` and every subdomain
    /// (`www.example.com`); an IP address allows only itself. Empty allows every host. Entries
    /// are compared ASCII case-insensitively, so give IDNs in punycode or build with
    /// [`Scope::new`], which converts them.
    pub allowed_domains: Vec<String>,
    /// Longest URL followed, in bytes.
    pub max_url_len: usize,
    /// How often one path segment may occur in a path; more is taken for a crawler trap such as
    /// `/a/b/a/b/a/b/a`, which relative links on a misconfigured server produce without end.
    pub max_repeated_segments: usize,
}

impl Default for Scope {
    /// Depth 16, every domain, 2048 bytes, a segment at most 3 times.
    fn default() -> Self {
        Self {
            max_depth: 16,
            allowed_domains: Vec::new(),
            max_url_len: MAX_URL_LEN,
            max_repeated_segments: 3,
        }
    }
}

/// Why a URL is not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutOfScope {
    /// The link is deeper than [`Scope::max_depth`].
    #[error("depth {depth} is deeper than {max_depth}")]
    TooDeep {
        /// Depth of the link.
        depth: u32,
        /// The limit.
        max_depth: u32,
    },
    /// The host is outside [`Scope::allowed_domains`].
    #[error("host is not in an allowed domain")]
    DomainNotAllowed,
    /// The URL is longer than [`Scope::max_url_len`].
    #[error("URL is {len} bytes long, more than {max}")]
    TooLong {
        /// Length of the URL in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A path segment occurs more than [`Scope::max_repeated_segments`] times.
    #[error("path segment {segment:?} repeats more than {max} times")]
    RepeatedSegments {
        /// The segment that repeats.
        segment: String,
        /// The limit.
        max: usize,
    },
}

impl Scope {
    /// The default limits with `max_depth` and `allowed_domains`; domain names are converted to
    /// their ASCII (punycode) lower-case form so they compare with URL hosts. Entries that are
    /// not valid host names are kept as given and will match nothing.
    pub fn new(max_depth: u32, allowed_domains: impl IntoIterator<Item = String>) -> Self {
        let allowed_domains = allowed_domains
            .into_iter()
            .map(|domain| {
                let trimmed = domain.trim().trim_start_matches('.');
                match Host::parse(trimmed) {
                    Ok(host) => host.to_string(),
                    Err(_) => domain,
                }
            })
            .collect();
        Self {
            max_depth,
            allowed_domains,
            ..Self::default()
        }
    }

    /// `Ok` if the crawler follows `url`, found at link depth `depth`, else the first limit it
    /// breaks (checked cheapest first: length, depth, domain, repeated segments).
    pub fn check(&self, url: &Url, depth: u32) -> Result<(), OutOfScope> {
        let len = url.as_str().len();
        if len > self.max_url_len {
            return Err(OutOfScope::TooLong {
                len,
                max: self.max_url_len,
            });
        }
        if depth > self.max_depth {
            return Err(OutOfScope::TooDeep {
                depth,
                max_depth: self.max_depth,
            });
        }
        if !self.domain_allowed(url) {
            return Err(OutOfScope::DomainNotAllowed);
        }
        if let Some(segment) = self.repeated_segment(url) {
            return Err(OutOfScope::RepeatedSegments {
                segment: segment.to_owned(),
                max: self.max_repeated_segments,
            });
        }
        Ok(())
    }

    fn domain_allowed(&self, url: &Url) -> bool {
        if self.allowed_domains.is_empty() {
            return true;
        }
        let Some(host) = url.host() else {
            return false;
        };
        self.allowed_domains.iter().any(|entry| {
            // A leading or trailing dot in configuration (".example.com", "example.com.")
            // still means the domain.
            let entry = entry.trim().trim_start_matches('.').trim_end_matches('.');
            match host {
                Host::Domain(name) => is_same_or_subdomain(name, entry),
                Host::Ipv4(address) => entry.parse::<Ipv4Addr>() == Ok(address),
                Host::Ipv6(address) => {
                    let bare = entry.trim_start_matches('[').trim_end_matches(']');
                    bare.parse::<Ipv6Addr>() == Ok(address)
                }
            }
        })
    }

    /// The first path segment that occurs more than the limit allows. Empty segments (`//`)
    /// are not counted: they carry no name to repeat.
    fn repeated_segment<'u>(&self, url: &'u Url) -> Option<&'u str> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for segment in url.path_segments()?.filter(|segment| !segment.is_empty()) {
            let count = counts.entry(segment).or_insert(0);
            *count += 1;
            if *count > self.max_repeated_segments {
                return Some(segment);
            }
        }
        None
    }
}

/// `host` is `domain` or ends in `.domain`: `www.example.com` is in `example.com`,
/// `notexample.com` is not.
fn is_same_or_subdomain(host: &str, domain: &str) -> bool {
    if domain.is_empty() {
        return false;
    }
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    host.len() > domain.len()
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    fn domains(list: &[&str]) -> Scope {
        Scope::new(5, list.iter().map(|d| d.to_string()))
    }

    #[test]
    fn allowed_domains_include_subdomains_only() {
        let scope = domains(&["example.com", "127.0.0.1", "[::1]", "Bücher.Example"]);
        let allowed = [
            "http://example.com/",
            "https://www.example.com/a",
            "http://a.b.example.com:8080/",
            "http://EXAMPLE.com/",
            "http://example.com./",
            "http://127.0.0.1:8001/",
            "http://[::1]:9000/",
            "http://xn--bcher-kva.example/",
            "http://shop.bücher.example/",
        ];
        for raw in allowed {
            assert_eq!(scope.check(&url(raw), 0), Ok(()), "{raw}");
        }
        let refused = [
            "http://notexample.com/",
            "http://example.com.evil.net/",
            "http://example.org/",
            "http://com/",
            "http://127.0.0.2/",
            "http://[::2]/",
            "http://1.example.com.attacker/",
        ];
        for raw in refused {
            assert_eq!(
                scope.check(&url(raw), 0),
                Err(OutOfScope::DomainNotAllowed),
                "{raw}"
            );
        }
    }

    #[test]
    fn domain_entries_are_normalized() {
        let scope = Scope::new(1, [" .Example.COM ".to_string()]);
        assert_eq!(scope.allowed_domains, vec!["example.com".to_string()]);
        assert_eq!(scope.check(&url("http://www.example.com/"), 0), Ok(()));
        // Entries written into the field directly are still compared leniently.
        let scope = Scope {
            allowed_domains: vec!["Example.com.".into()],
            ..Scope::default()
        };
        assert_eq!(scope.check(&url("http://www.example.com/"), 0), Ok(()));
        let scope = Scope {
            allowed_domains: vec![String::new()],
            ..Scope::default()
        };
        assert_eq!(
            scope.check(&url("http://example.com/"), 0),
            Err(OutOfScope::DomainNotAllowed)
        );
    }

    #[test]
    fn empty_domain_list_allows_every_host() {
        let scope = Scope::default();
        for raw in ["http://example.com/", "http://10.0.0.1/", "http://[::1]/"] {
            assert_eq!(scope.check(&url(raw), 0), Ok(()), "{raw}");
        }
    }

    #[test]
    fn depth_limit_is_inclusive() {
        let scope = domains(&[]);
        let page = url("http://example.com/");
        assert_eq!(scope.check(&page, 0), Ok(()));
        assert_eq!(scope.check(&page, 5), Ok(()));
        assert_eq!(
            scope.check(&page, 6),
            Err(OutOfScope::TooDeep {
                depth: 6,
                max_depth: 5
            })
        );
    }

    #[test]
    fn length_limit() {
        let scope = Scope {
            max_url_len: 30,
            ..Scope::default()
        };
        let fits = url("http://example.com/0123456789"); // 29 bytes
        assert_eq!(scope.check(&fits, 0), Ok(()));
        let over = url("http://example.com/0123456789ab");
        assert_eq!(
            scope.check(&over, 0),
            Err(OutOfScope::TooLong { len: 31, max: 30 })
        );
    }

    #[test]
    fn repeated_segments_catch_traps() {
        let scope = Scope::default();
        let fine = [
            "http://example.com/a/b/a/b/a/b",
            "http://example.com/2024/01/01/01",
            "http://example.com/a//////////b",
            "http://example.com/",
        ];
        for raw in fine {
            assert_eq!(scope.check(&url(raw), 0), Ok(()), "{raw}");
        }
        assert_eq!(
            scope.check(&url("http://example.com/a/b/a/b/a/b/a"), 0),
            Err(OutOfScope::RepeatedSegments {
                segment: "a".into(),
                max: 3
            })
        );
        assert_eq!(
            scope.check(&url("http://example.com/x/x/x/x"), 0),
            Err(OutOfScope::RepeatedSegments {
                segment: "x".into(),
                max: 3
            })
        );
    }

    #[test]
    fn first_broken_limit_is_reported() {
        let scope = domains(&["example.com"]);
        assert_eq!(
            scope.check(&url("http://other.org/a/a/a/a"), 9),
            Err(OutOfScope::TooDeep {
                depth: 9,
                max_depth: 5
            })
        );
        assert_eq!(
            scope.check(&url("http://other.org/a/a/a/a"), 1),
            Err(OutOfScope::DomainNotAllowed)
        );
    }
}
