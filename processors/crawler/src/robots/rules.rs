//! The rules that apply to one crawler, and the RFC 9309 matching of a path against them.

use std::borrow::Cow;
use std::time::Duration;

use url::{Position, Url};

use crate::percent::canonical_escapes;

/// One `allow` or `disallow` line, with its pattern in canonical escaped form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    allow: bool,
    /// The pattern without a trailing `$`; `*` matches any sequence of bytes.
    pattern: String,
    /// Whether the pattern ended in `$`: the path must end where the pattern does.
    anchored: bool,
    /// Length of the canonical pattern as written (with `*` and `$`), in bytes: RFC 9309 2.2.2
    /// says the most specific rule is the one with the most octets.
    specificity: usize,
}

impl Rule {
    /// The rule for `value`, or `None` for an empty value, which RFC 9309 gives no effect
    /// (`disallow:` with nothing after it disallows nothing).
    pub(super) fn new(allow: bool, value: &str) -> Option<Self> {
        if value.is_empty() {
            return None;
        }
        let canonical = canonical_escapes(value);
        let specificity = canonical.len();
        // Only a final `$` anchors; elsewhere it is an ordinary (reserved) character.
        let (pattern, anchored) = match canonical.strip_suffix('$') {
            Some(pattern) => (pattern.to_owned(), true),
            None => (canonical.into_owned(), false),
        };
        Some(Self {
            allow,
            pattern,
            anchored,
            specificity,
        })
    }

    fn matches(&self, path: &[u8]) -> bool {
        wildcard_match(self.pattern.as_bytes(), self.anchored, path)
    }
}

/// Whether `pattern` (with `*` wildcards) matches the start of `path`, or all of it when
/// `anchored`.
///
/// Greedy matching that backtracks only to the most recent `*`, which is enough for patterns
/// whose only wildcard is `*`; it runs in O(pattern × path) at worst and without recursion, so
/// a hostile robots.txt cannot blow the stack or the time budget.
fn wildcard_match(pattern: &[u8], anchored: bool, path: &[u8]) -> bool {
    let (mut p, mut s) = (0, 0);
    // Position after the last `*` seen, and the path position it is currently matched up to.
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if p == pattern.len() {
            // A pattern is a prefix unless anchored.
            if !anchored || s == path.len() {
                return true;
            }
        } else if pattern[p] == b'*' {
            p += 1;
            backtrack = Some((p, s));
            continue;
        } else if s < path.len() && pattern[p] == path[s] {
            p += 1;
            s += 1;
            continue;
        }
        // Mismatch: let the last `*` swallow one more byte and try again from there.
        match backtrack {
            Some((after_star, star_end)) if star_end < path.len() => {
                backtrack = Some((after_star, star_end + 1));
                p = after_star;
                s = star_end + 1;
            }
            _ => return false,
        }
    }
}

/// The rules of the groups that apply to one crawler, from [`super::Robots::for_agent`].
///
/// The default value allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
}

impl Rules {
    /// Rules that allow every path: for a missing or unavailable (4xx) robots.txt.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Rules that disallow every path but `/robots.txt` itself: for a robots.txt that could not
    /// be fetched (5xx, network error), until a retry succeeds.
    pub fn disallow_all() -> Self {
        Self {
            rules: Rule::new(false, "/").into_iter().collect(),
            crawl_delay: None,
        }
    }

    pub(super) fn from_parts(rules: Vec<Rule>, crawl_delay: Option<Duration>) -> Self {
        Self { rules, crawl_delay }
    }

