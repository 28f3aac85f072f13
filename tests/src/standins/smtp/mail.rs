//! Just enough Internet Message Format and MIME to check a sent email in a test: header
//! lookup with unfolding (RFC 5322), encoded-words (RFC 2047), multipart bodies (RFC 2046) and
//! the base64 and quoted-printable transfer encodings (RFC 2045).

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 that tolerates missing padding, as mail readers do.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The text bodies of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailBodies {
    /// The first `text/plain` part, decoded.
    pub text: Option<String>,
    /// The first `text/html` part, decoded.
    pub html: Option<String>,
}

/// Splits an entity into its header block and its body.
fn split_entity(raw: &[u8]) -> (&[u8], &[u8]) {
    let crlf = find(raw, b"\r\n\r\n").map(|at| (at, at + 4));
    let lf = find(raw, b"\n\n").map(|at| (at, at + 2));
    let split = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match split {
        Some((head_end, body_start)) => (&raw[..head_end], &raw[body_start..]),
        // Headers only, or a body-only part that starts with its blank line.
        None if raw.starts_with(b"\r\n") => (&[], &raw[2..]),
        None => (raw, &[]),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The headers of an entity as (name, unfolded raw value) pairs.
fn headers(raw: &[u8]) -> Vec<(String, String)> {
    let (head, _) = split_entity(raw);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim_start().to_owned()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.trim().to_owned();
    }
    headers
}

/// The first header called `name` (case-insensitive), unfolded but not decoded.
pub(super) fn header(raw: &[u8], name: &str) -> Option<String> {
    headers(raw)
        .into_iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// A piece of a header value: plain text or the bytes of an encoded-word.
enum Piece {
    Text(String),
    Encoded { charset: String, bytes: Vec<u8> },
}

/// Decodes RFC 2047 encoded-words (`=?charset?B?...?=`, `=?charset?Q?...?=`) in a header
/// value. Whitespace between adjacent encoded-words is dropped, and adjacent words in the same
/// charset are joined before decoding so a character split between them survives.
pub fn decode_encoded_words(value: &str) -> String {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let Some((charset, bytes, consumed)) = encoded_word(&rest[start..]) else {
            push_text(&mut pieces, &rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        };
        let gap = &rest[..start];
        let after_word = matches!(pieces.last(), Some(Piece::Encoded { .. }));
        if !(after_word && gap.chars().all(char::is_whitespace)) {
            push_text(&mut pieces, gap);
        }
        match pieces.last_mut() {
            Some(Piece::Encoded {
                charset: previous,
                bytes: joined,
            }) if previous.eq_ignore_ascii_case(&charset) && gap.trim().is_empty() => {
                joined.extend_from_slice(&bytes);
            }
            _ => pieces.push(Piece::Encoded { charset, bytes }),
        }
        rest = &rest[start + consumed..];
    }
    push_text(&mut pieces, rest);
    pieces
        .into_iter()
        .map(|piece| match piece {
            Piece::Text(text) => text,
            Piece::Encoded { charset, bytes } => decode_charset(&bytes, &charset),
        })
        .collect()
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if text.is_empty() {
        return;
    }
    match pieces.last_mut() {
        Some(Piece::Text(previous)) => previous.push_str(text),
        _ => pieces.push(Piece::Text(text.to_owned())),
    }
}

/// Parses the encoded-word at the start of `text`: its charset, decoded bytes and length.
fn encoded_word(text: &str) -> Option<(String, Vec<u8>, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let encoded = &rest[..end];
    let consumed = text.len() - rest[end + 2..].len();
    if encoded.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => LENIENT_BASE64.decode(encoded).ok()?,
        "Q" | "q" => decode_q(encoded),
        _ => return None,
    };
    // RFC 2231 allows a language after the charset: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or(charset).to_owned();
    Some((charset, bytes, consumed))
}

/// The "Q" encoding of RFC 2047: quoted-printable with `_` for space.
fn decode_q(text: &str) -> Vec<u8> {
    let spaced: Vec<u8> = text
        .bytes()
        .map(|b| if b == b'_' { b' ' } else { b })
        .collect();
    decode_quoted_printable(&spaced)
}

/// Decodes quoted-printable (RFC 2045 §6.7): `=XX` escapes, `=` at a line end as a soft line
/// break, trailing whitespace on lines dropped. Malformed escapes are kept as they are.
pub(super) fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len());
    let mut lines = input.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(0, |last| last + 1);
        let line = &line[..end];
        let (line, soft_break) = match line.strip_suffix(b"=") {
            Some(line) => (line, true),
            None => (line, false),
        };
        let mut index = 0;
        while index < line.len() {
            let byte = line[index];
            let escaped = (byte == b'=')
                .then(|| line.get(index + 1..index + 3))
                .flatten()
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(value) => {
                    output.push(value);
                    index += 3;
                }
                None => {
                    output.push(byte);
                    index += 1;
                }
            }
        }
        if !soft_break && lines.peek().is_some() {
            output.extend_from_slice(b"\r\n");
        }
    }
    output
}

