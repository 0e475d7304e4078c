//! Refresh rotation with reuse detection and its grace window, verification,
//! and the token rules: pinned algorithm and key, expiry, token types.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{assert_error, claims, tokens, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn refresh(s: &TestServer, token: &str) -> reqwest::Response {
    s.post("/auth/token/refresh/", json!({"refresh": token}))
        .await
}

async fn verify(s: &TestServer, token: &str) -> StatusCode {
    s.post("/auth/token/verify/", json!({"token": token}))
        .await
        .status()
}

async fn pair(r: reqwest::Response) -> (String, String) {
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    (
        body["access"].as_str().unwrap().to_owned(),
        body["refresh"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn refresh_returns_a_new_pair_and_retires_the_presented_token() {
    let s = TestServer::start_with(|c| c.refresh_reuse_grace_seconds = 0).await;
    let user = s.new_user().await;
    let (_, r0) = tokens(&user);
    let resp = refresh(&s, &r0).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let (a1, r1) = pair(resp).await;
    assert_ne!(r1, r0);
    assert_eq!(claims(&a1)["token_type"], "access");
    assert_eq!(claims(&r1)["token_type"], "refresh");
    assert_eq!(claims(&a1)["user_id"], user["id"]);
    assert_eq!(s.get_as(&a1, "/auth/me").await.status(), StatusCode::OK);
    assert_eq!(
        verify(&s, &r0).await,
        StatusCode::UNAUTHORIZED,
        "the rotated token is no longer valid"
    );
    let (_, r2) = pair(refresh(&s, &r1).await).await;
    assert_eq!(verify(&s, &r2).await, StatusCode::OK);
}

#[tokio::test]
async fn reusing_a_rotated_token_revokes_the_whole_session() {
    let s = TestServer::start_with(|c| c.refresh_reuse_grace_seconds = 0).await;
    let user = s.new_user().await;
    let (a0, r0) = tokens(&user);
    let (a1, r1) = pair(refresh(&s, &r0).await).await;
    let body = assert_error(
        refresh(&s, &r0).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert!(body["detail"].is_string());
    // Every token of the session is now dead, the newest included.
    assert_error(
        refresh(&s, &r1).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    for access in [&a0, &a1] {
        assert_error(
            s.get_as(access, "/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "token_not_valid",
        )
        .await;
    }
    assert_eq!(verify(&s, &r1).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reuse_revokes_only_that_session_not_the_users_others() {
    let s = TestServer::start_with(|c| c.refresh_reuse_grace_seconds = 0).await;
    let user = s.new_user().await;
    let other: Value = s
        .login(user["email"].as_str().unwrap(), common::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let (_, r0) = tokens(&user);
    pair(refresh(&s, &r0).await).await;
    assert_eq!(refresh(&s, &r0).await.status(), StatusCode::UNAUTHORIZED);
    let (other_access, other_refresh) = tokens(&other);
    assert_eq!(
        s.get_as(&other_access, "/auth/me").await.status(),
        StatusCode::OK
    );
    pair(refresh(&s, &other_refresh).await).await;
}

#[tokio::test]
async fn two_tabs_refreshing_the_same_token_at_once_both_stay_logged_in() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (_, r0) = tokens(&user);
    let (first, second) = tokio::join!(refresh(&s, &r0), refresh(&s, &r0));
    let (a1, r1) = pair(first).await;
    let (a2, r2) = pair(second).await;
    for (access, refresh_token) in [(&a1, &r1), (&a2, &r2)] {
        assert_eq!(s.get_as(access, "/auth/me").await.status(), StatusCode::OK);
        pair(refresh(&s, refresh_token).await).await;
    }
}

/// Let `seconds` pass for the server: its clock moves; on PostgreSQL the
/// grace window is measured by the database's own clock, so real time must
/// pass too.
async fn pass_time(s: &TestServer, seconds: i64) {
    s.clock.advance(seconds);
    if common::backend() == "postgres" {
        tokio::time::sleep(Duration::from_secs(seconds.unsigned_abs())).await;
    }
}

#[tokio::test]
async fn the_token_just_rotated_is_accepted_again_only_within_the_grace_window() {
    let s = TestServer::start_with(|c| c.refresh_reuse_grace_seconds = 1).await;
    let user = s.new_user().await;
    let (_, r0) = tokens(&user);
    let (_, r1) = pair(refresh(&s, &r0).await).await;
    let (_, r1_again) = pair(refresh(&s, &r0).await).await;
    assert_eq!(
        r1, r1_again,
        "the replay is handed the token already issued"
    );
    pass_time(&s, 2).await;
    // After the window, the same token is reuse: the session ends.
    assert_error(
        refresh(&s, &r0).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_eq!(refresh(&s, &r1).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_replay_inside_the_grace_window_never_creates_a_second_live_chain() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (_, r0) = tokens(&user);
    let bodies = vec![json!({ "refresh": r0 }); 50];
    let mut answers = Vec::new();
    for r in s
        .responses_all_at_once("/auth/token/refresh/", bodies)
        .await
    {
        answers.push((r.status(), r.json::<Value>().await.unwrap()));
    }
    let mut heads = std::collections::BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        heads.insert(claims(body["refresh"].as_str().unwrap())["jti"].to_string());
    }
    assert_eq!(heads.len(), 1, "50 refreshes of one token: one chain");
    let r1 = answers[0].1["refresh"].as_str().unwrap().to_owned();
    for (_, body) in &answers {
        assert_eq!(body["refresh"], r1.as_str());
    }

    // The one chain goes on; a replay of its previous link meets the new head.
    let (_, r2) = pair(refresh(&s, &r1).await).await;
    let (_, r2_again) = pair(refresh(&s, &r1).await).await;
    assert_eq!(r2, r2_again);
    // r0 is now two links behind: reuse, and the session (with r2) ends.
    assert_eq!(refresh(&s, &r0).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&s, &r2).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_thief_replaying_a_rotated_token_after_the_window_ends_the_session() {
    let s = TestServer::start_with(|c| c.refresh_reuse_grace_seconds = 1).await;
    let user = s.new_user().await;
    let (_, r0) = tokens(&user);
    let (a1, r1) = pair(refresh(&s, &r0).await).await;
    pass_time(&s, 2).await;
    assert_error(
        refresh(&s, &r0).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    // The user's live token and access token died with the session.
    assert_eq!(refresh(&s, &r1).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get_as(&a1, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_older_token_of_the_chain_is_reuse_even_within_the_grace_window() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (_, r0) = tokens(&user);
    let (_, r1) = pair(refresh(&s, &r0).await).await;
    let (_, r2) = pair(refresh(&s, &r1).await).await;
    assert_error(
        refresh(&s, &r0).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_eq!(
        refresh(&s, &r2).await.status(),
        StatusCode::UNAUTHORIZED,
        "session revoked"
    );
}

#[tokio::test]
async fn an_access_token_is_never_accepted_as_a_refresh_token_nor_the_reverse() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, refresh_token) = tokens(&user);
    assert_error(
        refresh(&s, &access).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_error(
        s.get_as(&refresh_token, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
}

#[tokio::test]
async fn refresh_needs_the_field() {
    let s = TestServer::start().await;
    let r = s.post("/auth/token/refresh/", json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"refresh": ["This field is required."]})
    );
    let r = s.post("/auth/token/refresh", json!({"refresh": 42})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"refresh": ["Not a valid string."]})
    );
}

#[tokio::test]
async fn verify_accepts_live_tokens_of_both_types_with_an_empty_object() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, refresh_token) = tokens(&user);
    for token in [&access, &refresh_token] {
        let r = s.post("/auth/token/verify/", json!({"token": token})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    }
    let r = s.post("/auth/token/verify", json!({})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"token": ["This field is required."]})
    );
}

#[tokio::test]
async fn garbage_tokens_get_401_token_not_valid() {
    let s = TestServer::start().await;
    for token in [
        "",
        "abc",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        &"x".repeat(5000),
    ] {
        let r = s.post("/auth/token/verify/", json!({"token": token})).await;
        if token.is_empty() {
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            continue;
        }
        let body = assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
        assert_eq!(body["detail"], "Given token not valid for any token type");
    }
}

fn resign(token: &str, header: &str, key: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let payload = token.split('.').nth(1).unwrap();
    let head = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header));
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(head.as_bytes());
    format!(
        "{head}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn only_hs256_with_the_servers_key_is_accepted() {
    let key = "k".repeat(48);
    let s = TestServer::start_with(|c| c.secret_key = Some(key.parse().unwrap())).await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    // The same claims re-signed with our key verify: the test's signer is right.
    let same = resign(&access, r#"{"alg":"HS256","typ":"JWT"}"#, key.as_bytes());
    assert_eq!(s.get_as(&same, "/auth/me").await.status(), StatusCode::OK);
    let other_key = resign(
        &access,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        b"another-key-that-is-long-enough-0000",
    );
    let hs512 = resign(&access, r#"{"alg":"HS512","typ":"JWT"}"#, key.as_bytes());
    let payload = access.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    for forged in [other_key, hs512, none] {
        assert_error(
            s.get_as(&forged, "/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "token_not_valid",
        )
        .await;
        assert_eq!(verify(&s, &forged).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn an_expired_access_token_is_refused_and_refresh_recovers() {
    // Two seconds, not one: expiry is counted in whole seconds, so a token
    // with one second to live can be expired a millisecond after it is
    // issued; with two, the fresh token below has at least one.
    let s = TestServer::start_with(|c| c.access_token_lifetime_seconds = 2).await;
    let user = s.new_user().await;
    let (access, refresh_token) = tokens(&user);
    // Past the lifetime and the clock leeway (5 s by default).
    s.clock.advance(2 + 5 + 1);
    let body = assert_error(
        s.get_as(&access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_eq!(body["detail"], "Token is expired");
    assert_eq!(verify(&s, &access).await, StatusCode::UNAUTHORIZED);
    let (fresh, _) = pair(refresh(&s, &refresh_token).await).await;
    assert_eq!(s.get_as(&fresh, "/auth/me").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let s = TestServer::start_with(|c| c.refresh_token_lifetime_seconds = 1).await;
    let user = s.new_user().await;
    let (_, refresh_token) = tokens(&user);
    s.clock.advance(1 + 5 + 1);
    assert_error(
        refresh(&s, &refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
}

#[tokio::test]
async fn lifetimes_are_configurable() {
    let s = TestServer::start_with(|c| {
        c.access_token_lifetime_seconds = 300;
        c.refresh_token_lifetime_seconds = 3_600;
    })
    .await;
    let user = s.new_user().await;
    let (access, refresh_token) = tokens(&user);
    let (a, r) = (claims(&access), claims(&refresh_token));
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 300);
    assert_eq!(
        r["exp"].as_i64().unwrap() - r["iat"].as_i64().unwrap(),
        3_600
    );
}

#[tokio::test]
async fn a_generated_key_survives_a_restart_so_tokens_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let first = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    let user = first.new_user().await;
    let csrf = first.csrf().await;
    drop(first);
    let second = TestServer::start_on(dir, url, |_| {}).await;
    let (access, refresh_token) = tokens(&user);
    assert_eq!(
        second.get_as(&access, "/auth/me").await.status(),
        StatusCode::OK
    );
    let r = second
        .client
        .post(second.url("/auth/token/refresh/"))
        .header("X-CSRFToken", csrf)
        .json(&json!({"refresh": refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "CSRF token and refresh token from before the restart"
    );
}
