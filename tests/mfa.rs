//! The second factor (CONTRACT.md Part 2, "Second factor: TOTP and
//! recovery codes"): enrolment, the two-step login, replay, recovery codes,
//! the mfa_token's limits, the throttle, removal, and storage at rest.
//! Codes are computed here from the secret the enrolment returned, by an
//! RFC 6238 implementation of the test's own; time moves by the injected
//! clock.

mod common;

use common::{assert_error, base32_decode, tokens, totp, TestServer, PASSWORD};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

#[test]
fn the_tests_totp_matches_rfc_6238_appendix_b() {
    // Seed "12345678901234567890" in base32; the RFC's 8-digit values, last 6 digits.
    let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(totp(seed, 59), "287082");
    assert_eq!(totp(seed, 1_111_111_109), "081804");
    assert_eq!(totp(seed, 1_234_567_890), "005924");
}

/// A server whose clock stands in the middle of a time step, so a code
/// computed now is the server's current code for 15 seconds either way.
async fn server() -> TestServer {
    server_with(|_| {}).await
}

async fn server_with(adjust: impl FnOnce(&mut latchkey::config::Config)) -> TestServer {
    let s = TestServer::start_with(adjust).await;
    mid_step(&s);
    s
}

fn mid_step(s: &TestServer) {
    let into = s.clock.now().rem_euclid(30);
    s.clock.advance(15 - into);
}

struct Enrolled {
    email: String,
    name: String,
    secret: String,
    recovery: Vec<String>,
    access: String,
}

