//! The `latchkey` binary: zero-configuration start, migrations, the secret
//! key rules, help text, graceful shutdown, and mistakes that must be loud:
//! each refused with one message naming the cause, a non-zero exit, and
//! nothing created.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn latchkey(dir: &std::path::Path) -> Command {
    let mut cmd = common::latchkey_command();
    cmd.current_dir(dir);
    cmd
}

fn wait_healthy(port: u16) -> bool {
    wait_healthy_on("127.0.0.1", port)
}

fn wait_healthy_on(host: &str, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect((host, port)) {
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
    common::terminate_child(child)
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

/// `latchkey <args>` in `dir` with `env`: exit success, stdout, stderr.
fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = latchkey(dir);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The one `latchkey: ...` line of a failed command's stderr.
fn the_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("latchkey: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    lines[0]
}

/// Every file in `dir`, for "nothing was created" checks.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const ADMIN_COMMANDS: &[&[&str]] = &[
    &["user", "list"],
    &["user", "create", "--email", "a@example.com", "--name", "a"],
    &["user", "deactivate", "a@example.com"],
    &["user", "activate", "a@example.com"],
    &["user", "set-password", "a@example.com"],
    &["sessions", "revoke", "--user", "a@example.com"],
    &["flush-expired"],
    &["import", "django", "--from", "sqlite://django.sqlite3"],
];

#[test]
fn admin_commands_refuse_a_missing_sqlite_file_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for command in ADMIN_COMMANDS {
        let (ok, out, err) = run(
            dir.path(),
            command,
            &[("LATCHKEY_DATABASE_URL", "sqlite://typo.db")],
        );
        assert!(!ok, "{command:?} succeeded: {out}");
        let line = the_error_line(&err);
        assert!(
            line.contains("database sqlite://typo.db") && line.contains("no such file typo.db"),
            "{command:?}: {line}"
        );
        assert!(
            files_in(dir.path()).is_empty(),
            "{command:?} created a file"
        );
    }
}

#[test]
fn admin_commands_refuse_a_database_that_was_never_migrated() {
    let dir = tempfile::tempdir().unwrap();
    // An empty file is an empty SQLite database.
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    let (ok, _, err) = run(
        dir.path(),
        &["user", "list", "--database-url", "sqlite://empty.db"],
        &[],
    );
    assert!(!ok);
    let line = the_error_line(&err);
    assert!(
        line.contains("sqlite://empty.db") && line.contains("run `latchkey migrate`"),
        "{line}"
    );
    assert_eq!(files_in(dir.path()), ["empty.db"]);
}

/// The start-up failure of `command` (serve or migrate) on `database_url`:
/// its one error line.
fn start_up_failure(dir: &std::path::Path, command: &str, database_url: &str) -> String {
    let (ok, _, err) = run(
        dir,
        &[
            command,
            "--bind",
            &format!("127.0.0.1:{}", free_port()),
            "--database-url",
            database_url,
        ],
        &[("LATCHKEY_DATABASE_ACQUIRE_TIMEOUT_SECONDS", "30")],
    );
    assert!(!ok, "{command} on {database_url} succeeded");
    assert!(!err.contains("timed out"), "{err}");
    the_error_line(&err).to_owned()
}

#[test]
fn a_missing_directory_is_named_with_the_os_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nope/latchkey.db", dir.path().display());
    for command in ["serve", "migrate"] {
        let line = start_up_failure(dir.path(), command, &url);
        assert!(
            line.contains(&format!("database {url}"))
                && line.contains(&format!("directory {}/nope", dir.path().display()))
                && line.contains("No such file or directory"),
            "{command}: {line}"
        );
    }
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are notes, not a database\n".repeat(200)).unwrap();
    let url = format!("sqlite://{}", path.display());
    for command in ["serve", "migrate"] {
        let line = start_up_failure(dir.path(), command, &url);
        assert!(
            line.contains(&format!("database {url}"))
                && line.contains(&format!("{} is not a SQLite database", path.display())),
            "{command}: {line}"
        );
    }
}

#[test]
fn a_read_only_directory_is_named_with_the_os_reason() {
    // Root ignores directory modes; sysfs refuses new files even to root.
    let dir = tempfile::tempdir().unwrap();
    let read_only = if unsafe { libc::geteuid() } == 0 {
        std::path::PathBuf::from("/sys")
    } else {
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        ro
    };
    if std::fs::write(read_only.join("probe"), b"").is_ok() {
        let _ = std::fs::remove_file(read_only.join("probe"));
        eprintln!("skipping: no read-only directory here");
        return;
    }
    let url = format!("sqlite://{}/latchkey.db", read_only.display());
    for command in ["serve", "migrate"] {
        let line = start_up_failure(dir.path(), command, &url);
        assert!(
            line.contains(&format!("database {url}"))
                && line.contains(&format!(
                    "cannot create {}/latchkey.db",
                    read_only.display()
                ))
                && (line.contains("Permission denied") || line.contains("Read-only file system")),
            "{command}: {line}"
        );
    }
}

