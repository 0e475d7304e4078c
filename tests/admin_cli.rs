//! The admin commands, run as the real binary against the database a live
//! server uses: `user create|list|deactivate|activate|set-password`,
//! `sessions revoke --user`.

mod common;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use common::{assert_error, tokens, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

const OTHER_PASSWORD: &str = "Velvet-Canyon-Drum-58";

/// Run `latchkey <args>` on `database_url`, with `stdin` as standard input.
fn latchkey(database_url: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = common::latchkey_command()
        .args(args)
        .env("LATCHKEY_DATABASE_URL", database_url)
        .env("LATCHKEY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits without reading: a
    // closed pipe here is its answer, not a failure of the test.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server with no session cache, so changes made by another process show at once.
async fn server() -> TestServer {
    TestServer::start_with(|c| c.session_cache_millis = 0).await
}

// The tests here wait for child `latchkey` commands synchronously: on a
// multi-threaded runtime the in-process servers keep serving meanwhile (on
// a current-thread one, a server's write transaction caught open would hold
// SQLite's write lock until the command gave up with `database is locked`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_reads_the_password_from_stdin_and_the_user_can_log_in() {
    let s = server().await;
    let (ok, out, err) = latchkey(
        &s.database_url,
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ops",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("created user ops <ops@example.com>"), "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    assert_eq!(
        s.login("ops@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_applies_the_apis_rules() {
    let s = server().await;
    s.register("taken", "taken@example.com").await;
    let (ok, _, err) = latchkey(
        &s.database_url,
        &[
            "user",
            "create",
            "--email",
            "taken@example.com",
            "--name",
            "fresh",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(!ok);
    assert!(
        err.contains("email: user with this email already exists."),
        "{err}"
    );
    let (ok, _, err) = latchkey(
        &s.database_url,
        &[
            "user",
            "create",
            "--email",
            "weak@example.com",
            "--name",
            "weak",
        ],
        "12345678\n",
    );
    assert!(!ok);
    assert!(err.contains("password:"), "{err}");
    assert!(
        !err.contains("12345678"),
        "the refused password is not echoed: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_is_never_accepted_as_an_argument() {
    let s = server().await;
    // A valid password on standard input too: were `--password` accepted,
    // the account would be created.
    let (ok, _, err) = latchkey(
        &s.database_url,
        &[
            "user",
            "create",
            "--email",
            "a@example.com",
            "--name",
            "a",
            "--password",
            "Tr1cky-Lantern-Owl",
        ],
        "Tr1cky-Lantern-Owl\n",
    );
    assert!(!ok);
    assert!(err.contains("unexpected argument '--password'"), "{err}");
    assert!(!err.contains("Tr1cky-Lantern-Owl"), "{err}");
    let (ok, listed, _) = latchkey(&s.database_url, &["user", "list"], "");
    assert!(ok);
    assert!(!listed.contains("a@example.com"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_list_shows_every_user_with_state_and_sessions() {
    let s = server().await;
    s.register("alice", "alice@example.com").await;
    s.register("bob", "bob@example.com").await;
    let (ok, out, err) = latchkey(&s.database_url, &["user", "list"], "");
    assert!(ok, "{err}");
    let alice = out
        .lines()
        .find(|l| l.contains("alice@example.com"))
        .unwrap();
    assert!(
        alice.contains("yes") && alice.trim_end().ends_with('1'),
        "{alice}"
    );
    assert!(out.contains("bob@example.com"));
    assert!(out.contains("2 users"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_user_cannot_log_in_or_refresh_and_their_sessions_end() {
    let s = server().await;
    let user = s.register("carol", "carol@example.com").await;
    let (access, refresh) = tokens(&user);
    let (ok, out, err) = latchkey(
        &s.database_url,
        &["user", "deactivate", "carol@example.com"],
        "",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("deactivated") && out.contains("1 session ended"),
        "{out}"
    );

    assert_error(
        s.get_as(&access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    let r = s
        .post("/auth/token/refresh", json!({"refresh": refresh}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    // The same answer as a wrong password: nothing tells the account exists.
    let deactivated: serde_json::Value = s
        .login("carol@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let wrong: serde_json::Value = s
        .login("carol@example.com", "Wrong-Password-77")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deactivated, wrong);
    assert_eq!(deactivated["code"], "no_active_account");

    let (ok, out, err) = latchkey(&s.database_url, &["user", "activate", "carol"], "");
    assert!(ok, "{err}");
    // Activating ends no session, so it reports none.
    assert!(
        out.contains("activated: carol <carol@example.com>") && !out.contains("session"),
        "{out}"
    );
    assert_eq!(
        s.login("carol@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_password_replaces_the_password_and_ends_every_session() {
    let s = server().await;
    let user = s.register("dave", "dave@example.com").await;
    let (access, _) = tokens(&user);
    let id = user["id"].to_string();
    let (ok, out, err) = latchkey(
        &s.database_url,
        &["user", "set-password", &id],
        &format!("{OTHER_PASSWORD}\r\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("password set"), "{out}");
    assert_error(
        s.get_as(&access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_eq!(
        s.login("dave@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login("dave@example.com", OTHER_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_revoke_ends_every_session_of_one_user_only() {
    let s = server().await;
    let erin = s.register("erin", "erin@example.com").await;
    let (erin_access, _) = tokens(&erin);
    let login = s.login("erin@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK, "erin's second login");
    let (erin_second, _) = tokens(&login.json().await.unwrap());
    // Both of erin's sessions are live before the command runs.
    for access in [&erin_access, &erin_second] {
        assert_eq!(s.get_as(access, "/auth/me").await.status(), StatusCode::OK);
    }
    let frank = s.register("frank", "frank@example.com").await;
    let (frank_access, _) = tokens(&frank);

    let (ok, out, err) = latchkey(
        &s.database_url,
        &["sessions", "revoke", "--user", "erin"],
        "",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("2 sessions ended"),
        "stdout: {out}\nstderr: {err}"
    );
    for access in [&erin_access, &erin_second] {
        let r = s.get_as(access, "/auth/me").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    }
    assert_eq!(
        s.get_as(&frank_access, "/auth/me").await.status(),
        StatusCode::OK
    );
    // Erin can still log in: revoking sessions is not deactivating.
    assert_eq!(
        s.login("erin@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_by_the_cli_reaches_a_caching_server_within_a_second() {
    let s = TestServer::start().await; // default 500 ms session cache
    let user = s.register("gina", "gina@example.com").await;
    let (access, _) = tokens(&user);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    let (ok, _, err) = latchkey(
        &s.database_url,
        &["sessions", "revoke", "--user", "gina"],
        "",
    );
    assert!(ok, "{err}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        s.get_as(&access, "/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_that_are_one_users_id_and_another_users_name_are_refused() {
    let s = server().await;
    let first = s.register("ada", "ada@example.com").await;
    let id = first["id"].as_i64().unwrap().to_string();
    let second = s.register(&id, "numbers@example.com").await;
    assert_ne!(second["id"].as_i64().unwrap().to_string(), id);

    let (ok, _, err) = latchkey(&s.database_url, &["user", "deactivate", &id], "");
    assert!(!ok);
    assert!(err.contains("name the user by email"), "{err}");
    // Neither was touched: both still log in.
    for email in ["ada@example.com", "numbers@example.com"] {
        assert_eq!(s.login(email, PASSWORD).await.status(), StatusCode::OK);
    }
    // The id of a user nobody is named after still names that user.
    let (ok, out, err) = latchkey(
        &s.database_url,
        &[
            "user",
            "deactivate",
            &second["id"].as_i64().unwrap().to_string(),
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("numbers@example.com"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_an_error_not_a_silent_success() {
    let s = server().await;
    for args in [
        &["user", "deactivate", "nobody@example.com"][..],
        &["user", "activate", "4242"][..],
        &["sessions", "revoke", "--user", "nobody"][..],
    ] {
        let (ok, _, err) = latchkey(&s.database_url, args, "");
        assert!(!ok, "{args:?}");
        // After the line naming the database, the error and nothing else.
        assert_eq!(
            err.lines().last(),
            Some("latchkey: no such user"),
            "{args:?}"
        );
    }
}

/// A server whose accounts lock after 3 failures, and an account locked.
async fn locked_out() -> TestServer {
    let s = TestServer::start_with(|c| {
        c.session_cache_millis = 0;
        c.login_failures_per_account = 3;
    })
    .await;
    s.register("locked", "locked@example.com").await;
    for _ in 0..4 {
        s.login("locked@example.com", "Wrong-Password-99").await;
    }
    let r = s.login("locked@example.com", PASSWORD).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_unlock_ends_a_lockout_at_once() {
    let s = locked_out().await;
    let (ok, out, err) = latchkey(&s.database_url, &["user", "unlock", "locked"], "");
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("unlocked: locked <locked@example.com>")
            && out.contains("1 failed-login counter cleared"),
        "{out}"
    );
    assert_eq!(
        s.login("locked@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_set_password_ends_a_lockout_too() {
    let s = locked_out().await;
    let (ok, out, err) = latchkey(
        &s.database_url,
        &["user", "set-password", "locked@example.com"],
        &format!("{OTHER_PASSWORD}\n"),
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        s.login("locked@example.com", OTHER_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_name_the_database_they_opened_on_stderr() {
    let s = server().await;
    let (ok, out, err) = latchkey(&s.database_url, &["user", "list"], "");
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("latchkey: database {}", s.database_url)),
        "{err}"
    );
    assert!(out.contains("0 users"), "{out}");
    s.register("dora", "dora@example.com").await;
    let (_, out, _) = latchkey(&s.database_url, &["user", "list"], "");
    assert!(out.contains("1 user\n"), "singular for one: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_neither_migrate_nor_log_the_migrators_notices() {
    // On PostgreSQL, applying migrations logs `relation "_sqlx_migrations"
    // already exists`; admin commands only check the schema, so say nothing.
    let s = server().await;
    let (ok, _, err) = common::latchkey_command()
        .args(["user", "list"])
        .env("LATCHKEY_DATABASE_URL", &s.database_url)
        .env("LATCHKEY_LOG", "trace")
        .output()
        .map(|o| {
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert!(ok, "{err}");
    assert!(!err.contains("already exists"), "{err}");
    assert!(!err.contains("CREATE TABLE"), "{err}");
}
