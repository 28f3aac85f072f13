//! The fetcher against a real HTTP server on loopback.

mod server;

use std::time::Duration;

use axum::http::header;
use tokio::net::TcpListener;

use super::*;
use server::{PAGE, Server};

fn settings() -> FetchSettings {
    FetchSettings {
        allow_private_addresses: true,
        ..FetchSettings::default()
    }
}

async fn fetch(settings: FetchSettings, url: &Url, accept: Accept) -> FetchResult {
    Fetcher::new(settings).unwrap().fetch(url, accept).await
}

#[tokio::test]
async fn fetches_an_html_page() {
    let server = Server::start().await;
    let url = server.url("/page");
    let result = fetch(settings(), &url, Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
    assert_eq!(result.status, Some(200));
    assert_eq!(result.final_url, url);
    assert_eq!(
        result.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(result.body.as_deref(), Some(PAGE.as_bytes()));
    assert_eq!(result.error, None);
    assert!(result.elapsed >= result.ttfb);
    let request = server.last_request();
    assert_eq!(
        request.headers.get(header::USER_AGENT).unwrap(),
        FetchSettings::default().user_agent.as_str()
    );
}

#[tokio::test]
async fn refuses_loopback_unless_allowed() {
    let server = Server::start().await;
    let strict = FetchSettings::default();
    for url in [server.localhost_url("/page"), server.url("/page")] {
        let result = fetch(strict.clone(), &url, Accept::Html).await;
        assert_eq!(result.outcome, Outcome::BlockedAddress, "{url}: {result:?}");
        assert_eq!(result.status, None);
        assert!(result.error.is_some());
    }
    assert!(
        server.paths().is_empty(),
        "the server saw {:?}",
        server.paths()
    );

    let listed = FetchSettings {
        allowed_addresses: vec!["127.0.0.1".parse().unwrap()],
        ..FetchSettings::default()
    };
    let result = fetch(listed, &server.localhost_url("/page"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
}

#[tokio::test]
async fn refuses_a_private_ip_literal_without_connecting() {
    let url = Url::parse("http://10.1.2.3/").unwrap();
    let result = fetch(FetchSettings::default(), &url, Accept::Html).await;
    // A connection attempt would have ended in a timeout or a network error instead.
    assert_eq!(result.outcome, Outcome::BlockedAddress, "{result:?}");
    assert_eq!(result.status, None);
}

/// Settings that follow page redirects in place (the crawler's default hands them on).
fn following() -> FetchSettings {
    FetchSettings {
        page_redirects: 5,
        ..settings()
    }
}

#[tokio::test]
async fn hands_a_same_host_redirect_on_by_default() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/hop"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Redirect, "{result:?}");
    assert_eq!(result.redirect_to, Some(server.url("/page")));
    assert_eq!(server.paths(), ["/hop"]);
}

#[tokio::test]
async fn follows_a_same_host_redirect() {
    let server = Server::start().await;
    let result = fetch(following(), &server.url("/hop"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
    assert_eq!(result.final_url, server.url("/page"));
    assert_eq!(result.url, server.url("/hop"));
    assert_eq!(result.redirect_to, None);
    assert_eq!(server.paths(), ["/hop", "/page"]);
}

#[tokio::test]
async fn returns_a_cross_host_redirect_unfollowed() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/cross"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Redirect, "{result:?}");
    assert_eq!(result.status, Some(302));
    assert_eq!(result.final_url, server.url("/cross"));
    assert_eq!(result.redirect_to, Some(server.localhost_url("/page")));
    assert_eq!(result.body, None);
    assert_eq!(server.paths(), ["/cross"]);
}

#[tokio::test]
async fn stops_a_redirect_loop_after_max_redirects() {
    let server = Server::start().await;
    let result = fetch(following(), &server.url("/loop/0"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Redirect, "{result:?}");
    assert_eq!(result.final_url, server.url("/loop/5"));
    assert_eq!(result.redirect_to, Some(server.url("/loop/6")));
    assert_eq!(server.paths().len(), 6, "the first request and 5 redirects");
}

#[tokio::test]
async fn redirect_without_location_is_an_http_error() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/no-location"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::HttpError, "{result:?}");
    assert_eq!(result.status, Some(302));
}

#[tokio::test]
async fn robots_follows_redirects_across_hosts_but_not_to_private_literals() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/robots-moved"), Accept::Robots).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
    assert_eq!(result.final_url, server.localhost_url("/robots.txt"));

    let loopback_only = FetchSettings {
        allowed_addresses: vec!["127.0.0.1".parse().unwrap()],
        ..FetchSettings::default()
    };
    let url = server.url("/robots-to-private");
    let result = fetch(loopback_only, &url, Accept::Robots).await;
    assert_eq!(result.outcome, Outcome::BlockedAddress, "{result:?}");
}

#[tokio::test]
async fn refuses_bodies_over_the_limit() {
    let server = Server::start().await;
    let small = FetchSettings {
        max_body_bytes: 1_024,
        ..settings()
    };
    for path in ["/big", "/big-chunked"] {
        let result = fetch(small.clone(), &server.url(path), Accept::Html).await;
        assert_eq!(result.outcome, Outcome::TooLarge, "{path}: {result:?}");
        assert_eq!(result.body, None);
        assert_eq!(result.status, Some(200));
    }
    let result = fetch(small, &server.url("/big.txt"), Accept::Robots).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
    assert_eq!(result.body.map(|b| b.len()), Some(1_024));
}

#[tokio::test]
async fn reads_only_accepted_content_types() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/doc.pdf"), Accept::Html).await;
    assert_eq!(
        result.outcome,
        Outcome::UnsupportedContentType,
        "{result:?}"
    );
    assert_eq!(result.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(result.body, None);

    let result = fetch(settings(), &server.url("/sitemap.xml"), Accept::Sitemap).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
    let result = fetch(settings(), &server.url("/page"), Accept::Sitemap).await;
    assert_eq!(
        result.outcome,
        Outcome::UnsupportedContentType,
        "{result:?}"
    );
    let result = fetch(settings(), &server.url("/doc.pdf"), Accept::Robots).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
}

#[test]
fn content_types_per_accept() {
    let cases = [
        (Accept::Html, Some("text/html"), true),
        (Accept::Html, Some("Text/HTML ; charset=ISO-8859-1"), true),
        (Accept::Html, Some("application/xhtml+xml"), true),
        (Accept::Html, Some("text/plain"), false),
        (Accept::Html, None, false),
        (
            Accept::Sitemap,
            Some("application/xml; charset=utf-8"),
            true,
        ),
        (Accept::Sitemap, Some("text/xml"), true),
        (Accept::Sitemap, Some("text/plain"), true),
        (Accept::Sitemap, Some("application/x-gzip"), false),
        (Accept::Sitemap, None, false),
        (Accept::Robots, Some("application/octet-stream"), true),
        (Accept::Robots, None, true),
    ];
    for (accept, content_type, expected) in cases {
        assert_eq!(
            accept.accepts(content_type),
            expected,
            "{accept:?} {content_type:?}"
        );
    }
}

#[tokio::test]
async fn throttling_is_an_http_error_with_retry_after() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/throttled"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::HttpError, "{result:?}");
    assert_eq!(result.status, Some(429));
    assert_eq!(result.headers_retry_after.as_deref(), Some("120"));
    assert_eq!(result.body, None);
}

#[tokio::test]
async fn decodes_gzip() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/gzip"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
    assert_eq!(result.body.as_deref(), Some(PAGE.as_bytes()));
    let request = server.last_request();
    let accept_encoding = request.headers.get(header::ACCEPT_ENCODING).unwrap();
    let accept_encoding = accept_encoding.to_str().unwrap();
    assert!(accept_encoding.contains("gzip"), "{accept_encoding}");
    assert!(accept_encoding.contains("br"), "{accept_encoding}");
}

#[tokio::test]
async fn times_out_on_a_slow_server() {
    let server = Server::start().await;
    let impatient = FetchSettings {
        timeout: Duration::from_millis(300),
        ..settings()
    };
    let result = fetch(impatient, &server.url("/slow"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Timeout, "{result:?}");
    assert_eq!(result.status, None);
    assert!(
        result.ttfb >= Duration::from_millis(300),
        "{:?}",
        result.ttfb
    );
    assert!(
        result.elapsed < Duration::from_millis(1_900),
        "{:?}",
        result.elapsed
    );
}

#[tokio::test]
async fn measures_time_to_first_byte() {
    let server = Server::start().await;
    let result = fetch(settings(), &server.url("/ttfb"), Accept::Html).await;
    assert_eq!(result.outcome, Outcome::Fetched, "{result:?}");
    assert!(
        result.ttfb >= Duration::from_millis(200),
        "{:?}",
        result.ttfb
    );
    assert!(result.elapsed >= result.ttfb);
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/")).unwrap();
    let result = fetch(settings(), &url, Accept::Html).await;
    assert_eq!(result.outcome, Outcome::NetworkError, "{result:?}");
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("onnect")),
        "{result:?}"
    );
}
