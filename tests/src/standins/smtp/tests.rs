use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::*;

/// A raw SMTP client over a TcpStream.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    /// Connects and reads the greeting.
    async fn connect(standin: &SmtpStandIn) -> Self {
        let stream = TcpStream::connect(standin.address())
            .await
            .expect("connect");
        let (reader, writer) = stream.into_split();
        let mut client = Self {
            reader: BufReader::new(reader),
            writer,
        };
        let greeting = client.reply().await;
        assert!(greeting.starts_with("220 smtp.standin.test"), "{greeting}");
        client
    }

    /// Reads one (possibly multiline) reply.
    async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read = self.reader.read_line(&mut line).await.expect("read");
            assert!(read > 0, "connection closed after {reply:?}");
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            reply.push_str(&line);
            if line.as_bytes().get(3) == Some(&b' ') {
                return reply;
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Sends a command and returns the reply, checking its code.
    async fn command(&mut self, line: &str, code: u16) -> String {
        self.write(format!("{line}\r\n").as_bytes()).await;
        let reply = self.reply().await;
        assert!(
            reply.starts_with(&code.to_string()),
            "{line:?} got {reply:?}, expected {code}"
        );
        reply
    }

    /// EHLO, MAIL FROM, RCPT TO each of `to`, DATA with `data` (already dot-stuffed and ending
    /// in `\r\n.\r\n`); returns the reply to the data.
    async fn send_mail(&mut self, from: &str, to: &[&str], data: &[u8]) -> String {
        self.command(&format!("MAIL FROM:<{from}>"), 250).await;
        for recipient in to {
            self.command(&format!("RCPT TO:<{recipient}>"), 250).await;
        }
        self.command("DATA", 354).await;
        self.write(data).await;
        self.reply().await
    }
}

async fn standin() -> SmtpStandIn {
    SmtpStandIn::start(SmtpConfig::default())
        .await
        .expect("start")
}

