//! Hostile HTTP: malformed JSON, wrong content types, bodies longer or shorter than announced,
//! a slow-loris client, 10,000 headers, path traversal in every path parameter, and clients over
//! their rate limit — each gets a clear 4xx (or, for the slow client, a closed connection) and
//! changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::{Running, archive};
use marketplace_server::{RateLimit, ServerConfig};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` as it is on a new connection (half-closing it when `close`: the client
/// stops sending), and returns what the server answered before closing, within 10 s.
async fn raw(server: &Running, request: &[u8], close: bool) -> String {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("write");
    if close {
        stream.shutdown().await.expect("half-close");
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of the first response in `answer`.
fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// Nothing is registered, stored, or owned; only the test's own users and tokens exist.
async fn unchanged(server: &Running) {
    assert_eq!(
        server.client.registry().latest_event_seq().await.unwrap(),
        0
    );
    assert_eq!(server.client.store().stats().await.unwrap().objects, 0);
    let alice = marketplace_core::UserName::new("alice").unwrap();
    assert_eq!(server.client.tokens(&alice).await.unwrap().len(), 1);
    assert_eq!(server.client.users().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_and_lengths_are_4xx_and_change_nothing() {
    let server = Running::start().await;
    // Malformed JSON, the wrong shape, the wrong content type.
    for (body, content_type, expected) in [
        (
            r#"{"name": "x", "scopes": ["yank"]"#,
            "application/json",
            400,
        ),
        (r#"{"name": 7, "scopes": "yank"}"#, "application/json", 400),
        (r#"[1, 2, 3]"#, "application/json", 400),
        (
            r#"name=x&scopes=yank"#,
            "application/x-www-form-urlencoded",
            415,
        ),
        ("\u{0}\u{1}\u{2}", "application/json", 400),
    ] {
        let response = server
            .http
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(&server.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{body:?}");
        let error = common::error_of(response).await;
        assert_eq!(error.kind, "invalid", "{body:?}");
    }
    // A publish body that is JSON, not an archive.
    let response = server
        .http
        .put(server.url("/api/v1/packages"))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    unchanged(&server).await;

    // A body longer than announced: the server reads what was announced (not an archive: 400),
    // and the rest is not a request.
    let body = archive("web@1.0.0", "Web", &[]);
    let signed = server.sign(&body, &server.key.private_key).await;
    let head = |length: usize| {
        format!(
            "PUT /api/v1/packages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\ncontent-type: application/octet-stream\r\n{}: {}\r\n{}: {}\r\nContent-Length: {length}\r\n\r\n",
            server.token,
            marketplace_protocol::v1::SIGNATURE_HEADER,
            marketplace_protocol::v1::SignatureBody::from(&signed.signature).header_value(),
            marketplace_protocol::v1::PUBLISHED_AT_HEADER,
            marketplace_protocol::v1::published_at_header(signed.published_at),
        )
    };
    let mut longer = head(body.len() / 2).into_bytes();
    longer.extend_from_slice(&body);
    let answer = raw(&server, &longer, false).await;
    assert_eq!(status(&answer), 400, "{answer}");
    assert!(!answer.contains(" 500 "), "{answer}");
    unchanged(&server).await;

    // A body announced far larger than the limit: 413 at once, before any of it is sent.
    let started = Instant::now();
    let answer = raw(&server, head(10_000_000_000).as_bytes(), false).await;
    assert_eq!(status(&answer), 413, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    unchanged(&server).await;

    // A body cut in the middle: announced in full, half sent, then the client stops.
    let mut cut = head(body.len()).into_bytes();
    cut.extend_from_slice(&body[..body.len() / 2]);
    let answer = raw(&server, &cut, true).await;
    assert!(answer.is_empty() || status(&answer) == 400, "{answer}");
    unchanged(&server).await;

    // And the whole body, as announced, publishes.
    let mut whole = head(body.len()).into_bytes();
    whole.extend_from_slice(&body);
    assert_eq!(status(&raw(&server, &whole, false).await), 201);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_header_floods_refused() {
    let server = Running::with_config(
        ServerConfig::default().with_header_read_timeout(Duration::from_millis(500)),
    )
    .await;
    // A slow-loris client: a request line and one header, then nothing.
    let address = server.base.trim_start_matches("http://");
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || status(&answer) == 408, "{answer}");

    // 10,000 headers.
    let mut flood = String::from("GET /api/v1/keys HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10_000 {
        flood.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    flood.push_str("\r\n");
    let answer = raw(&server, flood.as_bytes(), false).await;
    assert!(answer.is_empty() || status(&answer) == 431, "{answer}");
    assert!(!answer.is_empty(), "hyper answers 431");

    // Garbage instead of HTTP.
    let answer = raw(
        &server,
        b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n",
        true,
    )
    .await;
    assert!(
        answer.is_empty() || (400..500).contains(&status(&answer)),
        "{answer}"
    );
    // The server still serves.
    let response = server.call(Method::GET, "/health", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_in_every_path_parameter_is_refused() {
    let server = Running::start().await;
    assert_eq!(
        server
            .publish(&archive("web@1.0.0", "Web", &[]))
            .await
            .status(),
        StatusCode::CREATED
    );
    let before = server.client.registry().latest_event_seq().await.unwrap();
    let token = server.token.clone();
    for evil in [
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e",
        "..%5C..%5Cwindows",
        "web%00",
        "%2F",
        "a%2Fb%2Fc",
    ] {
        let paths = [
            (Method::GET, format!("/api/v1/packages/{evil}/versions")),
            (Method::GET, format!("/api/v1/packages/{evil}/1.0.0")),
            (Method::GET, format!("/api/v1/packages/web/{evil}")),
            (Method::GET, format!("/api/v1/packages/web/{evil}/info")),
            (Method::GET, format!("/api/v1/packages/{evil}/1.0.0/stats")),
            (Method::GET, format!("/api/v1/packages/web/{evil}/download")),
            (Method::GET, format!("/api/v1/packages/{evil}/owners")),
            (Method::GET, format!("/api/v1/namespaces/{evil}/owners")),
            (Method::GET, format!("/api/v1/users/{evil}/keys")),
            (Method::PUT, format!("/api/v1/packages/{evil}/1.0.0/yank")),
            (Method::DELETE, format!("/api/v1/packages/web/{evil}/yank")),
            (Method::DELETE, format!("/api/v1/tokens/{evil}")),
            (Method::DELETE, format!("/api/v1/me/keys/{evil}")),
        ];
        for (method, path) in paths {
            // Sent as written: an HTTP client library would resolve `..` before sending.
            let body = if method == Method::PUT {
                r#"{"reason": "x"}"#
            } else {
                ""
            };
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\ncontent-type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let answer = raw(&server, request.as_bytes(), false).await;
            let code = status(&answer);
            assert!(code == 400 || code == 404, "{method} {path}: {answer}");
            assert!(
                answer.contains(r#""error":{"kind":"#),
                "{method} {path}: {answer}"
            );
        }
    }
    assert_eq!(
        server.client.registry().latest_event_seq().await.unwrap(),
        before,
        "nothing changed"
    );
    let alice = marketplace_core::UserName::new("alice").unwrap();
    assert_eq!(
        server.client.tokens(&alice).await.unwrap()[0].revoked_at,
        None
    );
    assert_eq!(server.client.keys_of(&alice).await.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_limit_get_429_with_retry_after() {
    let server = Running::with_config(
        ServerConfig::default()
            .with_rate_limit_per_token(Some(RateLimit::new(1, 3)))
            .with_rate_limit_per_address(Some(RateLimit::new(1, 6))),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = server
            .call(Method::GET, "/api/v1/me", Some(&server.token), None)
            .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&wait), "{wait}");
            let error = common::error_of(response).await;
            assert_eq!(error.kind, "rate_limited");
        }
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429].map(|c| StatusCode::from_u16(c).unwrap()),
        "the token's burst is 3"
    );
    // Another token has its own quota; the address's (6) runs out after it.
    let response = server
        .call(Method::GET, "/api/v1/me", Some(&server.admin_token), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    statuses.push(response.status());
    let mut last = StatusCode::OK;
    for _ in 0..4 {
        last = server
            .call(Method::GET, "/api/v1/me", Some(&server.admin_token), None)
            .await
            .status();
        statuses.push(last);
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count() as u64;
    // Refused before any route, and counted as such; the served ones under their route.
    let metrics = server
        .client
        .metrics()
        .expect("the server's metrics")
        .snapshot();
    let count = |route: &str, status: &str| match metrics.get(
        marketplace_server::HTTP_REQUESTS_TOTAL,
        &[("method", "GET"), ("route", route), ("status", status)],
    ) {
        Some(marketplace_core::MetricValue::Counter { value }) => *value,
        other => panic!("{route} {status}: {other:?}"),
    };
    assert_eq!(count("-", "429"), limited, "every limited request");
    assert_eq!(
        count("/api/v1/me", "200"),
        statuses.len() as u64 - limited,
        "every served one"
    );
    // And so in the Prometheus text (read from the server itself, to the limiter's taste:
    // the address's quota refills one request a second).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let text = server
        .call(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.lines().any(|l| l
            == format!(
                r#"marketplace_http_requests_total{{method="GET",route="-",status="429"}} {limited}"#
            )),
        "{text}"
    );
    server.stop().await;
}
