//! The test server: one route per behaviour the fetcher must handle.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::net::TcpListener;
use url::Url;

pub(super) const PAGE: &str = r#"<html><body><a href="/next">next</a></body></html>"#;

/// One request the test server received.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) path: String,
    pub(super) headers: HeaderMap,
}

/// A test server on 127.0.0.1, port 0.
pub(super) struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub(super) async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/page", get(|| async { html(PAGE) }))
            .route("/hop", get(|| async { found("/page") }))
            .route("/cross", get(cross_host))
            .route("/loop/{n}", get(redirect_loop))
            .route("/no-location", get(|| async { StatusCode::FOUND }))
            .route("/big", get(|| async { html("x".repeat(10_000)) }))
            .route("/big-chunked", get(big_chunked))
            .route("/big.txt", get(|| async { text("y".repeat(10_000)) }))
            .route("/doc.pdf", get(pdf))
            .route("/sitemap.xml", get(sitemap))
            .route("/throttled", get(throttled))
            .route("/gzip", get(gzip))
            .route("/slow", get(|| sleep_then_page(2_000)))
            .route("/ttfb", get(|| sleep_then_page(200)))
            .route("/robots-moved", get(robots_moved))
            .route(
                "/robots-to-private",
                get(|| async { found("http://10.1.2.3/robots.txt") }),
            )
            .route(
                "/robots.txt",
                get(|| async { text("User-agent: *\nDisallow: /x\n") }),
            )
            .layer(middleware::from_fn_with_state(Arc::clone(&seen), record))
            .with_state(addr);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { addr, seen }
    }

    pub(super) fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    /// The same server under the name `localhost`: another host for redirects.
    pub(super) fn localhost_url(&self, path: &str) -> Url {
        Url::parse(&format!("http://localhost:{}{path}", self.addr.port())).unwrap()
    }

    pub(super) fn paths(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter().map(|s| s.path.clone()).collect()
    }

    pub(super) fn last_request(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

async fn record(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    request: Request,
    next: Next,
) -> Response {
    seen.lock().unwrap().push(Seen {
        path: request.uri().path().to_owned(),
        headers: request.headers().clone(),
    });
    next.run(request).await
}

fn html(body: impl Into<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn text(body: impl Into<String>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body.into()).into_response()
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

async fn cross_host(State(addr): State<SocketAddr>) -> Response {
    found(&format!("http://localhost:{}/page", addr.port()))
}

async fn robots_moved(State(addr): State<SocketAddr>) -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(
            header::LOCATION,
            format!("http://localhost:{}/robots.txt", addr.port()),
        )],
    )
        .into_response()
}

async fn redirect_loop(Path(n): Path<u32>) -> Response {
    found(&format!("/loop/{}", n + 1))
}

async fn big_chunked() -> Response {
    // A stream has no Content-Length: the limit must be enforced while reading.
    let chunks = (0..10).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'z'; 1_000])));
    let body = Body::from_stream(futures::stream::iter(chunks));
    ([(header::CONTENT_TYPE, "text/html")], body).into_response()
}

async fn pdf() -> Response {
    ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.4").into_response()
}

async fn sitemap() -> Response {
    let xml = "<urlset><url><loc>http://example.com/</loc></url></urlset>";
    ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

async fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "120")],
        "slow down",
    )
        .into_response()
}

async fn gzip() -> Response {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(PAGE.as_bytes()).unwrap();
    let compressed = encoder.finish().unwrap();
    (
        [
            (header::CONTENT_TYPE, "text/html"),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        compressed,
    )
        .into_response()
}

async fn sleep_then_page(millis: u64) -> Response {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    html(PAGE)
}
