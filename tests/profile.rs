//! The caller's own account (CONTRACT Part 2, "Profile, email change,
//! deletion"): renaming, an email change confirmed by the new address and
//! announced to the old one, and deletion.

mod common;

use common::mail::{eml_to, eml_token, wait_for_eml};
use common::{assert_error, tokens, TestServer, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn patch_me(s: &TestServer, access: &str, body: Value) -> reqwest::Response {
    s.request(Method::PATCH, "/auth/me")
        .await
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn delete_me(s: &TestServer, access: &str, body: Value) -> reqwest::Response {
    s.request(Method::DELETE, "/auth/me")
        .await
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn patch_me_renames_the_caller_with_registrations_rules() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let other = s.new_user().await;
    let (access, _) = tokens(&user);

    let r = patch_me(&s, &access, json!({"name": "  Ada Lovelace "})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": user["id"], "email": user["email"], "name": "Ada Lovelace", "email_verified": false})
    );
    let me: Value = s.get_as(&access, "/auth/me").await.json().await.unwrap();
    assert_eq!(me["name"], "Ada Lovelace");

    let taken = other["name"].as_str().unwrap().to_uppercase();
    let r = patch_me(&s, &access, json!({ "name": taken })).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name": ["user with this name already exists."]})
    );
    let r = patch_me(&s, &access, json!({"name": ""})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = patch_me(&s, &access, json!({})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"name": ["This field is required."]}));
}

#[tokio::test]
async fn an_email_change_is_confirmed_by_the_new_address_and_announced_to_the_old() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let old = user["email"].as_str().unwrap();
    let (access, _) = tokens(&user);
    let new = old.replace("@example.com", "@example.org");

    let r = s
        .post_as(
            &access,
            "/auth/email/change",
            json!({"email": new, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Nothing changes before the confirmation.
    let me: Value = s.get_as(&access, "/auth/me").await.json().await.unwrap();
    assert_eq!(me["email"], old);

    let notice = wait_for_eml(&s.mail_dir, old, 2).await;
    assert!(notice
        .iter()
        .any(|m| m.subject().contains("is being changed") && m.decoded().contains(&new)));
    assert!(notice
        .iter()
        .all(|m| m.token("/confirm-email-change").is_none()));
    let token = eml_token(&s.mail_dir, &new, "/confirm-email-change").await;
    let r = s
        .post("/auth/email/change/confirm", json!({"token": token}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let me: Value = s.get_as(&access, "/auth/me").await.json().await.unwrap();
    assert_eq!(me["email"], new.as_str());
    assert_eq!(me["email_verified"], true);
    assert_eq!(s.login(&new, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        s.login(old, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Single use.
    let r = s
        .post("/auth/email/change/confirm", json!({"token": token}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_email_change_needs_the_password_and_a_free_address() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let other = s.new_user().await;
    let (access, _) = tokens(&user);
    let r = s
        .post_as(
            &access,
            "/auth/email/change",
            json!({"email": "fresh@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(body["password"].is_array(), "{body}");
    let r = s
        .post_as(
            &access,
            "/auth/email/change",
            json!({"email": other["email"], "password": PASSWORD}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"email": ["user with this email already exists."]})
    );
    let r = s
        .post(
            "/auth/email/change",
            json!({"email": "x@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
}

#[tokio::test]
async fn confirming_an_address_taken_meanwhile_is_refused_and_changes_nothing() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let r = s
        .post_as(
            &access,
            "/auth/email/change",
            json!({"email": "contested@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = eml_token(
        &s.mail_dir,
        "contested@example.com",
        "/confirm-email-change",
    )
    .await;
    s.register("contester", "contested@example.com").await;
    let r = s
        .post("/auth/email/change/confirm", json!({"token": token}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"email": ["user with this email already exists."]})
    );
    let me: Value = s.get_as(&access, "/auth/me").await.json().await.unwrap();
    assert_eq!(me["email"], user["email"]);
}

#[tokio::test]
async fn deleting_the_account_ends_every_session_and_frees_the_email_and_name() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let name = user["name"].as_str().unwrap();
    let (access, refresh) = tokens(&user);
    let login = s.login(email, PASSWORD).await;
    let (other_access, _) = tokens(&login.json().await.unwrap());
    // A reset link in flight dies with the account.
    s.post("/auth/password/reset", json!({"email": email}))
        .await;
    let reset = eml_token(&s.mail_dir, email, "/reset-password").await;

    let r = delete_me(&s, &access, json!({"password": "wrong-password"})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(body["password"].is_array(), "{body}");
    let r = delete_me(&s, &access, json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = delete_me(&s, &access, json!({"password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for token in [&access, &other_access] {
        assert_eq!(
            s.get_as(token, "/auth/me").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = s
        .post("/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.login(email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = s
        .post(
            "/auth/password/reset/confirm",
            json!({"token": reset, "new_password": "Quiet-Harbor-Lamp-42"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The address and the name are free again.
    let again = s.register(name, email).await;
    assert_ne!(again["id"], user["id"]);
    assert!(!eml_to(&s.mail_dir, email).is_empty());
}

#[tokio::test]
async fn wrong_passwords_at_deletion_count_on_the_login_throttle() {
    let s = TestServer::start_with(|c| c.login_failures_per_account = 2).await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    for _ in 0..2 {
        let r = delete_me(&s, &access, json!({"password": "wrong-password"})).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = delete_me(&s, &access, json!({"password": PASSWORD})).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn a_deleted_account_is_refused_by_every_instance_within_a_second() {
    let a = TestServer::start().await;
    let b =
        TestServer::start_on(tempfile::tempdir().unwrap(), a.database_url.clone(), |_| {}).await;
    let user = a.new_user().await;
    let (access, _) = tokens(&user);
    // Instance b has the session in its cache.
    assert_eq!(b.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    let r = delete_me(&a, &access, json!({"password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        a.get_as(&access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        if b.get_as(&access, "/auth/me").await.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "instance b still accepts the token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
