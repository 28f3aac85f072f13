//! URL normalization: one spelling per page, so the frontier and the seen-set dedupe by string.
//!
//! [`normalize`] turns a link as found in a page (absolute or relative) into the canonical URL
//! the crawler fetches and remembers. Two links that name the same resource should normalize to
//! the same string; normalization must never merge links that could name different resources
//! except where the settings say so (tracking parameters). [`host_key`] is the key politeness and
//! partitioning use, and [`Scope`] decides whether a normalized URL is crawled at all.

mod scope;

use url::Url;

pub use scope::{OutOfScope, Scope};

use crate::percent::canonical_escapes;

/// Longest normalized URL accepted, in bytes. Longer ones are almost always session ids,
/// crawler traps or data smuggled into query strings, and 2048 is what sitemaps allow.
pub const MAX_URL_LEN: usize = 2048;

/// What [`normalize`] may change beyond the equivalences RFC 3986 allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeSettings {
    /// Query parameters removed from every URL, matched case-sensitively on the (canonically
    /// escaped) name. An entry ending in `*` is a prefix: `utm_*` removes `utm_id` too.
    pub strip_params: Vec<String>,
}

impl Default for NormalizeSettings {
    /// Strips the common campaign and click-tracking parameters, which name the same page.
    fn default() -> Self {
        let strip_params = [
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_term",
            "utm_content",
            "gclid",
            "fbclid",
        ];
        Self {
            strip_params: strip_params.into_iter().map(String::from).collect(),
        }
    }
}

impl NormalizeSettings {
    /// Whether a query parameter named `name` is removed.
    pub fn strips(&self, name: &str) -> bool {
        self.strip_params
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == entry,
            })
    }
}

/// Why a link cannot become a crawlable URL. Every variant is permanent: the same input always
/// fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// Not a URL, or a relative reference without a base to resolve it against.
    #[error("not a URL: {0}")]
    Parse(#[from] url::ParseError),
    /// A scheme the crawler does not fetch (`mailto:`, `javascript:`, `ftp:`, ...).
    #[error("scheme {0:?} is not crawled (only http and https)")]
    UnsupportedScheme(String),
    /// The normalized URL is longer than [`MAX_URL_LEN`].
    #[error("URL is {len} bytes long, more than {max}")]
    TooLong {
        /// Length of the normalized URL in bytes.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
}

/// The canonical form of the link `raw`, resolved against `base` (the page it was found on).
///
/// Beyond what the `url` crate does on parsing (lower-case scheme and host, IDN hosts in
/// punycode, IP addresses in canonical form, default port dropped, `.` and `..` segments
/// resolved, `..` above the root ignored, characters that need it escaped), this:
/// - accepts only `http` and `https`;
/// - drops the fragment, which the server never sees;
/// - puts escapes in canonical form (the equivalences of RFC 3986 section 6.2.2): `%7E` → `~`,
///   `%2f` → `%2F`, raw characters that URIs may not contain escaped;
/// - removes the parameters [`NormalizeSettings::strip_params`] names, empty parameters
///   (`a=1&&b=2`) and an empty query (`?`);
/// - sorts query parameters by name, then value, so parameter order does not create
///   duplicates. Servers that give order a meaning (repeated names read as a list) may see a
///   different order than the page linked; for deduplication that trade is worth it.
///
/// Fails if the result is longer than [`MAX_URL_LEN`].
pub fn normalize(
    raw: &str,
    base: Option<&Url>,
    settings: &NormalizeSettings,
) -> Result<Url, NormalizeError> {
    let mut url = Url::options().base_url(base).parse(raw)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NormalizeError::UnsupportedScheme(url.scheme().to_owned()));
    }
    url.set_fragment(None);

    let path = canonical_escapes(url.path()).into_owned();
    if path != url.path() {
        url.set_path(&path);
    }
    let query = url.query().map(|query| normalize_query(query, settings));
    url.set_query(query.as_deref().filter(|query| !query.is_empty()));

    let len = url.as_str().len();
    if len > MAX_URL_LEN {
        return Err(NormalizeError::TooLong {
            len,
            max: MAX_URL_LEN,
        });
    }
    Ok(url)
}

/// The query with canonical escapes, without stripped or empty parameters, sorted.
fn normalize_query(query: &str, settings: &NormalizeSettings) -> String {
    let mut params: Vec<String> = query
        .split('&')
        .filter(|param| !param.is_empty())
        .map(|param| canonical_escapes(param).into_owned())
        .filter(|param| !settings.strips(name_and_value(param).0))
        .collect();
    // `a` (no value) sorts before `a=` (empty value): they are different parameters.
    params.sort_by(|a, b| name_and_value(a).cmp(&name_and_value(b)));
    params.join("&")
}

fn name_and_value(param: &str) -> (&str, Option<&str>) {
    match param.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (param, None),
    }
}

/// The politeness and partitioning key of a URL: its host, plus the port when it is not the
/// scheme's default (`example.com`, `127.0.0.1:8001`, `[::1]:8080`).
///
/// `http` and `https` on default ports share a key because they usually reach the same server;
/// distinct ports are often distinct servers (and are in tests on loopback).
pub fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests;
