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

/// Turn `sessions` back into what migration 0012 left (the id as 16
/// bytes, every session's start stored) and forget migration 0013, so the
/// next server applies it to live data.
fn before_0013(backend: &str) -> String {
    let (int, id, pkey) = match backend {
        "postgres" => (
            "BIGINT",
            "decode(lpad(to_hex(id_hi), 16, '0') || lpad(to_hex(id_lo), 16, '0'), 'hex')",
            "ALTER TABLE sessions RENAME CONSTRAINT sessions_0012_pkey TO sessions_pkey;",
        ),
        _ => ("INTEGER", "unhex(printf('%016x%016x', id_hi, id_lo))", ""),
    };
    format!(
        "CREATE TABLE sessions_0012 (
             user_id {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
             created_at {int} NOT NULL, last_used_at {int} NOT NULL, expires_at {int} NOT NULL,
             last_rotated_at {int}, revoked_at {int}, user_agent_id {int},
             id BYTEA NOT NULL PRIMARY KEY, current_jti BYTEA, last_rotated_jti_prefix BYTEA,
             client_ip BYTEA, revoked_reason TEXT, client_addr_text TEXT);
         INSERT INTO sessions_0012
         SELECT user_id, COALESCE(created_at, (id_hi >> 16) / 1000), last_used_at, expires_at,
                last_rotated_at, revoked_at, user_agent_id, {id}, current_jti,
                last_rotated_jti_prefix, client_ip, revoked_reason, client_addr_text
           FROM sessions;
         DROP TABLE sessions;
         ALTER TABLE sessions_0012 RENAME TO sessions;
         {pkey}
         CREATE INDEX sessions_user_id ON sessions(user_id);
         CREATE INDEX sessions_expires_at ON sessions(expires_at);
         CREATE INDEX sessions_user_agent_id ON sessions(user_agent_id);
         DELETE FROM _sqlx_migrations WHERE version = 13;"
    )
}

/// A hex literal of `bytes` in `backend`'s SQL.
fn blob(backend: &str, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match backend {
        "postgres" => format!("'\\x{hex}'::bytea"),
        _ => format!("x'{hex}'"),
    }
}

/// The bytes migration 0011 stores for an IP address.
fn ip_bytes(ip: std::net::IpAddr) -> Vec<u8> {
    match ip {
        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The text and the bytes migration 0011 stores of the known-client key of
/// `ip` (`auth::throttle::address_key`): a tag, then the IPv4 address or
/// the IPv6 /64.
fn address_key(ip: std::net::IpAddr) -> (String, Vec<u8>) {
    match ip {
        std::net::IpAddr::V4(v4) => (format!("addr:{v4}"), [&[4u8][..], &v4.octets()].concat()),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            (
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]),
                [&[6u8][..], &v6.octets()[..8]].concat(),
            )
        }
    }
}

