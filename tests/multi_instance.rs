//! Several latchkey processes on one PostgreSQL database behave as one
//! server: tokens, revocation, reuse detection and throttling are shared.

mod common;

use common::{postgres_available, ServerProcess, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

struct Pair {
    a: ServerProcess,
    b: ServerProcess,
    client: Client,
}

async fn two_instances(extra: &[(&str, &str)]) -> Option<Pair> {
    if !postgres_available().await {
        return None;
    }
    let url = common::fresh_postgres_database().await;
    let mut env = vec![("LATCHKEY_DATABASE_URL", url.as_str())];
    env.extend_from_slice(extra);
    // Started together: migrations and the generated key must not race.
    let (a, b) = tokio::join!(ServerProcess::start(&env), ServerProcess::start(&env));
    Some(Pair {
        a,
        b,
        client: Client::new(),
    })
}

impl Pair {
    async fn csrf(&self, on: &ServerProcess) -> String {
        common::fetch_csrf(&self.client, &on.base).await
    }

    async fn post(
        &self,
        on: &ServerProcess,
        path: &str,
        body: Value,
        bearer: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(on.url(path))
            .header("X-CSRFToken", self.csrf(on).await)
            .json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    async fn me(&self, on: &ServerProcess, access: &str) -> StatusCode {
        self.client
            .get(on.url("/auth/me"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Register a user on instance A; its access and refresh tokens.
    async fn register_on_a(&self) -> (String, String) {
        let body = json!({"name": "n", "email": "n@example.com", "password": PASSWORD});
        let r = self.post(&self.a, "/auth/register", body, None).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        pair_of(&r.json().await.unwrap())
    }

    /// Poll `/auth/me` on `on` until it refuses `access`; how long that took.
    async fn refused_after(&self, on: &ServerProcess, access: &str) -> std::time::Duration {
        let start = std::time::Instant::now();
        while self.me(on, access).await != StatusCode::UNAUTHORIZED {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(3),
                "still accepted after 3 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        start.elapsed()
    }
}

fn pair_of(body: &Value) -> (String, String) {
    let tokens = if body.get("tokens").is_some() {
        &body["tokens"]
    } else {
        body
    };
    (
        tokens["access"].as_str().unwrap().to_owned(),
        tokens["refresh"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn tokens_issued_by_one_instance_work_on_the_other() {
    let Some(p) = two_instances(&[]).await else {
        return;
    };
    let (access, refresh) = p.register_on_a().await;
    assert_eq!(p.me(&p.b, &access).await, StatusCode::OK);
    // A CSRF token from A is good on B too: both derive it from the shared key.
    let csrf_a = p.csrf(&p.a).await;
    let r = p
        .client
        .post(p.b.url("/auth/token/refresh/"))
        .header("X-CSRFToken", csrf_a)
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (access2, _) = pair_of(&r.json().await.unwrap());
    assert_eq!(p.me(&p.a, &access2).await, StatusCode::OK);
}

#[tokio::test]
async fn logout_on_one_instance_makes_the_other_reject_both_tokens_within_a_second() {
    let Some(p) = two_instances(&[]).await else {
        return;
    };
    let (access, refresh) = p.register_on_a().await;
    assert_eq!(p.me(&p.a, &access).await, StatusCode::OK);
    let r = p
        .post(
            &p.b,
            "/auth/logout",
            json!({"refresh": refresh}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // B, where the logout happened, refuses at once; A, which had the
    // session cached, within its cache lifetime (500 ms by default).
    assert_eq!(p.me(&p.b, &access).await, StatusCode::UNAUTHORIZED);
    let took = p.refused_after(&p.a, &access).await;
    assert!(
        took < std::time::Duration::from_secs(1),
        "A accepted the token for {took:?}"
    );
    let r = p
        .post(
            &p.a,
            "/auth/token/refresh/",
            json!({"refresh": refresh}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_reuse_is_detected_across_instances() {
    let Some(p) = two_instances(&[("LATCHKEY_REFRESH_REUSE_GRACE_SECONDS", "0")]).await else {
        return;
    };
    let (_, r0) = p.register_on_a().await;
    let r = p
        .post(&p.a, "/auth/token/refresh/", json!({"refresh": r0}), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (a1, r1) = pair_of(&r.json().await.unwrap());
    let r = p
        .post(&p.b, "/auth/token/refresh/", json!({"refresh": r0}), None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "reuse on B");
    // The session is gone everywhere, newest tokens included.
    assert!(p.refused_after(&p.a, &a1).await < std::time::Duration::from_secs(1));
    let r = p
        .post(&p.a, "/auth/token/refresh/", json!({"refresh": r1}), None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_throttling_is_shared_by_the_instances() {
    let Some(p) = two_instances(&[
        ("LATCHKEY_LOGIN_FAILURES_PER_ACCOUNT", "4"),
        ("LATCHKEY_LOGIN_THROTTLE_WINDOW_SECONDS", "600"),
    ])
    .await
    else {
        return;
    };
    p.register_on_a().await;
    let wrong = json!({"email": "n@example.com", "password": "Wrong-Password-99"});
    for (i, on) in [&p.a, &p.b, &p.a, &p.b].into_iter().enumerate() {
        assert_eq!(
            p.post(on, "/auth/login", wrong.clone(), None)
                .await
                .status(),
            StatusCode::UNAUTHORIZED,
            "attempt {i}"
        );
    }
    for on in [&p.a, &p.b] {
        let r = p.post(on, "/auth/login", wrong.clone(), None).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key("retry-after"));
    }
}

#[tokio::test]
async fn without_the_session_cache_another_instance_refuses_on_the_very_next_request() {
    let Some(p) = two_instances(&[("LATCHKEY_SESSION_CACHE_MILLIS", "0")]).await else {
        return;
    };
    let (access, refresh) = p.register_on_a().await;
    assert_eq!(p.me(&p.a, &access).await, StatusCode::OK);
    let r = p
        .post(
            &p.b,
            "/auth/logout",
            json!({"refresh": refresh}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(p.me(&p.a, &access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn instances_starting_together_migrate_once_and_agree_on_one_generated_key() {
    if !postgres_available().await {
        return;
    }
    let url = common::fresh_postgres_database().await;
    let env = [("LATCHKEY_DATABASE_URL", url.as_str())];
    let (a, b, c) = tokio::join!(
        ServerProcess::start(&env),
        ServerProcess::start(&env),
        ServerProcess::start(&env)
    );
    let client = Client::new();
    let csrf: Value = client
        .get(a.url("/auth/csrf/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = client
        .post(c.url("/auth/register"))
        .header("X-CSRFToken", csrf["csrfToken"].as_str().unwrap())
        .json(&json!({"name": "n", "email": "n@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (access, _) = pair_of(&r.json().await.unwrap());
    for on in [&a, &b, &c] {
        assert_eq!(
            client
                .get(on.url("/auth/me"))
                .bearer_auth(&access)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
}
