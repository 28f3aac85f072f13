//! Link extraction: the URLs a fetched page or sitemap points at. Pure, no I/O.
//!
//! [`extract_links`] parses HTML with a real HTML5 parser (html5ever, through `scraper`), so
//! unclosed tags, stray `<`, attributes without quotes and other everyday breakage read the
//! way a browser reads them. It resolves links but does not normalize them: the caller runs
//! [`crate::normalize::normalize`] on each, with its own settings. [`extract_sitemap_locs`]
//! reads the `<loc>` entries of a sitemap or sitemap index.

mod sitemap;

use std::collections::HashMap;

use scraper::{ElementRef, Html};
use url::Url;

pub use sitemap::extract_sitemap_locs;

/// What a page links to, and what it asks crawlers to do with those links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The `<a href>` and `<area href>` links, resolved, in document order, each URL once.
    pub links: Vec<Link>,
    /// The first `<link rel="canonical" href>`, resolved.
    pub canonical: Option<Url>,
    /// `<meta name="robots">` says `nofollow` (or `none`): follow none of the page's links.
    pub nofollow_page: bool,
}

/// One link of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target, resolved against the page's base URL; `http` or `https` only.
    pub url: Url,
    /// Every link to this URL on the page has `rel="nofollow"`.
    pub nofollow: bool,
}

/// The links of the HTML page `html`, fetched from `page_url` (after redirects).
///
/// The base URL is the first `<base href>` (itself resolved against `page_url`) wherever it
/// stands in the document, as in browsers, else `page_url`. Hrefs that do not resolve, and
/// targets that are not `http` or `https` (`mailto:`, `javascript:`, `tel:`, `data:`), are
/// skipped. A URL linked several times is listed once, at its first place; it is `nofollow`
/// only if every link to it is, since one followable link is enough to reach it.
pub fn extract_links(html: &str, page_url: &Url) -> Extracted {
    let document = Html::parse_document(html);

    // The base applies to links before the <base> element too, so read everything first and
    // resolve at the end.
    let mut base_href = None;
    let mut hrefs: Vec<(&str, bool)> = Vec::new();
    let mut canonical_href = None;
    let mut nofollow_page = false;
    for element in document.root_element().descendent_elements() {
        match element.value().name() {
            "base" if base_href.is_none() => base_href = element.attr("href"),
            "a" | "area" => {
                if let Some(href) = element.attr("href") {
                    hrefs.push((href, has_rel(element, "nofollow")));
                }
            }
            "link" if canonical_href.is_none() && has_rel(element, "canonical") => {
                canonical_href = element.attr("href");
            }
            "meta" if is_robots_nofollow(element) => nofollow_page = true,
            _ => {}
        }
    }

    let base = base_href
        .and_then(|href| resolve(page_url, href))
        .unwrap_or_else(|| page_url.clone());
    let mut links: Vec<Link> = Vec::new();
    let mut position: HashMap<Url, usize> = HashMap::new();
    for (href, nofollow) in hrefs {
        let Some(url) = resolve(&base, href) else {
            continue;
        };
        match position.get(&url) {
            Some(&index) => links[index].nofollow &= nofollow,
            None => {
                position.insert(url.clone(), links.len());
                links.push(Link { url, nofollow });
            }
        }
    }
    Extracted {
        links,
        canonical: canonical_href.and_then(|href| resolve(&base, href)),
        nofollow_page,
    }
}

/// `href` resolved against `base`, if it resolves to an `http` or `https` URL.
fn resolve(base: &Url, href: &str) -> Option<Url> {
    base.join(href)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
}

/// Whether the `rel` attribute of `element` has the token `token` (ASCII case-insensitive,
/// tokens separated by whitespace, as HTML defines it).
fn has_rel(element: ElementRef<'_>, token: &str) -> bool {
    element.attr("rel").is_some_and(|rel| {
        rel.split_ascii_whitespace()
            .any(|t| t.eq_ignore_ascii_case(token))
    })
}

