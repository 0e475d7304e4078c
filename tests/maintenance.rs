//! `latchkey flush-expired`: removes what can never matter again, and
//! nothing that still does, while the server keeps serving.

mod common;

use common::{tokens, TestServer};
use reqwest::StatusCode;
use serde_json::json;

// The tests here wait for child `latchkey` commands synchronously: on a
// multi-threaded runtime the in-process servers keep serving meanwhile (on
// a current-thread one, a server's write transaction caught open would hold
// SQLite's write lock until the command gave up with `database is locked`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_expired_removes_expired_sessions_and_tokens_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    // Both servers' clocks run 10 s behind the command's: what they issue
    // for 6 s has expired by the time the command looks, with no waiting.
    let behind = || latchkey::auth::Clock::skewed(-10);
    let short =
        TestServer::start_on_clock(tempfile::tempdir().unwrap(), url.clone(), behind(), |c| {
            c.refresh_token_lifetime_seconds = 6;
            c.access_token_lifetime_seconds = 6;
        })
        .await;
    let live = TestServer::start_on_clock(dir, url.clone(), behind(), |_| {}).await;
    let a = short.new_user().await;
    short.new_user().await;
    // A rotation leaves a rotated token behind in the short session.
    let r = short
        .post("/auth/token/refresh/", json!({"refresh": tokens(&a).1}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let keeper = live.new_user().await;
    let throttled = live.login("ghost@example.com", "Wrong-Password-99").await;
    assert_eq!(throttled.status(), StatusCode::UNAUTHORIZED);

    let out = common::latchkey_command()
        .args([
            "flush-expired",
            "--database-url",
            &url,
            "--login-throttle-window-seconds",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("flushed 2 expired sessions, "), "{stdout}");
    assert!(!stdout.contains(" 0 stale throttle counters"), "{stdout}");

    // The live session was not touched and keeps working, refresh included.
    let (access, refresh) = tokens(&keeper);
    assert_eq!(
        live.get_as(&access, "/auth/me").await.status(),
        StatusCode::OK
    );
    let r = live
        .post("/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A second run has nothing left to do.
    let out = common::latchkey_command()
        .args(["flush-expired", "--database-url", &url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("flushed 0 expired sessions, "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_expired_removes_expired_passkey_challenges_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    // A live challenge first (a server on the command's clock), then two
    // issued by a server six minutes behind: expired by the command's clock.
    let now = TestServer::start_on(dir, url.clone(), |_| {}).await;
    let behind = TestServer::start_on_clock(
        tempfile::tempdir().unwrap(),
        url.clone(),
        latchkey::auth::Clock::skewed(-360),
        |_| {},
    )
    .await;
    for server in [&now, &behind, &behind] {
        let r = server.post("/auth/passkeys/login/options", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let flush = || {
        let out = common::latchkey_command()
            .args(["flush-expired", "--database-url", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = flush();
    assert!(
        stdout.contains(", 2 expired passkey challenges"),
        "{stdout}"
    );
    let stdout = flush();
    assert!(
        stdout.contains(", 0 expired passkey challenges"),
        "{stdout}"
    );
}
