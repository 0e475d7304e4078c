//! Shared set-up for the black-box tests: a real latchkey server on a random
//! port with a database of its own, and a small client that speaks the
//! contract (CSRF header included).
//!
//! `LATCHKEY_TEST_BACKEND=postgres` runs every test against a fresh
//! PostgreSQL database on `LATCHKEY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`), named with the run's
//! `LATCHKEY_TEST_DB_PREFIX`; the default is a fresh SQLite file.

#![allow(dead_code)]

pub mod mail;
pub mod passkey;

use std::net::SocketAddr;

use latchkey::auth::Clock;
use latchkey::config::Config;
use latchkey::App;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A strong password the policy accepts.
pub const PASSWORD: &str = "Tr1cky-Lantern-Owl";

/// Which database the tests run on.
pub fn backend() -> String {
    std::env::var("LATCHKEY_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

/// A database URL nobody else uses: a new SQLite file, or a new PostgreSQL database.
pub async fn fresh_database_url(dir: &tempfile::TempDir) -> String {
    if backend() == "postgres" {
        assert!(
            postgres_available().await,
            "PostgreSQL is required for LATCHKEY_TEST_BACKEND=postgres"
        );
        fresh_postgres_database().await
    } else {
        format!("sqlite://{}", dir.path().join("latchkey.db").display())
    }
}

/// A running server and a client for it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The server's clock: tests move it instead of sleeping.
    pub clock: Clock,
    /// Where the server writes its mail as `.eml` files (no SMTP URL set).
    pub mail_dir: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `adjust` may change first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(&dir).await;
        Self::start_on(dir, database_url, adjust).await
    }

    /// A server on an existing database.
    pub async fn start_on(
        dir: tempfile::TempDir,
        database_url: String,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_on_clock(dir, database_url, Clock::system(), adjust).await
    }

    /// A server on an existing database whose domain reads `clock`.
    pub async fn start_on_clock(
        dir: tempfile::TempDir,
        database_url: String,
        clock: Clock,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        // The defaults, never the developer's `LATCHKEY_*` variables.
        let mut config = Config::defaults().expect("default configuration");
        config.database_url = database_url.clone();
        config.hash_queue = 1024;
        // Tests register many users from 127.0.0.1; the registration
        // throttle has tests of its own.
        config.registrations_per_address = 100_000;
        // Mail lands in the test's own folder, never in the working tree.
        config.mail_dir = dir.path().join("mail");
        adjust(&mut config);
        let app = App::build_with_clock(&config, clock.clone())
            .await
            .expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.serve(listener, None, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            // Never follow redirects: the contract answers every route in place.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            database_url,
            clock,
            mail_dir: config.mail_dir.clone(),
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A fresh CSRF token from `GET /auth/csrf/`.
    pub async fn csrf(&self) -> String {
        fetch_csrf(&self.client, &self.base).await
    }

    /// A request with a valid CSRF header already set.
    pub async fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let csrf = self.csrf().await;
        self.client
            .request(method, self.url(path))
            .header("X-CSRFToken", csrf)
    }

    /// POST a JSON body with a valid CSRF header.
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path)
            .await
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POST every body to `path` at the same moment (one CSRF token, one task
    /// each); each answer's status and headers, in the order of `bodies`.
    pub async fn post_all_at_once(
        &self,
        path: &str,
        bodies: Vec<Value>,
    ) -> Vec<(StatusCode, reqwest::header::HeaderMap)> {
        self.responses_all_at_once(path, bodies)
            .await
            .iter()
            .map(|r| (r.status(), r.headers().clone()))
            .collect()
    }

    /// As [`post_all_at_once`](Self::post_all_at_once), each answer whole.
    pub async fn responses_all_at_once(&self, path: &str, bodies: Vec<Value>) -> Vec<Response> {
        let csrf = self.csrf().await;
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let request = self
                    .client
                    .post(self.url(path))
                    .header("X-CSRFToken", csrf.clone())
                    .json(&body);
                tokio::spawn(async move { request.send().await.unwrap() })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    /// POST a JSON body with a CSRF header and a Bearer token.
    pub async fn post_as(&self, access: &str, path: &str, body: Value) -> Response {
        self.request(Method::POST, path)
            .await
            .bearer_auth(access)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The body of `GET path`, as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// GET with a Bearer token.
    pub async fn get_as(&self, access: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
    }

    /// Register a user and return the 201 body (`id`, `email`, `name`, `tokens`).
    pub async fn register(&self, name: &str, email: &str) -> Value {
        let r = self
            .post(
                "/auth/register",
                json!({"name": name, "email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
        r.json().await.unwrap()
    }

    /// Register a user with a unique name and email; returns the 201 body.
    pub async fn new_user(&self) -> Value {
        let id = latchkey::auth::ids::RandomId::generate().unwrap();
        let tag = &id.as_str()[..10];
        self.register(&format!("user{tag}"), &format!("user{tag}@example.com"))
            .await
    }

    /// Log in by email and return the 200 body.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/auth/login", json!({"email": email, "password": password}))
            .await
    }

    /// Log in as `email` (with [`PASSWORD`]) from a browser whose
    /// `User-Agent` is `agent`, and return the 200 body.
    pub async fn login_from(&self, email: &str, agent: &str) -> Value {
        let r = self
            .request(Method::POST, "/auth/login")
            .await
            .header("User-Agent", agent)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A fresh CSRF token from `GET /auth/csrf/` of the server at `base`.
pub async fn fetch_csrf(client: &reqwest::Client, base: &str) -> String {
    let body: Value = client
        .get(format!("{base}/auth/csrf/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["csrfToken"].as_str().unwrap().to_owned()
}

/// The `access` and `refresh` tokens of a register/login body.
pub fn tokens(body: &Value) -> (String, String) {
    (
        body["tokens"]["access"].as_str().unwrap().to_owned(),
        body["tokens"]["refresh"].as_str().unwrap().to_owned(),
    )
}

/// Assert a DRF `{"detail","code"}` error.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}

/// The decoded payload of a JWT (no verification: for reading claims in tests).
pub fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Whether PostgreSQL tests can run: true when it answers; false (skip) when
/// it does not and we are not in CI; a panic when CI=true and it is missing.
pub async fn postgres_available() -> bool {
    use sqlx::Connection as _;
    let base = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    match sqlx::PgConnection::connect(&format!("{base}/postgres")).await {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL is required in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping: PostgreSQL not reachable at {base}: {e}");
            false
        }
    }
}

/// The name every test database of this run starts with:
/// `LATCHKEY_TEST_DB_PREFIX` (set per run by `scripts/test-all.sh`, which
/// then drops exactly those), else `latchkey_test_`. Checked, because it is
/// spliced into `CREATE DATABASE`, and short enough that prefix and a
/// 32-character id fit PostgreSQL's 63-byte names.
pub fn test_database_prefix() -> String {
    let prefix =
        std::env::var("LATCHKEY_TEST_DB_PREFIX").unwrap_or_else(|_| "latchkey_test_".into());
    assert!(
        !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && prefix.len() <= 31,
        "LATCHKEY_TEST_DB_PREFIX must be at most 31 lowercase letters, digits and underscores: {prefix:?}"
    );
    prefix
}

/// A fresh, empty PostgreSQL database; its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection as _;
    let base = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!(
        "{}{}",
        test_database_prefix(),
        latchkey::auth::ids::RandomId::generate().unwrap()
    );
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{base}/{name}")
}

/// The `latchkey` binary as a command, with none of the developer's
/// `LATCHKEY_*` variables: a test says every setting it depends on.
pub fn latchkey_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LATCHKEY_") {
            cmd.env_remove(k);
        }
    }
    // Mail a server writes lands outside the working tree.
    cmd.env(
        "LATCHKEY_MAIL_DIR",
        std::env::temp_dir().join("latchkey-test-mail"),
    );
    cmd
}

/// Stop `child` as an operator would (SIGTERM: a graceful shutdown) and
/// wait for its exit.
pub fn terminate_child(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap()
}

/// A `latchkey serve` child process (killed on drop).
pub struct ServerProcess {
    pub base: String,
    child: std::process::Child,
}

impl ServerProcess {
    /// Start the real binary on a free port with `env`, and wait until it serves.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::spawn(env, None).await
    }

    /// As [`ServerProcess::start`], with everything the server prints
    /// (stdout and stderr) written to `log`.
    pub async fn start_logging_to(env: &[(&str, &str)], log: &std::path::Path) -> Self {
        Self::spawn(env, Some(log)).await
    }

    /// Stop it as an operator would (SIGTERM: a graceful shutdown), and wait.
    pub fn terminate(mut self) {
        terminate_child(&mut self.child);
    }

    /// Send SIGTERM and wait for the exit: its status and how long it took.
    /// A process still running after 20 s is killed and the test fails.
    pub fn terminate_timed(mut self) -> (std::process::ExitStatus, std::time::Duration) {
        let sent = std::time::Instant::now();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        while sent.elapsed() < std::time::Duration::from_secs(20) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("latchkey was still running 20 s after SIGTERM");
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// Kill it with SIGKILL (no shutdown of any kind: a crash), and wait.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn spawn(env: &[(&str, &str)], log: Option<&std::path::Path>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = latchkey_command();
        cmd.arg("serve")
            .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
            // Tests register many users from 127.0.0.1 (the registration
            // throttle has tests of its own); `env` may say otherwise.
            .env("LATCHKEY_REGISTRATIONS_PER_ADDRESS", "100000");
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).unwrap();
                cmd.stdout(file.try_clone().unwrap()).stderr(file);
            }
            None => {
                cmd.stderr(std::process::Stdio::null());
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                if r.status().is_success() {
                    return Self { base, child };
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("latchkey did not start on port {port}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to the machine's PostgreSQL that can be cut (listener and
/// every live connection closed) and restored on the same port, so a test can
/// take the database away from a server without touching PostgreSQL itself.
pub struct Proxy {
    pub port: u16,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            tasks: Default::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// `url` (a database on 127.0.0.1:5432) through this proxy.
    pub fn url_for(&self, url: &str) -> String {
        let via = url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", self.port));
        assert_ne!(via, url, "the proxy only reaches 127.0.0.1:5432");
        via
    }

    /// Close the listener and every connection: the server is refused.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }
}

/// Drop a database [`fresh_postgres_database`] made (and only such a one).
pub async fn drop_postgres_database(url: &str) {
    use sqlx::Connection as _;
    let (base, name) = url.rsplit_once('/').unwrap();
    assert!(
        name.starts_with("latchkey_test_"),
        "not a test database: {name}"
    );
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// RFC 4648 base32 (no padding) decoded.
pub fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = alphabet.iter().position(|a| *a == c).expect("base32") as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 6238 TOTP, SHA-1, 6 digits, 30 s, at Unix time `t`.
pub fn totp(secret_b32: &str, t: i64) -> String {
    let key = base32_decode(secret_b32);
    use hmac::Mac as _;
    let mut mac = <hmac::Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(&key).unwrap();
    mac.update(&((t / 30) as u64).to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = (d[19] & 0xf) as usize;
    let n = u32::from_be_bytes([d[o] & 0x7f, d[o + 1], d[o + 2], d[o + 3]]) % 1_000_000;
    format!("{n:06}")
}

/// A session or refresh-token id (32 hex characters) as the `sessions`
/// table stores it: its 16 bytes.
pub fn stored_id(id: &str) -> Vec<u8> {
    assert_eq!(id.len(), 32, "{id:?}");
    (0..32)
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
        .collect()
}

/// The PHC text of the `password_hash` column `index` of `row`, as the
/// store keeps it (bytes; text where a test wrote text by hand).
pub fn stored_hash_text(row: &sqlx::any::AnyRow, index: usize) -> String {
    use sqlx::Row as _;
    let bytes = row
        .try_get::<Vec<u8>, _>(index)
        .or_else(|_| row.try_get::<String, _>(index).map(String::into_bytes))
        .unwrap();
    latchkey::store::password_hash_text(&bytes).unwrap()
}