/// Turn `sessions` and `known_clients` back into what migration 0010 left
/// (a session's address and a known client's key as text, the full id of
/// the token a session rotated last, BIGINT flags) and forget migration
/// 0011, so the next server applies it to live data. 0011 keeps only the
/// first bytes of a rotated token's id: `jtis` are the refresh tokens the
/// test holds, whose ids are put back; `ips` every client address used.
fn before_0011(backend: &str, jtis: &[&str], ips: &[&str]) -> String {
    let ips: Vec<std::net::IpAddr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
    let mut rotated = String::from("CASE");
    for jti in jtis {
        let id = common::stored_id(common::claims(jti)["jti"].as_str().unwrap());
        rotated += &format!(
            " WHEN last_rotated_jti_prefix = {} THEN {}",
            blob(backend, &id[..8]),
            blob(backend, &id)
        );
    }
    rotated += " END";
    let mut addr = String::from("CASE WHEN client_ip IS NULL THEN client_addr_text");
    let mut key = String::from("CASE");
    for ip in &ips {
        addr += &format!(
            " WHEN client_ip = {} THEN '{ip}'",
            blob(backend, &ip_bytes(*ip))
        );
        let (text, bytes) = address_key(*ip);
        key += &format!(" WHEN client_key = {} THEN '{text}'", blob(backend, &bytes));
    }
    addr += " END";
    key += " END";
    let (int, users) = match backend {
        "postgres" => (
            "BIGINT",
            "ALTER TABLE users ALTER COLUMN is_active TYPE BIGINT, \
                               ALTER COLUMN email_verified TYPE BIGINT;
             ALTER TABLE sessions RENAME CONSTRAINT sessions_0010_pkey TO sessions_pkey;
             ALTER TABLE known_clients RENAME CONSTRAINT known_clients_0010_pkey TO known_clients_pkey;",
        ),
        _ => ("INTEGER", ""),
    };
    format!(
        "CREATE TABLE sessions_0010 (
             user_id {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
             created_at {int} NOT NULL, last_used_at {int} NOT NULL, expires_at {int} NOT NULL,
             last_rotated_at {int}, revoked_at {int}, user_agent_id {int},
             id BYTEA NOT NULL PRIMARY KEY, current_jti BYTEA, last_rotated_jti BYTEA,
             client_addr TEXT, revoked_reason TEXT);
         INSERT INTO sessions_0010
         SELECT user_id, created_at, last_used_at, expires_at, last_rotated_at, revoked_at,
                user_agent_id, id, current_jti, {rotated}, {addr}, revoked_reason
           FROM sessions;
         DROP TABLE sessions;
         ALTER TABLE sessions_0010 RENAME TO sessions;
         CREATE INDEX sessions_user_id ON sessions(user_id);
         CREATE INDEX sessions_expires_at ON sessions(expires_at);
         CREATE INDEX sessions_user_agent_id ON sessions(user_agent_id);
         CREATE TABLE known_clients_0010 (
             user_id {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
             client_key TEXT NOT NULL, last_success_at {int} NOT NULL,
             PRIMARY KEY (user_id, client_key));
         INSERT INTO known_clients_0010 SELECT user_id, {key}, last_success_at FROM known_clients;
         DROP TABLE known_clients;
         ALTER TABLE known_clients_0010 RENAME TO known_clients;
         CREATE INDEX known_clients_last_success_at ON known_clients(last_success_at);
         {users}
         DELETE FROM _sqlx_migrations WHERE version = 11;"
    )
}

async fn run_sql(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut db).await.unwrap();
    db.close().await.unwrap();
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

    let backend = common::backend();
    let held = [
        registered_refresh.as_str(),
        &tokens(&chrome).1,
        &tokens(&firefox).1,
        &pair(&rotated).1,
    ];
    run_sql(&url, &before_0013(&backend)).await;
    run_sql(&url, &before_0011(&backend, &held, &["127.0.0.1"])).await;
    run_sql(&url, before_0009(&backend)).await;

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

/// Login failures allowed per account before it is throttled, here few, so
/// a test can hammer an account; the client's address is the one
/// `X-Forwarded-For` names.
fn hammerable(c: &mut latchkey::config::Config) {
    c.login_failures_per_account = 5;
    c.login_failures_per_address = 1_000;
    c.trusted_proxy_hops = 1;
}

/// A login as `email` from `ip` (behind one trusted proxy).
async fn login_via(
    server: &TestServer,
    ip: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    server
        .request(reqwest::Method::POST, "/auth/login")
        .await
        .header("X-Forwarded-For", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

const V4: &str = "198.51.100.23";
const V6: &str = "2001:db8:0:7::41";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_rotated_tokens_and_known_clients_survive_the_compact_rows_migration() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let earlier = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), hammerable).await;
    let user = earlier.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let mut logins = Vec::new();
    for ip in [V4, V6] {
        let r = login_via(&earlier, ip, &email, common::PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        logins.push(r.json::<Value>().await.unwrap());
    }
    let (v4, v6) = (&logins[0], &logins[1]);
    let r = refresh(&earlier, &tokens(v4).1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    drop(earlier);

    let held = [
        tokens(&user).1,
        tokens(v4).1,
        tokens(v6).1,
        pair(&rotated).1,
    ];
    let held: Vec<&str> = held.iter().map(String::as_str).collect();
    run_sql(&url, &before_0013(&common::backend())).await;
    run_sql(
        &url,
        &before_0011(&common::backend(), &held, &["127.0.0.1", V4, V6]),
    )
    .await;

    let upgraded =
        TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), hammerable).await;
    // Every session still shows the address it started from.
    let r = upgraded.get_as(&pair(&rotated).0, "/auth/sessions").await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let addr_of = |token: &str| {
        let sid = common::claims(token)["sid"].clone();
        list.iter()
            .find(|s| s["id"] == sid)
            .unwrap_or_else(|| panic!("session {sid} in {list:?}"))["client_addr"]
            .clone()
    };
    assert_eq!(addr_of(&tokens(&user).0), "127.0.0.1");
    assert_eq!(addr_of(&pair(&rotated).0), V4);
    assert_eq!(addr_of(&tokens(v6).0), V6);

    // The token rotated before the upgrade is still the one rotated last
    // (by the prefix the migration kept): replayed inside the grace window,
    // it is handed the live token it was rotated into.
    let r = refresh(&upgraded, &tokens(v4).1).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(
        common::claims(&pair(&replayed).1)["jti"],
        common::claims(&pair(&rotated).1)["jti"]
    );

    // The addresses that logged in before the upgrade are still known
    // clients: with the account hammered from elsewhere, they get in (the
    // IPv6 one from another address of its /64) and a new address does not.
    for i in 0..20 {
        let ip = format!("203.0.113.{}", i % 7 + 1);
        login_via(&upgraded, &ip, &email, "Wrong-Password-99").await;
    }
    let r = login_via(&upgraded, "192.0.2.51", &email, common::PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    for ip in [V4, "2001:db8:0:7::99"] {
        let r = login_via(&upgraded, ip, &email, common::PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "{ip}");
        // A session started since shows its address too (stored as bytes).
        let (access, _) = tokens(&r.json().await.unwrap());
        let r = upgraded.get_as(&access, "/auth/sessions").await;
        let list: Vec<Value> = r.json().await.unwrap();
        let sid = common::claims(&access)["sid"].clone();
        let session = list.iter().find(|s| s["id"] == sid).unwrap();
        assert_eq!(session["client_addr"], ip);
    }
    // Those logins wrote their addresses in the new form, beside the rows
    // from before, which age out.
    let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
    for ip in [V4, V6] {
        let (text, bytes) = address_key(ip.parse().unwrap());
        let count = |key: Vec<u8>| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM known_clients WHERE client_key = $1")
                .bind(key)
        };
        let new: i64 = count(bytes).fetch_one(&mut db).await.unwrap();
        let old: i64 = count(text.into_bytes()).fetch_one(&mut db).await.unwrap();
        assert_eq!((new, old), (1, 1), "{ip}");
    }
    db.close().await.unwrap();
}