/// Whether `element` is a `<meta name="robots">` whose comma-separated directives include
/// `nofollow`, or `none` (which means `noindex, nofollow`).
fn is_robots_nofollow(element: ElementRef<'_>) -> bool {
    let is_robots = element
        .attr("name")
        .is_some_and(|name| name.trim().eq_ignore_ascii_case("robots"));
    is_robots
        && element.attr("content").is_some_and(|content| {
            content.split(',').map(str::trim).any(|directive| {
                directive.eq_ignore_ascii_case("nofollow") || directive.eq_ignore_ascii_case("none")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://example.com/dir/page.html").unwrap()
    }

    fn urls(extracted: &Extracted) -> Vec<&str> {
        extracted.links.iter().map(|l| l.url.as_str()).collect()
    }

    #[test]
    fn resolves_relative_absolute_and_protocol_relative_links() {
        let html = r#"<html><body>
            <a href="other.html">relative</a>
            <a href="/root">root-relative</a>
            <a href="../up?q=1#frag">up</a>
            <a href="http://other.example/x">absolute</a>
            <a href="//cdn.example/y">protocol-relative</a>
            <map><area href="area.html"></map>
        </body></html>"#;
        let extracted = extract_links(html, &page());
        assert_eq!(
            urls(&extracted),
            [
                "https://example.com/dir/other.html",
                "https://example.com/root",
                "https://example.com/up?q=1#frag",
                "http://other.example/x",
                "https://cdn.example/y",
                "https://example.com/dir/area.html",
            ]
        );
        assert!(extracted.links.iter().all(|l| !l.nofollow));
        assert_eq!(extracted.canonical, None);
        assert!(!extracted.nofollow_page);
    }

    #[test]
    fn base_href_applies_to_every_link_even_earlier_ones() {
        let html = r#"<html><head></head><body>
            <a href="before">before</a>
            <base href="/base/">
            <base href="https://ignored.example/">
            <a href="after">after</a>
        </body></html>"#;
        let extracted = extract_links(html, &page());
        assert_eq!(
            urls(&extracted),
            [
                "https://example.com/base/before",
                "https://example.com/base/after"
            ]
        );
    }

    #[test]
    fn base_with_an_unusable_href_is_ignored() {
        let html = r#"<base href="javascript:void(0)"><a href="x">x</a>"#;
        let extracted = extract_links(html, &page());
        assert_eq!(urls(&extracted), ["https://example.com/dir/x"]);
    }

    #[test]
    fn marks_nofollow_links_case_insensitively() {
        let html = r#"
            <a href="/a" rel="nofollow">a</a>
            <a href="/b" rel="noopener  NoFollow">b</a>
            <a href="/c" rel="nofollowing">c</a>
            <a href="/d">d</a>"#;
        let extracted = extract_links(html, &page());
        let flags: Vec<bool> = extracted.links.iter().map(|l| l.nofollow).collect();
        assert_eq!(flags, [true, true, false, false]);
    }

    #[test]
    fn reads_canonical_resolved_against_the_base() {
        let html = r#"<head>
            <base href="https://example.com/b/">
            <link rel="stylesheet" href="style.css">
            <link rel="Canonical" href="canon">
            <link rel="canonical" href="second">
        </head>"#;
        let extracted = extract_links(html, &page());
        assert_eq!(
            extracted.canonical.as_ref().map(Url::as_str),
            Some("https://example.com/b/canon")
        );
        assert!(extracted.links.is_empty());
    }

    #[test]
    fn meta_robots_nofollow_or_none_marks_the_page() {
        for content in ["nofollow", "noindex, NOFOLLOW", "none"] {
            let html = format!(r#"<meta name="ROBOTS" content="{content}"><a href="/x">x</a>"#);
            let extracted = extract_links(&html, &page());
            assert!(extracted.nofollow_page, "content {content:?}");
            assert_eq!(extracted.links.len(), 1);
        }
        for html in [
            r#"<meta name="robots" content="noindex">"#,
            r#"<meta name="description" content="nofollow">"#,
        ] {
            assert!(!extract_links(html, &page()).nofollow_page, "{html}");
        }
    }

    #[test]
    fn skips_links_that_are_not_http() {
        let html = r#"
            <a href="mailto:a@example.com">mail</a>
            <a href="javascript:alert(1)">js</a>
            <a href="tel:+123">tel</a>
            <a href="data:text/html,hi">data</a>
            <a href="ftp://example.com/f">ftp</a>
            <a href="http://[::1">unresolvable</a>
            <a>no href</a>
            <a href="kept">kept</a>"#;
        let extracted = extract_links(html, &page());
        assert_eq!(urls(&extracted), ["https://example.com/dir/kept"]);
    }

    #[test]
    fn malformed_html_still_yields_links() {
        let html = "<html><body><div><p>unclosed <a href=one>one<a href='two'>two\
                    <table><tr><td><a href=\"three\">three</table> <a href=four";
        let extracted = extract_links(html, &page());
        assert_eq!(
            urls(&extracted),
            [
                "https://example.com/dir/one",
                "https://example.com/dir/two",
                "https://example.com/dir/three",
            ]
        );
    }

    #[test]
    fn drops_duplicates_keeping_first_place_and_any_followable_link() {
        let html = r#"
            <a href="/a" rel="nofollow">1</a>
            <a href="/b">2</a>
            <a href="https://example.com/a">3</a>
            <a href="/b" rel="nofollow">4</a>
            <a href="/c" rel="nofollow">5</a>
            <a href="/c" rel="nofollow">6</a>"#;
        let extracted = extract_links(html, &page());
        assert_eq!(
            extracted.links,
            [
                Link {
                    url: Url::parse("https://example.com/a").unwrap(),
                    nofollow: false,
                },
                Link {
                    url: Url::parse("https://example.com/b").unwrap(),
                    nofollow: false,
                },
                Link {
                    url: Url::parse("https://example.com/c").unwrap(),
                    nofollow: true,
                },
            ]
        );
    }

    #[test]
    fn does_not_normalize() {
        let html = r#"<a href="/p?b=2&a=1&utm_source=x#top">p</a>"#;
        let extracted = extract_links(html, &page());
        assert_eq!(
            urls(&extracted),
            ["https://example.com/p?b=2&a=1&utm_source=x#top"]
        );
    }
}
