//! One SMTP session: reads commands, keeps the transaction state, writes replies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::{ReceivedMail, SmtpState};

/// Longest command line RFC 5321 requires servers to accept, CRLF included.
const MAX_COMMAND_LINE: usize = 512;
/// Most recipients per message (RFC 5321 asks servers to take at least 100).
const MAX_RECIPIENTS: usize = 100;

/// Runs one session on `stream` until the client quits or disconnects.
pub(super) async fn run(stream: TcpStream, state: &SmtpState) -> std::io::Result<()> {
    let (reader, writer) = stream.into_split();
    let mut session = Session {
        state,
        reader: BufReader::new(reader),
        writer,
        helo: None,
        auth_user: None,
        from: None,
        recipients: Vec::new(),
    };
    let greeting = format!("{} ESMTP Sixfold SMTP stand-in", state.config.hostname);
    session.reply(220, &greeting).await?;
    session.serve().await
}

/// The state of one connection.
struct Session<'a> {
    state: &'a SmtpState,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// Domain from HELO/EHLO, once given.
    helo: Option<String>,
    auth_user: Option<String>,
    /// Reverse path of the transaction in progress.
    from: Option<String>,
    recipients: Vec<String>,
}

/// A line read from the client.
struct Line {
    /// The line with its ending, cut short if it was overlong.
    bytes: Vec<u8>,
    /// Whether the line was longer than the limit it was read with.
    overlong: bool,
}

/// What to do after a command.
enum Next {
    Continue,
    Quit,
}

