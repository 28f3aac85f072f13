//! Table-driven tests of URL normalization and host keys.

use proptest::prelude::*;

use super::*;

fn norm(raw: &str) -> Result<String, NormalizeError> {
    normalize(raw, None, &NormalizeSettings::default()).map(String::from)
}

fn parse(raw: &str) -> Url {
    Url::parse(raw).unwrap()
}

/// Checks `got` and that normalizing it again changes nothing: stored URLs can be
/// re-normalized safely (after a settings change, say).
fn assert_normalizes_to(got: Result<String, NormalizeError>, expected: &str, what: &str) {
    let got = got.unwrap_or_else(|error| panic!("{what} failed: {error}"));
    assert_eq!(got, expected, "{what}");
    assert_eq!(norm(&got).unwrap(), expected, "not idempotent: {what}");
}

#[test]
fn absolute_links() {
    // (link, normalized)
    let cases = [
        // Scheme and host case, default ports, empty path, surrounding whitespace.
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:80/", "https://example.com:80/"),
        ("http://example.com:8080/", "http://example.com:8080/"),
        ("http://example.com", "http://example.com/"),
        ("  http://example.com/a\t ", "http://example.com/a"),
        ("http://user:pw@example.com/", "http://user:pw@example.com/"),
        // Hosts: IPv4 forms, IPv6, IDN (punycode).
        ("http://127.0.0.1:8001/x", "http://127.0.0.1:8001/x"),
        ("http://0x7f.0.0.1/", "http://127.0.0.1/"),
        ("http://[2001:DB8:0:0::1]/", "http://[2001:db8::1]/"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("http://Bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://例え.テスト/", "http://xn--r8jz45g.xn--zckzah/"),
        // Fragment.
        ("http://example.com/a#frag", "http://example.com/a"),
        ("http://example.com/a?q=1#", "http://example.com/a?q=1"),
        // Dot segments, also above the root and escaped; empty segments stay.
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/../../a", "http://example.com/a"),
        ("http://example.com/a/%2e%2E/b", "http://example.com/b"),
        ("http://example.com//a", "http://example.com//a"),
        // Escapes: unreserved decoded, others upper-cased, raw characters escaped.
        ("http://example.com/%7Euser", "http://example.com/~user"),
        ("http://example.com/%7euser", "http://example.com/~user"),
        ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
        ("http://example.com/%41%62%63", "http://example.com/Abc"),
        (
            "http://example.com/%e2%82%ac",
            "http://example.com/%E2%82%AC",
        ),
        ("http://example.com/€", "http://example.com/%E2%82%AC"),
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("http://example.com/a|b", "http://example.com/a%7Cb"),
        ("http://example.com/100%", "http://example.com/100%25"),
        ("http://example.com/?q=%7e%2f", "http://example.com/?q=~%2F"),
        // Query: empty, order, empty parameters, escaped separators.
        ("http://example.com/a?", "http://example.com/a"),
        (
            "http://example.com/a?b=2&a=1",
            "http://example.com/a?a=1&b=2",
        ),
        ("http://example.com/?a=2&a=1", "http://example.com/?a=1&a=2"),
        (
            "http://example.com/?b=1&a=&a",
            "http://example.com/?a&a=&b=1",
        ),
        ("http://example.com/?a&&b=", "http://example.com/?a&b="),
        (
            "http://example.com/?q=a%26b&p=1",
            "http://example.com/?p=1&q=a%26b",
        ),
        // Tracking parameters, also escaped; others (and other case) kept.
        (
            "http://example.com/?utm_source=x&id=1",
            "http://example.com/?id=1",
        ),
        (
            "http://example.com/?utm%5Fsource=x&id=1",
            "http://example.com/?id=1",
        ),
        (
            "http://example.com/?utm_source=x&gclid=y",
            "http://example.com/",
        ),
        (
            "http://example.com/?fbclid=1&q=rust#top",
            "http://example.com/?q=rust",
        ),
        (
            "http://example.com/?utm_id=5",
            "http://example.com/?utm_id=5",
        ),
        (
            "http://example.com/?UTM_SOURCE=5",
            "http://example.com/?UTM_SOURCE=5",
        ),
    ];
    for (raw, expected) in cases {
        assert_normalizes_to(norm(raw), expected, raw);
    }
}

#[test]
fn relative_links() {
    // (page the link is on, link, normalized)
    let cases = [
        (
            "http://example.com/a/b/",
            "../c?x=1",
            "http://example.com/a/c?x=1",
        ),
        ("https://example.com/a/b", "/x", "https://example.com/x"),
        ("https://example.com/a/b", "c", "https://example.com/a/c"),
        (
            "https://example.com/a",
            "//other.example/p",
            "https://other.example/p",
        ),
        (
            "http://example.com/a/b",
            "?q=1",
            "http://example.com/a/b?q=1",
        ),
        (
            "http://example.com/a?q=1",
            "#frag",
            "http://example.com/a?q=1",
        ),
        (
            "http://example.com/a/b",
            "../../../../c",
            "http://example.com/c",
        ),
        (
            "http://example.com/a",
            "HTTPS://Other.Example",
            "https://other.example/",
        ),
        (
            "http://example.com/a/b",
            "%7Ex/./y",
            "http://example.com/a/~x/y",
        ),
        ("http://example.com/a", "", "http://example.com/a"),
    ];
    for (base, raw, expected) in cases {
        let got = normalize(raw, Some(&parse(base)), &NormalizeSettings::default());
        assert_normalizes_to(got.map(String::from), expected, &format!("{raw} on {base}"));
    }
}

#[test]
fn rejected_links() {
    assert!(matches!(
        norm("mailto:someone@example.com"),
        Err(NormalizeError::UnsupportedScheme(scheme)) if scheme == "mailto"
    ));
    for raw in ["javascript:void(0)", "ftp://example.com/file", "data:,x"] {
        assert!(
            matches!(norm(raw), Err(NormalizeError::UnsupportedScheme(_))),
            "{raw}"
        );
    }
    assert_eq!(
        norm("/relative/without/base"),
        Err(NormalizeError::Parse(
            url::ParseError::RelativeUrlWithoutBase
        ))
    );
    assert_eq!(
        norm("http://"),
        Err(NormalizeError::Parse(url::ParseError::EmptyHost))
    );
    assert!(matches!(
        norm("http://exa mple.com/"),
        Err(NormalizeError::Parse(_))
    ));
    let base = parse("http://example.com/");
    assert!(matches!(
        normalize("mailto:x@y", Some(&base), &NormalizeSettings::default()),
        Err(NormalizeError::UnsupportedScheme(_))
    ));
}

#[test]
fn length_limit_applies_to_the_normalized_url() {
    let prefix = "http://example.com/";
    let exact = format!("{prefix}{}", "a".repeat(MAX_URL_LEN - prefix.len()));
    assert_eq!(norm(&exact).unwrap().len(), MAX_URL_LEN);

    let over = format!("{exact}a");
    assert_eq!(
        norm(&over),
        Err(NormalizeError::TooLong {
            len: MAX_URL_LEN + 1,
            max: MAX_URL_LEN
        })
    );
    // A long fragment or tracking parameter does not count: it is removed first.
    assert!(norm(&format!("{exact}#{}", "f".repeat(5000))).is_ok());
    assert!(norm(&format!("{exact}?utm_term={}", "t".repeat(5000))).is_ok());
    // Escapes grow the URL: three bytes per non-ASCII byte.
    let grows = format!("{prefix}{}", "é".repeat(MAX_URL_LEN / 4));
    assert!(matches!(norm(&grows), Err(NormalizeError::TooLong { .. })));
}

#[test]
fn strip_params_prefixes_and_custom_lists() {
    let settings = NormalizeSettings {
        strip_params: vec!["utm_*".into(), "sessionid".into()],
    };
    let got = normalize(
        "http://example.com/?utm_id=1&utm_source=2&sessionid=3&sessionid2=4&gclid=5",
        None,
        &settings,
    )
    .unwrap();
    assert_eq!(got.as_str(), "http://example.com/?gclid=5&sessionid2=4");

    let keep_all = NormalizeSettings {
        strip_params: Vec::new(),
    };
    let got = normalize("http://example.com/?utm_source=1", None, &keep_all).unwrap();
    assert_eq!(got.as_str(), "http://example.com/?utm_source=1");

    assert!(settings.strips("utm_"));
    assert!(!settings.strips("xutm_a"));
    assert!(NormalizeSettings::default().strips("fbclid"));
    assert!(!NormalizeSettings::default().strips("fbclid2"));
}

#[test]
fn host_keys() {
    // (URL, host key)
    let cases = [
        ("http://example.com/a", "example.com"),
        ("https://example.com:443/a", "example.com"),
        ("https://example.com:8443/a", "example.com:8443"),
        ("http://127.0.0.1:8001/", "127.0.0.1:8001"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("http://[::1]/", "[::1]"),
        ("http://Bücher.example/", "xn--bcher-kva.example"),
    ];
    for (raw, key) in cases {
        assert_eq!(host_key(&parse(raw)), key, "{raw}");
    }
    // Both schemes on default ports share one politeness queue.
    assert_eq!(
        host_key(&parse("http://example.com/")),
        host_key(&parse("https://example.com/"))
    );
}

proptest! {
    #[test]
    fn normalization_is_idempotent(
        scheme in "(?i)https?",
        host in "[a-zA-Z0-9.-]{1,12}|\\[::[0-9a-f]{1,4}\\]|bücher\\.example",
        port in proptest::option::of(any::<u16>()),
        rest in "(%[0-9a-fA-F]{2}|%3[0-9]|%[46][1-6]|%|[a-fA-F0-9/.?&=#~ é€|_+-])*",
    ) {
        let port = port.map(|port| format!(":{port}")).unwrap_or_default();
        let raw = format!("{scheme}://{host}{port}/{rest}");
        if let Ok(once) = norm(&raw) {
            prop_assert_eq!(norm(&once), Ok(once.clone()), "from {}", raw);
        }
    }

    #[test]
    fn any_link_is_handled(raw in any::<String>()) {
        let base = parse("http://example.com/a/b?c=d");
        if let Ok(once) = normalize(&raw, Some(&base), &NormalizeSettings::default()) {
            prop_assert_eq!(norm(once.as_str()), Ok(once.to_string()));
        }
    }
}
