//! `GET /auth/csrf/` and the CSRF checks on every unsafe request under `/auth/`.

mod common;

use common::{assert_error, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn set_cookie(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn csrf_returns_the_token_in_the_body_and_a_lax_script_readable_cookie() {
    let s = TestServer::start().await;
    let r = s.client.get(s.url("/auth/csrf/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let cookie = set_cookie(&r);
    let body: Value = r.json().await.unwrap();
    let token = body["csrfToken"].as_str().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert!(
        cookie.starts_with(&format!("csrftoken={token};")),
        "{cookie}"
    );
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("HttpOnly"),
        "the SPA must be able to read it: {cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );
}

#[tokio::test]
async fn the_cookie_is_secure_when_configured_for_https() {
    let s = TestServer::start_with(|c| c.https = true).await;
    let r = s.client.get(s.url("/auth/csrf")).send().await.unwrap();
    assert!(set_cookie(&r).contains("; Secure"));
}

#[tokio::test]
async fn a_client_holding_a_valid_cookie_gets_the_same_token_back() {
    let s = TestServer::start().await;
    let first = s.csrf().await;
    let r = s
        .client
        .get(s.url("/auth/csrf/"))
        .header("Cookie", format!("csrftoken={first}"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["csrfToken"], first);
    let r = s
        .client
        .get(s.url("/auth/csrf/"))
        .header("Cookie", "csrftoken=forged-value")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let fresh = body["csrfToken"].as_str().expect("a new token").to_owned();
    assert_ne!(fresh, "forged-value");
    // ... and a real one: it passes the check (the login then fails on the
    // unknown account, past CSRF).
    let r = post_with(&s, &[("X-CSRFToken", &fresh)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn post_with(s: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = s
        .client
        .post(s.url("/auth/login"))
        .json(&json!({"email": "x@example.com", "password": "irrelevant"}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn csrf_detail(r: reqwest::Response) -> String {
    let body = assert_error(r, StatusCode::FORBIDDEN, "csrf_failed").await;
    body["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_missing_token_is_refused_with_403_json() {
    let s = TestServer::start().await;
    assert_eq!(
        csrf_detail(post_with(&s, &[]).await).await,
        "CSRF Failed: CSRF token missing."
    );
}

#[tokio::test]
async fn malformed_and_forged_tokens_are_refused() {
    let s = TestServer::start().await;
    let detail = csrf_detail(post_with(&s, &[("X-CSRFToken", "not-a-token")]).await).await;
    assert_eq!(detail, "CSRF Failed: CSRF token has incorrect format.");
    let mut forged: Vec<char> = s.csrf().await.chars().collect();
    forged[5] = if forged[5] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let detail = csrf_detail(post_with(&s, &[("X-CSRFToken", &forged)]).await).await;
    assert_eq!(detail, "CSRF Failed: CSRF token incorrect.");
}

#[tokio::test]
async fn a_token_from_another_server_key_is_refused() {
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    let token = a.csrf().await;
    let detail = csrf_detail(post_with(&b, &[("X-CSRFToken", &token)]).await).await;
    assert_eq!(detail, "CSRF Failed: CSRF token incorrect.");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let s = TestServer::start_with(|c| c.csrf_token_max_age_seconds = 1).await;
    let token = s.csrf().await;
    // Past the maximum age and the clock leeway (5 s by default).
    s.clock.advance(1 + 5 + 1);
    let detail = csrf_detail(post_with(&s, &[("X-CSRFToken", &token)]).await).await;
    assert_eq!(detail, "CSRF Failed: CSRF token expired.");
}

#[tokio::test]
async fn both_header_names_are_accepted() {
    let s = TestServer::start().await;
    for header in ["X-CSRFToken", "X-CSRF-Token"] {
        let token = s.csrf().await;
        let r = post_with(&s, &[(header, &token)]).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{header} passes CSRF and reaches the login"
        );
    }
}

#[tokio::test]
async fn when_the_cookie_is_sent_the_header_must_equal_it() {
    let s = TestServer::start().await;
    let (t1, t2) = (s.csrf().await, s.csrf().await);
    assert_ne!(t1, t2);
    let cookie = format!("csrftoken={t2}");
    let detail =
        csrf_detail(post_with(&s, &[("X-CSRFToken", &t1), ("Cookie", &cookie)]).await).await;
    assert!(detail.contains("does not match"), "{detail}");
    let cookie = format!("csrftoken={t1}");
    let r = post_with(&s, &[("X-CSRFToken", &t1), ("Cookie", &cookie)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unsafe_request_from_a_foreign_origin_is_refused_even_with_a_token() {
    let s = TestServer::start().await;
    let token = s.csrf().await;
    let r = post_with(
        &s,
        &[("X-CSRFToken", &token), ("Origin", "https://evil.example")],
    )
    .await;
    let detail = csrf_detail(r).await;
    assert!(
        detail.starts_with("CSRF Failed: Origin checking failed"),
        "{detail}"
    );
}

#[tokio::test]
async fn allowed_origins_and_the_servers_own_origin_pass_the_origin_check() {
    let s = TestServer::start().await;
    let token = s.csrf().await;
    let own = s.base.clone();
    for origin in [
        "http://localhost:3000",
        "http://127.0.0.1:5173",
        own.as_str(),
    ] {
        let r = post_with(&s, &[("X-CSRFToken", &token), ("Origin", origin)]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{origin}");
    }
}

#[tokio::test]
async fn the_allowed_origin_list_is_configurable() {
    let s =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let token = s.csrf().await;
    let r = post_with(
        &s,
        &[("X-CSRFToken", &token), ("Origin", "https://app.example")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post_with(
        &s,
        &[("X-CSRFToken", &token), ("Origin", "http://localhost:3000")],
    )
    .await;
    csrf_detail(r).await;
}

#[tokio::test]
async fn every_unsafe_route_requires_the_token_and_safe_ones_do_not() {
    let s = TestServer::start().await;
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/logout",
        "/auth/token/refresh/",
        "/auth/token/verify/",
    ] {
        let r = s
            .client
            .post(s.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::FORBIDDEN, "csrf_failed").await;
    }
    let user = s.new_user().await;
    let (access, _) = common::tokens(&user);
    let r = s
        .client
        .get(s.url("/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
