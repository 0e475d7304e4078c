//! Mail delivery to a real SMTP server over a socket (aiosmtpd, run by
//! `tests/smtp/server.py`; CONTRACT Part 2, "Mail"): requests never wait for
//! SMTP, an outage delays mail but loses none, one undeliverable message
//! holds up no other, and instances sharing the outbox send each message
//! once.

mod common;

use std::time::{Duration, Instant};

use common::mail::SmtpServer;
use common::{TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

fn smtp(c: &mut latchkey::config::Config, server: &SmtpServer) {
    c.smtp_url = Some(server.url());
    c.mail_from = "Acme <no-reply@acme.example>".into();
    c.app_name = "Acme".into();
    c.mail_retry_min_seconds = 1;
    c.mail_retry_max_seconds = 1;
    c.mail_poll_millis = 100;
}

#[tokio::test]
async fn mail_reaches_an_smtp_server_as_multipart_text_and_html_with_the_app_name() {
    let Some(server) = SmtpServer::start().await else {
        return;
    };
    let s = TestServer::start_with(|c| smtp(c, &server)).await;
    s.register("smtpuser", "smtpuser@example.com").await;
    let got = server.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.rcpt[0].contains("smtpuser@example.com"), "{:?}", m.rcpt);
    assert!(
        m.raw.contains("From: Acme <no-reply@acme.example>"),
        "{}",
        m.raw
    );
    assert_eq!(m.subject(), "Acme: confirm your email address");
    assert!(m.raw.contains("multipart/alternative"));
    assert!(m.raw.contains("text/plain") && m.raw.contains("text/html"));
    assert!(m.token("/verify-email").is_some(), "{}", m.decoded());

    let token = m.token("/verify-email").unwrap();
    let r = s.post("/auth/email/verify", json!({"token": token})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let metrics = s.get_text("/metrics").await;
    assert!(
        metrics.contains("latchkey_mail_queued_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("latchkey_mail_sent_total 1"), "{metrics}");
}

#[tokio::test]
async fn an_smtp_outage_delays_mail_but_loses_none_and_requests_answer_at_once() {
    let Some(mut server) = SmtpServer::start().await else {
        return;
    };
    let s = TestServer::start_with(|c| smtp(c, &server)).await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    server.wait_for(1, Duration::from_secs(10)).await;

    server.stop().await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let asked = Instant::now();
        let r = s
            .post("/auth/password/reset", json!({"email": email}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        slowest = slowest.max(asked.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a request waited {slowest:?}"
    );
    // The sender tries, fails and backs off while the server is down.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(server.received().len(), 1);
    let metrics = s.get_text("/metrics").await;
    assert!(
        !metrics.contains("latchkey_mail_retried_total 0"),
        "{metrics}"
    );

    server.restart().await;
    let got = server.wait_for(4, Duration::from_secs(15)).await;
    let waited = started.elapsed();
    assert_eq!(got.len(), 4, "every message arrived after the outage");
    assert!(got[1..]
        .iter()
        .all(|m| m.token("/reset-password").is_some()));
    println!(
        "mail waited {waited:?} through a 2.5 s SMTP outage (requests answered within {slowest:?})"
    );
}

#[tokio::test]
async fn one_undeliverable_message_does_not_hold_up_the_others() {
    let Some(server) = SmtpServer::start().await else {
        return;
    };
    let s = TestServer::start_with(|c| smtp(c, &server)).await;
    // The server refuses this recipient for good.
    s.register("rejectme", "reject@example.com").await;
    for i in 0..3 {
        s.register(&format!("fine{i}"), &format!("fine{i}@example.com"))
            .await;
    }
    let got = server.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|m| !m.rcpt[0].contains("reject")));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = s.get_text("/metrics").await;
        if metrics.contains("latchkey_mail_failed_total 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_instances_sharing_the_outbox_send_each_message_once() {
    let Some(server) = SmtpServer::start().await else {
        return;
    };
    let first = TestServer::start_with(|c| smtp(c, &server)).await;
    let dir = tempfile::tempdir().unwrap();
    let second = TestServer::start_on(dir, first.database_url.clone(), |c| {
        smtp(c, &server);
        c.sqlite_allow_shared = true;
    })
    .await;
    const USERS: usize = 24;
    let mut tasks = Vec::new();
    for i in 0..USERS {
        let (base, client) = if i % 2 == 0 {
            (first.base.clone(), first.client.clone())
        } else {
            (second.base.clone(), second.client.clone())
        };
        tasks.push(tokio::spawn(async move {
            let csrf = common::fetch_csrf(&client, &base).await;
            let r = client
                .post(format!("{base}/auth/register"))
                .header("X-CSRFToken", csrf)
                .json(&json!({"name": format!("twin{i}"), "email": format!("twin{i}@example.com"), "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let got = server.wait_for(USERS, Duration::from_secs(20)).await;
    // Time for any duplicate to show up.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let got_now = server.received();
    assert_eq!(got.len(), USERS);
    assert_eq!(got_now.len(), USERS, "a message was sent twice");
    let mut recipients: Vec<String> = got_now.iter().map(|m| m.rcpt[0].clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), USERS);
}
