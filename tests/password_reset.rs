//! Password reset by email (CONTRACT Part 2, "Password reset"): the same
//! answer for every address, single-use expiring links, and a reset that
//! ends every session and clears the login throttle.

mod common;

use common::mail::{eml_to, eml_token, wait_for_eml};
use common::{assert_error, tokens, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "Quiet-Harbor-Lamp-42";
const SENT: &str = "If an account with this email exists, a password reset link has been sent.";

async fn request_reset(s: &TestServer, email: &str) -> (StatusCode, Value) {
    let r = s
        .post("/auth/password/reset", json!({"email": email}))
        .await;
    (r.status(), r.json().await.unwrap())
}

async fn confirm(s: &TestServer, token: &str, password: &str) -> (StatusCode, Value) {
    let r = s
        .post(
            "/auth/password/reset/confirm",
            json!({"token": token, "new_password": password}),
        )
        .await;
    (r.status(), r.json().await.unwrap())
}

async fn reset_token(s: &TestServer, email: &str) -> String {
    let (status, _) = request_reset(s, email).await;
    assert_eq!(status, StatusCode::OK);
    eml_token(&s.mail_dir, email, "/reset-password").await
}

#[tokio::test]
async fn a_reset_request_answers_the_same_for_known_unknown_and_inactive_addresses() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let inactive = s.new_user().await;
    let inactive_email = inactive["email"].as_str().unwrap();
    let store = latchkey::store::Store::connect(
        &s.database_url,
        &latchkey::store::PoolConfig {
            max_connections: 1,
            acquire_timeout: std::time::Duration::from_secs(5),
            session_cache_ttl: std::time::Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let id = inactive["id"].as_i64().unwrap();
    store.set_active(id, false, s.clock.now()).await.unwrap();
    store.close().await;

    let known = request_reset(&s, email).await;
    let unknown = request_reset(&s, "nobody-here@example.com").await;
    let deactivated = request_reset(&s, inactive_email).await;
    assert_eq!(known, unknown);
    assert_eq!(known, deactivated);
    assert_eq!(known, (StatusCode::OK, json!({ "detail": SENT })));

    // Only the real account got a link.
    wait_for_eml(&s.mail_dir, email, 2).await; // verification + reset
    assert!(eml_to(&s.mail_dir, "nobody-here@example.com").is_empty());
    // The deactivated account has its registration's link only.
    assert_eq!(eml_to(&s.mail_dir, inactive_email).len(), 1);
}

#[tokio::test]
async fn the_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let (access, refresh) = tokens(&user);
    let token = reset_token(&s, email).await;

    assert_eq!(
        confirm(&s, &token, NEW_PASSWORD).await,
        (
            StatusCode::OK,
            json!({"detail": "Password has been reset."})
        )
    );
    // Every session ended: the access token and the refresh token are refused.
    assert_eq!(
        s.get_as(&access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = s
        .post("/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The old password no longer works, the new one does.
    assert_eq!(
        s.login(email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let login = s.login(email, NEW_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let (access, _) = tokens(&login.json().await.unwrap());
    // The address counts as verified.
    let me: Value = s.get_as(&access, "/auth/me").await.json().await.unwrap();
    assert_eq!(me["email_verified"], true, "{me}");
    // Single use.
    let (status, body) = confirm(&s, &token, "Another-Fine-Password-7").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"token": ["Invalid or expired token."]}));
    // A "password changed" notice was mailed.
    let mail = wait_for_eml(&s.mail_dir, email, 3).await;
    assert!(
        mail.iter()
            .any(|m| m.subject().contains("your password was changed")),
        "{:?}",
        mail.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_refused_new_password_leaves_the_token_usable() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let token = reset_token(&s, email).await;

    let (status, body) = confirm(&s, &token, "12345678").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["new_password"].is_array(), "{body}");
    assert!(body.get("token").is_none(), "{body}");
    assert_eq!(confirm(&s, &token, NEW_PASSWORD).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_reset_link_expires_after_its_lifetime() {
    let s = TestServer::start_with(|c| c.password_reset_token_lifetime_seconds = 600).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let token = reset_token(&s, email).await;
    s.clock.advance(601);
    let (status, body) = confirm(&s, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"token": ["Invalid or expired token."]}));
}

#[tokio::test]
async fn a_newer_reset_does_not_revive_and_a_used_one_uses_up_the_others() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let first = reset_token(&s, email).await;
    let (status, _) = request_reset(&s, email).await;
    assert_eq!(status, StatusCode::OK);
    wait_for_eml(&s.mail_dir, email, 3).await;
    let second = eml_token(&s.mail_dir, email, "/reset-password").await;
    assert_ne!(first, second);
    assert_eq!(confirm(&s, &second, NEW_PASSWORD).await.0, StatusCode::OK);
    assert_eq!(
        confirm(&s, &first, "Another-Fine-Password-7").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn malformed_and_made_up_tokens_are_refused_as_invalid() {
    let s = TestServer::start().await;
    for token in [
        "x",
        "A".repeat(43).as_str(),
        "../../etc/passwd",
        &"é".repeat(43),
    ] {
        let (status, body) = confirm(&s, token, NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{token}");
        assert_eq!(
            body,
            json!({"token": ["Invalid or expired token."]}),
            "{token}"
        );
    }
    let r = s.post("/auth/password/reset/confirm", json!({})).await;
    let body: Value = r.json().await.unwrap();
    assert!(
        body["token"].is_array() && body["new_password"].is_array(),
        "{body}"
    );
}

#[tokio::test]
async fn a_reset_clears_the_login_throttle() {
    let s = TestServer::start_with(|c| c.login_failures_per_account = 3).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(
            s.login(email, "wrong-password-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.login(email, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let token = reset_token(&s, email).await;
    assert_eq!(confirm(&s, &token, NEW_PASSWORD).await.0, StatusCode::OK);
    assert_eq!(s.login(email, NEW_PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn requests_beyond_the_limit_per_address_are_answered_alike_and_send_nothing() {
    let s = TestServer::start_with(|c| c.mail_requests_per_email = 2).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    for _ in 0..4 {
        let known = request_reset(&s, email).await;
        let unknown = request_reset(&s, "nobody-here@example.com").await;
        assert_eq!(known, unknown);
        assert_eq!(known.0, StatusCode::OK);
    }
    // Registration's link and two reset links arrive; the rest were
    // suppressed: nothing else is left in the outbox to be sent.
    wait_for_eml(&s.mail_dir, email, 3).await;
    let store = latchkey::store::Store::connect(
        &s.database_url,
        &latchkey::store::PoolConfig {
            max_connections: 1,
            acquire_timeout: std::time::Duration::from_secs(5),
            session_cache_ttl: std::time::Duration::ZERO,
        },
    )
    .await
    .unwrap();
    // A delivered message's row goes just after its file is written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut queued = store.list_mail().await.unwrap();
    while !queued.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        queued = store.list_mail().await.unwrap();
    }
    store.close().await;
    assert!(queued.is_empty(), "{queued:?}");
    assert_eq!(eml_to(&s.mail_dir, email).len(), 3);
}

#[tokio::test]
async fn requests_beyond_the_limit_per_client_get_429_for_known_and_unknown_alike() {
    let s = TestServer::start_with(|c| c.mail_requests_per_address = 3).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    for i in 0..3 {
        let (status, _) = request_reset(&s, &format!("someone{i}@example.com")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let known = s
        .post("/auth/password/reset", json!({"email": email}))
        .await;
    assert!(known.headers().contains_key("retry-after"));
    let known = assert_error(known, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    let unknown = s
        .post(
            "/auth/password/reset",
            json!({"email": "nobody-here@example.com"}),
        )
        .await;
    let unknown = assert_error(unknown, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn the_reset_link_points_at_the_app_never_at_the_request_host() {
    let s = TestServer::start_with(|c| c.app_url = "https://app.example.com".into()).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let csrf = s.csrf().await;
    let r = s
        .client
        .post(s.url("/auth/password/reset"))
        .header("X-CSRFToken", csrf)
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mail = wait_for_eml(&s.mail_dir, email, 2).await;
    let text = mail.last().unwrap().decoded();
    assert!(
        text.contains("https://app.example.com/reset-password?token="),
        "{text}"
    );
    assert!(!text.contains("evil.example"));
}

#[tokio::test]
async fn a_configured_link_template_replaces_the_default_link() {
    let s = TestServer::start_with(|c| {
        c.reset_password_url = Some("https://app.example.com/#/reset/{token}".into())
    })
    .await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    request_reset(&s, email).await;
    let mail = wait_for_eml(&s.mail_dir, email, 2).await;
    let text = mail.last().unwrap().decoded();
    let token = text
        .split("https://app.example.com/#/reset/")
        .nth(1)
        .map(|t| t.chars().take(43).collect::<String>())
        .unwrap();
    assert_eq!(confirm(&s, &token, NEW_PASSWORD).await.0, StatusCode::OK);
}

#[tokio::test]
async fn mail_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let token = reset_token(&s, email).await;
    for (path, _) in common::mail::eml_files(&s.mail_dir) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let dir_mode = std::fs::metadata(&s.mail_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert_eq!(confirm(&s, &token, NEW_PASSWORD).await.0, StatusCode::OK);
}