    /// Whether the crawler may fetch `path_and_query` (the URL from the path on, without the
    /// fragment: `/a/b?c=d`), per RFC 9309 section 2.2.2:
    /// - the longest matching rule wins, measured in bytes of the canonical pattern;
    /// - `allow` wins a tie of equal length;
    /// - no matching rule allows;
    /// - `/robots.txt` is always allowed.
    ///
    /// Paths compare case-sensitively, after both sides are put in canonical escaped form.
    pub fn is_allowed(&self, path_and_query: &str) -> bool {
        let canonical = canonical_escapes(path_and_query);
        let path: Cow<'_, str> = if canonical.starts_with('/') {
            canonical
        } else {
            Cow::Owned(format!("/{canonical}"))
        };
        let path_only = path.split('?').next().unwrap_or_default();
        if path_only == "/robots.txt" {
            return true;
        }
        self.rules
            .iter()
            .filter(|rule| rule.matches(path.as_bytes()))
            // (length, allow) orders a longer rule first and, at equal length, allow first.
            .map(|rule| (rule.specificity, rule.allow))
            .max()
            .is_none_or(|(_, allow)| allow)
    }

    /// [`Rules::is_allowed`] for the path and query of `url`.
    pub fn is_url_allowed(&self, url: &Url) -> bool {
        self.is_allowed(&url[Position::BeforePath..Position::AfterQuery])
    }

    /// The `crawl-delay` of the matching groups (the longest, if they name several). Not in
    /// RFC 9309; many sites use it and honouring it is the polite reading.
    pub fn crawl_delay(&self) -> Option<Duration> {
        self.crawl_delay
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition of `*` matching, written the slow obvious way.
    fn reference_match(pattern: &[u8], anchored: bool, path: &[u8]) -> bool {
        match pattern.split_first() {
            None => !anchored || path.is_empty(),
            Some((b'*', rest)) => {
                (0..=path.len()).any(|i| reference_match(rest, anchored, &path[i..]))
            }
            Some((byte, rest)) => {
                path.first() == Some(byte) && reference_match(rest, anchored, &path[1..])
            }
        }
    }

    proptest! {
        #[test]
        fn wildcard_matching_agrees_with_the_definition(
            pattern in "[ab*]{0,8}",
            anchored in any::<bool>(),
            path in "[ab]{0,12}",
        ) {
            prop_assert_eq!(
                wildcard_match(pattern.as_bytes(), anchored, path.as_bytes()),
                reference_match(pattern.as_bytes(), anchored, path.as_bytes())
            );
        }
    }

    #[test]
    fn wildcard_matching() {
        // (pattern, anchored, path, matches)
        let cases = [
            ("/", false, "/", true),
            ("/", false, "/anything", true),
            ("/", true, "/", true),
            ("/", true, "/a", false),
            ("/a*b", false, "/ab", true),
            ("/a*b", false, "/axxxbyyy", true),
            ("/a*b", true, "/axxbxxb", true),
            ("/a*b", true, "/axxbxxc", false),
            ("*", false, "", true),
            ("*.gif", true, "/a/b.gif", true),
            ("*.gif", true, "/a/b.gif.html", false),
            ("/**x", false, "/yyx", true),
            ("/a*", true, "/a", true),
            ("/a", false, "", false),
            ("/abc", false, "/ab", false),
        ];
        for (pattern, anchored, path, expected) in cases {
            assert_eq!(
                wildcard_match(pattern.as_bytes(), anchored, path.as_bytes()),
                expected,
                "{pattern:?} anchored={anchored} on {path:?}"
            );
        }
    }

    #[test]
    fn hostile_pattern_finishes() {
        let pattern = "/*a".repeat(500) + "$";
        let rule = Rule::new(false, &pattern).unwrap();
        let path = "/".to_string() + &"a".repeat(2000) + "b";
        assert!(!rule.matches(path.as_bytes()));
    }

    #[test]
    fn empty_values_make_no_rule() {
        assert_eq!(Rule::new(false, ""), None);
        assert_eq!(Rule::new(true, ""), None);
    }

    #[test]
    fn allow_all_and_disallow_all() {
        assert!(Rules::allow_all().is_allowed("/private"));
        assert!(!Rules::disallow_all().is_allowed("/"));
        assert!(!Rules::disallow_all().is_allowed("/a?b"));
        assert!(!Rules::disallow_all().is_allowed(""));
        assert!(Rules::disallow_all().is_allowed("/robots.txt"));
        assert_eq!(Rules::disallow_all().crawl_delay(), None);
    }

    #[test]
    fn url_form() {
        let rules = Rules::from_parts(Rule::new(false, "/a?b").into_iter().collect(), None);
        let url = Url::parse("http://example.com/a?b=1#fragment").unwrap();
        assert!(!rules.is_url_allowed(&url));
        let url = Url::parse("http://example.com/a?c#b").unwrap();
        assert!(rules.is_url_allowed(&url));
    }
}
