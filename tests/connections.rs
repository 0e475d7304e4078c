//! Slow, idle and too many clients: every connection is bounded in time,
//! the number served at once is bounded, and `/healthz` keeps answering.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Read until the server closes the connection (or `within` passes); what
/// was read, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn a_client_that_stops_mid_header_is_disconnected() {
    let s = TestServer::start_with(|c| c.header_read_timeout_seconds = 1).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Ag")
        .await
        .unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_disconnected() {
    let s = TestServer::start_with(|c| c.header_read_timeout_seconds = 1).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "still open after 5 s");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::start_with(|c| {
        c.header_read_timeout_seconds = 30;
        c.idle_timeout_seconds = 1;
    })
    .await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (seen, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(closed, "kept alive past the idle timeout");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_client_that_stops_mid_body_gets_408_and_is_disconnected() {
    let s = TestServer::start_with(|c| c.body_read_timeout_seconds = 1).await;
    let csrf = s.csrf().await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nX-CSRFToken: {csrf}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (seen, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("\"code\":\"request_timeout\""), "{seen}");
    assert!(closed);
}

#[tokio::test]
async fn healthz_answers_beside_two_thousand_idle_connections() {
    let s = TestServer::start().await;
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let started = Instant::now();
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(idle);
}

#[tokio::test]
async fn beyond_the_connection_limit_a_client_waits_for_a_free_slot() {
    let s = TestServer::start_with(|c| {
        c.max_connections = 4;
        c.header_read_timeout_seconds = 2;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    // Served only once the idle ones were cut at the header timeout.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1_500), "{waited:?}");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
}
