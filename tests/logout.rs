//! `POST /auth/logout`: revokes the refresh token's session, every token
//! rotated from it, and the access token presented; only the owner may.

mod common;

use common::{assert_error, tokens, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn logout_answers_the_seeds_message() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, refresh) = tokens(&user);
    let r = s
        .post_as(&access, "/auth/logout", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Successfully logged out."})
    );
}

#[tokio::test]
async fn after_logout_the_refresh_token_its_descendants_and_the_access_token_are_rejected() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (a0, r0) = tokens(&user);
    let rotated: Value = s
        .post("/auth/token/refresh/", json!({"refresh": r0}))
        .await
        .json()
        .await
        .unwrap();
    let (a1, r1) = (
        rotated["access"].as_str().unwrap(),
        rotated["refresh"].as_str().unwrap(),
    );
    assert_eq!(
        s.post_as(a1, "/auth/logout/", json!({"refresh": r1}))
            .await
            .status(),
        StatusCode::OK
    );
    for access in [&a0, a1] {
        assert_error(
            s.get_as(access, "/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "token_not_valid",
        )
        .await;
        let r = s
            .post("/auth/token/verify/", json!({"token": access}))
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    for refresh in [&r0, r1] {
        let r = s
            .post("/auth/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    }
}

#[tokio::test]
async fn logout_leaves_the_users_other_sessions_alone() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let other: Value = s
        .login(user["email"].as_str().unwrap(), common::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let (access, refresh) = tokens(&user);
    assert_eq!(
        s.post_as(&access, "/auth/logout", json!({"refresh": refresh}))
            .await
            .status(),
        StatusCode::OK
    );
    let (other_access, _) = tokens(&other);
    assert_eq!(
        s.get_as(&other_access, "/auth/me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_user_cannot_revoke_another_users_refresh_token() {
    let s = TestServer::start().await;
    let alice = s.new_user().await;
    let mallory = s.new_user().await;
    let (mallory_access, _) = tokens(&mallory);
    let (alice_access, alice_refresh) = tokens(&alice);
    let r = s
        .post_as(
            &mallory_access,
            "/auth/logout",
            json!({"refresh": alice_refresh}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "permission_denied").await;
    // Alice's session is untouched, and so is Mallory's.
    assert_eq!(
        s.get_as(&alice_access, "/auth/me").await.status(),
        StatusCode::OK
    );
    let r = s
        .post("/auth/token/refresh/", json!({"refresh": alice_refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.get_as(&mallory_access, "/auth/me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_needs_an_access_token() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (_, refresh) = tokens(&user);
    let r = s.post("/auth/logout", json!({"refresh": refresh})).await;
    let headers = r.headers().clone();
    let body = assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
    assert_eq!(
        body["detail"],
        "Authentication credentials were not provided."
    );
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let r = s
        .post_as(&refresh, "/auth/logout", json!({"refresh": refresh}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
}

#[tokio::test]
async fn logout_needs_a_csrf_token() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, refresh) = tokens(&user);
    let r = s
        .client
        .post(s.url("/auth/logout"))
        .bearer_auth(&access)
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "csrf_failed").await;
    assert_eq!(
        s.get_as(&access, "/auth/me").await.status(),
        StatusCode::OK,
        "nothing was revoked"
    );
}

#[tokio::test]
async fn a_missing_refresh_field_is_a_400() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let r = s.post_as(&access, "/auth/logout", json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"refresh": ["This field is required."]})
    );
    let r = s
        .post_as(&access, "/auth/logout", json!({"refresh": "garbage"}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
}

#[tokio::test]
async fn a_body_less_logout_reports_the_missing_field() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let r = s
        .request(reqwest::Method::POST, "/auth/logout")
        .await
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"refresh": ["This field is required."]})
    );
}

#[tokio::test]
async fn a_session_just_seen_is_refused_on_the_very_next_request_after_logout_or_reuse() {
    let s = TestServer::start_with(|c| {
        c.session_cache_millis = 60_000;
        c.refresh_reuse_grace_seconds = 0;
    })
    .await;
    let user = s.new_user().await;
    let (access, refresh) = tokens(&user);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    assert_eq!(
        s.post_as(&access, "/auth/logout", json!({"refresh": refresh}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        s.get_as(&access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;

    let other: Value = s
        .login(user["email"].as_str().unwrap(), common::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let (access, refresh) = tokens(&other);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    assert_eq!(
        s.post("/auth/token/refresh/", json!({"refresh": refresh}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.post("/auth/token/refresh/", json!({"refresh": refresh}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_error(
        s.get_as(&access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
}
