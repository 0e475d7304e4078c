//! The example resource server (examples/resource-server, Python + PyJWT)
//! verifies latchkey's access tokens offline through the JWKS, under every
//! asymmetric algorithm, across a key rotation made with `latchkey keys
//! rotate`; and it shows what offline verification cannot see (a logout
//! before `exp`), which its online route catches.
//!
//! Needs Python 3 with venv and PyPI the first time (a venv under the
//! target directory from the example's requirements.txt). Without them the
//! test is skipped, except under `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{tokens, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/resource-server");

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn has_pyjwt(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn find_or_make_python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("resource-server-venv");
    let python = venv.join("bin/python");
    if has_pyjwt(&python) {
        return Ok(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !made.success() {
        return Err("python3 -m venv failed".into());
    }
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(Path::new(EXAMPLE).join("requirements.txt"))
        .status()
        .map_err(|e| format!("pip install: {e}"))?;
    if !installed.success() || !has_pyjwt(&python) {
        return Err("pip install -r examples/resource-server/requirements.txt failed".into());
    }
    Ok(python)
}

fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_make_python) {
        Ok(python) => Some(python.clone()),
        Err(e) if in_ci() => panic!("the resource-server example's Python is required in CI: {e}"),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// The example app, killed on drop.
struct ResourceServer {
    base: String,
    child: Child,
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_resource_server(
    python: &Path,
    latchkey: &TestServer,
    algorithm: &str,
) -> ResourceServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python)
        .arg(Path::new(EXAMPLE).join("app.py"))
        .env("LATCHKEY_URL", &latchkey.base)
        .env("LATCHKEY_JWT_ALGORITHM", algorithm)
        .env("LATCHKEY_JWT_ISSUER", "http://latchkey.test")
        .env("LATCHKEY_JWT_AUDIENCE", "orders-api")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = ResourceServer {
        base: format!("http://127.0.0.1:{port}"),
        child,
    };
    for _ in 0..200 {
        if reqwest::get(format!("{}/healthz", server.base))
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the resource server did not start");
}

impl ResourceServer {
    async fn orders(&self, token: &str) -> (StatusCode, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}/orders", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    async fn transfer(&self, token: &str) -> StatusCode {
        reqwest::Client::new()
            .post(format!("{}/transfers", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn rotate(database_url: &str, algorithm: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["keys", "rotate", "--force"])
        .env("LATCHKEY_DATABASE_URL", database_url)
        .env("LATCHKEY_JWT_ALGORITHM", algorithm)
        .env("LATCHKEY_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn pyjwt_verifies_access_tokens_offline_through_the_jwks_across_a_rotation() {
    let Some(python) = python() else { return };
    for algorithm in ["EdDSA", "ES256", "RS256"] {
        let parsed = algorithm.parse().unwrap();
        let s = TestServer::start_with(|c| {
            c.jwt_algorithm = parsed;
            c.jwt_issuer = Some("http://latchkey.test".into());
            c.jwt_audience = Some("orders-api".into());
            c.session_cache_millis = 0;
        })
        .await;
        let api = start_resource_server(&python, &s, algorithm).await;

        let user = s.new_user().await;
        let (access, refresh) = tokens(&user);
        let (status, body) = api.orders(&access).await;
        assert_eq!(status, StatusCode::OK, "{algorithm}: {body}");
        assert_eq!(body["user_id"], user["id"]);
        let first_kid = body["kid"].clone();

        // A refresh token, a tampered token and no token are refused.
        assert_eq!(api.orders(&refresh).await.0, StatusCode::UNAUTHORIZED);
        let mut tampered = access.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert_eq!(api.orders(&tampered).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(api.orders("").await.0, StatusCode::UNAUTHORIZED);

        // Across a rotation: tokens of the new key verify (the client
        // fetches the JWKS again for the unknown kid), and the old token
        // still does (its key stays published as previous).
        rotate(&s.database_url, algorithm);
        let (fresh, _) = tokens(&s.new_user().await);
        let (status, body) = api.orders(&fresh).await;
        assert_eq!(status, StatusCode::OK, "{algorithm} after rotation: {body}");
        assert_ne!(body["kid"], first_kid);
        assert_eq!(api.orders(&access).await.0, StatusCode::OK);

        // Offline verification cannot see a logout before `exp`; the online
        // route, which asks latchkey, does.
        assert_eq!(api.transfer(&fresh).await, StatusCode::OK);
        let r = s
            .post_as(&access, "/auth/logout", json!({"refresh": refresh}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            api.orders(&access).await.0,
            StatusCode::OK,
            "offline: still valid until exp"
        );
        assert_eq!(
            api.transfer(&access).await,
            StatusCode::UNAUTHORIZED,
            "online: revoked"
        );
    }
}