#[test]
fn a_refused_connection_names_the_host_and_the_os_reason_but_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("postgres://app:hunter2-secret@127.0.0.1:{port}/latchkey");
    let (ok, _, err) = run(dir.path(), &["user", "list", "--database-url", &url], &[]);
    assert!(!ok);
    for line in [
        start_up_failure(dir.path(), "serve", &url),
        start_up_failure(dir.path(), "migrate", &url),
        the_error_line(&err).to_owned(),
    ] {
        assert!(
            line.contains(&format!("postgres://app:***@127.0.0.1:{port}/latchkey"))
                && line.contains(&format!("cannot connect to 127.0.0.1:{port}"))
                && line.contains("Connection refused"),
            "{line}"
        );
        assert!(!line.contains("hunter2"), "{line}");
    }
}

#[test]
fn allowed_origins_without_a_scheme_or_a_wildcard_are_refused_naming_the_variable_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    for (origins, problem) in [
        ("localhost:3000", "has no scheme"),
        ("http://localhost:3000,*", "`*` is not allowed"),
    ] {
        let (ok, _, err) = run(
            dir.path(),
            &["serve", "--bind", &bind],
            &[("LATCHKEY_ALLOWED_ORIGINS", origins)],
        );
        assert!(!ok);
        let line = the_error_line(&err);
        assert!(
            line.contains("LATCHKEY_ALLOWED_ORIGINS") && line.contains(problem),
            "{line}"
        );
        let (ok, _, err) = run(
            dir.path(),
            &["serve", "--bind", &bind, "--allowed-origins", origins],
            &[],
        );
        assert!(!ok);
        let line = the_error_line(&err);
        assert!(
            line.contains("--allowed-origins") && line.contains(problem),
            "{line}"
        );
    }
    assert!(files_in(dir.path()).is_empty(), "nothing created");
}

#[test]
fn bind_accepts_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = latchkey(dir.path())
        .arg("serve")
        .env("LATCHKEY_BIND", format!("localhost:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let healthy = wait_healthy_on("localhost", port);
    terminate(&mut child);
    assert!(healthy, "not serving on localhost:{port}");
}

#[test]
fn a_port_in_use_is_named_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (ok, _, err) = run(dir.path(), &["serve", "--bind", &address], &[]);
    assert!(!ok);
    let line = the_error_line(&err);
    assert!(
        line.contains(&format!("cannot listen on {address} (--bind)")) && line.contains("in use"),
        "{line}"
    );
    let (ok, _, err) = run(
        dir.path(),
        &["serve", "--bind", "127.0.0.1:0"],
        &[("LATCHKEY_METRICS_BIND", &address)],
    );
    assert!(!ok);
    assert!(
        the_error_line(&err).contains(&format!("{address} (LATCHKEY_METRICS_BIND)")),
        "{err}"
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "no database, no lock before the bind: {:?}",
        files_in(dir.path())
    );
}

#[tokio::test]
async fn a_second_serve_on_the_same_sqlite_file_refuses_to_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("one.db").display());
    let _first = common::ServerProcess::start(&[("LATCHKEY_DATABASE_URL", &url)]).await;
    let (ok, _, err) = run(
        dir.path(),
        &["serve", "--bind", &format!("127.0.0.1:{}", free_port())],
        &[("LATCHKEY_DATABASE_URL", &url)],
    );
    assert!(!ok);
    let line = the_error_line(&err);
    assert!(
        line.contains(&format!("database {url}"))
            && line.contains("another `latchkey serve` is using this file")
            && line.contains("LATCHKEY_SQLITE_ALLOW_SHARED"),
        "{line}"
    );
    let lock = dir.path().join("one.db.lock");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&lock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the lock file is private");
    // The documented way out: both serve.
    let _second = common::ServerProcess::start(&[
        ("LATCHKEY_DATABASE_URL", &url),
        ("LATCHKEY_SQLITE_ALLOW_SHARED", "true"),
    ])
    .await;
}

#[tokio::test]
async fn the_start_up_line_names_database_key_source_origins_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("named.db").display());
    let log = dir.path().join("serve.log");
    let env = [
        ("LATCHKEY_DATABASE_URL", url.as_str()),
        ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.com"),
        ("LATCHKEY_LOG", "info"),
    ];
    let line = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .find(|l| l.contains("latchkey listening"))
            .map(str::to_owned)
            .expect("a start-up line")
    };
    let first = common::ServerProcess::start_logging_to(&env, &log).await;
    let port = first.base.rsplit(':').next().unwrap().to_owned();
    first.terminate();
    let started = line(&log);
    for part in [
        format!("address=127.0.0.1:{port}"),
        format!("database={url}"),
        "key=generated and stored in the database".to_owned(),
        "origins=https://app.example.com".to_owned(),
    ] {
        assert!(started.contains(&part), "{part} missing: {started}");
    }
    common::ServerProcess::start_logging_to(&env, &log)
        .await
        .terminate();
    assert!(
        line(&log).contains("key=stored in the database"),
        "{}",
        line(&log)
    );
    let key = "a-signing-key-from-the-environment-0123456789";
    let mut with_key = env.to_vec();
    with_key.push(("LATCHKEY_SECRET_KEY", key));
    common::ServerProcess::start_logging_to(&with_key, &log)
        .await
        .terminate();
    let started = line(&log);
    assert!(
        started.contains("key=from LATCHKEY_SECRET_KEY"),
        "{started}"
    );
    assert!(!started.contains(key));
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = latchkey(dir.path())
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -c 0`: the reader goes away before the document is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}