impl Session<'_> {
    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            let Some(line) = self.read_line(MAX_COMMAND_LINE).await? else {
                return Ok(());
            };
            if line.overlong {
                self.reply(500, "Line too long").await?;
                continue;
            }
            let Ok(line) = String::from_utf8(line.bytes) else {
                self.reply(500, "Syntax error, command line is not UTF-8")
                    .await?;
                continue;
            };
            let line = line.trim_end_matches(['\r', '\n']);
            let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
            if let Next::Quit = self
                .command(&verb.to_ascii_uppercase(), argument.trim())
                .await?
            {
                return Ok(());
            }
        }
    }

    async fn command(&mut self, verb: &str, argument: &str) -> std::io::Result<Next> {
        match verb {
            "HELO" | "EHLO" if argument.is_empty() => {
                self.reply(501, &format!("Syntax: {verb} hostname")).await?;
            }
            "HELO" => {
                self.greet(argument);
                self.reply(250, &self.state.config.hostname.clone()).await?;
            }
            "EHLO" => {
                self.greet(argument);
                let config = &self.state.config;
                let lines = [
                    format!("{} Hello {argument}", config.hostname),
                    "8BITMIME".to_owned(),
                    "SMTPUTF8".to_owned(),
                    format!("SIZE {}", config.max_message_bytes),
                    "AUTH PLAIN LOGIN".to_owned(),
                ];
                self.reply_lines(250, &lines).await?;
            }
            "MAIL" => self.mail(argument).await?,
            "RCPT" => self.rcpt(argument).await?,
            "DATA" => self.data(argument).await?,
            "AUTH" => self.auth(argument).await?,
            "RSET" if !argument.is_empty() => self.reply(501, "Syntax: RSET").await?,
            "RSET" => {
                self.reset();
                self.reply(250, "OK").await?;
            }
            "NOOP" => self.reply(250, "OK").await?,
            "VRFY" => {
                self.reply(252, "Cannot VRFY user, but will accept message")
                    .await?;
            }
            "HELP" => {
                self.reply(
                    214,
                    "Commands: HELO EHLO AUTH MAIL RCPT DATA RSET NOOP VRFY QUIT",
                )
                .await?;
            }
            "QUIT" => {
                let bye = format!("{} closing connection", self.state.config.hostname);
                self.reply(221, &bye).await?;
                return Ok(Next::Quit);
            }
            "STARTTLS" | "EXPN" | "TURN" | "ETRN" | "BDAT" => {
                self.reply(502, "Command not implemented").await?;
            }
            _ => {
                self.reply(500, "Syntax error, command unrecognized")
                    .await?
            }
        }
        Ok(Next::Continue)
    }

    fn greet(&mut self, domain: &str) {
        self.helo = Some(domain.to_owned());
        self.reset();
    }

    /// Forgets the transaction in progress (RSET, a new HELO, a finished DATA).
    fn reset(&mut self) {
        self.from = None;
        self.recipients.clear();
    }

    async fn mail(&mut self, argument: &str) -> std::io::Result<()> {
        if self.helo.is_none() {
            return self.reply(503, "Send HELO/EHLO first").await;
        }
        if self.from.is_some() {
            return self.reply(503, "Sender already specified").await;
        }
        let Some((from, parameters)) = parse_path(argument, "FROM:") else {
            return self.reply(501, "Syntax: MAIL FROM:<address>").await;
        };
        for parameter in parameters.split_whitespace() {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<usize>() {
                    Ok(size) if size > self.state.config.max_message_bytes => {
                        return self
                            .reply(552, "Message size exceeds fixed maximum message size")
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.reply(501, "Bad SIZE parameter").await,
                },
                "BODY" if ["7BIT", "8BITMIME"].contains(&value.to_ascii_uppercase().as_str()) => {}
                "SMTPUTF8" if value.is_empty() => {}
                "AUTH" => {}
                _ => {
                    return self
                        .reply(
                            555,
                            "MAIL FROM parameters not recognized or not implemented",
                        )
                        .await;
                }
            }
        }
        self.from = Some(from);
        self.reply(250, "OK").await
    }

    async fn rcpt(&mut self, argument: &str) -> std::io::Result<()> {
        if self.from.is_none() {
            return self.reply(503, "Need MAIL before RCPT").await;
        }
        let Some((to, parameters)) = parse_path(argument, "TO:") else {
            return self.reply(501, "Syntax: RCPT TO:<address>").await;
        };
        if to.is_empty() {
            return self.reply(501, "Syntax: RCPT TO:<address>").await;
        }
        if !parameters.is_empty() {
            return self
                .reply(555, "RCPT TO parameters not recognized or not implemented")
                .await;
        }
        if let Some(scripted) = self.state.scripted_reply(&to) {
            return self.reply(scripted.code, &scripted.text).await;
        }
        if self.recipients.len() >= MAX_RECIPIENTS {
            return self.reply(452, "Too many recipients").await;
        }
        self.recipients.push(to);
        self.reply(250, "OK").await
    }

    async fn data(&mut self, argument: &str) -> std::io::Result<()> {
        if !argument.is_empty() {
            return self.reply(501, "Syntax: DATA").await;
        }
        let Some(from) = self.from.clone() else {
            return self.reply(503, "Need MAIL command").await;
        };
        if self.recipients.is_empty() {
            return self.reply(503, "Need RCPT command").await;
        }
        self.reply(354, "End data with <CR><LF>.<CR><LF>").await?;
        let data = self.read_data().await?;
        // The transaction ends with the data, whether the message is taken or not.
        let recipients = std::mem::take(&mut self.recipients);
        self.reset();
        let Some(data) = data else {
            return self
                .reply(552, "Message size exceeds fixed maximum message size")
                .await;
        };
        let mail = ReceivedMail {
            helo: self.helo.clone().unwrap_or_default(),
            auth_user: self.auth_user.clone(),
            envelope_from: from,
            recipients,
            data,
            saved_to: None,
        };
        match self.state.store(mail).await {
            Ok(number) => self.reply(250, &format!("OK: queued as {number}")).await,
            Err(error) => {
                let error = format!("{error:#}");
                tracing::warn!(%error, "SMTP stand-in could not store a message");
                self.reply(451, "Requested action aborted: local error in processing")
                    .await
            }
        }
    }

    /// Reads message data up to `<CRLF>.<CRLF>`, removing dot-stuffing; `None` if it was
    /// larger than the limit (the data is still read to the end).
    async fn read_data(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let limit = self.state.config.max_message_bytes;
        let mut data = Vec::new();
        let mut too_large = false;
        // The terminating "." line must follow a CRLF; the DATA command line ended with one.
        let mut after_crlf = true;
        loop {
            let Some(line) = self.read_line(limit.saturating_add(3)).await? else {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            };
            if after_crlf && line.bytes == b".\r\n" {
                return Ok((!too_large).then_some(data));
            }
            after_crlf = line.bytes.ends_with(b"\r\n");
            let bytes = line.bytes.strip_prefix(b".").unwrap_or(&line.bytes);
            if line.overlong || data.len() + bytes.len() > limit {
                too_large = true;
                data.clear();
            } else if !too_large {
                data.extend_from_slice(bytes);
            }
        }
    }

    async fn auth(&mut self, argument: &str) -> std::io::Result<()> {
        if self.helo.is_none() {
            return self.reply(503, "Send EHLO first").await;
        }
        if self.auth_user.is_some() {
            return self.reply(503, "Already authenticated").await;
        }
        if self.from.is_some() {
            return self
                .reply(503, "AUTH not permitted during a mail transaction")
                .await;
        }
        let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
        let user = match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => {
                let response = match initial.trim() {
                    "" => self.challenge("").await?,
                    initial => Some(initial.to_owned()),
                };
                // authzid NUL authcid NUL password: the user is the authentication identity.
                response.map(|r| {
                    decode_base64(&r).map(|text| text.split('\0').nth(1).unwrap_or("").to_owned())
                })
            }
            "LOGIN" => {
                let username = match initial.trim() {
                    "" => self.challenge("VXNlcm5hbWU6").await?,
                    initial => Some(initial.to_owned()),
                };
                // The password is read (any is accepted) unless the client already cancelled.
                let password = match username {
                    Some(_) => self.challenge("UGFzc3dvcmQ6").await?,
                    None => None,
                };
                username
                    .zip(password)
                    .map(|(username, _)| decode_base64(&username))
            }
            _ => return self.reply(504, "Unrecognized authentication type").await,
        };
        match user {
            None => self.reply(501, "Authentication cancelled").await,
            Some(None) => self.reply(501, "Cannot decode response").await,
            Some(Some(user)) => {
                self.auth_user = Some(user);
                self.reply(235, "Authentication successful").await
            }
        }
    }

    /// Sends a 334 challenge and reads the client's answer; `None` if the client cancelled.
    async fn challenge(&mut self, prompt: &str) -> std::io::Result<Option<String>> {
        self.reply(334, prompt).await?;
        let Some(line) = self.read_line(MAX_COMMAND_LINE * 24).await? else {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        };
        let answer = String::from_utf8_lossy(&line.bytes)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        Ok((answer != "*").then_some(answer))
    }

    /// Reads one line with its line ending. A line longer than `limit` bytes is read to its
    /// end but returned cut at `limit` (its line ending kept) and flagged as overlong. `None` at
    /// end of input.
    async fn read_line(&mut self, limit: usize) -> std::io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        let read = (&mut self.reader)
            .take(limit as u64)
            .read_until(b'\n', &mut bytes)
            .await?;
        if read == 0 {
            return Ok(None);
        }
        let overlong = !bytes.ends_with(b"\n") && bytes.len() == limit;
        if overlong {
            let mut rest = Vec::new();
            self.reader.read_until(b'\n', &mut rest).await?;
            if rest.ends_with(b"\r\n") || (rest == b"\n" && bytes.ends_with(b"\r")) {
                bytes.truncate(bytes.len() - usize::from(bytes.ends_with(b"\r")));
                bytes.extend_from_slice(b"\r\n");
            } else if rest.ends_with(b"\n") {
                bytes.push(b'\n');
            }
        }
        Ok(Some(Line { bytes, overlong }))
    }

    async fn reply(&mut self, code: u16, text: &str) -> std::io::Result<()> {
        self.reply_lines(code, &[text.to_owned()]).await
    }

    /// Writes a (multiline) reply and records it if it is an error.
    async fn reply_lines(&mut self, code: u16, lines: &[String]) -> std::io::Result<()> {
        if code >= 400 {
            self.state.journal.reject(code, lines.join(" "));
        }
        let mut reply = String::new();
        for (index, line) in lines.iter().enumerate() {
            let separator = if index + 1 == lines.len() { ' ' } else { '-' };
            reply.push_str(&format!("{code}{separator}{line}\r\n"));
        }
        self.writer.write_all(reply.as_bytes()).await?;
        self.writer.flush().await
    }
}

/// Splits `FROM:<path> params` (`TO:` for RCPT) into the address and the parameters; the
/// keyword is case-insensitive and a space after the colon is tolerated.
fn parse_path(argument: &str, keyword: &str) -> Option<(String, String)> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start().strip_prefix('<')?;
    let (path, parameters) = rest.split_once('>')?;
    if path.contains(['<', ' ']) {
        return None;
    }
    Some((path.to_owned(), parameters.trim().to_owned()))
}

/// Decodes a base64 SASL response as UTF-8.
fn decode_base64(text: &str) -> Option<String> {
    let bytes = STANDARD.decode(text.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    #[test]
    fn paths_and_parameters() {
        assert_eq!(
            parse_path("FROM:<a@b.c> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some(("a@b.c".into(), "SIZE=10 BODY=8BITMIME".into()))
        );
        assert_eq!(
            parse_path("from: <>", "FROM:"),
            Some((String::new(), String::new()))
        );
        assert_eq!(parse_path("TO:a@b.c", "TO:"), None);
        assert_eq!(parse_path("TO:<a@b.c", "TO:"), None);
        assert_eq!(parse_path("FROM:<a@b.c>", "TO:"), None);
    }
}
