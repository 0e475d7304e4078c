//! `latchkey flush-expired`: removes what can never matter again, and
//! nothing that still does, while the server keeps serving.

mod common;

use common::{tokens, TestServer};
use reqwest::StatusCode;
use serde_json::json;

// The tests here wait for child `latchkey` commands synchronously: on a
// multi-threaded runtime the in-process servers keep serving meanwhile (on
// a current-thread one, a server's write transaction caught open would hold
// SQLite's write lock until the command gave up with `database is locked`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_expired_removes_expired_sessions_and_tokens_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    // Both servers' clocks run 10 s behind the command's: what they issue
    // for 6 s has expired by the time the command looks, with no waiting.
    let behind = || latchkey::auth::Clock::skewed(-10);
    let short =
        TestServer::start_on_clock(tempfile::tempdir().unwrap(), url.clone(), behind(), |c| {
            c.refresh_token_lifetime_seconds = 6;
            c.access_token_lifetime_seconds = 6;
        })
        .await;
    let live = TestServer::start_on_clock(dir, url.clone(), behind(), |_| {}).await;
    let a = short.new_user().await;
    short.new_user().await;
    // A rotation leaves a rotated token behind in the short session.
    let r = short
        .post("/auth/token/refresh/", json!({"refresh": tokens(&a).1}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let keeper = live.new_user().await;
    let throttled = live.login("ghost@example.com", "Wrong-Password-99").await;
    assert_eq!(throttled.status(), StatusCode::UNAUTHORIZED);

    let stdout = flush_expired(&url, &["--login-throttle-window-seconds", "1"]);
    assert!(stdout.contains("flushed 2 expired sessions, "), "{stdout}");
    assert!(!stdout.contains(" 0 stale throttle counters"), "{stdout}");

    // The live session was not touched and keeps working, refresh included.
    let (access, refresh) = tokens(&keeper);
    assert_eq!(
        live.get_as(&access, "/auth/me").await.status(),
        StatusCode::OK
    );
    let r = live
        .post("/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A second run has nothing left to do.
    assert!(flush_expired(&url, &[]).contains("flushed 0 expired sessions, "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_expired_removes_expired_passkey_challenges_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    // A live challenge first (a server on the command's clock), then two
    // issued by a server six minutes behind: expired by the command's clock.
    let now = TestServer::start_on(dir, url.clone(), |_| {}).await;
    let behind = TestServer::start_on_clock(
        tempfile::tempdir().unwrap(),
        url.clone(),
        latchkey::auth::Clock::skewed(-360),
        |_| {},
    )
    .await;
    for server in [&now, &behind, &behind] {
        let r = server.post("/auth/passkeys/login/options", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let flush = || flush_expired(&url, &[]);
    let stdout = flush();
    assert!(
        stdout.contains(", 2 expired passkey challenges"),
        "{stdout}"
    );
    let stdout = flush();
    assert!(
        stdout.contains(", 0 expired passkey challenges"),
        "{stdout}"
    );
}

/// What `latchkey flush-expired` on `url` (with `extra` arguments)
/// printed; it must succeed.
fn flush_expired(url: &str, extra: &[&str]) -> String {
    let out = common::latchkey_command()
        .args(["flush-expired", "--database-url", url])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each stored `User-Agent` and when a login last saw it, in order.
async fn user_agents(url: &str) -> Vec<(String, i64)> {
    use sqlx::{Connection as _, Row as _};
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query("SELECT value, last_seen_at FROM user_agents ORDER BY value")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_expired_removes_only_user_agents_no_session_refers_to_and_two_days_stale() {
    const DAY: i64 = 86_400;
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let on = |skew: i64, refresh_lifetime: u64| {
        TestServer::start_on_clock(
            tempfile::tempdir().unwrap(),
            url.clone(),
            latchkey::auth::Clock::skewed(skew),
            move |c| {
                c.refresh_token_lifetime_seconds = refresh_lifetime;
                c.access_token_lifetime_seconds = 6;
            },
        )
    };
    // Three days ago: one session that has expired, one that lives on.
    let long_ago = on(-3 * DAY - 10, 6).await;
    let long_ago_lasting = on(-3 * DAY - 10, 30 * DAY as u64).await;
    // Ten seconds ago: a session that has expired, its browser seen just now.
    let just_now = on(-10, 6).await;
    let now = on(0, 7 * DAY as u64).await;
    let user = now.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    long_ago
        .login_from(&email, "Agent/expired-3-days-ago")
        .await;
    let lasting = long_ago_lasting.login_from(&email, "Agent/lasting").await;
    just_now.login_from(&email, "Agent/expired-just-now").await;
    let when = |agents: &[(String, i64)], agent: &str| {
        agents
            .iter()
            .find(|(v, _)| v == agent)
            .map(|(_, seen)| *seen)
    };
    let before = user_agents(&url).await;
    assert_eq!(before.len(), 3, "{before:?}");

    let flush = || flush_expired(&url, &[]);
    let stdout = flush();
    assert!(stdout.contains("flushed 2 expired sessions, "), "{stdout}");
    assert!(stdout.ends_with(", 1 unused user agent\n"), "{stdout}");
    // The one a live session refers to stays, stale as it is; so does the
    // one no session refers to that a login saw ten seconds ago.
    let after = user_agents(&url).await;
    let names: Vec<_> = after.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(names, ["Agent/expired-just-now", "Agent/lasting"]);
    // (Its access token is valid on the clock that issued it.)
    let (lasting_access, _) = tokens(&lasting);
    let list: serde_json::Value = long_ago_lasting
        .get_as(&lasting_access, "/auth/sessions")
        .await
        .json()
        .await
        .unwrap();
    let agents: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_agent"].clone())
        .collect();
    assert!(agents.contains(&json!("Agent/lasting")), "{list}");

    // A login refreshes a day-stale User-Agent before it refers to it, and
    // stores a removed one anew.
    let stale = when(&after, "Agent/lasting").unwrap();
    now.login_from(&email, "Agent/lasting").await;
    now.login_from(&email, "Agent/expired-3-days-ago").await;
    let later = user_agents(&url).await;
    let refreshed = when(&later, "Agent/lasting").unwrap();
    assert!(refreshed >= stale + 3 * DAY, "{stale} -> {refreshed}");
    assert!(
        when(&later, "Agent/expired-3-days-ago").is_some(),
        "{later:?}"
    );
    // A fresh one is not written again by every login.
    let seen = when(&later, "Agent/expired-just-now").unwrap();
    now.login_from(&email, "Agent/expired-just-now").await;
    assert_eq!(
        when(&user_agents(&url).await, "Agent/expired-just-now"),
        Some(seen)
    );
    assert!(flush().ends_with(", 0 unused user agents\n"));
}
