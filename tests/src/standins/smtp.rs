//! SMTP stand-in: a minimal RFC 5321 server without TLS, for the email channel.
//!
//! It greets with 220, advertises `8BITMIME`, `SMTPUTF8`, `SIZE <max>` and `AUTH PLAIN LOGIN`
//! to EHLO, accepts any credentials (recording the user), and handles `HELO`, `EHLO`,
//! `MAIL FROM`, `RCPT TO`, `DATA` (dot-unstuffed, ended by `<CRLF>.<CRLF>`), `RSET`, `NOOP`,
//! `VRFY`, `HELP` and `QUIT` with RFC 5321's replies: 500 for unknown commands, 501 for bad
//! arguments, 503 for commands out of sequence, 552 for messages over the size limit.
//!
//! Every message is recorded with its envelope and raw data, and, when the config names a
//! mailbox directory, also written there as `<n>-<UTC timestamp>.eml` for a person to open.
//! [`ReceivedMail`] can decode the subject and the text and HTML bodies of what lettre sends.
//!
//! Recipients can be scripted: the next `RCPT TO` commands for one address get the scripted
//! replies (e.g. 451 or 550) before the address is accepted again.

mod mail;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use self::mail::MailBodies;
use super::{Journal, Scripts};

/// How the SMTP stand-in presents itself and what it keeps.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Host name used in the greeting and the EHLO reply.
    pub hostname: String,
    /// Largest message accepted, in bytes (advertised as `SIZE`).
    pub max_message_bytes: usize,
    /// Directory to write each received message to as an `.eml` file, if any.
    pub mailbox: Option<PathBuf>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            hostname: "smtp.standin.test".into(),
            max_message_bytes: 10 * 1024 * 1024,
            mailbox: None,
        }
    }
}

/// A message the stand-in accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The domain the client gave in HELO or EHLO.
    pub helo: String,
    /// The user the client authenticated as, if it did.
    pub auth_user: Option<String>,
    /// Reverse path of `MAIL FROM` (empty for the null sender `<>`).
    pub envelope_from: String,
    /// Forward paths of the accepted `RCPT TO` commands, in order.
    pub recipients: Vec<String>,
    /// The message as received, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
    /// Where the message was written, when the config has a mailbox.
    pub saved_to: Option<PathBuf>,
}

impl ReceivedMail {
    /// The first top-level header called `name` (case-insensitive), unfolded, with RFC 2047
    /// encoded-words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        mail::header(&self.data, name).map(|value| mail::decode_encoded_words(&value))
    }

    /// The decoded `Subject`.
    pub fn subject(&self) -> Option<String> {
        self.header("Subject")
    }

    /// The first `text/plain` and `text/html` bodies, searched through nested multiparts and
    /// decoded from base64 or quoted-printable and their charset; attachments are skipped.
    pub fn bodies(&self) -> MailBodies {
        mail::bodies(&self.data)
    }
}

/// A reply to give to `RCPT TO` for one address instead of accepting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpScriptedReply {
    /// Reply code, e.g. 451 or 550.
    pub code: u16,
    /// Reply text.
    pub text: String,
}

impl SmtpScriptedReply {
    /// Any reply.
    pub fn new(code: u16, text: &str) -> Self {
        Self {
            code,
            text: text.to_owned(),
        }
    }

    /// 451: a temporary failure, the client should try again later.
    pub fn temporary() -> Self {
        Self::new(451, "Requested action aborted: try again later")
    }

    /// 550: the mailbox is unavailable, a permanent failure.
    pub fn permanent() -> Self {
        Self::new(550, "Requested action not taken: mailbox unavailable")
    }
}

/// State shared by the sessions and the test.
#[derive(Debug)]
struct SmtpState {
    config: SmtpConfig,
    journal: Journal<ReceivedMail>,
    scripts: Scripts<SmtpScriptedReply>,
    /// Number of messages received so far, to name mailbox files.
    received: AtomicUsize,
}

impl SmtpState {
    /// Takes the next scripted reply for `recipient` (addresses compare case-insensitively).
    fn scripted_reply(&self, recipient: &str) -> Option<SmtpScriptedReply> {
        self.scripts.next(&recipient.to_ascii_lowercase())
    }

    /// Records `mail`, first writing it to the mailbox if there is one.
    async fn store(&self, mut mail: ReceivedMail) -> anyhow::Result<usize> {
        let number = self.received.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(directory) = &self.config.mailbox {
            let path = directory.join(format!("{number:04}-{}.eml", utc_timestamp()));
            let mut contents = format!("Return-Path: <{}>\r\n", mail.envelope_from).into_bytes();
            for recipient in &mail.recipients {
                contents.extend_from_slice(format!("Delivered-To: {recipient}\r\n").as_bytes());
            }
            contents.extend_from_slice(&mail.data);
            tokio::fs::create_dir_all(directory)
                .await
                .with_context(|| format!("creating mailbox {}", directory.display()))?;
            tokio::fs::write(&path, contents)
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            mail.saved_to = Some(path);
        }
        self.journal.accept(mail);
        Ok(number)
    }
}

/// A running SMTP stand-in; stops accepting and closes its sessions when dropped.
#[derive(Debug)]
pub struct SmtpStandIn {
    state: Arc<SmtpState>,
    address: SocketAddr,
    _stop: DropGuard,
}

impl SmtpStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start(config: SmtpConfig) -> anyhow::Result<Self> {
        Self::start_at(super::ANY_LOOPBACK_PORT, config).await
    }

    /// Starts the stand-in on `address`.
    pub async fn start_at(address: SocketAddr, config: SmtpConfig) -> anyhow::Result<Self> {
        let (listener, address) = super::bind(address).await?;
        let state = Arc::new(SmtpState {
            config,
            journal: Journal::default(),
            scripts: Scripts::default(),
            received: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, state.clone(), stop.clone()));
        Ok(Self {
            state,
            address,
            _stop: stop.drop_guard(),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Messages received so far, oldest first.
    pub fn accepted(&self) -> Vec<ReceivedMail> {
        self.state.journal.accepted()
    }

    /// Error replies so far as `(code, text)`, oldest first, scripted ones included.
    pub fn rejected(&self) -> Vec<(u16, String)> {
        self.state.journal.rejected()
    }

    /// Replies to the next `RCPT TO:<recipient>` commands with `replies`, in order.
    pub fn script(&self, recipient: &str, replies: Vec<SmtpScriptedReply>) {
        self.state
            .scripts
            .push(&recipient.to_ascii_lowercase(), replies);
    }
}

/// Accepts connections until `stop`, running one session task per connection.
async fn accept_loop(listener: TcpListener, state: Arc<SmtpState>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let state = state.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        result = session::run(stream, &state) => {
                            if let Err(error) = result {
                                tracing::debug!(%error, %peer, "SMTP session ended with an error");
                            }
                        }
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "SMTP stand-in could not accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// The current UTC time as `YYYYMMDDTHHMMSSZ`, for mailbox file names.
fn utc_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests;
