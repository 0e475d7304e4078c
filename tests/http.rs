//! The general HTTP rules: `/auth/me`, trailing slashes, JSON for every
//! error, headers, input limits, and health endpoints.

mod common;

use common::{assert_error, tokens, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn me_returns_the_user_with_no_store() {
    let s = TestServer::start().await;
    let user = s.register("soban", "msoban@gmail.com").await;
    let (access, _) = tokens(&user);
    let r = s.get_as(&access, "/auth/me").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": user["id"], "email": "msoban@gmail.com", "name": "soban", "email_verified": false})
    );
}

#[tokio::test]
async fn me_without_credentials_is_401_not_authenticated_with_www_authenticate() {
    let s = TestServer::start().await;
    for auth in [None, Some("Basic dXNlcjpwYXNz")] {
        let mut req = s.client.get(s.url("/auth/me"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let body = assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
        assert_eq!(
            body["detail"],
            "Authentication credentials were not provided."
        );
    }
}

#[tokio::test]
async fn a_malformed_bearer_header_is_401_json() {
    let s = TestServer::start().await;
    for value in ["Bearer", "Bearer a b", "Bearer not-a-jwt"] {
        let r = s
            .client
            .get(s.url("/auth/me"))
            .header("Authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{value}");
        let body: Value = r.json().await.unwrap();
        assert!(body["code"].is_string() && body["detail"].is_string());
    }
}

#[tokio::test]
async fn every_route_answers_with_and_without_a_trailing_slash_without_redirect() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    for path in ["/auth/csrf", "/auth/me", "/healthz", "/readyz"] {
        for p in [path.to_owned(), format!("{path}/")] {
            let r = s
                .client
                .get(s.url(&p))
                .bearer_auth(&access)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{p}");
        }
    }
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/logout",
        "/auth/token/refresh",
        "/auth/token/verify",
    ] {
        for p in [path.to_owned(), format!("{path}/")] {
            let r = s.post_as(&access, &p, json!({})).await;
            assert_eq!(
                r.status(),
                StatusCode::BAD_REQUEST,
                "{p} reaches its handler"
            );
        }
    }
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let s = TestServer::start().await;
    for path in ["/", "/auth", "/auth/nope", "/admin/"] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn wrong_methods_are_405_json_with_allow() {
    let s = TestServer::start().await;
    for (method, path) in [
        (Method::GET, "/auth/login"),
        (Method::PUT, "/auth/register/"),
        (Method::PUT, "/auth/me"),
        (Method::POST, "/auth/csrf/"),
    ] {
        let r = s.request(method.clone(), path).await.send().await.unwrap();
        assert!(r.headers().contains_key("allow"), "{method} {path}");
        let body = assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        assert_eq!(body["detail"], format!("Method \"{method}\" not allowed."));
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_json() {
    let s = TestServer::start().await;
    let big = json!({"name": "n", "email": "a@example.com", "password": "p".repeat(70 * 1024)});
    let r = s.post("/auth/register", big).await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Streamed without a Content-Length (chunked), the limit still holds.
    let csrf = s.csrf().await;
    let mut request = format!(
        "POST /auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-CSRFToken: {csrf}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        s.addr
    );
    for _ in 0..100 {
        request.push_str(&format!("400\r\n{}\r\n", " ".repeat(1024)));
    }
    request.push_str("0\r\n\r\n");
    let response = raw_exchange(s.addr, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload_too_large"), "{response}");
}

/// Send raw bytes and read the whole answer (the server closes after it).
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let s = TestServer::start_with(|c| c.max_body_bytes = 100).await;
    let r = s
        .post(
            "/auth/login",
            json!({"email": "a@example.com", "password": "x".repeat(200)}),
        )
        .await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn a_non_json_content_type_is_415_json() {
    let s = TestServer::start().await;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = s
            .request(Method::POST, "/auth/login")
            .await
            .header("Content-Type", ct)
            .body("email=a")
            .send()
            .await
            .unwrap();
        assert_error(
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_json_is_400_json() {
    let s = TestServer::start().await;
    for body in ["{", "not json", "{\"email\": }", "\u{0}"] {
        let r = s
            .request(Method::POST, "/auth/login")
            .await
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::BAD_REQUEST, "parse_error").await;
    }
}

#[tokio::test]
async fn json_that_is_not_an_object_is_400_non_field_errors() {
    let s = TestServer::start().await;
    for (body, kind) in [
        ("[]", "list"),
        ("\"x\"", "str"),
        ("3", "int"),
        ("null", "NoneType"),
        ("true", "bool"),
    ] {
        let r = s
            .request(Method::POST, "/auth/register")
            .await
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v,
            json!({"non_field_errors": [format!("Invalid data. Expected a dictionary, but got {kind}.")]})
        );
    }
}

#[tokio::test]
async fn every_response_carries_nosniff() {
    let s = TestServer::start().await;
    for path in ["/healthz", "/auth/csrf/", "/nope", "/auth/me"] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    let r = s
        .client
        .request(Method::OPTIONS, s.url("/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn health_and_readiness_answer_200_while_the_database_answers() {
    let s = TestServer::start().await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_response_contains_the_password() {
    let s = TestServer::start().await;
    let secret = "Unique-Secret-Phrase-8812";
    let bodies = [
        s.post(
            "/auth/register",
            json!({"name": "n", "email": "n@example.com", "password": secret}),
        )
        .await,
        s.post(
            "/auth/login",
            json!({"email": "n@example.com", "password": secret}),
        )
        .await,
        s.post(
            "/auth/login",
            json!({"email": "n@example.com", "password": format!("{secret}x")}),
        )
        .await,
        s.post(
            "/auth/register",
            json!({"name": "n", "email": "n@example.com", "password": secret}),
        )
        .await,
    ];
    // Each request got as far as the password: registered, logged in,
    // refused for the wrong one, refused as a duplicate.
    let expected = [
        StatusCode::CREATED,
        StatusCode::OK,
        StatusCode::UNAUTHORIZED,
        StatusCode::BAD_REQUEST,
    ];
    for (r, want) in bodies.into_iter().zip(expected) {
        assert_eq!(r.status(), want);
        let text = r.text().await.unwrap();
        assert!(!text.contains("Unique-Secret"), "{text}");
        assert!(!text.contains("argon2"), "{text}");
    }
}