#[tokio::test]
async fn a_full_session_with_dot_stuffing_is_recorded() {
    let smtp = standin().await;
    let mut client = Client::connect(&smtp).await;
    let ehlo = client.command("EHLO client.example", 250).await;
    for capability in ["8BITMIME", "SMTPUTF8", "SIZE 10485760", "AUTH PLAIN LOGIN"] {
        assert!(
            ehlo.contains(&format!("250-{capability}\r\n"))
                || ehlo.contains(&format!("250 {capability}\r\n")),
            "{ehlo}"
        );
    }
    let plain = BASE64.encode("\0mailer\0secret");
    client.command(&format!("AUTH PLAIN {plain}"), 235).await;
    client
        .command(
            "MAIL FROM:<noreply@sixfold.test> SIZE=200 BODY=8BITMIME",
            250,
        )
        .await;
    client.command("RCPT TO:<ada@example.com>", 250).await;
    client.command("rcpt to: <bob@example.com>", 250).await;
    client.command("DATA", 354).await;
    client
        .write(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\nmiddle.\r\n.\n.x\r\n\r\n.\r\n")
        .await;
    let queued = client.reply().await;
    assert!(queued.starts_with("250 "), "{queued}");
    client.command("NOOP", 250).await;
    client.command("QUIT", 221).await;

    let mail = smtp.accepted();
    assert_eq!(
        mail,
        vec![ReceivedMail {
            helo: "client.example".into(),
            auth_user: Some("mailer".into()),
            envelope_from: "noreply@sixfold.test".into(),
            recipients: vec!["ada@example.com".into(), "bob@example.com".into()],
            // ".\n" (bare LF) does not end the data; it is unstuffed like any dotted line.
            data: b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\nmiddle.\r\n\nx\r\n\r\n".to_vec(),
            saved_to: None,
        }]
    );
    assert_eq!(mail[0].subject().as_deref(), Some("dots"));
    assert!(smtp.rejected().is_empty());
}

#[tokio::test]
async fn commands_out_of_sequence_or_malformed_get_5xx() {
    let smtp = standin().await;
    let mut client = Client::connect(&smtp).await;
    client.command("MAIL FROM:<a@b.c>", 503).await;
    client.command("AUTH PLAIN", 503).await;
    client.command("EHLO", 501).await;
    client.command("HELO client.example", 250).await;
    client.command("WHAT is this", 500).await;
    client.command("STARTTLS", 502).await;
    client.command("RCPT TO:<a@b.c>", 503).await;
    client.command("DATA", 503).await;
    client.command("MAIL FROM:a@b.c", 501).await;
    client
        .command("MAIL FROM:<a@b.c> SIZE=99999999999", 552)
        .await;
    client.command("MAIL FROM:<a@b.c> FOO=1", 555).await;
    client.command("MAIL FROM:<a@b.c>", 250).await;
    client.command("MAIL FROM:<a@b.c>", 503).await;
    client.command("DATA", 503).await;
    client.command("RCPT TO:<>", 501).await;
    client.command("RSET", 250).await;
    client.command("RCPT TO:<a@b.c>", 503).await;
    client.command("AUTH CRAM-MD5", 504).await;
    client
        .command(&format!("NOOP {}", "x".repeat(600)), 500)
        .await;
    client.command("VRFY ada", 252).await;
    client.command("QUIT", 221).await;

    let codes: Vec<u16> = smtp.rejected().into_iter().map(|(code, _)| code).collect();
    assert_eq!(
        codes,
        [
            503, 503, 501, 500, 502, 503, 503, 501, 552, 555, 503, 503, 501, 503, 504, 500
        ]
    );
    assert!(smtp.accepted().is_empty());
}

#[tokio::test]
async fn scripted_rcpt_replies_come_in_order_then_the_recipient_is_accepted() {
    let smtp = standin().await;
    smtp.script(
        "Ada@Example.com",
        vec![
            SmtpScriptedReply::temporary(),
            SmtpScriptedReply::permanent(),
        ],
    );
    let mut client = Client::connect(&smtp).await;
    client.command("EHLO client.example", 250).await;
    client
        .command("MAIL FROM:<noreply@sixfold.test>", 250)
        .await;
    let temporary = client.command("RCPT TO:<ada@example.com>", 451).await;
    assert!(temporary.starts_with("451 "));
    // Other recipients are not affected.
    client.command("RCPT TO:<bob@example.com>", 250).await;
    client.command("RCPT TO:<ada@example.com>", 550).await;
    client.command("RCPT TO:<ada@example.com>", 250).await;
    client.command("DATA", 354).await;
    client.write(b"Subject: hi\r\n\r\nhello\r\n.\r\n").await;
    assert!(client.reply().await.starts_with("250 "));

    assert_eq!(
        smtp.accepted()[0].recipients,
        ["bob@example.com", "ada@example.com"]
    );
    let codes: Vec<u16> = smtp.rejected().into_iter().map(|(code, _)| code).collect();
    assert_eq!(codes, [451, 550]);
}

#[tokio::test]
async fn oversized_messages_are_refused_and_the_session_goes_on() {
    let smtp = SmtpStandIn::start(SmtpConfig {
        max_message_bytes: 64,
        ..SmtpConfig::default()
    })
    .await
    .expect("start");
    let mut client = Client::connect(&smtp).await;
    client.command("EHLO client.example", 250).await;
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(100));
    let reply = client.send_mail("a@b.c", &["d@e.f"], big.as_bytes()).await;
    assert!(reply.starts_with("552 "), "{reply}");
    let reply = client
        .send_mail("a@b.c", &["d@e.f"], b"Subject: small\r\n\r\nok\r\n.\r\n")
        .await;
    assert!(reply.starts_with("250 "), "{reply}");
    let subjects: Vec<_> = smtp.accepted().iter().map(ReceivedMail::subject).collect();
    assert_eq!(subjects, [Some("small".to_owned())]);
}

#[tokio::test]
async fn auth_login_records_the_user() {
    let smtp = standin().await;
    let mut client = Client::connect(&smtp).await;
    client.command("EHLO client.example", 250).await;
    let username = client.command("AUTH LOGIN", 334).await;
    assert_eq!(username, "334 VXNlcm5hbWU6\r\n");
    client
        .command(&BASE64.encode("notify@sixfold.test"), 334)
        .await;
    client.command(&BASE64.encode("password"), 235).await;
    client.command("AUTH LOGIN", 503).await;
    client
        .send_mail("a@b.c", &["d@e.f"], b"Subject: x\r\n\r\ny\r\n.\r\n")
        .await;
    assert_eq!(
        smtp.accepted()[0].auth_user.as_deref(),
        Some("notify@sixfold.test")
    );
}

