use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;

#[test]
fn decodes_encoded_words() {
    assert_eq!(decode_encoded_words("=?utf-8?b?R3LDvMOfZQ==?="), "Grüße");
    assert_eq!(decode_encoded_words("=?UTF-8?B?R3LDvMOfZQ?="), "Grüße");
    assert_eq!(
        decode_encoded_words("=?utf-8?q?Gr=C3=BC=C3=9Fe_Ada?="),
        "Grüße Ada"
    );
    assert_eq!(
        decode_encoded_words("Hello =?utf-8?q?W=C3=B6rld?= and more"),
        "Hello Wörld and more"
    );
    // Whitespace (here left by unfolding) between encoded-words disappears, and a character
    // split across two words is put back together.
    let euro = "€".as_bytes();
    let split = format!(
        "=?utf-8?b?{}?= \t=?utf-8?b?{}?=",
        BASE64.encode(&euro[..1]),
        BASE64.encode(&euro[1..])
    );
    assert_eq!(decode_encoded_words(&split), "€");
    assert_eq!(decode_encoded_words("=?iso-8859-1?q?caf=E9?="), "café");
    assert_eq!(decode_encoded_words("=?utf-8*en?q?hi?="), "hi");
    // Not encoded-words: left alone.
    assert_eq!(decode_encoded_words("a =? b ?= c"), "a =? b ?= c");
    assert_eq!(decode_encoded_words("=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
}

#[test]
fn decodes_quoted_printable() {
    assert_eq!(
        decode_quoted_printable(b"Gr=C3=BC=C3=9Fe, a long line=\r\n that goes on  \r\nend"),
        "Grüße, a long line that goes on\r\nend".as_bytes()
    );
    assert_eq!(decode_quoted_printable(b"a=3Db =ZZ ="), b"a=b =ZZ ");
}

#[test]
fn finds_headers_case_insensitively_and_unfolds_them() {
    let raw = b"From: a@b.c\r\nsubject: =?utf-8?b?R3LDvMOfZQ==?=\r\n =?utf-8?q?_Ada?=\r\n\r\nSubject: body";
    assert_eq!(header(raw, "From").as_deref(), Some("a@b.c"));
    let subject = header(raw, "Subject").expect("subject");
    assert_eq!(decode_encoded_words(&subject), "Grüße Ada");
    assert_eq!(header(raw, "To"), None);
}

/// A multipart/alternative message the way lettre builds one.
fn lettre_style_message() -> Vec<u8> {
    let html = BASE64.encode("<h1>Grüße, Ada</h1>\r\n<p>You have a new follower.</p>");
    let (first, second) = html.split_at(20);
    format!(
        "From: Sixfold <noreply@sixfold.test>\r\n\
         To: ada@example.com\r\n\
         Subject: =?utf-8?b?{subject}?=\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative;\r\n \
         boundary=\"Fq2cRzWnUJ0y\"\r\n\
         \r\n\
         --Fq2cRzWnUJ0y\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\
         \r\n\
         Gr=C3=BC=C3=9Fe, Ada! You have a new follower, and this line is long enou=\r\n\
         gh to be wrapped.\r\n\
         --Fq2cRzWnUJ0y\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {first}\r\n{second}\r\n\
         --Fq2cRzWnUJ0y--\r\n",
        subject = BASE64.encode("Grüße, Ada"),
    )
    .into_bytes()
}

#[test]
fn decodes_the_parts_of_a_multipart_alternative_message() {
    let raw = lettre_style_message();
    assert_eq!(
        bodies(&raw),
        MailBodies {
            text: Some(
                "Grüße, Ada! You have a new follower, and this line is long enough to be wrapped."
                    .into()
            ),
            html: Some("<h1>Grüße, Ada</h1>\r\n<p>You have a new follower.</p>".into()),
        }
    );
}

#[test]
fn looks_inside_nested_multiparts_and_skips_attachments() {
    let raw = b"Content-Type: multipart/mixed; boundary=outer\r\n\
        \r\n\
        preamble\r\n\
        --outer\r\n\
        Content-Type: multipart/alternative; boundary=\"in;ner\"\r\n\
        \r\n\
        --in;ner\r\n\
        Content-Type: text/html; charset=\"iso-8859-1\"\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        <p>caf=E9</p>\r\n\
        --in;ner--\r\n\
        --outer\r\n\
        Content-Type: text/plain\r\n\
        Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
        \r\n\
        not the body\r\n\
        --outer\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        \r\n\
        plain body\r\n\
        --outer--\r\n\
        epilogue\r\n";
    assert_eq!(
        bodies(raw),
        MailBodies {
            text: Some("plain body".into()),
            html: Some("<p>café</p>".into()),
        }
    );
}

#[test]
fn a_message_without_mime_headers_is_plain_text() {
    let raw = b"Subject: hi\r\n\r\nJust text.\r\n";
    assert_eq!(
        bodies(raw),
        MailBodies {
            text: Some("Just text.\r\n".into()),
            html: None,
        }
    );
}
