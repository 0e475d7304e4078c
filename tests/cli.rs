//! The `latchkey` binary: zero-configuration start, migrations, the secret
//! key rules, help text, and graceful shutdown.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn latchkey(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("LATCHKEY_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn wait_healthy(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read as _, Write as _};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    child.wait().unwrap()
}

#[test]
fn serve_starts_with_zero_configuration_on_a_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = latchkey(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let healthy = wait_healthy(port);
    let status = terminate(&mut child);
    assert!(healthy, "server did not become healthy");
    assert!(
        status.success(),
        "graceful shutdown on SIGTERM exits 0: {status:?}"
    );
    assert!(
        dir.path().join("latchkey.db").exists(),
        "the default database file was created"
    );
}

#[test]
fn help_shows_the_seeds_runserver_address_and_the_sqlite_file_as_defaults() {
    let out = latchkey(std::path::Path::new("."))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("127.0.0.1:8000"));
    assert!(help.contains("sqlite://latchkey.db"));
}

#[test]
fn help_documents_every_environment_variable() {
    let out = latchkey(std::path::Path::new("."))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "LATCHKEY_BIND",
        "LATCHKEY_DATABASE_URL",
        "LATCHKEY_ALLOWED_ORIGINS",
        "LATCHKEY_ACCESS_TOKEN_LIFETIME_SECONDS",
        "LATCHKEY_REFRESH_TOKEN_LIFETIME_SECONDS",
        "LATCHKEY_REFRESH_REUSE_GRACE_SECONDS",
        "LATCHKEY_LOGIN_FAILURES_PER_ACCOUNT",
        "LATCHKEY_LOGIN_FAILURES_PER_ADDRESS",
        "LATCHKEY_LOGIN_THROTTLE_WINDOW_SECONDS",
        "LATCHKEY_SECRET_KEY",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
}

#[test]
fn help_never_shows_the_values_of_the_environment() {
    let out = latchkey(std::path::Path::new("."))
        .args(["serve", "--help"])
        .env(
            "LATCHKEY_DATABASE_URL",
            "postgres://app:Hunter2-Secret@db.internal/auth",
        )
        .env("LATCHKEY_ALLOWED_ORIGINS", "https://private.example")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("LATCHKEY_DATABASE_URL"), "{help}");
    assert!(!help.contains("Hunter2-Secret"), "{help}");
    assert!(!help.contains("private.example"), "{help}");
}

#[test]
fn the_secret_key_is_not_accepted_on_the_command_line() {
    let out = latchkey(std::path::Path::new("."))
        .args(["serve", "--secret-key", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_short_secret_key_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = latchkey(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{}", free_port())])
        .env("LATCHKEY_SECRET_KEY", "too-short-key-value")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("too-short-key-value"), "{stderr}");
}

#[test]
fn migrate_applies_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let status = latchkey(dir.path())
        .args(["migrate", "--database-url", "sqlite://fresh.db"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(dir.path().join("fresh.db").exists());
    // Running it again is a no-op that also succeeds.
    let status = latchkey(dir.path())
        .args(["migrate", "--database-url", "sqlite://fresh.db"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_log_never_shows_the_configured_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = "a-very-secret-signing-key-for-this-test-0123456789";
    let mut child = latchkey(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("LATCHKEY_SECRET_KEY", key)
        .env("LATCHKEY_LOG", "trace")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_healthy(port));
    terminate(&mut child);
    let log: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(!log.is_empty());
    assert!(log.iter().all(|l| !l.contains(key)));
}
