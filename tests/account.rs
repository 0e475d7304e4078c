//! The account endpoints: password change, logout everywhere, the session
//! list and ending one session. Each needs CSRF and a Bearer token.

mod common;

use common::{assert_error, tokens, TestServer, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "Quiet-Harbor-Lamp-42";

async fn sessions(s: &TestServer, access: &str) -> Vec<Value> {
    let r = s.get_as(access, "/auth/sessions").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Vec<Value>>().await.unwrap()
}

async fn delete_as(s: &TestServer, access: &str, path: &str) -> reqwest::Response {
    s.request(Method::DELETE, path)
        .await
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// A user with two sessions: the registration and one login.
async fn user_with_two_sessions(s: &TestServer) -> (Value, (String, String), (String, String)) {
    let user = s.new_user().await;
    let first = tokens(&user);
    let login = s.login(user["email"].as_str().unwrap(), PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let second = tokens(&login.json().await.unwrap());
    (user, first, second)
}

#[tokio::test]
async fn the_session_list_shows_each_live_session_and_marks_the_current_one() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (first, _) = tokens(&user);
    // The second session logs in with a browser's User-Agent.
    let login = s
        .request(Method::POST, "/auth/login")
        .await
        .header("User-Agent", "Mozilla/5.0 (latchkey test)")
        .json(&json!({"email": user["email"], "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let (second, _) = tokens(&login.json().await.unwrap());

    let list = sessions(&s, &second).await;
    assert_eq!(list.len(), 2, "{list:?}");
    for session in &list {
        assert_eq!(session["id"].as_str().unwrap().len(), 32, "{session}");
        for key in ["created", "last_used", "expires"] {
            let value = session[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {session}"));
            assert_eq!(value.len(), 20, "RFC 3339 UTC: {value}");
            assert!(value.ends_with('Z'));
        }
        assert_eq!(session["client_addr"], "127.0.0.1");
    }
    let first_sid = common::claims(&first)["sid"].clone();
    let second_sid = common::claims(&second)["sid"].clone();
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], second_sid);
    assert_eq!(current[0]["user_agent"], "Mozilla/5.0 (latchkey test)");
    let other = list.iter().find(|s| s["id"] == first_sid).unwrap();
    assert_eq!(other["current"], false);
    assert!(
        other["user_agent"].is_null(),
        "registered without a User-Agent"
    );
}

#[tokio::test]
async fn session_ids_start_with_the_millisecond_the_session_started() {
    // Time-ordered, by the injected clock: each new id sorts after the last,
    // so the sessions' index is appended to (docs/benchmarks.md).
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap();
    let mut sids = Vec::new();
    for _ in 0..3 {
        s.clock.advance(3_600);
        let before = s.clock.now_millis();
        let login = s.login(email, PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK);
        let after = s.clock.now_millis();
        let (access, _) = tokens(&login.json().await.unwrap());
        let sid = common::claims(&access)["sid"].as_str().unwrap().to_owned();
        let millis = u64::from_str_radix(&sid[..12], 16).unwrap();
        assert!(
            (before..=after).contains(&millis),
            "{before} {millis} {after}"
        );
        sids.push(sid);
    }
    let mut sorted = sids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, sids);
    // The rest of each id is random: never the same twice.
    let tails: std::collections::HashSet<&str> = sids.iter().map(|id| &id[12..]).collect();
    assert_eq!(tails.len(), sids.len());
}

#[tokio::test]
async fn the_session_list_shows_only_the_callers_sessions() {
    let s = TestServer::start().await;
    let (_, _, (mine, _)) = user_with_two_sessions(&s).await;
    let other = s.new_user().await;
    let (theirs, _) = tokens(&other);
    assert_eq!(sessions(&s, &mine).await.len(), 2);
    let list = sessions(&s, &theirs).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], common::claims(&theirs)["sid"]);
}

#[tokio::test]
async fn ending_a_session_revokes_its_tokens_and_leaves_the_others() {
    let s = TestServer::start().await;
    let (_, (first, first_refresh), (second, _)) = user_with_two_sessions(&s).await;
    let sid = common::claims(&first)["sid"].as_str().unwrap().to_owned();
    let r = delete_as(&s, &second, &format!("/auth/sessions/{sid}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    assert_error(
        s.get_as(&first, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    let r = s
        .post("/auth/token/refresh/", json!({"refresh": first_refresh}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    assert_eq!(s.get_as(&second, "/auth/me").await.status(), StatusCode::OK);
    assert_eq!(sessions(&s, &second).await.len(), 1);
}

#[tokio::test]
async fn ending_another_users_session_is_not_found_and_changes_nothing() {
    let s = TestServer::start().await;
    let victim = s.new_user().await;
    let (victim_access, _) = tokens(&victim);
    let attacker = s.new_user().await;
    let (attacker_access, _) = tokens(&attacker);
    let sid = common::claims(&victim_access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = delete_as(&s, &attacker_access, &format!("/auth/sessions/{sid}")).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        s.get_as(&victim_access, "/auth/me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn ending_an_unknown_or_already_ended_session_is_not_found() {
    let s = TestServer::start().await;
    let (_, (first, _), (second, _)) = user_with_two_sessions(&s).await;
    let r = delete_as(
        &s,
        &second,
        "/auth/sessions/0123456789abcdef0123456789abcdef",
    )
    .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let sid = common::claims(&first)["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        delete_as(&s, &second, &format!("/auth/sessions/{sid}/"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let r = delete_as(&s, &second, &format!("/auth/sessions/{sid}")).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn ending_the_current_session_logs_the_caller_out() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let sid = common::claims(&access)["sid"].as_str().unwrap().to_owned();
    let r = delete_as(&s, &access, &format!("/auth/sessions/{sid}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        s.get_as(&access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_only() {
    let s = TestServer::start().await;
    let (_, (first, first_refresh), (second, _)) = user_with_two_sessions(&s).await;
    let bystander = s.new_user().await;
    let (bystander_access, _) = tokens(&bystander);

    let r = s.post_as(&second, "/auth/logout/all", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sessions_ended"], 2, "{body}");
    assert!(body["detail"].is_string());

    for access in [&first, &second] {
        let r = s.get_as(access, "/auth/me").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    }
    let r = s
        .post("/auth/token/refresh", json!({"refresh": first_refresh}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    assert_eq!(
        s.get_as(&bystander_access, "/auth/me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_password_change_keeps_this_session_ends_the_others_and_swaps_the_password() {
    let s = TestServer::start().await;
    let (user, (first, _), (second, second_refresh)) = user_with_two_sessions(&s).await;
    let email = user["email"].as_str().unwrap();
    let r = s
        .post_as(
            &second,
            "/auth/password/change",
            json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.json::<Value>().await.unwrap()["detail"].is_string());

    assert_eq!(s.get_as(&second, "/auth/me").await.status(), StatusCode::OK);
    let r = s
        .post("/auth/token/refresh", json!({"refresh": second_refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "this session still refreshes");
    assert_error(
        s.get_as(&first, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;

    let r = s.login(email, PASSWORD).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
    assert_eq!(s.login(email, NEW_PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_old_password_is_a_field_error_and_changes_nothing() {
    let s = TestServer::start().await;
    let (user, (first, _), (second, _)) = user_with_two_sessions(&s).await;
    let r = s
        .post_as(
            &second,
            "/auth/password/change",
            json!({"old_password": "Not-The-Password-9", "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"old_password": ["Your old password was entered incorrectly. Please enter it again."]})
    );
    assert_eq!(s.get_as(&first, "/auth/me").await.status(), StatusCode::OK);
    let email = user["email"].as_str().unwrap();
    assert_eq!(s.login(email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_weak_or_missing_new_password_is_refused_with_field_messages() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let r = s
        .post_as(
            &access,
            "/auth/password/change",
            json!({"old_password": PASSWORD, "new_password": "123"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    let messages = body["new_password"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().unwrap().contains("too short")),
        "{body}"
    );

    let r = s.post_as(&access, "/auth/password/change", json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"old_password": ["This field is required."], "new_password": ["This field is required."]})
    );
}

#[tokio::test]
async fn wrong_old_passwords_are_throttled_like_logins() {
    let s = TestServer::start_with(|c| c.login_failures_per_account = 2).await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let wrong = json!({"old_password": "Not-The-Password-9", "new_password": NEW_PASSWORD});
    for _ in 0..2 {
        let r = s
            .post_as(&access, "/auth/password/change", wrong.clone())
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = s.post_as(&access, "/auth/password/change", wrong).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    // The same counter as logins: the account's logins are throttled too,
    // even with the right password.
    let email = user["email"].as_str().unwrap();
    assert_error(
        s.login(email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "throttled",
    )
    .await;
}

#[tokio::test]
async fn a_right_old_password_takes_back_only_its_own_guess_from_the_account() {
    // Failures an unknown client made on the account stay counted: the
    // user proving the password in a session does not give an attacker
    // elsewhere a fresh allowance, and the check itself is not counted.
    let s = TestServer::start_with(|c| {
        c.login_failures_per_account = 3;
        c.trusted_proxy_hops = 1;
    })
    .await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let email = user["email"].as_str().unwrap();
    let guess_from_elsewhere = || async {
        s.request(Method::POST, "/auth/login")
            .await
            .header("X-Forwarded-For", "198.51.100.7")
            .json(&json!({"email": email, "password": "Not-The-Password-9"}))
            .send()
            .await
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(
            guess_from_elsewhere().await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = s
        .post_as(
            &access,
            "/auth/password/change",
            json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    // Two failures before, none for the change: one more is allowed, the
    // one after it is not.
    assert_eq!(
        guess_from_elsewhere().await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_error(
        guess_from_elsewhere().await,
        StatusCode::TOO_MANY_REQUESTS,
        "throttled",
    )
    .await;
}

#[tokio::test]
async fn a_right_current_password_clears_the_sessions_own_guesses() {
    // The session's counter decides, and a right password starts it over,
    // on every route that asks for the current password.
    let s = TestServer::start_with(|c| c.login_failures_per_account = 3).await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let wrong_change = json!({"old_password": "Not-The-Password-9", "new_password": NEW_PASSWORD});
    for _ in 0..2 {
        let r = s
            .post_as(&access, "/auth/password/change", wrong_change.clone())
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // The email change asks for the password too, on the same counter.
    let r = s
        .post_as(
            &access,
            "/auth/email/change",
            json!({"email": "elsewhere@example.com", "password": PASSWORD}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    for _ in 0..3 {
        let r = s
            .post_as(&access, "/auth/password/change", wrong_change.clone())
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = s
        .request(Method::DELETE, "/auth/me")
        .await
        .bearer_auth(&access)
        .json(&json!({"password": "Not-The-Password-9"}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn account_endpoints_need_a_bearer_token() {
    let s = TestServer::start().await;
    let r = s.client.get(s.url("/auth/sessions")).send().await.unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
    for path in ["/auth/logout/all", "/auth/password/change"] {
        let r = s.post(path, json!({})).await;
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"api\"");
        assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
    }
    let r = s
        .request(
            Method::DELETE,
            "/auth/sessions/0123456789abcdef0123456789abcdef",
        )
        .await
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
}

#[tokio::test]
async fn unsafe_account_requests_need_the_csrf_token_even_with_a_bearer_token() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let sid = common::claims(&access)["sid"].as_str().unwrap().to_owned();
    let attempts = [
        s.client.post(s.url("/auth/logout/all")),
        s.client
            .post(s.url("/auth/password/change"))
            .json(&json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD})),
        s.client.delete(s.url(&format!("/auth/sessions/{sid}"))),
    ];
    for attempt in attempts {
        let r = attempt.bearer_auth(&access).send().await.unwrap();
        assert_error(r, StatusCode::FORBIDDEN, "csrf_failed").await;
    }
    // Nothing happened: the session lives and the password is unchanged.
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    let email = user["email"].as_str().unwrap();
    assert_eq!(s.login(email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cross_origin_delete_is_allowed_by_the_preflight_for_allowed_origins() {
    let s = TestServer::start().await;
    let r = s
        .client
        .request(Method::OPTIONS, s.url("/auth/sessions/abc"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("DELETE"), "{methods}");
}
