//! Property tests: arbitrary request bodies, content types and tokens sent
//! to every endpoint never produce a 500, a dropped connection, or a
//! non-JSON error.

mod common;

use common::TestServer;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::StatusCode;
use serde_json::Value;

const POST_ROUTES: &[&str] = &[
    "/auth/register",
    "/auth/login",
    "/auth/logout",
    "/auth/token/refresh/",
    "/auth/token/verify/",
    "/auth/password/change",
];

/// JSON-ish values: objects with the fields our endpoints read, of any type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
        Just(Value::String("a@example.com".into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("email".to_owned()),
                    Just("name".to_owned()),
                    Just("password".to_owned()),
                    Just("refresh".to_owned()),
                    Just("token".to_owned()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

fn body() -> impl Strategy<Value = (Body, Option<String>)> {
    let content_type = prop_oneof![
        Just(Some("application/json".to_owned())),
        Just(None),
        Just(Some("text/plain".to_owned())),
        "[ -~]{0,30}".prop_map(Some),
    ];
    (
        prop_oneof![
            json_value().prop_map(Body::Json),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Body::Bytes)
        ],
        content_type,
    )
}

fn check(status: StatusCode, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!status.is_server_error(), "{status}: {text}");
    if status.is_client_error() {
        prop_assert!(
            serde_json::from_str::<Value>(text).is_ok(),
            "{status} body is not JSON: {text}"
        );
    }
    Ok(())
}

#[test]
fn arbitrary_bodies_never_cause_a_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, csrf, access) = rt.block_on(async {
        let s = TestServer::start_with(|c| {
            c.login_failures_per_account = 1_000_000;
            c.login_failures_per_address = 1_000_000;
        })
        .await;
        let csrf = s.csrf().await;
        let user = s.new_user().await;
        let (access, _) = common::tokens(&user);
        (s, csrf, access)
    });
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(0..POST_ROUTES.len(), body(), any::<bool>()),
            |(route, (body, content_type), with_auth)| {
                rt.block_on(async {
                    let mut req = server
                        .client
                        .post(server.url(POST_ROUTES[route]))
                        .header("X-CSRFToken", &csrf);
                    if with_auth {
                        req = req.bearer_auth(&access);
                    }
                    if let Some(ct) = &content_type {
                        if let Ok(v) = reqwest::header::HeaderValue::from_str(ct) {
                            req = req.header("Content-Type", v);
                        }
                    }
                    req = match body {
                        Body::Json(v) => req.body(serde_json::to_vec(&v).unwrap()),
                        Body::Bytes(b) => req.body(b),
                    };
                    let r = req
                        .send()
                        .await
                        .map_err(|e| TestCaseError::fail(format!("connection dropped: {e}")))?;
                    let status = r.status();
                    let text = r
                        .text()
                        .await
                        .map_err(|e| TestCaseError::fail(format!("body dropped: {e}")))?;
                    check(status, &text)
                })
            },
        )
        .unwrap();
}

#[test]
fn arbitrary_bearer_tokens_and_csrf_headers_never_cause_a_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(TestServer::start());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&("[ -~]{0,400}", "[ -~]{0,120}"), |(token, csrf)| {
            rt.block_on(async {
                let me = server
                    .client
                    .get(server.url("/auth/me"))
                    .header("Authorization", format!("Bearer {token}"));
                let r = me
                    .send()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let status = r.status();
                check(status, &r.text().await.unwrap_or_default())?;
                prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
                let post = server
                    .client
                    .post(server.url("/auth/token/verify/"))
                    .header("X-CSRFToken", csrf.as_str())
                    .json(&serde_json::json!({"token": token}));
                let r = post
                    .send()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let status = r.status();
                check(status, &r.text().await.unwrap_or_default())?;
                prop_assert!(
                    status == StatusCode::FORBIDDEN
                        || status == StatusCode::UNAUTHORIZED
                        || status == StatusCode::BAD_REQUEST,
                    "{}",
                    status
                );
                Ok(())
            })
        })
        .unwrap();
}
