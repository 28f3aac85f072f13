//! Table-driven tests of rule matching, from RFC 9309 and Google's robots.txt documentation.

use super::*;

const AGENT: &str = "SixfoldBot";

/// `rules`, a rule list for every agent, checked against paths.
fn rules_for_all(rules: &str) -> Rules {
    Robots::parse(
        format!("user-agent: *\n{rules}").as_bytes(),
        MAX_ROBOTS_BYTES,
    )
    .for_agent(AGENT)
}

/// Google's "URL matching based on path values" table: one rule, paths that match it and
/// paths that do not.
#[test]
fn google_path_matching_examples() {
    // (rule, matching paths, paths that do not match)
    let table: &[(&str, &[&str], &[&str])] = &[
        ("/", &["/", "/fish", "/a/b?c"], &[]),
        ("/*", &["/", "/fish", "/a/b?c"], &[]),
        ("/$", &["/"], &["/fish", "/?q=1"]),
        (
            "/fish",
            &[
                "/fish",
                "/fish.html",
                "/fish/salmon.html",
                "/fishheads",
                "/fishheads/yummy.html",
                "/fish.php?id=anything",
            ],
            &["/Fish.asp", "/catfish", "/?id=fish", "/desert/fish"],
        ),
        (
            "/fish*",
            &["/fish", "/fish.html", "/fish/salmon.html", "/fishheads"],
            &["/Fish.asp", "/catfish", "/?id=fish", "/desert/fish"],
        ),
        (
            "/fish/",
            &["/fish/", "/fish/?id=anything", "/fish/salmon.htm"],
            &["/fish", "/fish.html", "/animals/fish/", "/Fish/Salmon.asp"],
        ),
        (
            "/*.php",
            &[
                "/index.php",
                "/filename.php",
                "/folder/filename.php",
                "/folder/filename.php?parameters",
                "/folder/any.php.file.html",
                "/filename.php/",
            ],
            &["/", "/windows.PHP"],
        ),
        (
            "/*.php$",
            &["/filename.php", "/folder/filename.php"],
            &[
                "/filename.php?parameters",
                "/filename.php/",
                "/filename.php5",
                "/windows.PHP",
            ],
        ),
        (
            "/fish*.php",
            &["/fish.php", "/fishheads/catfish.php?parameters"],
            &["/Fish.PHP"],
        ),
        // RFC 9309 section 5.1: a pattern may start with `*`.
        (
            "*.gif$",
            &["/a.gif", "/x/y/z.gif"],
            &["/a.gif?x", "/a.gifs"],
        ),
        // `$` anchors only at the end; elsewhere it is a literal character.
        ("/a$b", &["/a$b", "/a$bc"], &["/a", "/ab"]),
    ];
    for &(rule, matching, other) in table {
        let rules = rules_for_all(&format!("disallow: {rule}"));
        for path in matching {
            assert!(!rules.is_allowed(path), "{rule:?} should match {path:?}");
        }
        for path in other {
            assert!(rules.is_allowed(path), "{rule:?} should not match {path:?}");
        }
    }
}

/// Google's "order of precedence for rules" table and RFC 9309 section 5.2: the longest match
/// wins, allow wins a tie.
#[test]
fn precedence_examples() {
    // (rules, path, allowed)
    let table = [
        ("allow: /p\ndisallow: /", "/page", true),
        ("allow: /folder\ndisallow: /folder", "/folder/page", true),
        ("disallow: /folder\nallow: /folder", "/folder/page", true),
        ("allow: /page\ndisallow: /*.htm", "/page.htm", false),
        ("allow: /page\ndisallow: /*.ph", "/page.php5", true),
        ("allow: /$\ndisallow: /", "/", true),
        ("allow: /$\ndisallow: /", "/page.htm", false),
        (
            "allow: /example/page/\ndisallow: /example/page/disallowed.gif",
            "/example/page/",
            true,
        ),
        (
            "allow: /example/page/\ndisallow: /example/page/disallowed.gif",
            "/example/page/disallowed.gif",
            false,
        ),
        // Length is measured on the pattern, not on how much of the path it covers.
        ("allow: /a*\ndisallow: /abc", "/abcdef", false),
        ("allow: /a**z\ndisallow: /abc", "/abcz", true),
        // No rule matches: allowed.
        ("disallow: /private", "/public", true),
        // Empty disallow disallows nothing.
        ("disallow:", "/anything", true),
        ("disallow:\nallow:", "/anything", true),
        // robots.txt itself is always allowed.
        ("disallow: /", "/robots.txt", true),
        ("disallow: /robots.txt", "/robots.txt", true),
        ("disallow: /", "/robots.txt?x=1", true),
        ("disallow: /", "/robots.txt.bak", false),
        // Paths are case-sensitive.
        ("disallow: /Private", "/private", true),
        ("disallow: /Private", "/Private/x", false),
        // The query is part of what is matched.
        ("disallow: /*?", "/search?q=1", false),
        ("disallow: /*?", "/search", true),
        ("disallow: /*?sessionid=", "/a?sessionid=1", false),
    ];
    for (rules, path, allowed) in table {
        assert_eq!(
            rules_for_all(rules).is_allowed(path),
            allowed,
            "{rules:?} on {path:?}"
        );
    }
}

/// RFC 9309 section 2.2.2: escapes of unreserved characters are decoded, other escapes compare
/// upper-cased, and non-ASCII is compared as escaped UTF-8, on both sides.
#[test]
fn percent_encoding_examples() {
    // (rule, path, matches)
    let table = [
        ("/foo/bar?baz=quz", "/foo/bar?baz=quz", true),
        (
            "/foo/bar?baz=https%3A%2F%2Ffoo.bar",
            "/foo/bar?baz=https%3a%2f%2ffoo.bar",
            true,
        ),
        ("/foo/bar/€", "/foo/bar/%E2%82%AC", true),
        ("/foo/bar/%E2%82%AC", "/foo/bar/€", true),
        ("/foo/bar/%e2%82%ac", "/foo/bar/%E2%82%AC", true),
        ("/foo/bar/%62%61%7A", "/foo/bar/baz", true),
        ("/foo/bar/baz", "/foo/bar/%62%61%7a", true),
        ("/~joe", "/%7Ejoe", true),
        ("/a%2Fb", "/a/b", false),
        ("/a/b", "/a%2Fb", false),
        ("/a%2Ac", "/abbc", false),
        ("/a%2A", "/a%2a", true),
        ("/a b", "/a%20b", true),
    ];
    for (rule, path, matches) in table {
        let rules = rules_for_all(&format!("disallow: {rule}"));
        assert_eq!(!rules.is_allowed(path), matches, "{rule:?} on {path:?}");
    }
}
