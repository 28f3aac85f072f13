//! Local stand-ins for the notification providers: APNs, FCM HTTP v1, Twilio Messages and an
//! SMTP server.
//!
//! Each stand-in is a real server on a loopback port that checks every request the way the
//! provider documents it, records what it accepted (and the status and reason of what it
//! refused), and can be scripted to answer the next requests for one device token, phone
//! number or mail recipient with the provider's documented errors; once the script for a key
//! is used up, the stand-in serves that key normally again. A stand-in stops when it is
//! dropped.
//!
//! Integration tests start them in-process on port 0; the `notify-standins` binary starts all
//! four on fixed ports for `make run`.
//!
//! The APNs and FCM stand-ins refuse HTTP/1.x as the real services do (APNs speaks only
//! HTTP/2); clients reach them over cleartext HTTP/2 with prior knowledge (h2c).

pub mod apns;
pub mod credentials;
pub mod fcm;
pub mod smtp;
pub mod twilio;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The address stand-ins bind when a test does not ask for one: a free loopback port.
pub const ANY_LOOPBACK_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Locks `mutex`, ignoring poisoning: every stand-in keeps its state consistent between
/// statements, so a panicking test thread does not leave it half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers queued per key (device token, phone number, recipient) that take precedence over a
/// stand-in's normal behaviour; each request for the key consumes the next one in order.
#[derive(Debug)]
pub struct Scripts<A> {
    queues: Mutex<HashMap<String, VecDeque<A>>>,
}

impl<A> Default for Scripts<A> {
    fn default() -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
        }
    }
}

impl<A> Scripts<A> {
    /// Appends `answers` to the queue of `key`.
    pub fn push(&self, key: &str, answers: Vec<A>) {
        lock(&self.queues)
            .entry(key.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Takes the next scripted answer for `key`, if any is left.
    pub fn next(&self, key: &str) -> Option<A> {
        let mut queues = lock(&self.queues);
        let queue = queues.get_mut(key)?;
        let answer = queue.pop_front();
        if queue.is_empty() {
            queues.remove(key);
        }
        answer
    }
}

/// What a stand-in accepted, in order, and the status and reason of each request it refused.
#[derive(Debug)]
pub struct Journal<A> {
    accepted: Mutex<Vec<A>>,
    rejected: Mutex<Vec<(u16, String)>>,
}

impl<A> Default for Journal<A> {
    fn default() -> Self {
        Self {
            accepted: Mutex::new(Vec::new()),
            rejected: Mutex::new(Vec::new()),
        }
    }
}

impl<A: Clone> Journal<A> {
    /// Records an accepted request.
    pub fn accept(&self, accepted: A) {
        lock(&self.accepted).push(accepted);
    }

    /// Records a refused request with the status and the provider's reason or error code.
    pub fn reject(&self, status: u16, reason: impl Into<String>) {
        lock(&self.rejected).push((status, reason.into()));
    }

    /// Everything accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<A> {
        lock(&self.accepted).clone()
    }

    /// Every refusal so far as `(status, reason)`, oldest first.
    pub fn rejected(&self) -> Vec<(u16, String)> {
        lock(&self.rejected).clone()
    }
}

/// Binds a TCP listener on `address` and returns it with the address it got.
async fn bind(address: SocketAddr) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    Ok((listener, bound))
}

/// An HTTP server task that stops (gracefully closing its connections) when this is dropped.
#[derive(Debug)]
struct ServerTask {
    address: SocketAddr,
    _stop: DropGuard,
}

impl ServerTask {
    /// Serves `router` on `listener` (bound to `address`) over HTTP/1.1 and h2c until dropped.
    fn spawn(listener: tokio::net::TcpListener, address: SocketAddr, router: Router) -> Self {
        let stop = CancellationToken::new();
        let server =
            axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, %address, "stand-in server failed");
            }
        });
        Self {
            address,
            _stop: stop.drop_guard(),
        }
    }

    /// Binds `address` and serves `router` there; see [`ServerTask::spawn`].
    async fn start(address: SocketAddr, router: Router) -> anyhow::Result<Self> {
        let (listener, address) = bind(address).await?;
        Ok(Self::spawn(listener, address, router))
    }

    /// Base URL of the server, `http://127.0.0.1:<port>`.
    fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Milliseconds since the Unix epoch.
fn unix_now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A JSON response with `status`, plus a `retry-after` header when `retry_after` is set.
fn json_answer(status: StatusCode, body: &serde_json::Value, retry_after: Option<u64>) -> Response {
    let mut response = (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        )],
        body.to_string(),
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(
            HeaderName::from_static("retry-after"),
            HeaderValue::from(seconds),
        );
    }
    response
}

/// Whether `number` is an E.164 phone number: `+`, a non-zero digit, at most 15 digits.
fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Whether `text` is `prefix` followed by exactly 32 hexadecimal digits (Twilio SIDs).
fn is_sid(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_consumed_in_order_per_key() {
        let scripts = Scripts::default();
        scripts.push("a", vec![1, 2]);
        scripts.push("b", vec![9]);
        scripts.push("a", vec![3]);
        assert_eq!(scripts.next("a"), Some(1));
        assert_eq!(scripts.next("b"), Some(9));
        assert_eq!(scripts.next("b"), None);
        assert_eq!(scripts.next("a"), Some(2));
        assert_eq!(scripts.next("a"), Some(3));
        assert_eq!(scripts.next("a"), None);
    }

    #[test]
    fn e164_numbers() {
        assert!(is_e164("+14155552671"));
        assert!(is_e164("+442071838750"));
        assert!(!is_e164("14155552671"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1415555267123456"));
        assert!(!is_e164("+1 415 555"));
    }

    #[test]
    fn sids() {
        assert!(is_sid("AC0123456789abcdef0123456789abcdef", "AC"));
        assert!(!is_sid("AC0123", "AC"));
        assert!(!is_sid("MG0123456789abcdef0123456789abcdef", "AC"));
    }
}
