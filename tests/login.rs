//! `POST /auth/login`: by email or name, one failure answer for every kind of
//! bad credential, and throttling per account and per client address.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error, tokens, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn login_by_email_returns_the_user_and_a_fresh_token_pair() {
    let s = TestServer::start().await;
    let reg = s.register("soban", "msoban@gmail.com").await;
    let r = s.login("msoban@gmail.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], reg["id"]);
    assert_eq!(body["email"], "msoban@gmail.com");
    assert_eq!(body["name"], "soban");
    let (access, refresh) = tokens(&body);
    assert_ne!(access, tokens(&reg).0);
    assert_ne!(refresh, tokens(&reg).1);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_email_is_matched_case_insensitively() {
    let s = TestServer::start().await;
    s.register("soban", "MSoban@gmail.com").await;
    assert_eq!(
        s.login("msoban@GMAIL.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_name_sent_beside_the_email_is_ignored() {
    let s = TestServer::start().await;
    s.register("soban", "msoban@gmail.com").await;
    let r = s
        .post(
            "/auth/login",
            json!({"name": "somebody else", "email": "msoban@gmail.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_an_email_the_name_logs_in() {
    let s = TestServer::start().await;
    let reg = s.register("Soban", "msoban@gmail.com").await;
    let r = s
        .post(
            "/auth/login",
            json!({"name": "soban", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], reg["id"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_account_get_the_same_401() {
    let s = TestServer::start().await;
    s.register("soban", "msoban@gmail.com").await;
    let wrong = s.login("msoban@gmail.com", "Wrong-Password-99").await;
    let wrong_headers = wrong.headers().clone();
    let wrong = assert_error(wrong, StatusCode::UNAUTHORIZED, "no_active_account").await;
    let unknown = s.login("nobody@gmail.com", "Wrong-Password-99").await;
    let unknown_headers = unknown.headers().clone();
    let unknown = assert_error(unknown, StatusCode::UNAUTHORIZED, "no_active_account").await;
    assert_eq!(wrong, unknown);
    assert_eq!(
        wrong["detail"],
        "No active account found with the given credentials"
    );
    assert_eq!(
        wrong_headers.get("www-authenticate"),
        unknown_headers.get("www-authenticate")
    );
    let by_name = s
        .post(
            "/auth/login",
            json!({"name": "nobody", "password": "x-Wrong-Password"}),
        )
        .await;
    assert_eq!(
        assert_error(by_name, StatusCode::UNAUTHORIZED, "no_active_account").await,
        wrong
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn wrong_password_and_unknown_account_take_the_same_time_within_noise() {
    let s = TestServer::start_with(|c| {
        c.login_failures_per_account = 1_000;
        c.login_failures_per_address = 1_000;
    })
    .await;
    s.register("soban", "msoban@gmail.com").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let t = Instant::now();
        assert_eq!(
            s.login("msoban@gmail.com", "Wrong-Password-99")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        known.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(
            s.login(&format!("ghost{i}@gmail.com"), "Wrong-Password-99")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        unknown.push(t.elapsed());
    }
    let (k, u) = (median(known), median(unknown));
    // Both spend one Argon2id verification (tens of milliseconds); an
    // unknown account that skipped it would answer in well under a tenth.
    let ratio = k.as_secs_f64() / u.as_secs_f64();
    assert!((0.33..3.0).contains(&ratio), "known {k:?} vs unknown {u:?}");
}

#[tokio::test]
async fn missing_and_blank_fields_are_field_errors() {
    let s = TestServer::start().await;
    let r = s.post("/auth/login", json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], json!(["This field is required."]));
    assert_eq!(body["password"], json!(["This field is required."]));
    let r = s
        .post(
            "/auth/login",
            json!({"email": "a@example.com", "password": ""}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"password": ["This field may not be blank."]}));
    let r = s
        .post("/auth/login", json!({"email": "nope", "password": "x"}))
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"email": ["Enter a valid email address."]}));
}

#[tokio::test]
async fn repeated_failures_on_one_account_are_throttled_with_retry_after() {
    let s = TestServer::start_with(|c| {
        c.login_failures_per_account = 3;
        c.login_throttle_window_seconds = 600;
    })
    .await;
    s.register("soban", "msoban@gmail.com").await;
    for _ in 0..3 {
        assert_eq!(
            s.login("msoban@gmail.com", "Wrong-Password-99")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = s.login("msoban@gmail.com", "Wrong-Password-99").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    // The right password does not get through a throttled account either.
    let r = s.login("msoban@gmail.com", PASSWORD).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    // Logging in by name targets the same account and is throttled too.
    let r = s
        .post(
            "/auth/login",
            json!({"name": "soban", "password": PASSWORD}),
        )
        .await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn unknown_accounts_are_throttled_like_real_ones() {
    let s = TestServer::start_with(|c| c.login_failures_per_account = 2).await;
    for _ in 0..2 {
        assert_eq!(
            s.login("ghost@example.com", "Wrong-Password-99")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = s.login("ghost@example.com", "Wrong-Password-99").await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn a_few_mistakes_then_the_right_password_still_logs_in_and_resets_the_count() {
    let s = TestServer::start_with(|c| c.login_failures_per_account = 3).await;
    s.register("soban", "msoban@gmail.com").await;
    for _ in 0..2 {
        assert_eq!(
            s.login("msoban@gmail.com", "Wrong-Password-99")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.login("msoban@gmail.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        assert_eq!(
            s.login("msoban@gmail.com", "Wrong-Password-99")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.login("msoban@gmail.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failures_across_many_accounts_from_one_address_are_throttled() {
    let s = TestServer::start_with(|c| {
        c.login_failures_per_account = 100;
        c.login_failures_per_address = 4;
    })
    .await;
    for i in 0..4 {
        let r = s
            .login(&format!("spray{i}@example.com"), "Wrong-Password-99")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = s.login("spray-next@example.com", "Wrong-Password-99").await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn the_address_behind_trusted_proxies_is_what_gets_throttled() {
    let s = TestServer::start_with(|c| {
        c.login_failures_per_account = 100;
        c.login_failures_per_address = 2;
        c.trusted_proxy_hops = 1;
    })
    .await;
    let attempt = |ip: &'static str, i: usize| {
        let s = &s;
        async move {
            s.request(reqwest::Method::POST, "/auth/login")
                .await
                .header("X-Forwarded-For", ip)
                .json(
                    &json!({"email": format!("p{i}@example.com"), "password": "Wrong-Password-99"}),
                )
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(attempt("203.0.113.7", 0).await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("203.0.113.7", 1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        attempt("203.0.113.7", 2).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(attempt("198.51.100.9", 3).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn parallel_guesses_cannot_exceed_the_account_limit() {
    let s = TestServer::start_with(|c| c.login_failures_per_account = 5).await;
    s.register("soban", "msoban@gmail.com").await;
    let bodies = vec![json!({"email": "msoban@gmail.com", "password": "Wrong-Password-99"}); 20];
    let answers = s.post_all_at_once("/auth/login", bodies).await;
    let mut checked = 0;
    for (status, _) in answers {
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        checked += usize::from(status == StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        checked, 5,
        "exactly the limit's worth of passwords were checked"
    );
}

#[tokio::test]
async fn logins_beyond_the_hash_queue_and_its_short_wait_get_503_and_do_not_count_as_attempts() {
    let s = TestServer::start_with(|c| {
        c.hash_workers = Some(1);
        c.hash_queue = 0;
    })
    .await;
    // 48 hashes on one worker take far longer than the 100 ms a login waits
    // for room (ADMISSION_WAIT), so most of them are refused.
    let bodies = (0..48)
        .map(|i| json!({"email": format!("flood{i}@example.com"), "password": "Wrong-Password-99"}))
        .collect();
    let answers = s.post_all_at_once("/auth/login", bodies).await;
    let (mut overloaded, mut checked) = (0, 0);
    for (status, headers) in answers {
        let retry_after = headers.get("retry-after").cloned();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            overloaded += 1;
            assert_eq!(retry_after.unwrap(), "1");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            checked += 1;
        }
    }
    assert!(
        overloaded > 0,
        "with one worker and no queue, parallel logins overflow"
    );
    // Only the attempts whose password was checked count against the address.
    let store = latchkey::open_store(&{
        let mut c = latchkey::config::Config::defaults().unwrap();
        c.database_url = s.database_url.clone();
        c
    })
    .await
    .unwrap();
    let counted = store
        .throttle_hit(["addr:127.0.0.1"], latchkey::auth::now(), 900)
        .await
        .unwrap()[0]
        .attempts
        - 1;
    assert_eq!(counted, checked);
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_login_does_not_leave_an_attempt_counted() {
    use tokio::io::AsyncWriteExt as _;
    let s = TestServer::start_with(|c| c.login_failures_per_address = 3).await;
    let user = s.register("soban", "msoban@gmail.com").await;
    let (registered, _) = tokens(&user);
    let csrf = s.csrf().await;
    let body = json!({"email": "msoban@gmail.com", "password": PASSWORD}).to_string();
    for abandoned in 1..=8 {
        // Send a whole login and hang up at once, long before the password
        // check can finish.
        let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let request = format!(
            "POST /auth/login HTTP/1.1\r\nHost: x\r\nX-CSRFToken: {csrf}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        c.write_all(request.as_bytes()).await.unwrap();
        drop(c);
        // The login runs to completion on the server all the same: wait
        // until it has started its session before the next one (logins in
        // flight at once count together, so parallel guesses cannot slip
        // past the limit).
        let started = Instant::now();
        loop {
            let live: Vec<Value> = s
                .get_as(&registered, "/auth/sessions")
                .await
                .json()
                .await
                .unwrap();
            if live.len() == 1 + abandoned {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "abandoned login {abandoned} never completed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Every abandoned login was a correct one: none may count against the
    // address, though there were more of them than it allows failures.
    let r = s.login("msoban@gmail.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A login attempt from `ip` (behind one trusted proxy), with a device
/// cookie if given.
async fn login_from(
    s: &TestServer,
    ip: &str,
    device: Option<&str>,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let mut request = s
        .request(reqwest::Method::POST, "/auth/login")
        .await
        .header("X-Forwarded-For", ip)
        .json(&json!({"email": email, "password": password}));
    if let Some(device) = device {
        request = request.header("Cookie", format!("latchkey_device={device}"));
    }
    request.send().await.unwrap()
}

/// The device token a login answer sets.
fn device_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("latchkey_device="))
        .and_then(|v| v.split(';').next())
        .expect("a device cookie")
        .to_owned()
}

async fn hammered_server() -> TestServer {
    TestServer::start_with(|c| {
        c.login_failures_per_account = 5;
        c.login_failures_per_address = 1_000;
        c.trusted_proxy_hops = 1;
    })
    .await
}

const USER_IP: &str = "198.51.100.1";

async fn hammer(s: &TestServer, email: &str) {
    for i in 0..20 {
        let ip = format!("203.0.113.{}", i % 7 + 1);
        login_from(s, &ip, None, email, "Wrong-Password-99").await;
    }
    // The attacker is throttled, the right password included.
    let r = login_from(s, "203.0.113.1", None, email, PASSWORD).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn a_device_that_logged_in_before_gets_in_while_the_account_is_hammered_from_elsewhere() {
    let s = hammered_server().await;
    s.register("soban", "msoban@gmail.com").await;
    let first = login_from(&s, USER_IP, None, "msoban@gmail.com", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::OK);
    let device = device_cookie(&first);
    let set_cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    hammer(&s, "msoban@gmail.com").await;

    // From a new address (the user's phone moved networks), with the cookie.
    let r = login_from(
        &s,
        "192.0.2.50",
        Some(&device),
        "msoban@gmail.com",
        PASSWORD,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The same new address without the cookie is an unknown client.
    let r = login_from(&s, "192.0.2.51", None, "msoban@gmail.com", PASSWORD).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn an_address_that_logged_in_before_gets_in_while_the_account_is_hammered() {
    let s = hammered_server().await;
    s.register("soban", "msoban@gmail.com").await;
    let first = login_from(&s, USER_IP, None, "msoban@gmail.com", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::OK);
    hammer(&s, "msoban@gmail.com").await;
    let r = login_from(&s, USER_IP, None, "msoban@gmail.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_ipv6_network_that_logged_in_before_gets_in_while_the_account_is_hammered() {
    let s = hammered_server().await;
    s.register("soban", "msoban@gmail.com").await;
    let first = login_from(&s, "2001:db8:7:a0::1", None, "msoban@gmail.com", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::OK);
    hammer(&s, "msoban@gmail.com").await;
    // Another address of the same /64 is the same known client; one of
    // another /64 is not.
    let r = login_from(&s, "2001:db8:7:a0::2", None, "msoban@gmail.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = login_from(&s, "2001:db8:7:a1::1", None, "msoban@gmail.com", PASSWORD).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn a_known_client_guessing_is_throttled_on_its_own_counter() {
    let s = hammered_server().await;
    s.register("soban", "msoban@gmail.com").await;
    let first = login_from(&s, USER_IP, None, "msoban@gmail.com", PASSWORD).await;
    let device = device_cookie(&first);
    for _ in 0..5 {
        let r = login_from(
            &s,
            "192.0.2.9",
            Some(&device),
            "msoban@gmail.com",
            "Wrong-1-Guess",
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_from(&s, "192.0.2.9", Some(&device), "msoban@gmail.com", PASSWORD).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    // The account's shared counter and the known address are untouched.
    let r = login_from(&s, USER_IP, None, "msoban@gmail.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_device_cookie_of_another_account_or_forged_is_no_help() {
    let s = hammered_server().await;
    s.register("soban", "msoban@gmail.com").await;
    s.register("other", "other@example.com").await;
    let other = login_from(&s, "192.0.2.77", None, "other@example.com", PASSWORD).await;
    let others_device = device_cookie(&other);
    hammer(&s, "msoban@gmail.com").await;
    for device in [others_device.as_str(), "AAAA", &"A".repeat(86)] {
        let r = login_from(
            &s,
            "203.0.113.1",
            Some(device),
            "msoban@gmail.com",
            PASSWORD,
        )
        .await;
        assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    }
}

#[tokio::test]
async fn a_new_password_ends_the_device_tokens_issued_before_it() {
    let s = hammered_server().await;
    s.register("soban", "msoban@gmail.com").await;
    let first = login_from(&s, USER_IP, None, "msoban@gmail.com", PASSWORD).await;
    let device = device_cookie(&first);
    let body: Value = first.json().await.unwrap();
    let (access, _) = tokens(&body);
    let changed = s
        .post_as(
            &access,
            "/auth/password/change",
            json!({"old_password": PASSWORD, "new_password": "Velvet-Canyon-Drum-58"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    hammer(&s, "msoban@gmail.com").await;
    let r = login_from(
        &s,
        "192.0.2.50",
        Some(&device),
        "msoban@gmail.com",
        "Velvet-Canyon-Drum-58",
    )
    .await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn a_user_logged_in_can_change_a_password_while_the_account_is_hammered() {
    let s = hammered_server().await;
    let user = s.register("soban", "msoban@gmail.com").await;
    let (access, _) = tokens(&user);
    hammer(&s, "msoban@gmail.com").await;
    let changed = s
        .post_as(
            &access,
            "/auth/password/change",
            json!({"old_password": PASSWORD, "new_password": "Velvet-Canyon-Drum-58"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
}
