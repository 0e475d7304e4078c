//! Two instances on one PostgreSQL database whose clocks disagree by a
//! minute (an injected clock each): the grace window is measured on the
//! database's clock, so it holds its length whichever instance rotated and
//! whichever sees the replay; token expiry and CSRF ages tolerate the
//! configured leeway and no more. Needs PostgreSQL (SQLite has one writer
//! process, so one clock): skipped without it, except under `CI=true`.

mod common;

use common::{fresh_postgres_database, postgres_available, tokens, TestServer};
use latchkey::auth::Clock;
use reqwest::StatusCode;
use serde_json::json;

/// Two instances on one fresh database, their clocks `a` and `b` seconds
/// off, with `leeway` seconds of clock leeway.
async fn instances(a: i64, b: i64, leeway: u64) -> Option<(TestServer, TestServer)> {
    if !postgres_available().await {
        return None;
    }
    let url = fresh_postgres_database().await;
    let adjust = |c: &mut latchkey::config::Config| {
        c.session_cache_millis = 0;
        c.clock_leeway_seconds = leeway;
        // A short window, so the test waits seconds, not tens of them: the
        // database's clock cannot be moved.
        c.refresh_reuse_grace_seconds = 2;
    };
    let a = TestServer::start_on_clock(
        tempfile::tempdir().unwrap(),
        url.clone(),
        Clock::skewed(a),
        adjust,
    )
    .await;
    let b = TestServer::start_on_clock(tempfile::tempdir().unwrap(), url, Clock::skewed(b), adjust)
        .await;
    Some((a, b))
}

/// A login on `on` carrying a CSRF token `from` issued.
async fn login_on_with_csrf_of(on: &TestServer, from: &TestServer) -> reqwest::Response {
    on.client
        .post(on.url("/auth/login"))
        .header("X-CSRFToken", from.csrf().await)
        .json(&json!({"email": "x@example.com", "password": "whatever-it-is"}))
        .send()
        .await
        .unwrap()
}

async fn refresh(s: &TestServer, token: &str) -> reqwest::Response {
    s.post("/auth/token/refresh/", json!({ "refresh": token }))
        .await
}

#[tokio::test]
async fn an_instance_behind_does_not_stretch_the_grace_window() {
    // A rotates; B, a minute behind, sees the replay 3 s later: reuse.
    let Some((a, b)) = instances(0, -60, 120).await else {
        return;
    };
    let (_, r0) = tokens(&a.new_user().await);
    let rotated = refresh(&a, &r0).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(refresh(&b, &r0).await.status(), StatusCode::UNAUTHORIZED);
    println!(
        "skew -60 s: a replay 3 s after rotation (window 2 s) seen by the instance behind: reuse"
    );
    let r1: serde_json::Value = rotated.json().await.unwrap();
    assert_eq!(
        refresh(&a, r1["refresh"].as_str().unwrap()).await.status(),
        StatusCode::UNAUTHORIZED,
        "the replay after the window ended the session"
    );
}

#[tokio::test]
async fn an_instance_ahead_does_not_shrink_the_grace_window() {
    // A rotates; B, a minute ahead, sees the second tab's replay at once:
    // still inside the window, and handed the same token.
    let Some((a, b)) = instances(0, 60, 120).await else {
        return;
    };
    let (_, r0) = tokens(&a.new_user().await);
    let first: serde_json::Value = refresh(&a, &r0).await.json().await.unwrap();
    let second = refresh(&b, &r0).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first["refresh"], second["refresh"]);
    println!("skew +60 s: a replay at once seen by the instance ahead: inside the window, the same token");
}

#[tokio::test]
async fn tokens_and_csrf_tokens_of_an_instance_within_the_leeway_are_accepted() {
    // B is 4 s behind A (leeway 5 s): what A issues is good on B.
    let Some((a, b)) = instances(0, -4, 5).await else {
        return;
    };
    let (access, _) = tokens(&a.new_user().await);
    assert_eq!(b.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    let r = login_on_with_csrf_of(&b, &a).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "CSRF passed");
}

#[tokio::test]
async fn tokens_of_an_instance_far_ahead_are_refused_until_their_issue_time() {
    // A is a minute ahead of B: A's tokens claim to be issued in B's future.
    let Some((a, b)) = instances(60, 0, 5).await else {
        return;
    };
    let (access, _) = tokens(&a.new_user().await);
    assert_eq!(
        b.get_as(&access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = login_on_with_csrf_of(&b, &a).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "CSRF token from the future"
    );
}