/// Decodes `bytes` in `charset`: UTF-8 and US-ASCII, ISO-8859-1 and windows-1252 (as
/// Latin-1); anything else is read as UTF-8 with replacement characters.
fn decode_charset(bytes: &[u8], charset: &str) -> String {
    match charset.to_ascii_lowercase().as_str() {
        "iso-8859-1" | "latin1" | "windows-1252" => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A `Content-Type`-like value: the lowercased value and its parameters.
struct ContentType {
    value: String,
    parameters: Vec<(String, String)>,
}

impl ContentType {
    fn parse(header: &str) -> Self {
        let mut parts = split_parameters(header).into_iter();
        let value = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let parameters = parts
            .filter_map(|part| {
                let (name, value) = part.split_once('=')?;
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                Some((
                    name.trim().to_ascii_lowercase(),
                    value.replace("\\\"", "\""),
                ))
            })
            .collect();
        Self { value, parameters }
    }

    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(parameter, _)| parameter == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Splits a header value at semicolons outside double quotes.
fn split_parameters(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(part) = parts.last_mut() {
            part.push(c);
        }
    }
    parts
}

/// The first text/plain and text/html bodies of the message `raw`.
pub(super) fn bodies(raw: &[u8]) -> MailBodies {
    let mut found = MailBodies::default();
    collect_bodies(raw, &mut found, 0);
    found
}

fn collect_bodies(entity: &[u8], found: &mut MailBodies, depth: usize) {
    let (_, body) = split_entity(entity);
    let content_type =
        ContentType::parse(&header(entity, "Content-Type").unwrap_or_else(|| "text/plain".into()));
    if content_type.value.starts_with("multipart/") {
        if let Some(boundary) = content_type.parameter("boundary")
            && depth < 8
        {
            for part in multipart_parts(body, boundary) {
                collect_bodies(part, found, depth + 1);
            }
        }
        return;
    }
    let attachment = header(entity, "Content-Disposition")
        .is_some_and(|d| ContentType::parse(&d).value == "attachment");
    let slot = match content_type.value.as_str() {
        "text/plain" if !attachment => &mut found.text,
        "text/html" if !attachment => &mut found.html,
        _ => return,
    };
    if slot.is_some() {
        return;
    }
    let encoding = header(entity, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => {
            let compact: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            LENIENT_BASE64
                .decode(compact)
                .unwrap_or_else(|_| body.to_vec())
        }
        "quoted-printable" => decode_quoted_printable(body),
        _ => body.to_vec(),
    };
    *slot = Some(decode_charset(
        &bytes,
        content_type.parameter("charset").unwrap_or("us-ascii"),
    ));
}

/// The body parts of a multipart body with `boundary` (RFC 2046 §5.1.1): the text between
/// delimiter lines, without the CRLF that belongs to the next delimiter.
fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut part_start = None;
    let mut position = 0;
    while position < body.len() {
        let line_end = body[position..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |at| position + at + 1);
        let line = &body[position..line_end];
        let trimmed_end = line
            .iter()
            .rposition(|b| !b" \t\r\n".contains(b))
            .map_or(0, |last| last + 1);
        if let Some(rest) = line[..trimmed_end].strip_prefix(delimiter.as_bytes())
            && (rest.is_empty() || rest == b"--")
        {
            if let Some(start) = part_start {
                let mut end = position;
                if end > start && body[end - 1] == b'\n' {
                    end -= 1;
                    if end > start && body[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                parts.push(&body[start..end]);
            }
            if rest == b"--" {
                break;
            }
            part_start = Some(line_end);
        }
        position = line_end;
    }
    parts
}

#[cfg(test)]
mod tests;
