//! robots.txt per RFC 9309: parsing, choosing the groups for our crawler, and what a fetch's
//! status code means.
//!
//! [`Robots::parse`] never fails: RFC 9309 asks parsers to ignore lines they cannot read, and
//! a site's typo must not turn into "disallow nothing" or "disallow everything". The crawler
//! fetches `/robots.txt` once per host key, picks the [`Rules`] for its product token with
//! [`Robots::for_agent`], and asks [`Rules::is_allowed`] before every fetch. Which of parse,
//! allow all or disallow all to do with a response is [`robots_for_status`].

mod rules;

#[cfg(test)]
mod matching_tests;
#[cfg(test)]
mod parsing_tests;

use std::collections::HashSet;
use std::time::Duration;

use rules::Rule;
pub use rules::Rules;

/// How much of a robots.txt is read: RFC 9309 section 2.5 asks crawlers to parse at least
/// 500 KiB, and lets them ignore the rest.
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// How long a fetched robots.txt may be used before it is fetched again: RFC 9309 section 2.4
/// says at most 24 hours, unless the file is unreachable when it is due, in which case the
/// cached copy may be kept.
pub const MAX_CACHE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// A parsed robots.txt: its groups and its sitemaps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    groups: Vec<Group>,
    sitemaps: Vec<String>,
}

/// User-agent lines in a row, then the rules that apply to those agents.
#[derive(Debug, Clone, Default, PartialEq)]
struct Group {
    agents: Vec<Agent>,
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
}

/// The value of a `user-agent` line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Agent {
    /// `*`: crawlers that no other group names.
    Any,
    /// A product token, lower-cased (matching is case-insensitive).
    Product(String),
}

/// The fields this parser knows; anything else is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    UserAgent,
    Allow,
    Disallow,
    CrawlDelay,
    Sitemap,
}

impl Robots {
    /// Parses the first `max_bytes` of `body` (use [`MAX_ROBOTS_BYTES`]).
    ///
    /// Tolerant by design: invalid UTF-8 is replaced, a UTF-8 byte order mark is skipped, lines
    /// end in `\n`, `\r\n` or `\r`, `#` starts a comment, field names are case-insensitive and
    /// may have spaces around them, lines without a `:` or with an unknown field are skipped.
    /// Rules before the first `user-agent` line belong to no group and are ignored.
    pub fn parse(body: &[u8], max_bytes: usize) -> Robots {
        let text = String::from_utf8_lossy(truncate_at_line(body, max_bytes));
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);

        let mut robots = Robots::default();
        // True while the lines since the last rule are user-agent lines: another user-agent
        // line joins the current group instead of starting a new one (RFC 9309 section 2.1).
        let mut reading_agents = false;
        // A file may list thousands of sitemaps; a set keeps removing duplicates linear.
        let mut seen_sitemaps = HashSet::new();
        // A `\r\n` yields an empty line between its halves; empty lines mean nothing.
        for line in text.split(['\n', '\r']) {
            let Some((field, value)) = split_line(line) else {
                continue;
            };
            match field {
                Field::UserAgent => {
                    if !reading_agents {
                        robots.groups.push(Group::default());
                        reading_agents = true;
                    }
                    if let (Some(group), Some(agent)) =
                        (robots.groups.last_mut(), Agent::parse(value))
                    {
                        group.agents.push(agent);
                    }
                }
                Field::Allow | Field::Disallow => {
                    reading_agents = false;
                    if let (Some(group), Some(rule)) = (
                        robots.groups.last_mut(),
                        Rule::new(field == Field::Allow, value),
                    ) {
                        group.rules.push(rule);
                    }
                }
                Field::CrawlDelay => {
                    // A group member like a rule: a user-agent line after it starts a new group.
                    reading_agents = false;
                    if let (Some(group), Some(delay)) =
                        (robots.groups.last_mut(), parse_crawl_delay(value))
                    {
                        group.crawl_delay = group.crawl_delay.max(Some(delay));
                    }
                }
                // Sitemaps belong to no group and do not end one (RFC 9309 section 2.2.4).
                Field::Sitemap => {
                    if !value.is_empty() && seen_sitemaps.insert(value) {
                        robots.sitemaps.push(value.to_owned());
                    }
                }
            }
        }
        robots
    }

    /// The rules for the crawler whose product token is `product_token` (`SixfoldBot`),
    /// chosen per RFC 9309 section 2.2.1:
    /// - every group with a user-agent equal to the token, ignoring case, merged into one;
    /// - if there is none, every `*` group, merged;
    /// - if there is no `*` group either, rules that allow everything.
    ///
    /// A user-agent is matched as a whole token, never as a substring. Only the token's leading
    /// letters, `-` and `_` are used, so `SixfoldBot/1.0` works as well.
    pub fn for_agent(&self, product_token: &str) -> Rules {
        let wanted = product_token_of(product_token).to_ascii_lowercase();
        let names_us = |group: &&Group| {
            group
                .agents
                .iter()
                .any(|agent| matches!(agent, Agent::Product(token) if *token == wanted))
        };
        let mut chosen: Vec<&Group> = if wanted.is_empty() {
            Vec::new()
        } else {
            self.groups.iter().filter(names_us).collect()
        };
        if chosen.is_empty() {
            chosen = self
                .groups
                .iter()
                .filter(|group| group.agents.contains(&Agent::Any))
                .collect();
        }
        let rules = chosen
            .iter()
            .flat_map(|group| group.rules.iter().cloned())
            .collect();
        // Several delays for one crawler: the longest is the one every group agrees to.
        let crawl_delay = chosen.iter().filter_map(|group| group.crawl_delay).max();
        Rules::from_parts(rules, crawl_delay)
    }

    /// The `sitemap` URLs, in file order, without duplicates. They apply to every crawler.
    pub fn sitemaps(&self) -> &[String] {
        &self.sitemaps
    }
}

