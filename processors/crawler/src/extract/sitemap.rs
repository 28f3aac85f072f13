//! The `<loc>` entries of a sitemap (`<urlset>`) or sitemap index (`<sitemapindex>`).
//!
//! A hand-written scanner rather than an XML parser: sitemaps are flat, often slightly broken
//! (undeclared entities, stray text, missing closing tags at the end of a truncated file), and
//! the crawler wants every readable entry rather than an error for the whole file.

/// The text of each `<loc>` element of `xml`, in order, at most `limit` of them.
///
/// Text is trimmed and unescaped (the five predefined XML entities and numeric character
/// references; CDATA sections are taken as they are); empty entries are skipped. Comments,
/// processing instructions and declarations are skipped. Only unprefixed `<loc>` is read:
/// prefixed ones such as `<image:loc>` or `<video:player_loc>` belong to extensions and name
/// images and media, not pages.
pub fn extract_sitemap_locs(xml: &str, limit: usize) -> Vec<String> {
    let mut locs = Vec::new();
    let mut rest = xml;
    while locs.len() < limit {
        let Some(start) = rest.find('<') else {
            break;
        };
        rest = &rest[start..];
        if let Some(markup) = skip_markup(rest) {
            rest = markup;
            continue;
        }
        let Some(end) = rest.find('>') else {
            break;
        };
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if is_loc_start(tag) {
            let (text, after) = element_text(rest);
            rest = after;
            if !text.is_empty() {
                locs.push(text);
            }
        }
    }
    locs
}

/// If `text` starts with a comment, CDATA section, processing instruction or declaration,
/// the text after it (empty if it never ends).
fn skip_markup(text: &str) -> Option<&str> {
    let (opening, closing) = [
        ("<!--", "-->"),
        ("<![CDATA[", "]]>"),
        ("<?", "?>"),
        ("<!", ">"),
    ]
    .into_iter()
    .find(|(opening, _)| text.starts_with(opening))?;
    let body = &text[opening.len()..];
    Some(
        body.find(closing)
            .map_or("", |end| &body[end + closing.len()..]),
    )
}

/// Whether the tag text between `<` and `>` opens an unprefixed `loc` element.
fn is_loc_start(tag: &str) -> bool {
    let name = tag.split(|c: char| c.is_ascii_whitespace()).next();
    name == Some("loc") && !tag.ends_with('/')
}

/// The trimmed, unescaped text of an element whose start tag ended just before `text`, and
/// the rest of `text` after the tag that ends it. Any tag ends it: `<loc>` holds text only.
fn element_text(mut text: &str) -> (String, &str) {
    let mut value = String::new();
    loop {
        let Some(start) = text.find('<') else {
            value.push_str(&unescape(text));
            text = "";
            break;
        };
        value.push_str(&unescape(&text[..start]));
        text = &text[start..];
        if let Some(cdata) = text.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            value.push_str(&cdata[..end]);
            text = cdata.get(end + 3..).unwrap_or("");
        } else if let Some(after) = skip_markup(text) {
            text = after;
        } else {
            text = text.find('>').map_or("", |end| &text[end + 1..]);
            break;
        }
    }
    (value.trim().to_owned(), text)
}

/// `text` with the predefined XML entities and numeric character references replaced.
/// Anything else that starts with `&` is kept as it is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| Some((entity(&rest[1..semi])?, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character the entity `name` (between `&` and `;`) stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_urlset_with_entities_and_whitespace() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url>
                <loc>
                  https://example.com/a?x=1&amp;y=2
                </loc>
                <lastmod>2024-01-01</lastmod>
              </url>
              <url><loc>https://example.com/&lt;b&gt;&quot;&apos;&#38;&#x41;</loc></url>
              <url><loc>https://example.com/&unknown;&amp</loc></url>
            </urlset>"#;
        assert_eq!(
            extract_sitemap_locs(xml, 10),
            [
                "https://example.com/a?x=1&y=2",
                "https://example.com/<b>\"'&A",
                "https://example.com/&unknown;&amp",
            ]
        );
    }

    #[test]
    fn reads_a_sitemap_index() {
        let xml = "<sitemapindex>\
                   <sitemap><loc>https://example.com/s1.xml</loc></sitemap>\
                   <sitemap><loc>https://example.com/s2.xml.gz</loc></sitemap>\
                   </sitemapindex>";
        assert_eq!(
            extract_sitemap_locs(xml, 10),
            [
                "https://example.com/s1.xml",
                "https://example.com/s2.xml.gz"
            ]
        );
    }

    #[test]
    fn stops_at_the_limit() {
        let xml: String = (0..5)
            .map(|i| format!("<url><loc>https://example.com/{i}</loc></url>"))
            .collect();
        assert_eq!(extract_sitemap_locs(&xml, 2).len(), 2);
        assert!(extract_sitemap_locs(&xml, 0).is_empty());
    }

    #[test]
    fn skips_comments_extensions_and_empty_entries() {
        let xml = r#"<urlset xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
            <!-- <loc>https://example.com/commented</loc> -->
            <url>
              <loc><![CDATA[https://example.com/cdata?a=1&b=2]]></loc>
              <image:image><image:loc>https://example.com/i.png</image:loc></image:image>
            </url>
            <url><loc>   </loc></url>
            <url><loc/></url>
            <url><location>https://example.com/not-loc</location></url>
            <url><loc>https://example.com/last"#;
        assert_eq!(
            extract_sitemap_locs(xml, 10),
            [
                "https://example.com/cdata?a=1&b=2",
                "https://example.com/last"
            ]
        );
    }

    #[test]
    fn tolerates_garbage() {
        for xml in [
            "",
            "<",
            "<loc",
            "<loc>",
            "<!--",
            "<![CDATA[",
            "&",
            "<loc>&#xFFFFFFFF;</loc>",
        ] {
            let _ = extract_sitemap_locs(xml, 10);
        }
        assert_eq!(
            extract_sitemap_locs("<loc>&#xFFFFFFFF;</loc>", 10),
            ["&#xFFFFFFFF;"]
        );
    }
}
