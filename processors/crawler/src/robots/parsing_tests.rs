//! Table-driven tests of parsing, group choice, crawl-delay, sitemaps and status codes,
//! from RFC 9309 and Google's robots.txt documentation.

use std::time::Duration;

use proptest::collection;
use proptest::prelude::*;

use super::*;

const AGENT: &str = "SixfoldBot";

/// RFC 9309 section 5.1, the example file, for every crawler it names.
#[test]
fn rfc_example_file() {
    let robots = Robots::parse(
        b"User-Agent: *\n\
          Disallow: *.gif$\n\
          Disallow: /example/\n\
          Allow: /publications/\n\
          \n\
          User-Agent: foobot\n\
          Disallow:/\n\
          Allow:/example/page.html\n\
          Allow:/example/allowed.gif\n\
          \n\
          User-Agent: barbot\n\
          User-Agent: bazbot\n\
          Disallow: /example/page.html\n\
          \n\
          User-Agent: quxbot\n\
          \n\
          EOF\n",
        MAX_ROBOTS_BYTES,
    );
    // (agent, path, allowed)
    let table = [
        ("foobot", "/example/page.html", true),
        ("foobot", "/example/allowed.gif", true),
        ("foobot", "/example/other.html", false),
        ("foobot", "/", false),
        ("FooBot", "/", false),
        ("barbot", "/example/page.html", false),
        ("barbot", "/example/other.html", true),
        ("bazbot", "/example/page.html", false),
        ("bazbot", "/picture.gif", true),
        ("quxbot", "/example/page.html", true),
        ("quxbot", "/picture.gif", true),
        ("otherbot", "/picture.gif", false),
        ("otherbot", "/example/", false),
        ("otherbot", "/publications/", true),
        ("otherbot", "/index.html", true),
        // Whole-token matching: a longer or shorter name is another crawler.
        ("foobotx", "/", true),
        ("foo", "/", true),
        ("foobot/2.1", "/", false),
    ];
    for (agent, path, allowed) in table {
        assert_eq!(
            robots.for_agent(agent).is_allowed(path),
            allowed,
            "{agent} on {path}"
        );
    }
}

/// User-agent groups: several agents per group, groups for one agent merged, `*` fallback.
#[test]
fn group_selection() {
    let merged = Robots::parse(
        b"user-agent: ExampleBot\ndisallow: /foo\ndisallow: /bar\n\n\
          user-agent: other\ndisallow: /other\n\n\
          user-agent: examplebot\ndisallow: /baz\n",
        MAX_ROBOTS_BYTES,
    )
    .for_agent("ExampleBot");
    for path in ["/foo", "/bar", "/baz"] {
        assert!(!merged.is_allowed(path), "{path}");
    }
    assert!(merged.is_allowed("/other"));

    // Several `*` groups are merged too; a specific group replaces them entirely.
    let robots = Robots::parse(
        b"user-agent: *\ndisallow: /a\nuser-agent: *\ndisallow: /b\n\
          user-agent: sixfoldbot\ndisallow: /c\n",
        MAX_ROBOTS_BYTES,
    );
    let anyone = robots.for_agent("AnyBot");
    assert!(!anyone.is_allowed("/a") && !anyone.is_allowed("/b") && anyone.is_allowed("/c"));
    let us = robots.for_agent(AGENT);
    assert!(us.is_allowed("/a") && us.is_allowed("/b") && !us.is_allowed("/c"));

    // No group for us and no `*` group: everything allowed.
    let robots = Robots::parse(b"user-agent: googlebot\ndisallow: /\n", MAX_ROBOTS_BYTES);
    assert!(robots.for_agent(AGENT).is_allowed("/"));
    assert!(!robots.for_agent("Googlebot").is_allowed("/"));

    // The version after the token is ignored on both sides; `* ` with junk is still `*`.
    let robots = Robots::parse(
        b"user-agent: Googlebot/2.1 (+http://www.google.com/bot.html)\ndisallow: /g\n\
          user-agent: * everyone\ndisallow: /all\n",
        MAX_ROBOTS_BYTES,
    );
    assert!(!robots.for_agent("googlebot").is_allowed("/g"));
    assert!(!robots.for_agent("SixfoldBot/1.0").is_allowed("/all"));
    // An empty token matches no named group.
    assert!(!robots.for_agent("").is_allowed("/all"));

    // Rules before the first user-agent line belong to no group.
    let robots = Robots::parse(
        b"disallow: /\nuser-agent: *\ndisallow: /x\n",
        MAX_ROBOTS_BYTES,
    );
    let rules = robots.for_agent(AGENT);
    assert!(rules.is_allowed("/") && !rules.is_allowed("/x"));

    // A sitemap or unknown line between user-agent lines does not split the group; a rule
    // or crawl-delay does.
    let robots = Robots::parse(
        b"user-agent: a\nsitemap: http://example.com/s.xml\nhost: example.com\n\
          user-agent: b\ndisallow: /ab\n\
          user-agent: c\ncrawl-delay: 5\nuser-agent: d\ndisallow: /d\n",
        MAX_ROBOTS_BYTES,
    );
    assert!(!robots.for_agent("a").is_allowed("/ab"));
    assert!(!robots.for_agent("b").is_allowed("/ab"));
    assert!(robots.for_agent("c").is_allowed("/d"));
    assert_eq!(robots.for_agent("d").crawl_delay(), None);
}