async fn delete_as(s: &TestServer, access: &str, path: &str, body: Value) -> Response {
    s.request(Method::DELETE, path)
        .await
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn json_of(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    r.json().await.unwrap()
}

/// Start TOTP enrolment as `access`: the secret.
async fn start_enrolment(s: &TestServer, access: &str) -> String {
    json_of(
        s.post_as(access, "/auth/mfa/totp", json!({"password": PASSWORD}))
            .await,
        StatusCode::OK,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Register a user, enrol and confirm TOTP.
async fn enrolled(s: &TestServer) -> Enrolled {
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let body = json_of(
        s.post_as(&access, "/auth/mfa/totp", json!({"password": PASSWORD}))
            .await,
        StatusCode::OK,
    )
    .await;
    let secret = body["secret"].as_str().unwrap().to_owned();
    let code = totp(&secret, s.clock.now());
    let confirmed = json_of(
        s.post_as(&access, "/auth/mfa/totp/confirm", json!({"code": code}))
            .await,
        StatusCode::OK,
    )
    .await;
    // The confirmation used this step's code: the tests start on the next one.
    s.clock.advance(30);
    Enrolled {
        email: user["email"].as_str().unwrap().to_owned(),
        name: user["name"].as_str().unwrap().to_owned(),
        secret,
        recovery: confirmed["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect(),
        access,
    }
}

/// The password step of an enrolled user: the mfa_token.
async fn mfa_token(s: &TestServer, email: &str) -> String {
    let r = s.login(email, PASSWORD).await;
    let body = assert_error(r, StatusCode::UNAUTHORIZED, "mfa_required").await;
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step(s: &TestServer, token: &str, code: &str) -> Response {
    s.post("/auth/login/mfa", json!({"mfa_token": token, "code": code}))
        .await
}

async fn assert_invalid_code(r: Response) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"code": ["Invalid code."]}));
}

async fn mfa_state(s: &TestServer, access: &str) -> Value {
    json_of(s.get_as(access, "/auth/mfa").await, StatusCode::OK).await
}

// The tests here wait for child `latchkey` commands synchronously: on a
// multi-threaded runtime the in-process servers keep serving meanwhile (on
// a current-thread one, a server's write transaction caught open would hold
// SQLite's write lock until the command gave up with `database is locked`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_is_pending_until_confirmed_with_a_code() {
    let s = server().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let (access, _) = tokens(&user);
    assert_eq!(
        mfa_state(&s, &access).await,
        json!({"totp": false, "recovery_codes_left": 0, "passkeys": 0})
    );

    let wrong = s
        .post_as(
            &access,
            "/auth/mfa/totp",
            json!({"password": "not-the-password"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.json::<Value>().await.unwrap()["password"].is_array());

    let body = json_of(
        s.post_as(&access, "/auth/mfa/totp", json!({"password": PASSWORD}))
            .await,
        StatusCode::OK,
    )
    .await;
    let secret = body["secret"].as_str().unwrap();
    assert_eq!(base32_decode(secret).len(), 20, "160-bit secret");
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/latchkey:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=latchkey"));

    // Pending: the password alone still logs in.
    assert_eq!(s.login(email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(mfa_state(&s, &access).await["totp"], false);

    let wrong_code = format!(
        "{:06}",
        (totp(secret, s.clock.now()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    assert_invalid_code(
        s.post_as(
            &access,
            "/auth/mfa/totp/confirm",
            json!({"code": wrong_code}),
        )
        .await,
    )
    .await;
    assert_invalid_code(
        s.post_as(&access, "/auth/mfa/totp/confirm", json!({"code": "12"}))
            .await,
    )
    .await;

    let code = totp(secret, s.clock.now());
    let confirmed = json_of(
        s.post_as(&access, "/auth/mfa/totp/confirm", json!({"code": code}))
            .await,
        StatusCode::OK,
    )
    .await;
    let codes = confirmed["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        mfa_state(&s, &access).await,
        json!({"totp": true, "recovery_codes_left": 10, "passkeys": 0})
    );
    // Enabled: a second enrolment is refused, the first secret stays.
    let again = s
        .post_as(&access, "/auth/mfa/totp", json!({"password": PASSWORD}))
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_login_of_an_enrolled_user_never_returns_tokens() {
    let s = server().await;
    let u = enrolled(&s).await;
    for body in [
        json!({"email": u.email, "password": PASSWORD}),
        json!({"name": u.name, "password": PASSWORD}),
        json!({"email": u.email.to_uppercase(), "password": PASSWORD}),
    ] {
        let r = s.post("/auth/login", body).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get("set-cookie").is_none(), "no device cookie");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["detail"], "Two-factor authentication required.");
        assert_eq!(body["code"], "mfa_required");
        assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
        assert_eq!(body["mfa_token"].as_str().unwrap().len(), 64);
        assert!(
            body.get("tokens").is_none() && body.get("access").is_none(),
            "{body}"
        );
    }
    // A wrong password is still the usual 401, with no mfa_token.
    let wrong = s.login(&u.email, "not-the-password").await;
    let body = assert_error(wrong, StatusCode::UNAUTHORIZED, "no_active_account").await;
    assert!(body.get("mfa_token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_finishes_the_login_and_is_refused_when_replayed() {
    let s = server().await;
    let u = enrolled(&s).await;
    let code = totp(&u.secret, s.clock.now());
    let token = mfa_token(&s, &u.email).await;
    let r = second_step(&s, &token, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("latchkey_device="));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], u.email.as_str());
    let (access, _) = tokens(&body);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);

    // The same code again, on a new login: refused (replay), on another
    // instance's clock alike (the last step is in the database).
    let token = mfa_token(&s, &u.email).await;
    assert_invalid_code(second_step(&s, &token, &code).await).await;
    // The next step's code works on the same token.
    s.clock.advance(30);
    let next = totp(&u.secret, s.clock.now());
    assert_eq!(
        second_step(&s, &token, &next).await.status(),
        StatusCode::OK
    );
    // And an older step's code, though within ±1 of now, is refused after a newer one.
    let token = mfa_token(&s, &u.email).await;
    assert_invalid_code(second_step(&s, &token, &code).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_one_step_either_side_are_accepted_and_two_steps_away_refused() {
    let s = server().await;
    let u = enrolled(&s).await;
    // One step past the one `enrolled` spent, so the step behind is unused.
    s.clock.advance(30);
    let now = s.clock.now();
    // Two steps away, either side: refused.
    for offset in [-60, 60] {
        let token = mfa_token(&s, &u.email).await;
        assert_invalid_code(second_step(&s, &token, &totp(&u.secret, now + offset)).await).await;
    }
    // One step behind, then one ahead (each newer than the last accepted).
    for offset in [-30, 30] {
        let token = mfa_token(&s, &u.email).await;
        let r = second_step(&s, &token, &totp(&u.secret, now + offset)).await;
        assert_eq!(r.status(), StatusCode::OK, "offset {offset}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_code_finishes_a_login_once() {
    let s = server().await;
    let u = enrolled(&s).await;
    let code = &u.recovery[0];
    assert_eq!(code.len(), 14, "xxxx-xxxx-xxxx");
    let token = mfa_token(&s, &u.email).await;
    let r = second_step(&s, &token, &code.to_uppercase()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(mfa_state(&s, &u.access).await["recovery_codes_left"], 9);

    let token = mfa_token(&s, &u.email).await;
    assert_invalid_code(second_step(&s, &token, code).await).await;
    // Another unused one, without hyphens.
    let other = u.recovery[1].replace('-', "");
    assert_eq!(
        second_step(&s, &token, &other).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_code_works_once_even_when_presented_twice_at_once() {
    let s = server().await;
    let u = enrolled(&s).await;
    let (t1, t2) = (mfa_token(&s, &u.email).await, mfa_token(&s, &u.email).await);
    let code = &u.recovery[0];
    let answers = s
        .post_all_at_once(
            "/auth/login/mfa",
            vec![
                json!({"mfa_token": t1, "code": code}),
                json!({"mfa_token": t2, "code": code}),
            ],
        )
        .await;
    let ok = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .count();
    let refused = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!((ok, refused), (1, 1), "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mfa_token_dies_after_five_wrong_codes() {
    let s = server().await;
    let u = enrolled(&s).await;
    let token = mfa_token(&s, &u.email).await;
    let right = totp(&u.secret, s.clock.now());
    let wrong = format!(
        "{:06}",
        (right.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    for _ in 0..5 {
        assert_invalid_code(second_step(&s, &token, &wrong).await).await;
    }
    let r = second_step(&s, &token, &right).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    // A new login may still finish with that (unused) code.
    let token = mfa_token(&s, &u.email).await;
    assert_eq!(
        second_step(&s, &token, &right).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mfa_token_expires_after_five_minutes() {
    let s = server().await;
    let u = enrolled(&s).await;
    let token = mfa_token(&s, &u.email).await;
    s.clock.advance(299);
    let alive = mfa_token(&s, &u.email).await;
    s.clock.advance(2);
    let code = totp(&u.secret, s.clock.now());
    assert_error(
        second_step(&s, &token, &code).await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_eq!(
        second_step(&s, &alive, &code).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mfa_token_is_single_use_and_no_other_kind_of_token() {
    let s = server().await;
    let u = enrolled(&s).await;
    let token = mfa_token(&s, &u.email).await;
    // Not an access token, not a refresh token, not a verifiable token.
    let me = s.get_as(&token, "/auth/me").await;
    assert_error(me, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    let refresh = s
        .post("/auth/token/refresh", json!({"refresh": token}))
        .await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    let verify = s.post("/auth/token/verify", json!({"token": token})).await;
    assert_error(verify, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    // And an access token is no mfa_token.
    let r = second_step(&s, &u.access, &totp(&u.secret, s.clock.now())).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;

    let code = totp(&u.secret, s.clock.now());
    assert_eq!(
        second_step(&s, &token, &code).await.status(),
        StatusCode::OK
    );
    let again = second_step(&s, &token, &u.recovery[0]).await;
    assert_error(again, StatusCode::UNAUTHORIZED, "token_not_valid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_against_the_accounts_login_throttle() {
    let s = server_with(|c| c.login_failures_per_account = 3).await;
    let u = enrolled(&s).await;
    let right = totp(&u.secret, s.clock.now());
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let kept = mfa_token(&s, &u.email).await;
    // A right password does not wipe the count: fresh tokens do not buy
    // fresh guesses.
    for _ in 0..3 {
        let token = mfa_token(&s, &u.email).await;
        assert_invalid_code(second_step(&s, &token, &wrong).await).await;
    }
    // Past the limit: even the right code is refused, and so is the password step.
    let r = second_step(&s, &kept, &right).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = s.login(&u.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // After the window, the right code works, and clears the count.
    s.clock.advance(3_600);
    let now_code = totp(&u.secret, s.clock.now());
    let token = mfa_token(&s, &u.email).await;
    assert_eq!(
        second_step(&s, &token, &now_code).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_and_disabling_end_the_users_other_sessions() {
    let s = server().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let (access, _) = tokens(&user);
    let other: Value = s.login(&email, PASSWORD).await.json().await.unwrap();
    let (other_access, _) = tokens(&other);
    let secret = start_enrolment(&s, &access).await;
    let code = totp(&secret, s.clock.now());
    let r = s
        .post_as(&access, "/auth/mfa/totp/confirm", json!({"code": code}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.get_as(&access, "/auth/me").await.status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        s.get_as(&other_access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A second session, through the second step, then disabling from the first.
    s.clock.advance(30);
    let token = mfa_token(&s, &email).await;
    let second: Value = second_step(&s, &token, &totp(&secret, s.clock.now()))
        .await
        .json()
        .await
        .unwrap();
    let (second_access, _) = tokens(&second);
    let wrong = delete_as(
        &s,
        &access,
        "/auth/mfa/totp",
        json!({"password": "nope-nope-nope"}),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(mfa_state(&s, &access).await["totp"], true);
    let r = delete_as(&s, &access, "/auth/mfa/totp", json!({"password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    assert_eq!(
        s.get_as(&second_access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mfa_state(&s, &access).await,
        json!({"totp": false, "recovery_codes_left": 0, "passkeys": 0})
    );
    // The password alone logs in again.
    assert_eq!(s.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerating_recovery_codes_needs_the_password_and_kills_the_old_ones() {
    let s = server().await;
    let u = enrolled(&s).await;
    let wrong = s
        .post_as(
            &u.access,
            "/auth/mfa/recovery-codes",
            json!({"password": "nope-nope-nope"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let fresh = json_of(
        s.post_as(
            &u.access,
            "/auth/mfa/recovery-codes",
            json!({"password": PASSWORD}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let fresh: Vec<String> = fresh["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !u.recovery.contains(c)));
    let token = mfa_token(&s, &u.email).await;
    assert_invalid_code(second_step(&s, &token, &u.recovery[2]).await).await;
    assert_eq!(
        second_step(&s, &token, &fresh[0]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_second_factor_gets_no_recovery_codes() {
    let s = server().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let r = s
        .post_as(
            &access,
            "/auth/mfa/recovery-codes",
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .post_as(&access, "/auth/mfa/totp/confirm", json!({"code": "123456"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_stored_sealed_and_recovery_codes_only_as_hashes() {
    use sqlx::Row as _;
    let s = server().await;
    let u = enrolled(&s).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.database_url).await.unwrap();
    let sealed: String = sqlx::query("SELECT secret_sealed FROM mfa_totp")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert!(!sealed.contains(&u.secret) && sealed.starts_with("v1:"));
    let raw = base32_decode(&u.secret);
    assert!(!sealed
        .as_bytes()
        .windows(raw.len())
        .any(|w| w == raw.as_slice()));
    let hashes: Vec<String> = sqlx::query("SELECT code_hash FROM mfa_recovery_codes")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(hashes.len(), 10);
    for code in &u.recovery {
        let bare = code.replace('-', "");
        assert!(hashes.iter().all(|h| !h.contains(&bare)));
    }
    let token = mfa_token(&s, &u.email).await;
    let stored: Vec<String> = sqlx::query("SELECT token_hash FROM mfa_challenges")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_steps_may_land_on_different_instances() {
    let a = server().await;
    let u = enrolled(&a).await;
    let b =
        TestServer::start_on(tempfile::tempdir().unwrap(), a.database_url.clone(), |_| {}).await;
    let token = mfa_token(&a, &u.email).await;
    let code = totp(&u.secret, a.clock.now());
    let r = second_step(&b, &token, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The code is spent on every instance.
    let token = mfa_token(&b, &u.email).await;
    assert_invalid_code(second_step(&a, &token, &code).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_enrolments_challenges_failures_and_recovery_codes() {
    let s = server().await;
    let u = enrolled(&s).await;
    let token = mfa_token(&s, &u.email).await;
    assert_invalid_code(second_step(&s, &token, "000000").await).await;
    assert_eq!(
        second_step(&s, &token, &u.recovery[0]).await.status(),
        StatusCode::OK
    );
    let text = s.get_text("/metrics").await;
    for line in [
        "latchkey_mfa_events_total{event=\"enrolled\"} 1",
        "latchkey_mfa_events_total{event=\"challenge\"} 1",
        "latchkey_mfa_events_total{event=\"failure\"} 1",
        "latchkey_mfa_events_total{event=\"recovery_code_used\"} 1",
        "latchkey_logins_total{outcome=\"mfa_required\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing");
    }
    assert!(!text.contains(&u.recovery[0]) && !text.contains(&u.secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_mfa_reset_removes_the_second_factor_and_is_logged_as_a_security_event() {
    let s = TestServer::start_with(|c| c.session_cache_millis = 0).await;
    mid_step(&s);
    let u = enrolled(&s).await;
    let out = common::latchkey_command()
        .args(["user", "mfa-reset", &u.email])
        .env("LATCHKEY_DATABASE_URL", &s.database_url)
        .env("LATCHKEY_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("second factor removed"), "{stdout}");
    assert!(stdout.contains("1 session ended"), "{stdout}");
    let logged = format!("{stdout}{stderr}");
    assert!(logged.contains("mfa_reset"), "{logged}");
    assert!(!logged.contains(&u.secret) && !logged.contains(&u.recovery[0]));
    // Their sessions ended; the password alone logs in now.
    assert_eq!(
        s.get_as(&u.access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = s.login(&u.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (access, _) = tokens(&r.json::<Value>().await.unwrap());
    assert_eq!(
        mfa_state(&s, &access).await,
        json!({"totp": false, "recovery_codes_left": 0, "passkeys": 0})
    );
    // An unknown user is an error, not a silent success.
    let out = common::latchkey_command()
        .args(["user", "mfa-reset", "nobody@example.com"])
        .env("LATCHKEY_DATABASE_URL", &s.database_url)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_between_the_two_steps_voids_the_mfa_token() {
    let s = server().await;
    let u = enrolled(&s).await;
    let token = mfa_token(&s, &u.email).await;
    let r = s
        .post_as(
            &u.access,
            "/auth/password/change",
            json!({"old_password": PASSWORD, "new_password": "Velvet-Canyon-Drum-58"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = second_step(&s, &token, &totp(&u.secret, s.clock.now())).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cookie_mode_the_second_step_sets_the_refresh_cookie_and_leaves_it_out_of_the_body() {
    let s = server_with(|c| c.refresh_cookie = true).await;
    let user = s.register("cookiemfa", "cookiemfa@example.com").await;
    let access = user["tokens"]["access"].as_str().unwrap().to_owned();
    let body = json_of(
        s.post_as(&access, "/auth/mfa/totp", json!({"password": PASSWORD}))
            .await,
        StatusCode::OK,
    )
    .await;
    let secret = body["secret"].as_str().unwrap().to_owned();
    let code = totp(&secret, s.clock.now());
    let r = s
        .post_as(&access, "/auth/mfa/totp/confirm", json!({"code": code}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.clock.advance(30);

    let token = mfa_token(&s, "cookiemfa@example.com").await;
    let r = second_step(&s, &token, &totp(&secret, s.clock.now())).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("latchkey_refresh="))
        .expect("the second step sets the refresh cookie")
        .to_owned();
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; Path=/auth/"),
        "{cookie}"
    );
    let body: Value = r.json().await.unwrap();
    assert!(body["tokens"]["access"].is_string(), "{body}");
    assert!(body["tokens"].get("refresh").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_and_disabling_mail_a_notice_that_holds_no_secret() {
    let s = server().await;
    let e = enrolled(&s).await;
    // The registration's verification link, then the enrolment's notice.
    let mails = common::mail::wait_for_eml(&s.mail_dir, &e.email, 2).await;
    let on = mails
        .iter()
        .find(|m| m.subject().contains("two-factor authentication is on"))
        .expect("a notice of the enrolment");
    let text = on.decoded();
    assert!(!text.contains(&e.secret), "the secret is in the notice");
    assert!(e.recovery.iter().all(|c| !text.contains(c.as_str())));

    let r = delete_as(
        &s,
        &e.access,
        "/auth/mfa/totp",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mails = common::mail::wait_for_eml(&s.mail_dir, &e.email, 3).await;
    assert!(mails
        .iter()
        .any(|m| m.subject().contains("two-factor authentication is off")));
    // Disabling again (nothing left to disable) mails nothing more.
    let r = delete_as(
        &s,
        &e.access,
        "/auth/mfa/totp",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(common::mail::eml_to(&s.mail_dir, &e.email).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_does_not_bypass_the_second_factor() {
    let s = server().await;
    let e = enrolled(&s).await;
    let r = s
        .post("/auth/password/reset", json!({"email": e.email}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = common::mail::eml_token(&s.mail_dir, &e.email, "/reset-password").await;
    let new_password = "Brand-New-Lantern-Owl-7";
    let r = s
        .post(
            "/auth/password/reset/confirm",
            json!({"token": token, "new_password": new_password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The new password alone yields only the second step, never tokens.
    let r = s.login(&e.email, new_password).await;
    let body = assert_error(r, StatusCode::UNAUTHORIZED, "mfa_required").await;
    assert!(body.get("tokens").is_none(), "{body}");
    let code = totp(&e.secret, s.clock.now());
    let token = body["mfa_token"].as_str().unwrap();
    assert_eq!(second_step(&s, token, &code).await.status(), StatusCode::OK);
}

/// The hashing queue's depth, from `/metrics`.
async fn hash_queue_depth(s: &TestServer) -> i64 {
    let text = s.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("latchkey_password_hash_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hash queue depth in {text}"))
}

/// The number `sql` (bound to `key`) answers, 0 for no row.
async fn scalar_of(db: &mut sqlx::AnyConnection, sql: &str, key: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .bind(key)
        .fetch_optional(db)
        .await
        .unwrap()
        .unwrap_or(0)
}

/// Poll `ready` every few milliseconds until it holds; fail after 30 s.
async fn wait_until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polling = async {
        while !ready().await {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(30), polling)
        .await
        .is_err()
    {
        panic!("timed out waiting until {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_confirmed_while_a_login_hashes_gets_that_login_a_challenge_not_tokens() {
    use sqlx::Connection as _;
    // One hashing worker, and twenty logins of other accounts ahead of the
    // racing one: it looks its account up (no second factor yet), then
    // waits its turn while the enrolment is confirmed.
    let s = server_with(|c| {
        c.hash_workers = Some(1);
        c.hash_queue = 64;
    })
    .await;
    sqlx::any::install_default_drivers();
    let db = tokio::sync::Mutex::new(sqlx::AnyConnection::connect(&s.database_url).await.unwrap());
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let id = user["id"].as_i64().unwrap();
    let (access, _) = tokens(&user);
    let secret = start_enrolment(&s, &access).await;
    let mut others = Vec::new();
    for _ in 0..20 {
        others.push(s.new_user().await);
    }
    let other_keys: Vec<String> = others
        .iter()
        .map(|u| format!("user:{}", u["id"].as_i64().unwrap()))
        .collect();
    let counted = format!(
        "SELECT COUNT(*) FROM login_throttle WHERE key IN ({})",
        other_keys
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut ahead = tokio::task::JoinSet::new();
    for other in &others {
        let login = s
            .request(Method::POST, "/auth/login")
            .await
            .json(&json!({"email": other["email"], "password": PASSWORD}));
        ahead.spawn(async move { login.send().await.unwrap().status() });
    }
    let own_key = format!("user:{id}");
    let racing = async {
        // Every other login has counted its attempt, so it is in the queue
        // (or done) before the racing one gets there.
        wait_until("the other logins are queued", || async {
            let mut db = db.lock().await;
            let n: i64 = sqlx::query_scalar(&counted)
                .fetch_one(&mut *db)
                .await
                .unwrap();
            n == 20
        })
        .await;
        s.login(&email, PASSWORD).await
    };
    let attempts = "SELECT attempts FROM login_throttle WHERE key = $1";
    let confirming = async {
        // The racing login counted its attempt: it has looked the account up.
        wait_until("the racing login has looked its account up", || async {
            scalar_of(&mut *db.lock().await, attempts, &own_key).await >= 1
        })
        .await;
        let code = totp(&secret, s.clock.now());
        let r = s
            .post_as(&access, "/auth/mfa/totp/confirm", json!({"code": code}))
            .await;
        (r.status(), hash_queue_depth(&s).await)
    };
    let (racing, (confirmed, depth_after)) = tokio::join!(racing, confirming);
    assert_eq!(confirmed, StatusCode::OK);
    assert!(
        depth_after >= 1,
        "when the confirmation answered, a login queued before the racing one still waited"
    );
    for status in ahead.join_all().await {
        assert_eq!(status, StatusCode::OK);
    }
    let body = assert_error(racing, StatusCode::UNAUTHORIZED, "mfa_required").await;
    assert_eq!(body["mfa_token"].as_str().unwrap().len(), 64);
    assert!(body.get("tokens").is_none(), "{body}");
    // Settled as a challenge (the attempt taken back), and nothing of a
    // session written: the registration's is the user's one session, and
    // no client is remembered for the account.
    let mut db = db.lock().await;
    assert_eq!(scalar_of(&mut db, attempts, &own_key).await, 0);
    for (table, rows) in [("sessions", 1), ("known_clients", 0)] {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1"))
                .bind(id)
                .fetch_one(&mut *db)
                .await
                .unwrap();
        assert_eq!(n, rows, "{table} of the racing user");
    }
}