#[tokio::test]
async fn messages_are_written_to_the_mailbox_and_their_parts_decoded() {
    let mailbox = tempfile::tempdir().expect("tempdir");
    let smtp = SmtpStandIn::start(SmtpConfig {
        mailbox: Some(mailbox.path().join("inbox")),
        ..SmtpConfig::default()
    })
    .await
    .expect("start");
    let text = BASE64.encode("Grüße, Ada!\r\n.A line starting with a dot.");
    let message = format!(
        "From: Sixfold <noreply@sixfold.test>\r\n\
         To: ada@example.com\r\n\
         Subject: =?utf-8?b?{subject}?=\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {text}\r\n\
         --b1\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\
         \r\n\
         <p>Gr=C3=BC=C3=9Fe, Ada!</p>\r\n\
         ..<p>stuffed</p>\r\n\
         --b1--\r\n",
        subject = BASE64.encode("Neuer Follower – Grüße"),
    );
    let mut client = Client::connect(&smtp).await;
    client.command("EHLO client.example", 250).await;
    let reply = client
        .send_mail(
            "noreply@sixfold.test",
            &["ada@example.com"],
            format!("{message}.\r\n").as_bytes(),
        )
        .await;
    assert!(reply.starts_with("250 "), "{reply}");

    let mail = smtp.accepted().pop().expect("a message");
    assert_eq!(mail.subject().as_deref(), Some("Neuer Follower – Grüße"));
    assert_eq!(mail.header("to").as_deref(), Some("ada@example.com"));
    assert_eq!(
        mail.bodies(),
        MailBodies {
            text: Some("Grüße, Ada!\r\n.A line starting with a dot.".into()),
            html: Some("<p>Grüße, Ada!</p>\r\n.<p>stuffed</p>".into()),
        }
    );

    let saved = mail.saved_to.expect("saved");
    let name = saved.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        name.starts_with("0001-") && name.ends_with("Z.eml"),
        "{name}"
    );
    let contents = std::fs::read_to_string(&saved).expect("read eml");
    assert!(contents.starts_with(
        "Return-Path: <noreply@sixfold.test>\r\nDelivered-To: ada@example.com\r\nFrom: Sixfold"
    ));
    assert!(contents.ends_with("--b1--\r\n"));
}

#[tokio::test]
async fn a_message_sent_by_lettre_is_received_and_decoded() {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

    let smtp = standin().await;
    let text = "Grüße, Ada!\n.This line starts with a dot.\nSomeone new follows you: \
                a line long enough that quoted-printable has to wrap it somewhere along the way.";
    let html = "<p>Grüße, Ada!</p>\n<p>Someone new follows you.</p>";
    let from: Mailbox = "Sixfold <noreply@sixfold.test>".parse().expect("from");
    let to: Mailbox = "Ada Lovelace <ada@example.com>".parse().expect("to");
    let email = Message::builder()
        .from(from)
        .to(to)
        .subject("Neuer Follower – Grüße")
        .multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        ))
        .expect("email");
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.address().port())
        .credentials(Credentials::new("notify".into(), "secret".into()))
        .build();
    mailer.send(email).await.expect("lettre sends");

    let mail = smtp.accepted().pop().expect("a message");
    assert_eq!(mail.envelope_from, "noreply@sixfold.test");
    assert_eq!(mail.recipients, ["ada@example.com"]);
    assert_eq!(mail.auth_user.as_deref(), Some("notify"));
    assert_eq!(mail.subject().as_deref(), Some("Neuer Follower – Grüße"));
    assert_eq!(
        mail.header("To").as_deref(),
        Some("\"Ada Lovelace\" <ada@example.com>")
    );
    let bodies = mail.bodies();
    assert_eq!(
        bodies.text.map(|t| t.replace("\r\n", "\n")).as_deref(),
        Some(text)
    );
    assert_eq!(
        bodies.html.map(|h| h.replace("\r\n", "\n")).as_deref(),
        Some(html)
    );
}
