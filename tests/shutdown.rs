//! SIGTERM: the listener closes at once, requests in flight finish, and the
//! process exits within the shutdown deadline whatever clients do.

mod common;

use std::time::Duration;

use common::ServerProcess;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn server(dir: &tempfile::TempDir, deadline: &str) -> ServerProcess {
    let url = format!("sqlite://{}", dir.path().join("shutdown.db").display());
    ServerProcess::start(&[
        ("LATCHKEY_DATABASE_URL", &url),
        ("LATCHKEY_SHUTDOWN_DEADLINE_SECONDS", deadline),
        // Nothing but the shutdown deadline may cut the stalled clients.
        ("LATCHKEY_HEADER_READ_TIMEOUT_SECONDS", "600"),
        ("LATCHKEY_BODY_READ_TIMEOUT_SECONDS", "600"),
        ("LATCHKEY_IDLE_TIMEOUT_SECONDS", "600"),
    ])
    .await
}

#[tokio::test]
async fn sigterm_with_stalled_clients_exits_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "2").await;
    let csrf = common::fetch_csrf(&reqwest::Client::new(), &s.base).await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut mid_header = TcpStream::connect(s.addr()).await.unwrap();
        mid_header
            .write_all(b"GET /healthz HTTP/1.1\r\nHo")
            .await
            .unwrap();
        stalled.push(mid_header);
        let mut mid_body = TcpStream::connect(s.addr()).await.unwrap();
        let head = format!(
            "POST /auth/login HTTP/1.1\r\nHost: x\r\nX-CSRFToken: {csrf}\r\n\
             Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{{"
        );
        mid_body.write_all(head.as_bytes()).await.unwrap();
        stalled.push(mid_body);
        stalled.push(TcpStream::connect(s.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, took) = tokio::task::spawn_blocking(move || s.terminate_timed())
        .await
        .unwrap();
    println!(
        "SIGTERM with 60 stalled clients (mid-header, mid-body, silent), deadline 2 s: {status} after {took:?}"
    );
    assert!(status.success(), "{status:?}");
    // The connections get the deadline less 1 s kept for closing the
    // database; the process is gone by the deadline (some slack for exit).
    assert!(
        took >= Duration::from_millis(900),
        "{took:?}: the stalled connections were not waited for"
    );
    assert!(
        took < Duration::from_millis(2_500),
        "{took:?}: past the 2 s deadline"
    );
    drop(stalled);
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_is_answered_and_new_connections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "10").await;
    let addr = s.addr();
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    in_flight
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::task::spawn_blocking(move || s.terminate_timed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The listener is closed: nobody new gets in.
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    // The request begun before the signal completes and is answered.
    in_flight.write_all(b"\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        in_flight.read_to_string(&mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (status, took) = stopping.await.unwrap();
    println!("SIGTERM with one request in flight: new connections refused, the request answered 200, exited {status} after {took:?}");
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(5),
        "{took:?}: it waited for nothing"
    );
}
