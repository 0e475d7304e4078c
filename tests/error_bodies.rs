//! Every error body the contract names, as a snapshot (`tests/snapshots/`):
//! a change to the contract's JSON shows up in review as a diff of JSON.
//!
//! The fast tier: the requests go to the application service itself with
//! `tower::ServiceExt::oneshot`, no socket, on a fresh SQLite database per
//! test.

mod common;

use axum::body::Body;
use http_body_util::BodyExt as _;
use latchkey::config::Config;
use latchkey::App;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// An application on a fresh SQLite file, and the CSRF token and cookie a
/// page would hold.
struct Fast {
    app: App,
    csrf: String,
    _dir: tempfile::TempDir,
}

/// What a snapshot shows of a response: its status, the headers the
/// contract names, and the JSON body.
fn shown(status: StatusCode, headers: &axum::http::HeaderMap, body: &Value) -> Value {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    json!({
        "status": status.as_u16(),
        "content_type": header("content-type"),
        "www_authenticate": header("www-authenticate"),
        "retry_after": header("retry-after").map(|_| "<seconds>"),
        "body": body,
    })
}

impl Fast {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults().unwrap();
        config.database_url = format!("sqlite://{}", dir.path().join("db.sqlite3").display());
        config.registrations_per_address = 100_000;
        config.max_body_bytes = 1024;
        adjust(&mut config);
        let app = App::build(&config).await.unwrap();
        let mut fast = Self {
            app,
            csrf: String::new(),
            _dir: dir,
        };
        let (_, _, body) = fast.send("GET", "/auth/csrf/", None, &[]).await;
        fast.csrf = body["csrfToken"].as_str().unwrap().to_owned();
        fast
    }

    /// Send a request: the response's status, headers and JSON body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = axum::http::Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_vec())))
            .unwrap();
        let response = self.app.service().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (
            StatusCode::from_u16(parts.status.as_u16()).unwrap(),
            parts.headers,
            json,
        )
    }

    /// An unsafe request with the CSRF token, as the page sends it.
    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> Value {
        let cookie = format!("csrftoken={}", self.csrf);
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("x-csrftoken", self.csrf.as_str()),
            ("cookie", cookie.as_str()),
        ];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        let raw = serde_json::to_vec(&body).unwrap();
        let (status, headers, body) = self.send("POST", path, Some(&raw), &headers).await;
        shown(status, &headers, &body)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Value {
        let (status, headers, body) = self.send("GET", path, None, headers).await;
        shown(status, &headers, &body)
    }

    /// A registered user's tokens.
    async fn register(&self, name: &str) -> (String, String) {
        let r = self
            .post(
                "/auth/register",
                json!({"name": name, "email": format!("{name}@example.com"), "password": "Tr1cky-Lantern-Owl"}),
                None,
            )
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let tokens = &r["body"]["tokens"];
        (
            tokens["access"].as_str().unwrap().to_owned(),
            tokens["refresh"].as_str().unwrap().to_owned(),
        )
    }
}

#[tokio::test]
async fn registration_field_errors() {
    let s = Fast::start().await;
    insta::assert_json_snapshot!(
        "register_missing_fields",
        s.post("/auth/register", json!({}), None).await
    );
    insta::assert_json_snapshot!(
        "register_wrong_types_and_blank",
        s.post(
            "/auth/register",
            json!({"name": "", "email": null, "password": 12}),
            None
        )
        .await
    );
    insta::assert_json_snapshot!(
        "register_invalid_email_before_the_policy",
        s.post(
            "/auth/register",
            json!({"name": "ada", "email": "not-an-email", "password": "12345678"}),
            None
        )
        .await
    );
    insta::assert_json_snapshot!(
        "register_policy",
        s.post(
            "/auth/register",
            json!({"name": "ada", "email": "ada@example.com", "password": "ada@example"}),
            None
        )
        .await
    );
    s.register("ada").await;
    insta::assert_json_snapshot!(
        "register_duplicates",
        s.post(
            "/auth/register",
            json!({"name": "ADA", "email": "Ada@example.com", "password": "Tr1cky-Lantern-Owl"}),
            None
        )
        .await
    );
}

#[tokio::test]
async fn login_errors() {
    let s = Fast::start_with(|c| c.login_failures_per_account = 2).await;
    s.register("grace").await;
    insta::assert_json_snapshot!(
        "login_missing_fields",
        s.post("/auth/login", json!({}), None).await
    );
    let wrong = json!({"email": "grace@example.com", "password": "wrong-password"});
    insta::assert_json_snapshot!(
        "login_wrong_password",
        s.post("/auth/login", wrong.clone(), None).await
    );
    insta::assert_json_snapshot!(
        "login_unknown_account",
        s.post(
            "/auth/login",
            json!({"email": "nobody@example.com", "password": "wrong-password"}),
            None
        )
        .await
    );
    s.post("/auth/login", wrong.clone(), None).await;
    // The seconds in the message depend on when the window began.
    let mut throttled = s.post("/auth/login", wrong, None).await;
    let detail = throttled["body"]["detail"].as_str().unwrap();
    let seconds: String = detail.chars().filter(char::is_ascii_digit).collect();
    assert!(
        seconds.parse::<u64>().is_ok_and(|n| n > 0 && n <= 900),
        "{detail}"
    );
    throttled["body"]["detail"] = detail.replace(&seconds, "<seconds>").into();
    insta::assert_json_snapshot!("login_throttled", throttled);
}