impl Agent {
    fn parse(value: &str) -> Option<Agent> {
        // Google's parser also reads `* ` followed by junk as `*`; so do we.
        if value == "*"
            || value
                .strip_prefix('*')
                .is_some_and(|rest| rest.starts_with(char::is_whitespace))
        {
            return Some(Agent::Any);
        }
        let token = product_token_of(value);
        (!token.is_empty()).then(|| Agent::Product(token.to_ascii_lowercase()))
    }
}

/// The product token at the start of a user-agent value: RFC 9309 allows only letters, `-`
/// and `_` in it, and sites often write `Googlebot/2.1` where they mean `Googlebot`.
fn product_token_of(value: &str) -> &str {
    let value = value.trim();
    let end = value
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '-' || c == '_'))
        .unwrap_or(value.len());
    &value[..end]
}

/// The field and trimmed value of a line, without its comment; `None` for blank lines, lines
/// without `:` and unknown fields.
fn split_line(line: &str) -> Option<(Field, &str)> {
    let content = line.split('#').next().unwrap_or_default();
    let (name, value) = content.split_once(':')?;
    let name = name.trim();
    let field = [
        ("user-agent", Field::UserAgent),
        ("allow", Field::Allow),
        ("disallow", Field::Disallow),
        ("crawl-delay", Field::CrawlDelay),
        ("sitemap", Field::Sitemap),
    ]
    .into_iter()
    .find_map(|(known, field)| name.eq_ignore_ascii_case(known).then_some(field))?;
    Some((field, value.trim()))
}

/// Seconds, possibly fractional (`10`, `0.5`); negative, non-finite and unrepresentable values
/// are ignored.
fn parse_crawl_delay(value: &str) -> Option<Duration> {
    let seconds: f64 = value.parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// The first `max_bytes` of `body`, without a last line cut in the middle: a cut rule could
/// allow more than the site wrote (`allow: /public-only` cut to `allow: /p`).
fn truncate_at_line(body: &[u8], max_bytes: usize) -> &[u8] {
    if body.len() <= max_bytes {
        return body;
    }
    let kept = &body[..max_bytes];
    if matches!(body[max_bytes], b'\n' | b'\r') {
        return kept;
    }
    match kept.iter().rposition(|&b| matches!(b, b'\n' | b'\r')) {
        Some(end) => &kept[..end],
        None => &[],
    }
}

/// What to do with the answer to a robots.txt request (RFC 9309 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotsVerdict {
    /// Parse the body with [`Robots::parse`].
    Parse,
    /// The file is unavailable: crawl as if there were no rules ([`Rules::allow_all`]).
    AllowAll,
    /// The file is unreachable: crawl nothing ([`Rules::disallow_all`]) until a later fetch of
    /// robots.txt succeeds. Also the verdict for network errors, which have no status.
    DisallowAll,
}

/// The [`RobotsVerdict`] for the final HTTP status of a robots.txt fetch, after following
/// redirects (RFC 9309 asks for at least five).
///
/// - 2xx: parse.
/// - 3xx: the redirects did not end (too many, or no `Location`); RFC 9309 section 2.3.1.2
///   lets crawlers treat that as unavailable: allow all.
/// - 4xx: unavailable: allow all — except 429, which is treated as unreachable. RFC 9309
///   lumps it with the other 4xx, but a server saying "too many requests" must not be read as
///   "crawl everything"; Google does the same.
/// - 5xx and anything else: unreachable: disallow all.
pub fn robots_for_status(status: u16) -> RobotsVerdict {
    match status {
        200..=299 => RobotsVerdict::Parse,
        429 => RobotsVerdict::DisallowAll,
        300..=499 => RobotsVerdict::AllowAll,
        _ => RobotsVerdict::DisallowAll,
    }
}