/// Turn `users.password_hash` back into what migration 0011 left (PHC
/// text) with `hash` as every user's, and forget migration 0012.
fn before_0012(backend: &str, hash: &str) -> String {
    match backend {
        "postgres" => format!(
            "UPDATE users SET password_hash = convert_to('{hash}', 'UTF8');
             ALTER TABLE users ALTER COLUMN password_hash TYPE TEXT
                 USING convert_from(password_hash, 'UTF8');
             DELETE FROM _sqlx_migrations WHERE version = 12;"
        ),
        _ => format!(
            "UPDATE users SET password_hash = '{hash}';
             DELETE FROM _sqlx_migrations WHERE version = 12;"
        ),
    }
}

/// The first byte of `email`'s stored password hash.
async fn stored_hash_tag(url: &str, email: &str) -> u8 {
    let mut db = sqlx::AnyConnection::connect(url).await.unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    stored[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_hashed_before_the_compact_hashes_migration_still_log_in_and_are_upgraded() {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let earlier = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    let user = earlier.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    drop(earlier);
    // A hash as an earlier latchkey stored it: PHC text, here at a cost
    // below the configured one, so the next login upgrades it.
    let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
    let params = argon2::Params::new(64, 1, 1, None).unwrap();
    let old = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(common::PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    run_sql(&url, &before_0012(&common::backend(), &old)).await;

    let upgraded = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    // The text form reads back as it was: the old hash still verifies.
    assert_eq!(stored_hash_tag(&url, &email).await, b'$');
    let r = upgraded.login(&email, "Wrong-Password-1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = upgraded.login(&email, common::PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // That login upgraded it, found in its old form, into the short one.
    assert_eq!(stored_hash_tag(&url, &email).await, 1);
    let r = upgraded.login(&email, common::PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// The sessions `GET /auth/sessions` lists for `access`, by id.
async fn listed(server: &TestServer, access: &str) -> Vec<Value> {
    let r = server.get_as(access, "/auth/sessions").await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut list: Vec<Value> = r.json().await.unwrap();
    list.sort_by_key(|s| s["id"].as_str().unwrap().to_owned());
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_keep_their_ids_starts_and_tokens_across_the_id_halves_migration() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let earlier = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    let user = earlier.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let other = earlier
        .login_from(&email, "Mozilla/5.0 (upgrade test)")
        .await;
    let before = listed(&earlier, &tokens(&user).0).await;
    assert_eq!(before.len(), 2);
    drop(earlier);
    run_sql(&url, &before_0013(&common::backend())).await;

    let upgraded = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    // The same sessions, with the same ids and starts.
    assert_eq!(listed(&upgraded, &tokens(&user).0).await, before);
    // Their tokens work: a refresh rotates, a logout ends just its session.
    let r = refresh(&upgraded, &tokens(&other).1).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let r = upgraded
        .post_as(
            &tokens(&other).0,
            "/auth/logout",
            json!({"refresh": pair(&r.json().await.unwrap()).1}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = upgraded.get_as(&tokens(&other).0, "/auth/me").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let after = listed(&upgraded, &tokens(&user).0).await;
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0]["created"],
        before.iter().find(|s| s["id"] == after[0]["id"]).unwrap()["created"]
    );
    // A session started since has its start read from its id.
    let newer = upgraded
        .login_from(&email, "Mozilla/5.0 (upgrade test)")
        .await;
    let list = listed(&upgraded, &tokens(&newer).0).await;
    let sid = common::claims(&tokens(&newer).0)["sid"].clone();
    let session = list.iter().find(|s| s["id"] == sid).unwrap();
    assert_eq!(session["created"], session["last_used"]);
    // ... which is why it is not stored (unless the clock's second and the
    // id's disagreed, when it is stored as the clock's, the same value).
    let id = common::stored_id(sid.as_str().unwrap());
    let half = |bytes: &[u8]| i64::from_be_bytes(bytes.try_into().unwrap());
    let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
    let (stored, last_used): (Option<i64>, i64) = sqlx::query_as(
        "SELECT created_at, last_used_at FROM sessions WHERE id_hi = $1 AND id_lo = $2",
    )
    .bind(half(&id[..8]))
    .bind(half(&id[8..]))
    .fetch_one(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    let id_second = i64::from_be_bytes([0, 0, id[0], id[1], id[2], id[3], id[4], id[5]]) / 1000;
    if id_second == last_used {
        assert_eq!(stored, None);
    } else {
        assert_eq!(stored, Some(last_used));
    }
}