#[tokio::test]
async fn token_errors() {
    let s = Fast::start().await;
    let (access, refresh) = s.register("alan").await;
    let (other_access, _) = s.register("edsger").await;
    insta::assert_json_snapshot!("me_without_credentials", s.get("/auth/me", &[]).await);
    insta::assert_json_snapshot!(
        "me_with_a_bad_token",
        s.get("/auth/me", &[("authorization", "Bearer not.a.token")])
            .await
    );
    let refresh_as_access = format!("Bearer {refresh}");
    insta::assert_json_snapshot!(
        "me_with_a_refresh_token",
        s.get("/auth/me", &[("authorization", &refresh_as_access)])
            .await
    );
    insta::assert_json_snapshot!(
        "refresh_missing_field",
        s.post("/auth/token/refresh/", json!({}), None).await
    );
    insta::assert_json_snapshot!(
        "refresh_with_an_access_token",
        s.post("/auth/token/refresh/", json!({"refresh": access}), None)
            .await
    );
    insta::assert_json_snapshot!(
        "verify_blank_token",
        s.post("/auth/token/verify/", json!({"token": ""}), None)
            .await
    );
    insta::assert_json_snapshot!(
        "logout_missing_refresh",
        s.post("/auth/logout", json!({}), Some(&access)).await
    );
    insta::assert_json_snapshot!(
        "logout_with_another_users_refresh_token",
        s.post(
            "/auth/logout",
            json!({"refresh": refresh}),
            Some(&other_access)
        )
        .await
    );
    insta::assert_json_snapshot!(
        "password_change_wrong_old_password",
        s.post(
            "/auth/password/change",
            json!({"old_password": "not-it-at-all", "new_password": "An0ther-Lantern-Owl"}),
            Some(&access)
        )
        .await
    );
}

#[tokio::test]
async fn csrf_errors() {
    let s = Fast::start().await;
    let body = br#"{"email": "a@example.com", "password": "x"}"#;
    let (status, headers, json) = s.send("POST", "/auth/login", Some(body), &[]).await;
    insta::assert_json_snapshot!("csrf_missing", shown(status, &headers, &json));
    let (status, headers, json) = s
        .send(
            "POST",
            "/auth/login",
            Some(body),
            &[("x-csrftoken", "forged")],
        )
        .await;
    insta::assert_json_snapshot!("csrf_malformed", shown(status, &headers, &json));
    let (status, headers, json) = s
        .send(
            "POST",
            "/auth/login",
            Some(body),
            &[("x-csrftoken", &s.csrf), ("origin", "https://evil.example")],
        )
        .await;
    insta::assert_json_snapshot!("csrf_foreign_origin", shown(status, &headers, &json));
}

#[tokio::test]
async fn body_and_routing_errors() {
    let s = Fast::start().await;
    let csrf = [("x-csrftoken", s.csrf.as_str())];
    let (status, headers, json) = s
        .send("POST", "/auth/login", Some(b"{not json"), &csrf)
        .await;
    insta::assert_json_snapshot!("body_not_json", shown(status, &headers, &json));
    let (status, headers, json) = s.send("POST", "/auth/login", Some(b"[1, 2]"), &csrf).await;
    insta::assert_json_snapshot!("body_not_an_object", shown(status, &headers, &json));
    let big = vec![b' '; 2048];
    let (status, headers, json) = s.send("POST", "/auth/login", Some(&big), &csrf).await;
    insta::assert_json_snapshot!("body_too_large", shown(status, &headers, &json));
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/auth/login")
        .header("content-type", "text/plain")
        .header("x-csrftoken", s.csrf.as_str())
        .body(Body::from("email=a"))
        .unwrap();
    let response = s.app.service().oneshot(request).await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    insta::assert_json_snapshot!(
        "body_not_json_content_type",
        shown(status, &headers, &serde_json::from_slice(&bytes).unwrap())
    );
    insta::assert_json_snapshot!("route_not_found", s.get("/nowhere", &[]).await);
    let (status, headers, json) = s.send("DELETE", "/healthz", None, &[]).await;
    insta::assert_json_snapshot!("method_not_allowed", shown(status, &headers, &json));
}

