//! Email verification (CONTRACT Part 2, "Email verification"): the link
//! registration mails, its resend, `email_verified` on `/auth/me`, and
//! `LATCHKEY_REQUIRE_VERIFIED_EMAIL`.

mod common;

use common::mail::{eml_token, wait_for_eml};
use common::{assert_error, tokens, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn me(s: &TestServer, access: &str) -> Value {
    let r = s.get_as(access, "/auth/me").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn verify(s: &TestServer, token: &str) -> (StatusCode, Value) {
    let r = s.post("/auth/email/verify", json!({"token": token})).await;
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn registration_mails_a_link_that_verifies_the_address_once() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let (access, _) = tokens(&user);
    let body = me(&s, &access).await;
    assert_eq!(
        body,
        json!({"id": user["id"], "email": email, "name": user["name"], "email_verified": false})
    );

    let mail = wait_for_eml(&s.mail_dir, email, 1).await;
    assert!(mail[0].subject().contains("confirm your email address"));
    assert!(mail[0].raw.contains("multipart/alternative"));
    assert!(mail[0].raw.contains("text/plain") && mail[0].raw.contains("text/html"));
    let token = eml_token(&s.mail_dir, email, "/verify-email").await;
    assert_eq!(
        verify(&s, &token).await,
        (StatusCode::OK, json!({"detail": "Email verified."}))
    );
    assert_eq!(me(&s, &access).await["email_verified"], true);
    let (status, body) = verify(&s, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"token": ["Invalid or expired token."]}));
}

#[tokio::test]
async fn a_verification_link_expires_after_its_lifetime() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let token = eml_token(&s.mail_dir, email, "/verify-email").await;
    s.clock.advance(259_201);
    assert_eq!(verify(&s, &token).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn resend_mails_a_new_link_and_is_throttled() {
    let s = TestServer::start_with(|c| c.mail_requests_per_email = 2).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let (access, _) = tokens(&user);
    for _ in 0..2 {
        let r = s
            .post_as(&access, "/auth/email/verify/resend", json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["detail"], "Verification email sent.");
    }
    let r = s
        .post_as(&access, "/auth/email/verify/resend", json!({}))
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;

    let mail = wait_for_eml(&s.mail_dir, email, 3).await;
    let newest = mail.last().unwrap().token("/verify-email").unwrap();
    assert_eq!(verify(&s, &newest).await.0, StatusCode::OK);
    let r = s
        .post_as(&access, "/auth/email/verify/resend", json!({}))
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "Email is already verified.");
}

#[tokio::test]
async fn resend_needs_an_access_token() {
    let s = TestServer::start().await;
    let r = s.post("/auth/email/verify/resend", json!({})).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
}

#[tokio::test]
async fn with_verified_addresses_required_registration_gives_no_tokens_and_login_waits_for_the_link(
) {
    let s = TestServer::start_with(|c| c.require_verified_email = true).await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "verifier", "email": "verifier@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": body["id"], "email": "verifier@example.com", "name": "verifier", "email_verified": false})
    );

    let r = s.login("verifier@example.com", PASSWORD).await;
    let refused = assert_error(r, StatusCode::FORBIDDEN, "email_not_verified").await;
    assert_eq!(refused["detail"], "E-mail is not verified.");
    // A wrong password is still the usual 401, whatever the address.
    let r = s.login("verifier@example.com", "not-the-password").await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;

    let token = eml_token(&s.mail_dir, "verifier@example.com", "/verify-email").await;
    assert_eq!(verify(&s, &token).await.0, StatusCode::OK);
    let r = s.login("verifier@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn by_default_registering_then_logging_in_at_once_still_works() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let r = s.login(user["email"].as_str().unwrap(), PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}
