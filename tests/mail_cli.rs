//! The operator's mail commands, run as the real binary against a live
//! server's database: `latchkey mail list|retry|drop`, and `user create
//! --verified`.

mod common;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use common::mail::SmtpServer;
use common::{tokens, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::Value;

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
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// The tests here wait for child `latchkey` commands synchronously: on a
// multi-threaded runtime the in-process servers keep serving meanwhile (on
// a current-thread one, a server's write transaction caught open would hold
// SQLite's write lock until the command gave up with `database is locked`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_verified_marks_the_address_verified() {
    let s = TestServer::start().await;
    let (ok, out, err) = latchkey(
        &s.database_url,
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ops",
            "--verified",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{out}{err}");
    let login = s.login("ops@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let (access, _) = tokens(&login.json().await.unwrap());
    let me: Value = s.get_as(&access, "/auth/me").await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);

    let (ok, _, _) = latchkey(
        &s.database_url,
        &[
            "user",
            "create",
            "--email",
            "plain@example.com",
            "--name",
            "plain",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok);
    let login = s.login("plain@example.com", PASSWORD).await;
    let (access, _) = tokens(&login.json().await.unwrap());
    let me: Value = s.get_as(&access, "/auth/me").await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_list_shows_waiting_messages_without_bodies_and_retry_and_drop_act_on_one() {
    // An SMTP server that is down: messages wait in the outbox.
    let Some(mut smtp) = SmtpServer::start().await else {
        return;
    };
    let port = smtp.port;
    smtp.stop().await;
    let s = TestServer::start_with(|c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.mail_retry_min_seconds = 3_600;
        c.mail_poll_millis = 50;
    })
    .await;
    s.register("waiting1", "waiting1@example.com").await;
    s.register("waiting2", "waiting2@example.com").await;
    // Each has been tried once and is now an hour away.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (ok, out, err) = latchkey(&s.database_url, &["mail", "list"], "");
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("waiting1@example.com") && out.contains("waiting2@example.com"),
        "{out}"
    );
    assert!(
        out.contains("verify_email") && out.contains("queued"),
        "{out}"
    );
    assert!(out.contains("2 messages"), "{out}");
    assert!(
        !out.contains("verify-email?token="),
        "a body was listed: {out}"
    );
    let id = |recipient: &str| -> String {
        out.lines()
            .find(|l| l.contains(recipient))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned()
    };
    let (first, second) = (id("waiting1@example.com"), id("waiting2@example.com"));

    let (ok, out, _) = latchkey(&s.database_url, &["mail", "drop", &second], "");
    assert!(ok, "{out}");
    let (ok, _, err) = latchkey(&s.database_url, &["mail", "drop", &second], "");
    assert!(
        !ok && err.contains(&format!("no message {second}")),
        "{err}"
    );

    // The server is back; a retry makes the first one due now.
    smtp.restart().await;
    let (ok, out, err) = latchkey(&s.database_url, &["mail", "retry", &first], "");
    assert!(ok, "{out}{err}");
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].rcpt[0].contains("waiting1@example.com"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 1, "the dropped message was sent");
    let (_, out, _) = latchkey(&s.database_url, &["mail", "list"], "");
    assert!(out.contains("0 messages"), "{out}");
}
