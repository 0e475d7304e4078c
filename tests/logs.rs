//! What the logs say: structured security events with the request id on
//! every line, and never a password, token or key, at any level down to
//! DEBUG, in both formats.

mod common;

use std::io::Read as _;

use common::claims;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SECRET_KEY: &str = "k3y-material-that-must-never-be-logged-0123456789";
const PASSWORD: &str = "Sapphire-Otter-Banjo-31";
const NEW_PASSWORD: &str = "Copper-Meadow-Kite-64";
const WRONG_PASSWORD: &str = "Wrong-Guess-Marble-12";

struct Run {
    log: String,
    secrets: Vec<String>,
}

/// Start the binary with `format` logs at DEBUG, drive every flow that
/// handles a secret, stop it, and return its whole output and the secrets seen.
async fn drive(format: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(&dir).await;
    let log_path = dir.path().join("out.log");
    let server = common::ServerProcess::start_logging_to(
        &[
            ("LATCHKEY_DATABASE_URL", &database_url),
            ("LATCHKEY_SECRET_KEY", SECRET_KEY),
            ("LATCHKEY_LOG", "debug"),
            ("LATCHKEY_LOG_FORMAT", format),
            ("LATCHKEY_LOGIN_FAILURES_PER_ACCOUNT", "2"),
            ("LATCHKEY_REFRESH_REUSE_GRACE_SECONDS", "0"),
        ],
        &log_path,
    )
    .await;
    let base = server.base.clone();
    let client = reqwest::Client::new();

    let csrf = common::fetch_csrf(&client, &base).await;
    let post = |path: &str, body: Value, bearer: Option<&str>| {
        let mut r = client
            .post(format!("{base}{path}"))
            .header("X-CSRFToken", &csrf)
            .header("Cookie", format!("csrftoken={csrf}"))
            .json(&body);
        if let Some(token) = bearer {
            r = r.bearer_auth(token);
        }
        r.send()
    };
    let email = "logs@example.com";
    let r = post(
        "/auth/register",
        json!({"name": "logs", "email": email, "password": PASSWORD}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let access = body["tokens"]["access"].as_str().unwrap().to_owned();
    let refresh = body["tokens"]["refresh"].as_str().unwrap().to_owned();

    let r = post(
        "/auth/login",
        json!({"email": email, "password": WRONG_PASSWORD}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(
        "/auth/login",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await
    .unwrap();
    let second: Value = r.json().await.unwrap();
    let second_access = second["tokens"]["access"].as_str().unwrap().to_owned();
    let second_refresh = second["tokens"]["refresh"].as_str().unwrap().to_owned();

    client
        .get(format!("{base}/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let r = post("/auth/token/verify", json!({"token": refresh}), None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = post("/auth/token/refresh", json!({"refresh": refresh}), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated_refresh = rotated["refresh"].as_str().unwrap().to_owned();
    // Reuse of the rotated token: a security event.
    let r = post("/auth/token/refresh", json!({"refresh": refresh}), None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(
        "/auth/password/change",
        json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
        Some(&second_access),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = post(
        "/auth/logout",
        json!({"refresh": second_refresh}),
        Some(&second_access),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A throttled burst, with a request id of our own on the last try.
    for _ in 0..2 {
        post(
            "/auth/login",
            json!({"email": email, "password": WRONG_PASSWORD}),
            None,
        )
        .await
        .unwrap();
    }
    let r = client
        .post(format!("{base}/auth/login"))
        .header("X-CSRFToken", &csrf)
        .header("X-Request-Id", "trace-me-123")
        .json(&json!({"email": email, "password": WRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // A malformed body that echoes a password-like value in a parse error.
    let r = client
        .post(format!("{base}/auth/login"))
        .header("X-CSRFToken", &csrf)
        .header("Content-Type", "application/json")
        .body(format!("{{\"password\": \"{PASSWORD}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "parse_error");

    // The second factor: enrol, confirm, a wrong code, a recovery-code login,
    // new recovery codes. The TOTP secret, its URI, the mfa_token and every
    // recovery code are secrets too. (The 6-digit codes are not listed: six
    // digits occur in timestamps by chance.)
    let r = post(
        "/auth/register",
        json!({"name": "mfa-logs", "email": "mfa-logs@example.com", "password": PASSWORD}),
        None,
    )
    .await
    .unwrap();
    let mfa_access = r.json::<Value>().await.unwrap()["tokens"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let enrolment: Value = post(
        "/auth/mfa/totp",
        json!({"password": PASSWORD}),
        Some(&mfa_access),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let totp_secret = enrolment["secret"].as_str().unwrap().to_owned();
    let otpauth_uri = enrolment["otpauth_uri"].as_str().unwrap().to_owned();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let r = post(
        "/auth/mfa/totp/confirm",
        json!({"code": common::totp(&totp_secret, now())}),
        Some(&mfa_access),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut recovery: Vec<String> = r.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let r = post(
        "/auth/login",
        json!({"email": "mfa-logs@example.com", "password": PASSWORD}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mfa_token = r.json::<Value>().await.unwrap()["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let near: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|d| common::totp(&totp_secret, now() + d))
        .collect();
    let wrong = (0..10)
        .map(|i| format!("{i}{i}{i}{i}{i}{i}"))
        .find(|c| !near.contains(c))
        .unwrap();
    let r = post(
        "/auth/login/mfa",
        json!({"mfa_token": mfa_token, "code": wrong}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(
        "/auth/login/mfa",
        json!({"mfa_token": mfa_token, "code": recovery[0]}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = post(
        "/auth/mfa/recovery-codes",
        json!({"password": PASSWORD}),
        Some(&mfa_access),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    recovery.extend(
        r.json::<Value>().await.unwrap()["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned()),
    );

    server.terminate();
    let mut log = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();

    let mut secrets = vec![
        SECRET_KEY.to_owned(),
        PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        csrf.clone(),
        totp_secret,
        otpauth_uri,
        mfa_token,
    ];
    for code in recovery {
        secrets.push(code.replace('-', ""));
        secrets.push(code);
    }
    for token in [
        &mfa_access,
        &access,
        &refresh,
        &second_access,
        &second_refresh,
        &rotated_refresh,
    ] {
        secrets.push(token.clone());
        // Any JWT part long enough to matter: the signature, the payload.
        secrets.extend(token.split('.').skip(1).map(str::to_owned));
        secrets.push(claims(token)["jti"].as_str().unwrap().to_owned());
    }
    Run { log, secrets }
}

fn assert_no_secret(run: &Run) {
    assert!(run.log.lines().count() > 20, "the run logged: {}", run.log);
    for secret in &run.secrets {
        assert!(
            !run.log.contains(secret.as_str()),
            "secret {secret:.12}... found in the log"
        );
    }
}

#[tokio::test]
async fn no_password_token_or_key_reaches_the_text_log_at_debug() {
    let run = drive("text").await;
    assert_no_secret(&run);
    let failed = run
        .log
        .lines()
        .find(|l| l.contains("login_failed"))
        .expect("login_failed logged");
    assert!(failed.contains(" request_id="), "{failed}");
    assert!(run.log.contains("refresh_reuse_detected"));
}

#[tokio::test]
async fn json_logs_carry_the_request_id_on_every_request_line_and_no_secret() {
    let run = drive("json").await;
    assert_no_secret(&run);
    let lines: Vec<Value> = run
        .log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let events =
        |name: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event"] == name).collect() };
    for name in [
        "login_failed",
        "login_throttled",
        "refresh_reuse_detected",
        "logout",
        "password_changed",
    ] {
        let found = events(name);
        assert!(!found.is_empty(), "{name} logged");
        for line in found {
            assert_eq!(line["target"], "latchkey::security", "{line}");
            let id = line["request_id"].as_str().unwrap_or_default();
            assert_eq!(
                id.len(),
                if id == "trace-me-123" { 12 } else { 32 },
                "{line}"
            );
        }
    }
    assert!(events("login_throttled")
        .iter()
        .any(|l| l["request_id"] == "trace-me-123"));
    // Every line written while serving a request carries its id: the access
    // lines and every security event (all of this run's come from requests).
    let served: Vec<_> = lines.iter().filter(|l| l["message"] == "served").collect();
    assert!(served.len() >= 10, "one access line per request at DEBUG");
    for line in &served {
        assert!(
            line["path"].is_string() && line["status"].is_number(),
            "{line}"
        );
    }
    let security: Vec<_> = lines.iter().filter(|l| l["event"].is_string()).collect();
    assert!(security.len() >= 5, "security events were logged");
    for line in served.into_iter().chain(security) {
        assert!(line["request_id"].is_string(), "{line}");
    }
}
