//! Upgrading a database made by an earlier latchkey: the sessions it holds,
//! and the tokens it issued, keep working after the new migrations.

mod common;

use common::{tokens, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection as _;

/// Turn the `sessions` table back into what migration 0008 left (hex-text
/// ids, the `User-Agent` in the row) and forget migration 0009, so the next
/// server applies it to live data.
fn before_0009(backend: &str) -> &'static str {
    match backend {
        "postgres" => {
            "CREATE TABLE sessions_0008 (
                 id TEXT PRIMARY KEY,
                 user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                 created_at BIGINT NOT NULL, last_used_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
                 revoked_at BIGINT, revoked_reason TEXT, client_addr TEXT, user_agent TEXT,
                 last_rotated_jti TEXT, current_jti TEXT, last_rotated_at BIGINT);
             INSERT INTO sessions_0008
             SELECT encode(s.id, 'hex'), s.user_id, s.created_at, s.last_used_at, s.expires_at,
                    s.revoked_at, s.revoked_reason, s.client_addr, ua.value,
                    encode(s.last_rotated_jti, 'hex'), encode(s.current_jti, 'hex'), s.last_rotated_at
               FROM sessions s LEFT JOIN user_agents ua ON ua.id = s.user_agent_id;
             DROP TABLE sessions;
             DROP TABLE user_agents;
             ALTER TABLE sessions_0008 RENAME TO sessions;
             ALTER TABLE sessions RENAME CONSTRAINT sessions_0008_pkey TO sessions_pkey;
             CREATE INDEX sessions_user_id ON sessions(user_id);
             CREATE INDEX sessions_expires_at ON sessions(expires_at);
             DELETE FROM _sqlx_migrations WHERE version = 9;"
        }
        _ => {
            "CREATE TABLE sessions_0008 (
                 id TEXT PRIMARY KEY,
                 user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                 created_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
                 revoked_at INTEGER, revoked_reason TEXT, client_addr TEXT, user_agent TEXT,
                 last_rotated_jti TEXT, current_jti TEXT, last_rotated_at INTEGER);
             INSERT INTO sessions_0008
             SELECT lower(hex(s.id)), s.user_id, s.created_at, s.last_used_at, s.expires_at,
                    s.revoked_at, s.revoked_reason, s.client_addr, ua.value,
                    CASE WHEN s.last_rotated_jti IS NULL THEN NULL ELSE lower(hex(s.last_rotated_jti)) END,
                    CASE WHEN s.current_jti IS NULL THEN NULL ELSE lower(hex(s.current_jti)) END,
                    s.last_rotated_at
               FROM sessions s LEFT JOIN user_agents ua ON ua.id = s.user_agent_id;
             DROP TABLE sessions;
             DROP TABLE user_agents;
             ALTER TABLE sessions_0008 RENAME TO sessions;
             CREATE INDEX sessions_user_id ON sessions(user_id);
             CREATE INDEX sessions_expires_at ON sessions(expires_at);
             DELETE FROM _sqlx_migrations WHERE version = 9;"
        }
    }
}

/// The pair of a refresh answer.
fn pair(body: &Value) -> (String, String) {
    let field = |k: &str| body[k].as_str().unwrap().to_owned();
    (field("access"), field("refresh"))
}

async fn refresh(server: &TestServer, token: &str) -> reqwest::Response {
    server
        .post("/auth/token/refresh/", json!({"refresh": token}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_their_tokens_survive_the_compact_sessions_migration() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let earlier = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    let user = earlier.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let (_, registered_refresh) = tokens(&user);
    let chrome = earlier
        .login_from(&email, "Mozilla/5.0 (upgrade test) Chrome")
        .await;
    let firefox = earlier
        .login_from(&email, "Mozilla/5.0 (upgrade test) Firefox")
        .await;
    // One session has rotated: it holds a live and a last-rotated token.
    let r = refresh(&earlier, &tokens(&chrome).1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    drop(earlier);

    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(before_0009(&common::backend()))
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    let upgraded = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    // Every session is still found by its id, with its browser.
    let (access, _) = pair(&rotated);
    let r = upgraded.get_as(&access, "/auth/sessions").await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Vec<Value> = r.json().await.unwrap();
    let by_sid = |token: &str| {
        let sid = common::claims(token)["sid"].clone();
        list.iter()
            .find(|s| s["id"] == sid)
            .unwrap_or_else(|| panic!("session {sid} in {list:?}"))
            .clone()
    };
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(
        by_sid(&pair(&rotated).0)["user_agent"],
        "Mozilla/5.0 (upgrade test) Chrome"
    );
    assert_eq!(
        by_sid(&tokens(&firefox).0)["user_agent"],
        "Mozilla/5.0 (upgrade test) Firefox"
    );
    assert!(by_sid(&tokens(&user).0)["user_agent"].is_null());
    // The token rotated before the upgrade is still the one rotated last:
    // replayed inside the grace window, it is handed the session's live
    // token, the one it was rotated into.
    let (chrome_refresh, rotated_refresh) = (tokens(&chrome).1, pair(&rotated).1);
    let r = refresh(&upgraded, &chrome_refresh).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(
        common::claims(&pair(&replayed).1)["jti"],
        common::claims(&rotated_refresh)["jti"]
    );
    // The live tokens refresh.
    for live in [&registered_refresh, &tokens(&firefox).1, &rotated_refresh] {
        let r = refresh(&upgraded, live).await;
        assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    }
    // Two rotations on, the first token is reuse, and ends its session.
    let r = refresh(&upgraded, &chrome_refresh).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = upgraded.get_as(&pair(&rotated).0, "/auth/me").await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "reuse ended the session"
    );
    let r = upgraded.get_as(&tokens(&firefox).0, "/auth/me").await;
    assert_eq!(r.status(), StatusCode::OK);
}