#[tokio::test]
async fn database_unavailable() {
    // The body every route answers while the database cannot serve
    // (tests/faults.rs provokes it for real, on both backends).
    let (parts, body) = latchkey::http::error::unavailable().into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    let status = StatusCode::from_u16(parts.status.as_u16()).unwrap();
    insta::assert_json_snapshot!("database_unavailable", shown(status, &parts.headers, &json));
}

#[tokio::test]
async fn second_factor_errors() {
    let s = Fast::start().await;
    let (access, _) = s.register("grace").await;
    insta::assert_json_snapshot!(
        "mfa_enrol_wrong_password",
        s.post(
            "/auth/mfa/totp",
            json!({"password": "not-it-at-all"}),
            Some(&access)
        )
        .await
    );
    let enrolment = s
        .post(
            "/auth/mfa/totp",
            json!({"password": "Tr1cky-Lantern-Owl"}),
            Some(&access),
        )
        .await;
    let secret = enrolment["body"]["secret"].as_str().unwrap().to_owned();
    insta::assert_json_snapshot!(
        "mfa_confirm_invalid_code",
        s.post(
            "/auth/mfa/totp/confirm",
            json!({"code": "abc"}),
            Some(&access)
        )
        .await
    );
    let now = latchkey::auth::now();
    let confirmed = s
        .post(
            "/auth/mfa/totp/confirm",
            json!({"code": common::totp(&secret, now)}),
            Some(&access),
        )
        .await;
    assert_eq!(confirmed["status"], 200, "{confirmed}");
    let mut required = s
        .post(
            "/auth/login",
            json!({"email": "grace@example.com", "password": "Tr1cky-Lantern-Owl"}),
            None,
        )
        .await;
    let token = required["body"]["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    required["body"]["mfa_token"] = "<mfa_token>".into();
    insta::assert_json_snapshot!("login_mfa_required", required);
    insta::assert_json_snapshot!(
        "login_mfa_missing_fields",
        s.post("/auth/login/mfa", json!({}), None).await
    );
    insta::assert_json_snapshot!(
        "login_mfa_unknown_token",
        s.post(
            "/auth/login/mfa",
            json!({"mfa_token": "0".repeat(64), "code": "123456"}),
            None
        )
        .await
    );
    // A code of none of the window's steps: wrong.
    let near: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|d| common::totp(&secret, now + d))
        .collect();
    let wrong = (0..10)
        .map(|i| i.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .unwrap();
    insta::assert_json_snapshot!(
        "login_mfa_invalid_code",
        s.post(
            "/auth/login/mfa",
            json!({"mfa_token": token, "code": wrong}),
            None
        )
        .await
    );
}

#[tokio::test]
async fn passkey_errors() {
    use common::passkey::Authenticator;
    let s = Fast::start().await;
    let (access, _) = s.register("ada").await;
    insta::assert_json_snapshot!(
        "passkey_register_missing_fields",
        s.post("/auth/passkeys/register", json!({}), Some(&access))
            .await
    );
    let options = s
        .post("/auth/passkeys/register/options", json!({}), Some(&access))
        .await;
    assert_eq!(options["status"], 200, "{options}");
    let mut authenticator = Authenticator::new();
    authenticator.user_verification = false;
    let credential = authenticator.create(&options["body"]["publicKey"]);
    insta::assert_json_snapshot!(
        "passkey_register_refused",
        s.post(
            "/auth/passkeys/register",
            json!({"challenge_id": options["body"]["challenge_id"], "credential": credential, "name": "Key"}),
            Some(&access)
        )
        .await
    );
    insta::assert_json_snapshot!(
        "passkey_register_invalid_challenge",
        s.post(
            "/auth/passkeys/register",
            json!({"challenge_id": options["body"]["challenge_id"], "credential": credential, "name": "Key"}),
            Some(&access)
        )
        .await
    );
    insta::assert_json_snapshot!(
        "passkey_login_not_a_credential",
        s.post(
            "/auth/passkeys/login",
            json!({"challenge_id": "0".repeat(64), "credential": "x"}),
            None
        )
        .await
    );
    // A credential the server never registered.
    let login = s
        .post("/auth/passkeys/login/options", json!({}), None)
        .await;
    authenticator.user_verification = true;
    let assertion = authenticator.get(&login["body"]["publicKey"]);
    insta::assert_json_snapshot!(
        "passkey_login_refused",
        s.post(
            "/auth/passkeys/login",
            json!({"challenge_id": login["body"]["challenge_id"], "credential": assertion}),
            None
        )
        .await
    );
    let off = Fast::start_with(|c| c.webauthn_rp_id = "example.com".into()).await;
    insta::assert_json_snapshot!(
        "passkeys_off",
        off.post("/auth/passkeys/login/options", json!({}), None)
            .await
    );
}
