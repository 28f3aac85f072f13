//! The canonical percent-encoded form that URL normalization and robots.txt matching share.
//!
//! RFC 3986 section 6.2.2 makes two spellings of a URI equivalent when they differ only in the
//! case of escape hex digits or in escaping an unreserved character (`%7E` and `~`). RFC 9309
//! section 2.2.2 asks robots.txt matchers to compare paths the same way, with octets outside
//! ASCII percent-encoded as UTF-8. Both [`crate::normalize`] and [`crate::robots`] put text
//! through [`canonical_escapes`], so a normalized URL and a robots.txt rule written either way
//! compare equal.

use std::borrow::Cow;

/// `text` with every escape in one canonical spelling.
///
/// - An escape of an unreserved character (`A-Z a-z 0-9 - . _ ~`) is decoded: `%7E` → `~`.
/// - Any other escape keeps its meaning and gets upper-case hex digits: `%2f` → `%2F`. A
///   reserved character stays escaped because decoding it would change the URI (`%2F` is not
///   a path separator, `%26` is not a query separator).
/// - Octets that may never appear raw in a URI (non-ASCII, controls, space, `" < > \ ^ ` { | }`)
///   are escaped, so raw UTF-8 in a robots.txt rule matches the escaped form a URL carries.
/// - A `%` not followed by two hex digits is data, not an escape, so it becomes `%25`. Leaving
///   it raw would break idempotence: in `%%34%31` the decoded `41` would form a new escape.
///
/// The result is ASCII and the function is idempotent.
pub(crate) fn canonical_escapes(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || must_escape(b)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let high = bytes.get(i + 1).copied().and_then(hex_value);
            let low = bytes.get(i + 2).copied().and_then(hex_value);
            if let (Some(high), Some(low)) = (high, low) {
                let decoded = (high << 4) | low;
                if is_unreserved(decoded) {
                    out.push(char::from(decoded));
                } else {
                    push_escape(&mut out, decoded);
                }
                i += 3;
                continue;
            }
            out.push_str("%25");
        } else if must_escape(byte) {
            push_escape(&mut out, byte);
        } else {
            // Every byte that reaches here is ASCII, so it is a whole character.
            out.push(char::from(byte));
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// RFC 3986 section 2.3: characters that mean the same escaped or not.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Octets that are neither reserved, unreserved nor `%`: RFC 3986 allows them only escaped.
fn must_escape(byte: u8) -> bool {
    !byte.is_ascii()
        || byte.is_ascii_control()
        || matches!(
            byte,
            b' ' | b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0F)]));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Escapes (often of hex digits, which can pair with a stray `%`), stray `%`, reserved,
    /// unreserved, non-ASCII and control characters.
    const ESCAPE_SOUP: &str =
        "(%[0-9a-fA-F]{2}|%3[0-9]|%[46][1-6]|%|[a-fA-F0-9/?&=*$~ é€|\\x00-\\x1f])*";

    proptest! {
        #[test]
        fn canonical_form_is_ascii_and_stable(text in ESCAPE_SOUP) {
            let once = canonical_escapes(&text).into_owned();
            prop_assert!(once.is_ascii());
            prop_assert_eq!(canonical_escapes(&once), once.as_str());
        }

        #[test]
        fn any_text_is_handled(text in any::<String>()) {
            let once = canonical_escapes(&text).into_owned();
            prop_assert_eq!(canonical_escapes(&once), once.as_str());
        }
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("/plain/path?a=b", "/plain/path?a=b"),
            ("/%7Euser", "/~user"),
            ("/%7euser", "/~user"),
            ("/%41%62%63%2D%2E%5F", "/Abc-._"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2Fb", "/a%2Fb"),
            ("/%e2%82%ac", "/%E2%82%AC"),
            ("/€", "/%E2%82%AC"),
            ("/a b", "/a%20b"),
            ("/a|b^c{d}", "/a%7Cb%5Ec%7Bd%7D"),
            ("/100%", "/100%25"),
            ("/%zz%4", "/%25zz%254"),
            ("/%%34%31", "/%2541"),
            ("/*.php$", "/*.php$"),
            ("/%2A", "/%2A"),
            ("/%25", "/%25"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical_escapes(input), expected, "input {input:?}");
            assert_eq!(
                canonical_escapes(expected),
                expected,
                "not idempotent for {input:?}"
            );
        }
    }

    #[test]
    fn untouched_text_is_borrowed() {
        assert!(matches!(canonical_escapes("/a/b?c=d"), Cow::Borrowed(_)));
    }
}
