//! Raising the Argon2id cost: existing hashes are upgraded at the next login.

mod common;

use common::{fresh_database_url, TestServer, PASSWORD};
use reqwest::StatusCode;

async fn stored_hash(database_url: &str, email: &str) -> String {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let row = sqlx::query("SELECT password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    common::stored_hash_text(&row, 0)
}

#[tokio::test]
async fn a_login_rehashes_a_password_when_the_configured_cost_was_raised() {
    // The database outlives the first server (which deletes its own directory).
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let before = TestServer::start_on(tempfile::tempdir().unwrap(), db.clone(), |_| {}).await;
    before.register("Cost Raiser", "raiser@example.com").await;
    let old = stored_hash(&db, "raiser@example.com").await;
    assert!(old.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{old}");
    drop(before);

    let after = TestServer::start_on(tempfile::tempdir().unwrap(), db.clone(), |c| {
        c.argon2_iterations = 6;
    })
    .await;
    let r = after.login("raiser@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let new = stored_hash(&db, "raiser@example.com").await;
    assert!(new.starts_with("$argon2id$v=19$m=7168,t=6,p=1$"), "{new}");

    // At the configured cost now: the next login leaves it alone.
    let r = after.login("raiser@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(stored_hash(&db, "raiser@example.com").await, new);
    let wrong = after.login("raiser@example.com", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stored_hash_asking_for_unbounded_work_is_never_attempted() {
    let s = TestServer::start().await;
    s.register("Hostile", "hostile@example.com").await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.database_url).await.unwrap();
    // Written behind latchkey's back (an import bypassed, a tampered row).
    sqlx::query("UPDATE users SET password_hash = $1 WHERE email = $2")
        .bind(
            b"argon2$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .to_vec(),
        )
        .bind("hostile@example.com")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let started = std::time::Instant::now();
    let answers = s
        .post_all_at_once(
            "/auth/login",
            vec![serde_json::json!({"email": "hostile@example.com", "password": PASSWORD}); 4],
        )
        .await;
    for (status, _) in answers {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Unbounded, each would hold a worker for hours; bounded, it costs a
    // dummy verification (tens of milliseconds). A generous liveness bound.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let other = s.new_user().await;
    assert!(other["id"].is_i64());
}
