//! TLS to PostgreSQL, by `sslmode` and `sslrootcert` in the database URL
//! (libpq's names): `disable`, `prefer`, `require`, `verify-ca` and
//! `verify-full`, against the local server, which has SSL on with its own
//! self-signed certificate (read from the file the server names). Needs
//! PostgreSQL: skipped without it, except under `CI=true`, where it fails.

mod common;

use common::{fresh_postgres_database, postgres_available, TestServer};
use latchkey::config::Config;
use latchkey::App;
use sqlx::Connection as _;
use sqlx::Row as _;

/// A fresh database on the test server (its URL, no query string), or
/// `None` when PostgreSQL is not reachable outside CI.
async fn database() -> Option<String> {
    postgres_available().await.then_some(())?;
    Some(fresh_postgres_database().await)
}

/// The server's certificate file, as `SHOW ssl_cert_file` names it.
async fn server_certificate(url: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let ssl: String = sqlx::query("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(ssl, "on", "these tests need PostgreSQL with SSL on");
    let file: String = sqlx::query("SHOW ssl_cert_file")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert!(std::fs::read(&file).is_ok(), "cannot read {file}");
    file
}

/// Whether every connection latchkey holds to `database` is encrypted.
async fn connections_encrypted(url: &str, database: &str) -> Vec<bool> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
         WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect()
}

/// Serve on `url` with `host` and `params`, register a user, and check that
/// every connection latchkey holds is encrypted (or, `false`, none is).
async fn assert_served_with_tls(url: &str, host: &str, params: &str, encrypted: bool) {
    let s = served_with(with_params(url, host, params)).await;
    let seen = connections_encrypted(url, &database_name(url)).await;
    assert!(
        !seen.is_empty() && seen.iter().all(|e| *e == encrypted),
        "{params}: {seen:?}"
    );
    drop(s);
}

fn with_params(url: &str, host: &str, params: &str) -> String {
    format!("{}?{params}", url.replace("127.0.0.1", host))
}

fn database_name(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

async fn served_with(url: String) -> TestServer {
    let s = TestServer::start_on(tempfile::tempdir().unwrap(), url, |_| {}).await;
    s.new_user().await;
    s
}

async fn refused(url: String) -> String {
    let mut config = Config::defaults().unwrap();
    config.database_url = url;
    config.database_acquire_timeout_seconds = 2;
    match App::build(&config).await {
        Ok(_) => panic!("started on a server it must not trust"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn sslmode_require_encrypts_every_connection() {
    let Some(url) = database().await else { return };
    assert_served_with_tls(&url, "127.0.0.1", "sslmode=require", true).await;
}

#[tokio::test]
async fn sslmode_prefer_encrypts_when_the_server_offers_tls() {
    let Some(url) = database().await else { return };
    assert_served_with_tls(&url, "127.0.0.1", "sslmode=prefer", true).await;
}

#[tokio::test]
async fn sslmode_disable_connects_in_plaintext() {
    let Some(url) = database().await else { return };
    assert_served_with_tls(&url, "127.0.0.1", "sslmode=disable", false).await;
}

#[tokio::test]
async fn verify_full_accepts_the_servers_certificate_for_its_name() {
    let Some(url) = database().await else { return };
    let cert = server_certificate(&url).await;
    let params = format!("sslmode=verify-full&sslrootcert={cert}");
    assert_served_with_tls(&url, "localhost", &params, true).await;
}

#[tokio::test]
async fn verify_ca_accepts_the_server_signed_by_the_given_root() {
    let Some(url) = database().await else { return };
    let cert = server_certificate(&url).await;
    let params = format!("sslmode=verify-ca&sslrootcert={cert}");
    // By the name in the certificate: this build checks it for verify-ca
    // too (see docs/configuration.md), stricter than libpq, never weaker.
    let s = served_with(with_params(&url, "localhost", &params)).await;
    drop(s);
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_name() {
    let Some(url) = database().await else { return };
    let cert = server_certificate(&url).await;
    // The certificate names `localhost`, not the address.
    let params = format!("sslmode=verify-full&sslrootcert={cert}");
    let error = refused(with_params(&url, "127.0.0.1", &params)).await;
    assert!(error.contains("not valid for name"), "{error}");
}

#[tokio::test]
async fn verify_ca_refuses_a_server_no_trusted_root_signed() {
    let Some(url) = database().await else { return };
    server_certificate(&url).await;
    // Without the server's root, only the public web roots built into the
    // binary are trusted, and none of them signed a self-signed certificate.
    for mode in ["verify-ca", "verify-full"] {
        let error = refused(with_params(&url, "localhost", &format!("sslmode={mode}"))).await;
        assert!(error.contains("certificate"), "{mode}: {error}");
    }
}