/// The lexical rules: line endings, comments, case, whitespace, broken lines, encoding.
#[test]
fn parsing_tolerance() {
    // (file, path, allowed for SixfoldBot)
    let table: &[(&[u8], &str, bool)] = &[
        (b"User-agent: *\r\nDisallow: /crlf\r\n", "/crlf", false),
        (b"User-agent: *\rDisallow: /cr\r", "/cr", false),
        (b"User-agent: *\nDisallow: /lf", "/lf", false),
        (
            b"\xEF\xBB\xBFUser-agent: *\nDisallow: /bom\n",
            "/bom",
            false,
        ),
        (b"USER-AGENT: *\nDISALLOW: /shout\n", "/shout", false),
        (b"  User-agent :  *  \n\tDisallow\t:\t/ws  \n", "/ws", false),
        (
            b"User-agent: * # everyone\nDisallow: /c # not /c#x\n",
            "/c",
            false,
        ),
        (
            b"# just a comment\nUser-agent: *\n#Disallow: /\n",
            "/",
            true,
        ),
        (b"User-agent: *\nDisallow /nocolon\n", "/nocolon", true),
        (b"User-agent: *\nDisalow: /typo\n", "/typo", true),
        (
            b"User-agent: *\n\n\nDisallow: /blank-lines\n",
            "/blank-lines",
            false,
        ),
        (
            b"User-agent: *\nDisallow: /caf\xC3\xA9\n",
            "/caf%C3%A9",
            false,
        ),
        (
            b"User-agent: *\nDisallow: /bad\xFF\n",
            "/bad%EF%BF%BD",
            false,
        ),
        (b"", "/", true),
        (b"\x00\x01garbage\xFE", "/", true),
        (b"<html><body>Not found</body></html>", "/", true),
    ];
    for &(file, path, allowed) in table {
        let rules = Robots::parse(file, MAX_ROBOTS_BYTES).for_agent(AGENT);
        assert_eq!(
            rules.is_allowed(path),
            allowed,
            "{:?} on {path}",
            String::from_utf8_lossy(file)
        );
    }
}

#[test]
fn oversized_file_is_cut_at_the_last_whole_line() {
    let mut file = b"user-agent: *\ndisallow: /early\n".to_vec();
    let kept_len = file.len();
    file.extend_from_slice(b"disallow: /late\n");
    // Cut inside `/late`: the partial line must not become `disallow: /la`.
    let robots = Robots::parse(&file, kept_len + 12);
    let rules = robots.for_agent(AGENT);
    assert!(!rules.is_allowed("/early"));
    assert!(rules.is_allowed("/late"));
    assert!(rules.is_allowed("/la"));
    // Cut right before a line break: the whole line is kept.
    let rules = Robots::parse(&file, file.len() - 1).for_agent(AGENT);
    assert!(!rules.is_allowed("/late"));
    // The real limit: rules past 500 KiB are ignored.
    let mut big = b"user-agent: *\n".to_vec();
    while big.len() < MAX_ROBOTS_BYTES {
        big.extend_from_slice(b"# padding padding padding padding padding\n");
    }
    big.extend_from_slice(b"disallow: /beyond\n");
    let rules = Robots::parse(&big, MAX_ROBOTS_BYTES).for_agent(AGENT);
    assert!(rules.is_allowed("/beyond"));
    // A limit inside the first line leaves nothing.
    assert_eq!(Robots::parse(&file, 5), Robots::default());
}

