//! CORS: credentials for the configured origins only, never `*`.

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn an_allowed_origin_is_echoed_with_credentials_and_vary() {
    let s = TestServer::start().await;
    for origin in [
        "http://localhost:3000",
        "http://127.0.0.1:3000",
        "http://localhost:5173",
        "http://127.0.0.1:5173",
    ] {
        let r = s
            .client
            .get(s.url("/auth/csrf/"))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        assert!(r
            .headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin")));
    }
}

#[tokio::test]
async fn a_disallowed_origin_gets_no_access_control_headers() {
    let s = TestServer::start().await;
    let r = s
        .client
        .get(s.url("/auth/csrf/"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-allow")),
        "{:?}",
        r.headers()
    );
    let r = s
        .client
        .request(Method::OPTIONS, s.url("/auth/login"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-allow")),
        "{:?}",
        r.headers()
    );
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_allows_the_methods_and_headers_the_spa_sends() {
    let s = TestServer::start().await;
    let r = s
        .client
        .request(Method::OPTIONS, s.url("/auth/logout/"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,authorization,x-csrf-token",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(h["access-control-allow-credentials"], "true");
    // The methods of this route, exactly.
    assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
    assert_eq!(h["allow"], "POST, OPTIONS");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "content-type",
        "authorization",
        "x-csrftoken",
        "x-csrf-token",
    ] {
        assert!(headers.split(',').any(|x| x.trim() == name), "{headers}");
    }
}

#[tokio::test]
async fn the_wildcard_is_never_sent_even_if_configured() {
    let s = TestServer::start_with(|c| c.allowed_origins = vec!["*".into()]).await;
    let r = s
        .client
        .get(s.url("/auth/csrf/"))
        .header("Origin", "https://any.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn error_responses_carry_cors_headers_too() {
    let s = TestServer::start().await;
    let r = s
        .client
        .post(s.url("/auth/login"))
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}
