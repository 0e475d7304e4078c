//! Losing the database: requests fail fast with 503 JSON, `/readyz` says
//! 503, and the same process recovers when the database returns, with no
//! committed write lost. The connection is cut by a TCP proxy the test owns;
//! the machine's PostgreSQL is never touched.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error, postgres_available, tokens, Proxy, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection as _;

async fn count(direct_url: &str, table: &str, filter: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(direct_url).await.unwrap();
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} {filter}"))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn losing_the_database_gives_fast_503s_and_the_process_recovers_without_losing_writes() {
    if !postgres_available().await {
        return;
    }
    let direct = common::fresh_postgres_database().await;
    let proxy = Proxy::start().await;
    let via_proxy = proxy.url_for(&direct);
    let s = TestServer::start_on(tempfile::tempdir().unwrap(), via_proxy, |c| {
        c.database_acquire_timeout_seconds = 1;
    })
    .await;

    // Committed before the outage: two registrations and one logout.
    let alice = s.register("alice", "alice@example.com").await;
    let bob = s.register("bob", "bob@example.com").await;
    let (bob_access, bob_refresh) = tokens(&bob);
    assert_eq!(
        s.post_as(&bob_access, "/auth/logout", json!({"refresh": bob_refresh}))
            .await
            .status(),
        StatusCode::OK
    );
    let users_before = count(&direct, "users", "").await;
    let live_before = count(&direct, "sessions", "WHERE revoked_at IS NULL").await;
    assert_eq!((users_before, live_before), (2, 1));
    let csrf = s.csrf().await;

    proxy.cut();

    let (alice_access, _) = tokens(&alice);
    let started = Instant::now();
    let me = s.get_as(&alice_access, "/auth/me").await;
    assert_error(me, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    let post = |path: &'static str, body: serde_json::Value| {
        let (s, csrf) = (&s, csrf.clone());
        async move {
            s.client
                .post(s.url(path))
                .header("X-CSRFToken", csrf)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(
        "/auth/register",
        json!({"name": "carol", "email": "carol@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    let r = post(
        "/auth/login",
        json!({"email": "alice@example.com", "password": PASSWORD}),
    )
    .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    // Liveness and CSRF need no database.
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.client
            .get(s.url("/auth/csrf/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let per_request = started.elapsed() / 4;
    assert!(
        per_request < Duration::from_millis(1_500),
        "503s took {per_request:?} each"
    );

    proxy.restore().await;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = s
            .client
            .get(s.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if ready == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.get_as(&alice_access, "/auth/me").await.status(),
        StatusCode::OK
    );
    // The logout made before the outage still holds.
    assert_eq!(
        s.get_as(&bob_access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    s.register("carol", "carol@example.com").await;
    assert_eq!(count(&direct, "users", "").await, users_before + 1);
    assert_eq!(
        count(&direct, "sessions", "WHERE revoked_at IS NULL").await,
        live_before + 1
    );
}
