//! `LATCHKEY_REFRESH_COOKIE=true`: the refresh token travels only in an
//! `HttpOnly` cookie scoped to `/auth/`; refresh and logout read it,
//! rotation replaces it, every session-ending answer clears it, and CSRF
//! is still required.

mod common;

use common::{assert_error, TestServer};
use latchkey::config::{Config, SameSite};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

async fn cookie_server(adjust: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.refresh_cookie = true;
        adjust(c);
    })
    .await
}

/// The `latchkey_refresh` Set-Cookie header of `r`, if any.
fn refresh_set_cookie(r: &Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("latchkey_refresh="))
        .map(str::to_owned)
}

/// The token a Set-Cookie value carries.
fn cookie_token(set_cookie: &str) -> String {
    set_cookie
        .trim_start_matches("latchkey_refresh=")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn clears(set_cookie: Option<String>) -> bool {
    set_cookie.is_some_and(|c| c.starts_with("latchkey_refresh=;") && c.contains("Max-Age=0"))
}

/// POST `body` to `path` with a CSRF header, the refresh cookie, and
/// optionally a Bearer token.
async fn post_with_cookie(
    s: &TestServer,
    path: &str,
    refresh: &str,
    access: Option<&str>,
    body: Value,
) -> Response {
    let mut request = s
        .request(Method::POST, path)
        .await
        .header("Cookie", format!("latchkey_refresh={refresh}"))
        .json(&body);
    if let Some(access) = access {
        request = request.bearer_auth(access);
    }
    request.send().await.unwrap()
}

/// Register a user: (the body, the access token, the refresh cookie's token).
async fn register(s: &TestServer) -> (Value, String, String) {
    let tag = &latchkey::auth::ids::RandomId::generate().unwrap().as_str()[..10].to_owned();
    let r = s
        .post(
            "/auth/register",
            json!({"name": format!("u{tag}"), "email": format!("u{tag}@example.com"), "password": common::PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let set_cookie = refresh_set_cookie(&r).expect("a refresh cookie");
    let body: Value = r.json().await.unwrap();
    let access = body["tokens"]["access"].as_str().unwrap().to_owned();
    (body, access, cookie_token(&set_cookie))
}

#[tokio::test]
async fn register_and_login_set_an_http_only_cookie_and_leave_the_refresh_token_out_of_the_body() {
    let s = cookie_server(|_| {}).await;
    let (body, access, refresh) = register(&s).await;
    assert_eq!(body["tokens"].as_object().unwrap().len(), 1, "{body}");
    assert!(body["tokens"].get("refresh").is_none());
    assert_eq!(common::claims(&refresh)["token_type"], "refresh");
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);

    let r = s
        .login(body["email"].as_str().unwrap(), common::PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let set_cookie = refresh_set_cookie(&r).unwrap();
    assert_eq!(
        set_cookie.split_once(';').unwrap().1,
        " Max-Age=604800; Path=/auth/; HttpOnly; SameSite=Lax"
    );
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(&cookie_token(&set_cookie)),
        "the token is in the body: {text}"
    );
    assert!(!text.contains("\"refresh\""), "{text}");
}

#[tokio::test]
async fn refresh_reads_the_cookie_and_rotation_replaces_it() {
    let s = cookie_server(|c| c.refresh_reuse_grace_seconds = 0).await;
    let (_, _, first) = register(&s).await;
    let r = post_with_cookie(&s, "/auth/token/refresh/", &first, None, json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = cookie_token(&refresh_set_cookie(&r).expect("rotation sets a new cookie"));
    assert_ne!(second, first);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only the access token: {body}"
    );
    assert_eq!(
        s.get_as(body["access"].as_str().unwrap(), "/auth/me")
            .await
            .status(),
        StatusCode::OK
    );

    // The rotated token again is reuse: the session ends and the cookie goes.
    let r = post_with_cookie(&s, "/auth/token/refresh/", &first, None, json!({})).await;
    assert!(clears(refresh_set_cookie(&r)));
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    let r = post_with_cookie(&s, "/auth/token/refresh/", &second, None, json!({})).await;
    assert!(
        clears(refresh_set_cookie(&r)),
        "the revoked session's cookie is cleared too"
    );
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
}

#[tokio::test]
async fn logout_reads_the_cookie_and_clears_it() {
    let s = cookie_server(|_| {}).await;
    let (_, access, refresh) = register(&s).await;
    let r = post_with_cookie(&s, "/auth/logout", &refresh, Some(&access), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(clears(refresh_set_cookie(&r)));
    let r = post_with_cookie(&s, "/auth/token/refresh/", &refresh, None, json!({})).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    assert_eq!(
        s.get_as(&access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_all_and_ending_the_current_session_clear_the_cookie() {
    let s = cookie_server(|_| {}).await;
    let (_, access, _) = register(&s).await;
    let r = s.post_as(&access, "/auth/logout/all", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(clears(refresh_set_cookie(&r)));

    let (_, access, _) = register(&s).await;
    let sid = common::claims(&access)["sid"].as_str().unwrap().to_owned();
    let r = s
        .request(Method::DELETE, &format!("/auth/sessions/{sid}"))
        .await
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(clears(refresh_set_cookie(&r)));
}

#[tokio::test]
async fn csrf_is_still_required_when_the_cookie_carries_the_token() {
    let s = cookie_server(|_| {}).await;
    let (_, _, refresh) = register(&s).await;
    let r = s
        .client
        .post(s.url("/auth/token/refresh/"))
        .header("Cookie", format!("latchkey_refresh={refresh}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "csrf_failed").await;
    // The token is untouched: with the header it still refreshes.
    let r = post_with_cookie(&s, "/auth/token/refresh/", &refresh, None, json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn same_site_and_secure_follow_the_configuration() {
    let s = cookie_server(|c| {
        c.https = true;
        c.refresh_cookie_samesite = SameSite::None;
    })
    .await;
    let r = s
        .request(Method::POST, "/auth/register")
        .await
        .json(&json!({"name": "cross", "email": "cross@example.com", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let set_cookie = refresh_set_cookie(&r).unwrap();
    assert!(
        set_cookie.ends_with("; HttpOnly; SameSite=None; Secure"),
        "{set_cookie}"
    );
    let mut invalid = Config::from_env().unwrap();
    invalid.refresh_cookie_samesite = SameSite::None;
    assert!(
        invalid.validate().is_err(),
        "SameSite=None without HTTPS is refused"
    );
}

#[tokio::test]
async fn without_the_cookie_mode_the_body_carries_the_refresh_token_and_a_cookie_is_ignored() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "plain", "email": "plain@example.com", "password": common::PASSWORD}),
        )
        .await;
    assert!(refresh_set_cookie(&r).is_none());
    let body: Value = r.json().await.unwrap();
    let (_, refresh) = common::tokens(&body);
    let r = post_with_cookie(&s, "/auth/token/refresh/", &refresh, None, json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"refresh": ["This field is required."]})
    );
    let r = s
        .post("/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(refresh_set_cookie(&r).is_none());
    assert!(r.json::<Value>().await.unwrap()["refresh"].is_string());
}

#[tokio::test]
async fn in_cookie_mode_a_request_with_neither_body_field_nor_cookie_is_400() {
    let s = cookie_server(|_| {}).await;
    let r = s.post("/auth/token/refresh/", json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"refresh": ["This field is required."]})
    );
}
