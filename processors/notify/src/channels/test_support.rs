//! Loopback helpers shared by the channel client tests: an address where nothing listens, a
//! server that accepts connections but never answers, and a recording HTTP/1.1 stub.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A loopback address where nothing listens: bind port 0, note the port, close the socket.
pub(crate) fn closed_port() -> SocketAddr {
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// A loopback server that accepts connections and reads from them but never answers, so that
/// a client's timeout is what ends the request. Ends with the test's runtime.
pub(crate) async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// One request as an HTTP/1.1 stub received it.
#[derive(Debug, Clone)]
pub(crate) struct RecordedRequest {
    /// Request line and headers, as sent.
    pub(crate) head: String,
    /// The body.
    pub(crate) body: String,
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The form fields of an `application/x-www-form-urlencoded` body, decoded.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        reqwest::Url::parse(&format!("http://form.invalid/?{}", self.body))
            .expect("form")
            .query_pairs()
            .into_owned()
            .collect()
    }
}

/// A loopback HTTP/1.1 server that records every request and answers each with `status`,
/// `extra_headers` and the body `reply(n)` for the n-th request (1-based), closing the
/// connection after it.
pub(crate) async fn http1_server(
    status: &'static str,
    extra_headers: &'static str,
    reply: fn(usize) -> String,
) -> (SocketAddr, Arc<Mutex<Vec<RecordedRequest>>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let Some(request) = read_request(&mut socket).await else {
                continue;
            };
            let count = {
                let mut requests = recorded.lock().expect("lock");
                requests.push(request);
                requests.len()
            };
            let body = reply(count);
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra_headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (addr, requests)
}

/// Reads one request with a `content-length` body, or `None` if the connection closed first.
async fn read_request(socket: &mut TcpStream) -> Option<RecordedRequest> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = socket.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let request = RecordedRequest {
                head: head.to_owned(),
                body: body.to_owned(),
            };
            let length = request
                .header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Some(request);
            }
        }
    }
}

/// One request as the HTTP/2 stub received it.
#[derive(Debug, Clone)]
pub(crate) struct RecordedH2Request {
    /// `:method`.
    pub(crate) method: String,
    /// `:path`.
    pub(crate) path: String,
    /// Headers, names in lowercase.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl RecordedH2Request {
    /// The value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the HTTP/2 stub answers: status, headers and body.
pub(crate) type H2Reply = (u16, Vec<(&'static str, String)>, String);

/// A loopback HTTP/2 cleartext server (prior knowledge, as the APNs and FCM stand-ins are)
/// that records every request and answers the n-th one (1-based) with `reply(n)`.
pub(crate) async fn h2c_server(
    reply: fn(usize) -> H2Reply,
) -> (SocketAddr, Arc<Mutex<Vec<RecordedH2Request>>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = connection.accept().await {
                    tokio::spawn(answer_h2(request, respond, Arc::clone(&recorded), reply));
                }
            });
        }
    });
    (addr, requests)
}

/// Reads one HTTP/2 request, records it and sends the reply.
async fn answer_h2(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    recorded: Arc<Mutex<Vec<RecordedH2Request>>>,
    reply: fn(usize) -> H2Reply,
) {
    let (parts, mut body) = request.into_parts();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let count = {
        let mut requests = recorded.lock().expect("lock");
        requests.push(RecordedH2Request {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: bytes,
        });
        requests.len()
    };
    let (status, headers, body) = reply(count);
    let mut response = http::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    let response = response.body(()).expect("response");
    if let Ok(mut stream) = respond.send_response(response, false) {
        let _ = stream.send_data(bytes::Bytes::from(body), true);
    }
}
