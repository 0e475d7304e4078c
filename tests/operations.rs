//! What an operator and a front-end developer get beside the API: the
//! OpenAPI document and its reference page, metrics, request ids.

mod common;

use std::collections::BTreeSet;

use common::{tokens, TestServer, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn openapi(s: &TestServer) -> Value {
    let r = s.client.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

/// Every (method, path) the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// A concrete URL for a templated path.
fn concrete(path: &str) -> String {
    path.replace("{id}", "0123456789abcdef0123456789abcdef")
        .replace("{file}", "index.css")
}

// The tests here wait for child `latchkey` commands synchronously: on a
// multi-threaded runtime the in-process servers keep serving meanwhile (on
// a current-thread one, a server's write transaction caught open would hold
// SQLite's write lock until the command gave up with `database is locked`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_lists_every_route_the_router_serves() {
    let s = TestServer::start().await;
    let doc = openapi(&s).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    // The router is built from the same list; every documented operation is
    // served (neither 404 nor 405), with and without a trailing slash.
    let documented = operations(&doc);
    let csrf = s.csrf().await;
    for (method, path) in &documented {
        for url in [concrete(path), format!("{}/", concrete(path))] {
            let r = s
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), s.url(&url))
                .header("X-CSRFToken", &csrf)
                .send()
                .await
                .unwrap();
            let served =
                r.status() != StatusCode::METHOD_NOT_ALLOWED && r.status() != StatusCode::NOT_FOUND;
            assert!(served, "{method} {url}: {}", r.status());
        }
    }

    // And nothing else is: every other method on a documented path is 405,
    // and the API's known paths are all documented.
    for path in doc["paths"].as_object().unwrap().keys() {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let r = s
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    s.url(&concrete(path)),
                )
                .header("X-CSRFToken", &csrf)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/auth/csrf"),
        ("POST", "/auth/register"),
        ("POST", "/auth/login"),
        ("POST", "/auth/logout"),
        ("POST", "/auth/logout/all"),
        ("GET", "/auth/me"),
        ("PATCH", "/auth/me"),
        ("DELETE", "/auth/me"),
        ("POST", "/auth/password/change"),
        ("POST", "/auth/password/reset"),
        ("POST", "/auth/password/reset/confirm"),
        ("POST", "/auth/email/verify"),
        ("POST", "/auth/email/verify/resend"),
        ("POST", "/auth/email/change"),
        ("POST", "/auth/email/change/confirm"),
        ("GET", "/auth/sessions"),
        ("DELETE", "/auth/sessions/{id}"),
        ("POST", "/auth/token/refresh"),
        ("POST", "/auth/token/verify"),
        ("GET", "/.well-known/jwks.json"),
        ("POST", "/auth/login/mfa"),
        ("GET", "/auth/mfa"),
        ("POST", "/auth/mfa/totp"),
        ("DELETE", "/auth/mfa/totp"),
        ("POST", "/auth/mfa/totp/confirm"),
        ("POST", "/auth/mfa/recovery-codes"),
        ("POST", "/auth/passkeys/register/options"),
        ("POST", "/auth/passkeys/register"),
        ("GET", "/auth/passkeys"),
        ("DELETE", "/auth/passkeys/{id}"),
        ("POST", "/auth/passkeys/login/options"),
        ("POST", "/auth/passkeys/login"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/{file}"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(documented, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_unsafe_auth_operation_refuses_a_request_without_a_csrf_token() {
    let s = TestServer::start().await;
    let doc = openapi(&s).await;
    let user = s.new_user().await;
    let (access, refresh) = tokens(&user);
    let sid = common::claims(&access)["sid"].as_str().unwrap().to_owned();
    let mut checked = 0;
    for (method, path) in operations(&doc) {
        if method == "GET" || !path.starts_with("/auth/") {
            continue;
        }
        // Each declares the `csrf` security scheme ...
        let op = &doc["paths"][&path][method.to_lowercase()];
        let schemes: Vec<&str> = op["security"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|req| req.as_object().unwrap().keys().map(String::as_str))
            .collect();
        assert!(schemes.contains(&"csrf"), "{method} {path}: {schemes:?}");
        // ... and is refused without the token, at either spelling of the
        // path, with a body that would otherwise be valid and a live session.
        let url = path.replace("{id}", &sid);
        for url in [url.clone(), format!("{url}/")] {
            let r = s
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), s.url(&url))
                .bearer_auth(&access)
                .json(&json!({"token": access, "refresh": refresh}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {url}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "csrf_failed", "{method} {url}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 26, "every unsafe /auth/ operation was tried");
    // Nothing was done: the session is live.
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_in_the_document_resolves_and_every_operation_documents_its_errors() {
    let s = TestServer::start().await;
    let doc = openapi(&s).await;
    let text = doc.to_string();
    let references: Vec<&str> = text.split("\"$ref\":\"").skip(1).collect();
    assert!(references.len() > 10, "the document uses shared schemas");
    for reference in references {
        let target = reference.split('"').next().unwrap();
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{target}");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["csrf"]["in"], "header");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            if path.starts_with("/auth/") && method != "get" {
                assert!(responses.contains_key("403"), "{method} {path}: CSRF");
                let security = op["security"].to_string();
                assert!(security.contains("csrf"), "{method} {path}: {security}");
            }
            if op["security"].to_string().contains("bearer") {
                assert!(responses.contains_key("401"), "{method} {path}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latchkey_openapi_prints_the_served_document() {
    let s = TestServer::start().await;
    let served = openapi(&s).await;
    let out = common::latchkey_command().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_login_example_logs_in_by_email() {
    let s = TestServer::start().await;
    let doc = openapi(&s).await;
    let example = &doc["components"]["schemas"]["LoginRequest"]["example"];
    assert!(example["email"].is_string(), "{example}");
    assert!(example["password"].is_string(), "{example}");
    assert!(example.get("name").is_none(), "{example}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_html_that_loads_only_same_origin_assets() {
    let s = TestServer::start().await;
    for path in ["/docs", "/docs/"] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        let html = r.text().await.unwrap();
        let mut assets = 0;
        for attr in ["src=\"", "href=\""] {
            for rest in html.split(attr).skip(1) {
                let link = rest.split('"').next().unwrap();
                assert!(link.starts_with("/docs/"), "{link} is not ours");
                let asset = s.client.get(s.url(link)).send().await.unwrap();
                assert_eq!(asset.status(), StatusCode::OK, "{link}");
                assets += 1;
            }
        }
        assert!(assets >= 3, "the page loads its scripts and styles");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
    // The initializer points at our document and turns off the external validator.
    let init = s.get_text("/docs/swagger-initializer.js").await;
    assert!(init.contains("\"url\": \"/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    let r = s.client.get(s.url("/docs/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// The value of the sample `name{labels}` in a metrics page (0 when absent).
fn sample(page: &str, name_and_labels: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(s: &TestServer) -> String {
    let r = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_logins_registrations_refreshes_reuse_and_revocations() {
    let s = TestServer::start_with(|c| c.refresh_reuse_grace_seconds = 0).await;
    let before = metrics(&s).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let (access, refresh) = tokens(&user);
    assert_eq!(s.login(email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        s.login(email, "Wrong-Password-77").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    let r = s
        .post("/auth/token/refresh", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The rotated token again: reuse, the session is revoked.
    let r = s
        .post("/auth/token/refresh", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let after = metrics(&s).await;

    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(delta("latchkey_registrations_total"), 1.0, "{after}");
    assert_eq!(delta("latchkey_logins_total{outcome=\"success\"}"), 1.0);
    assert_eq!(
        delta("latchkey_logins_total{outcome=\"invalid_credentials\"}"),
        1.0
    );
    assert_eq!(
        delta("latchkey_token_refreshes_total{outcome=\"rotated\"}"),
        1.0
    );
    assert_eq!(
        delta("latchkey_token_refreshes_total{outcome=\"refused\"}"),
        1.0
    );
    assert_eq!(delta("latchkey_refresh_reuse_detections_total"), 1.0);
    assert_eq!(
        delta("latchkey_session_revocations_total{reason=\"reuse\"}"),
        1.0
    );
    assert_eq!(
        delta("latchkey_http_requests_total{method=\"GET\",route=\"/auth/me\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        delta("latchkey_http_requests_total{method=\"POST\",route=\"/auth/login\",status=\"401\"}"),
        1.0
    );
    assert!(
        delta("latchkey_http_request_duration_seconds_count{method=\"GET\",route=\"/auth/me\",status=\"200\"}")
            >= 1.0
    );
    assert!(sample(&after, "latchkey_password_hash_wait_seconds_count") >= 3.0);
    assert!(sample(&after, "latchkey_db_pool_max_connections") >= 1.0);
    assert!(after.contains("latchkey_password_hash_queue_depth "));
    assert!(after.contains("latchkey_db_pool_connections "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_logins_and_unmatched_paths_are_counted_without_raw_paths() {
    let s = TestServer::start_with(|c| c.login_failures_per_account = 1).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let statuses = [
        s.login(email, "Wrong-Password-77").await.status(),
        s.login(email, "Wrong-Password-77").await.status(),
    ];
    assert_eq!(
        statuses,
        [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS]
    );
    let secretish = "/no-such-path-Zq9";
    let r = s.client.get(s.url(secretish)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let page = metrics(&s).await;
    assert_eq!(
        sample(&page, "latchkey_logins_total{outcome=\"throttled\"}"),
        1.0,
        "{page}"
    );
    assert!(!page.contains(secretish), "raw paths never become labels");
    assert_eq!(
        sample(
            &page,
            "latchkey_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        1.0,
        "{page}"
    );
    assert!(!page.contains(email), "no user data in metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_live_on_their_own_address_only() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database_url(&dir).await;
    let server = common::ServerProcess::start(&[
        ("LATCHKEY_DATABASE_URL", db.as_str()),
        ("LATCHKEY_METRICS_BIND", &format!("127.0.0.1:{port}")),
    ])
    .await;
    let client = reqwest::Client::new();
    let r = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "not on the public address"
    );
    let r = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("latchkey_http_requests_total"));
    let r = client
        .get(format!("http://127.0.0.1:{port}/auth/csrf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "only metrics there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_echoing_a_well_formed_one() {
    let s = TestServer::start().await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32);
    let r = s.client.get(s.url("/nope")).send().await.unwrap();
    let other = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(generated, other, "unique per request");

    let r = s
        .client
        .get(s.url("/auth/csrf"))
        .header("X-Request-Id", "edge-7f3a.42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "edge-7f3a.42");

    // Ids that could forge log lines are replaced, not echoed.
    for bad in ["a b", "x\"y", &"z".repeat(129)] {
        let r = s
            .client
            .get(s.url("/healthz"))
            .header("X-Request-Id", bad)
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_http_methods_do_not_grow_the_metrics() {
    let s = TestServer::start().await;
    let before = metrics(&s).await.len();
    for i in 0..300 {
        let method = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        s.client
            .request(method, s.url("/auth/me"))
            .send()
            .await
            .unwrap();
    }
    let text = metrics(&s).await;
    assert!(!text.contains("BREW"));
    assert!(text.contains("method=\"other\""), "{text}");
    // One series (a counter and a histogram) for all of them, not 300.
    assert!(text.len() < before + 4_000, "{} -> {}", before, text.len());
}