#[test]
fn crawl_delay() {
    // (file, delay for SixfoldBot)
    let table: &[(&str, Option<Duration>)] = &[
        (
            "user-agent: *\ncrawl-delay: 10\n",
            Some(Duration::from_secs(10)),
        ),
        (
            "user-agent: *\nCrawl-Delay: 0.5\n",
            Some(Duration::from_millis(500)),
        ),
        (
            "user-agent: *\ncrawl-delay: 2 # polite\n",
            Some(Duration::from_secs(2)),
        ),
        ("user-agent: *\ncrawl-delay: 0\n", Some(Duration::ZERO)),
        ("user-agent: *\ncrawl-delay: -1\n", None),
        ("user-agent: *\ncrawl-delay: soon\n", None),
        ("user-agent: *\ncrawl-delay: NaN\n", None),
        ("user-agent: *\ncrawl-delay: inf\n", None),
        ("user-agent: *\ncrawl-delay: 1e300\n", None),
        ("user-agent: *\ncrawl-delay:\n", None),
        ("crawl-delay: 5\nuser-agent: *\n", None),
        ("user-agent: other\ncrawl-delay: 5\n", None),
        (
            "user-agent: *\ncrawl-delay: 7\nuser-agent: sixfoldbot\ncrawl-delay: 3\n",
            Some(Duration::from_secs(3)),
        ),
        (
            "user-agent: sixfoldbot\ncrawl-delay: 3\nuser-agent: sixfoldbot\ncrawl-delay: 4\n",
            Some(Duration::from_secs(4)),
        ),
        (
            "user-agent: *\ncrawl-delay: 3\ncrawl-delay: 1\n",
            Some(Duration::from_secs(3)),
        ),
    ];
    for &(file, delay) in table {
        let robots = Robots::parse(file.as_bytes(), MAX_ROBOTS_BYTES);
        assert_eq!(robots.for_agent(AGENT).crawl_delay(), delay, "{file:?}");
    }
}

#[test]
fn sitemaps_are_global_and_anywhere() {
    let robots = Robots::parse(
        b"Sitemap: https://example.com/first.xml\n\
          user-agent: other\n\
          SITEMAP:https://example.com/second.xml\n\
          disallow: /\n\
          sitemap: https://example.com/first.xml\n\
          sitemap:\n\
          user-agent: *\n\
          Sitemap : https://example.com/third.xml # comment\n",
        MAX_ROBOTS_BYTES,
    );
    assert_eq!(
        robots.sitemaps(),
        [
            "https://example.com/first.xml",
            "https://example.com/second.xml",
            "https://example.com/third.xml",
        ]
    );
    // The sitemap line inside `other`'s group did not end it: `other` still has its rule.
    assert!(!robots.for_agent("other").is_allowed("/x"));
    assert!(robots.for_agent(AGENT).is_allowed("/x"));
}

#[test]
fn status_verdicts() {
    let table = [
        (200, RobotsVerdict::Parse),
        (204, RobotsVerdict::Parse),
        (299, RobotsVerdict::Parse),
        (301, RobotsVerdict::AllowAll),
        (308, RobotsVerdict::AllowAll),
        (400, RobotsVerdict::AllowAll),
        (401, RobotsVerdict::AllowAll),
        (403, RobotsVerdict::AllowAll),
        (404, RobotsVerdict::AllowAll),
        (410, RobotsVerdict::AllowAll),
        (429, RobotsVerdict::DisallowAll),
        (499, RobotsVerdict::AllowAll),
        (500, RobotsVerdict::DisallowAll),
        (503, RobotsVerdict::DisallowAll),
        (599, RobotsVerdict::DisallowAll),
        (100, RobotsVerdict::DisallowAll),
        (0, RobotsVerdict::DisallowAll),
        (600, RobotsVerdict::DisallowAll),
    ];
    for (status, verdict) in table {
        assert_eq!(robots_for_status(status), verdict, "{status}");
    }
}

/// A line with a known (or unknown) field in any case, odd spacing and a value that may hold
/// wildcards, escapes, non-ASCII and comments.
const ROBOTS_LINE: &str =
    "(?i)(user-agent|allow|disallow|crawl-delay|sitemap|other) ?: ?[a-z*/$%.0-9 é#-]{0,12}";

proptest! {
    #[test]
    fn any_bytes_parse(body in collection::vec(any::<u8>(), 0..400), path in any::<String>()) {
        let robots = Robots::parse(&body, MAX_ROBOTS_BYTES);
        let _ = robots.for_agent(AGENT).is_allowed(&path);
    }

    #[test]
    fn robots_like_files_parse(
        lines in collection::vec(ROBOTS_LINE, 0..30),
        line_end in "\n|\r\n|\r",
        path in "/[a-z*/$%.0-9 é-]{0,12}",
        limit in 0usize..400,
    ) {
        let body = lines.join(&line_end);
        let robots = Robots::parse(body.as_bytes(), limit);
        let rules = robots.for_agent(AGENT);
        let _ = rules.is_allowed(&path);
        // The robots.txt of the site is never off limits, whatever the file says.
        prop_assert!(rules.is_allowed("/robots.txt"));
    }
}
