//! The fault suite: the real binary under faults a production server meets
//! (a full disk, kill -9 under write load, PostgreSQL going away), proving
//! latchkey's one promise: a request is answered with success only after its
//! writes are durable in the database the next request reads, and a write it
//! refused is not there. Each test keeps a ledger of what was acknowledged
//! and what was refused, checks it from a connection of its own and after a
//! restart, and prints both.
//!
//! These tests choose their backend themselves, so they run once, in the
//! default (SQLite) pass of `scripts/test-all.sh`; the PostgreSQL ones need
//! the server at `LATCHKEY_TEST_POSTGRES_URL` and fail under `CI=true`
//! without it. The full-disk test mounts a small tmpfs, so it needs root;
//! under `CI=true` it fails rather than skips when it cannot.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{claims, ServerProcess, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection as _, Row as _};

/// Whether this pass runs the fault suite (see the module comment).
fn in_default_pass(test: &str) -> bool {
    if common::backend() == "postgres" {
        eprintln!("{test}: runs in the default pass (it picks its backends itself)");
        return false;
    }
    true
}

/// A client of a running server: CSRF header and JSON bodies.
#[derive(Clone)]
struct Api {
    base: String,
    http: reqwest::Client,
    csrf: String,
}

/// How the server answered a write.
#[derive(Debug)]
enum Answer {
    /// 2xx: the write is acknowledged; the body.
    Acked(Value),
    /// 503 JSON with `Retry-After`: refused, nothing may have been written.
    Refused,
    /// No answer (the server died mid-request): either outcome is allowed.
    Lost,
}

impl Api {
    async fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let csrf = common::fetch_csrf(&http, base).await;
        Self {
            base: base.to_owned(),
            http,
            csrf,
        }
    }

    /// POST `body` to `path`; anything but 2xx or a well-formed 503 fails the test.
    async fn write(&self, path: &str, access: Option<&str>, body: Value) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-CSRFToken", &self.csrf)
            .json(&body);
        if let Some(access) = access {
            request = request.bearer_auth(access);
        }
        let Ok(r) = request.send().await else {
            return Answer::Lost;
        };
        let status = r.status();
        let retry_after = r.headers().get("retry-after").cloned();
        let content_type = r.headers().get("content-type").cloned();
        let Ok(body) = r.json::<Value>().await else {
            return Answer::Lost;
        };
        if status.is_success() {
            return Answer::Acked(body);
        }
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "POST {path}: only 2xx or 503 is an honest answer to a fault: {body}"
        );
        assert_eq!(content_type.unwrap(), "application/json", "{body}");
        assert_eq!(body["code"], "service_unavailable", "{body}");
        assert!(retry_after.is_some(), "503 without Retry-After: {body}");
        Answer::Refused
    }

    async fn ready(&self) -> StatusCode {
        match self.http.get(format!("{}/readyz", self.base)).send().await {
            Ok(r) => r.status(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Wait (bounded) until `/readyz` is 200.
    async fn wait_ready(&self, within: Duration) -> Duration {
        let started = Instant::now();
        while self.ready().await != StatusCode::OK {
            assert!(started.elapsed() < within, "not ready within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    }
}

/// A user the server acknowledged: its current access and refresh tokens.
#[derive(Debug, Clone)]
struct Account {
    access: String,
    refresh: String,
}

/// Everything the server acknowledged and refused, to check against the database.
#[derive(Debug, Default, Clone)]
struct Ledger {
    /// Emails registered with 201.
    registered: Vec<String>,
    /// Emails refused with 503 (and never retried).
    refused_registrations: Vec<String>,
    /// (old jti, new jti) of refreshes answered 200.
    rotations: Vec<(String, String)>,
    /// jti of refresh tokens whose refresh was refused with 503.
    refused_rotations: Vec<String>,
    /// Session ids logged out with 200.
    logouts: Vec<String>,
    /// Session ids whose logout was refused with 503.
    refused_logouts: Vec<String>,
    /// Requests that got no answer (the server was killed).
    lost: usize,
}

impl Ledger {
    fn summary(&self) -> String {
        format!(
            "acknowledged {} registrations, {} rotations, {} logouts; refused {} registrations, \
             {} rotations, {} logouts; {} unanswered",
            self.registered.len(),
            self.rotations.len(),
            self.logouts.len(),
            self.refused_registrations.len(),
            self.refused_rotations.len(),
            self.refused_logouts.len(),
            self.lost
        )
    }

    fn refused(&self) -> usize {
        self.refused_registrations.len() + self.refused_rotations.len() + self.refused_logouts.len()
    }
}

fn jti(token: &str) -> String {
    claims(token)["jti"].as_str().unwrap().to_owned()
}

fn sid(token: &str) -> String {
    claims(token)["sid"].as_str().unwrap().to_owned()
}

/// Register `email`; the account when acknowledged.
async fn register(api: &Api, ledger: &Mutex<Ledger>, email: &str) -> Option<Account> {
    let name = email.split('@').next().unwrap();
    let answer = api
        .write(
            "/auth/register",
            None,
            json!({"name": name, "email": email, "password": PASSWORD}),
        )
        .await;
    let mut ledger = ledger.lock().unwrap();
    match answer {
        Answer::Acked(body) => {
            ledger.registered.push(email.to_owned());
            Some(Account {
                access: body["tokens"]["access"].as_str().unwrap().to_owned(),
                refresh: body["tokens"]["refresh"].as_str().unwrap().to_owned(),
            })
        }
        Answer::Refused => {
            ledger.refused_registrations.push(email.to_owned());
            None
        }
        Answer::Lost => {
            ledger.lost += 1;
            None
        }
    }
}

/// Rotate the account's refresh token; whether it was acknowledged.
async fn rotate(api: &Api, ledger: &Mutex<Ledger>, account: &mut Account) -> bool {
    let answer = api
        .write(
            "/auth/token/refresh",
            None,
            json!({"refresh": account.refresh}),
        )
        .await;
    let mut ledger = ledger.lock().unwrap();
    match answer {
        Answer::Acked(body) => {
            let next = body["refresh"].as_str().unwrap().to_owned();
            ledger.rotations.push((jti(&account.refresh), jti(&next)));
            account.refresh = next;
            account.access = body["access"].as_str().unwrap().to_owned();
            true
        }
        Answer::Refused => {
            ledger.refused_rotations.push(jti(&account.refresh));
            false
        }
        Answer::Lost => {
            ledger.lost += 1;
            false
        }
    }
}

/// Log the account's session out; whether it was acknowledged.
async fn logout(api: &Api, ledger: &Mutex<Ledger>, account: &Account) -> bool {
    let answer = api
        .write(
            "/auth/logout",
            Some(&account.access),
            json!({"refresh": account.refresh}),
        )
        .await;
    let mut ledger = ledger.lock().unwrap();
    match answer {
        Answer::Acked(_) => {
            ledger.logouts.push(sid(&account.refresh));
            true
        }
        Answer::Refused => {
            ledger.refused_logouts.push(sid(&account.refresh));
            false
        }
        Answer::Lost => {
            ledger.lost += 1;
            false
        }
    }
}

/// Whether a refused write may nonetheless be in the database.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusals {
    /// No: the fault struck before the commit (a full disk, a crash).
    NeverKept,
    /// When the connection died while PostgreSQL committed, the server could
    /// not know the outcome and answered 503: such writes are counted, not
    /// failed. Acknowledged writes must still all be there.
    OutcomeUnknown,
}

/// Check the ledger against the database at `url`, from a connection of the
/// test's own: every acknowledged write is there, and no refused one is
/// (see [`Refusals`]). What it verified, as a line.
async fn verify(url: &str, ledger: &Ledger, refusals: Refusals) -> String {
    let mut kept = 0;
    let mut refused_kept = |what: &str| {
        assert!(
            refusals == Refusals::OutcomeUnknown,
            "refused {what} was kept"
        );
        kept += 1;
    };
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(url).await.unwrap();
    let emails: HashSet<String> = sqlx::query("SELECT email_key FROM users")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    for email in &ledger.registered {
        assert!(
            emails.contains(email),
            "acknowledged registration {email} is missing"
        );
    }
    for email in &ledger.refused_registrations {
        if emails.contains(email) {
            refused_kept(&format!("registration {email}"));
        }
    }
    // A session holds its chain: the live token and the one rotated last.
    let position = |jti: String| {
        sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN current_jti = $1 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN last_rotated_jti_prefix = $2 THEN 1 ELSE 0 END), 0) \
             FROM sessions WHERE current_jti = $1 OR last_rotated_jti_prefix = $2",
        )
        .bind(common::stored_id(&jti))
        // A session keeps the first 8 bytes of the id of the token it
        // rotated last.
        .bind(common::stored_id(&jti)[..8].to_vec())
    };
    let acknowledged_old = |jti: &String| ledger.rotations.iter().any(|(o, _)| o == jti);
    for (old, new) in &ledger.rotations {
        let row = position(old.clone()).fetch_one(&mut db).await.unwrap();
        assert_eq!(
            row.get::<i64, _>(0),
            0,
            "acknowledged rotation of {old} is undone: it is still a session's live token"
        );
        // The token issued is the session's live token, or was rotated in
        // turn (by an acknowledged rotation, checked in its own entry, or a
        // refused one whose commit outcome is unknown: then it is the one
        // rotated last).
        let row = position(new.clone()).fetch_one(&mut db).await.unwrap();
        assert!(
            row.get::<i64, _>(0) + row.get::<i64, _>(1) > 0 || acknowledged_old(new),
            "refresh token {new} issued by an acknowledged rotation is missing"
        );
    }
    for old in &ledger.refused_rotations {
        // A refused rotation left the token as it was, so it may have been
        // rotated later by a retry, but never by the refused request alone:
        // every rotated token is in the ledger as acknowledged.
        let row = position(old.clone()).fetch_one(&mut db).await.unwrap();
        if !acknowledged_old(old) && row.get::<i64, _>(0) == 0 {
            refused_kept(&format!("rotation of {old}"));
        }
    }
    // A session id is stored as two big-endian signed 64-bit halves.
    let revoked = |sid: String| {
        let id = common::stored_id(&sid);
        let half = |bytes: &[u8]| i64::from_be_bytes(bytes.try_into().unwrap());
        sqlx::query("SELECT revoked_at FROM sessions WHERE id_hi = $1 AND id_lo = $2")
            .bind(half(&id[..8]))
            .bind(half(&id[8..]))
    };
    for sid in &ledger.logouts {
        let row = revoked(sid.clone()).fetch_one(&mut db).await.unwrap();
        assert!(
            row.get::<Option<i64>, _>(0).is_some(),
            "acknowledged logout of session {sid} is undone"
        );
    }
    for sid in &ledger.refused_logouts {
        let row = revoked(sid.clone()).fetch_one(&mut db).await.unwrap();
        let retried = ledger.logouts.contains(sid);
        if !retried && row.get::<Option<i64>, _>(0).is_some() {
            refused_kept(&format!("logout of session {sid}"));
        }
    }
    let mut line = format!(
        "verified {} registrations present, {} refused writes absent ({} kept: commit outcome \
         unknown), {} rotations, {} logouts",
        ledger.registered.len(),
        ledger.refused() - kept,
        kept,
        ledger.rotations.len(),
        ledger.logouts.len()
    );
    if url.starts_with("sqlite:") {
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(check, "ok", "PRAGMA integrity_check");
        line.push_str(", integrity_check ok");
    }
    db.close().await.unwrap();
    line
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// The mounted disk; `None` (after saying why) when it cannot be set up
    /// outside CI; a panic under `CI=true`, where the fault must be tested.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match mounted {
            Ok(s) if s.success() => Some(Self { dir }),
            other => {
                let why = format!("cannot mount a tmpfs (needs root): {other:?}");
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "the full-disk test must run in CI: {why}"
                );
                eprintln!("skipping: {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill every free byte with a file; its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0xa5u8; 4096];
        while file.write_all(&block).is_ok() {}
        // Whatever is left is smaller than a block: take it byte by byte.
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Write load: `workers` clients each registering an account, rotating its
/// refresh token three times and logging out, over and over, until `stop`.
/// Every answer goes into `ledger`. Emails are `{tag}-{worker}-{n}@example.com`.
fn write_load(
    api: &Api,
    ledger: &Arc<Mutex<Ledger>>,
    stop: &Arc<AtomicBool>,
    workers: usize,
    tag: &str,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|worker| {
            let (api, ledger, stop) = (api.clone(), ledger.clone(), stop.clone());
            let tag = tag.to_owned();
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let email = format!("{tag}-{worker}-{n}@example.com");
                    let Some(mut account) = register(&api, &ledger, &email).await else {
                        // Refused or unanswered: back off a little, like a client.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    for _ in 0..3 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        if !rotate(&api, &ledger, &mut account).await {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    if !logout(&api, &ledger, &account).await {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect()
}

/// Stop the load and wait for its clients (bounded).
async fn stop_load(stop: &AtomicBool, workers: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("a load client hung")
            .unwrap();
    }
}

/// kill -9 a server under write load on `url`, restart it, and check every
/// acknowledged write; what it acknowledged and verified, as lines.
async fn kill_under_write_load(label: &str, env: &[(&'static str, String)], url: &str) {
    let started = Instant::now();
    let server = start(env).await;
    let api = Api::new(&server.base).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers = write_load(&api, &ledger, &stop, 4, "load");
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.kill();
    stop_load(&stop, workers).await;
    let ledger = ledger.lock().unwrap().clone();
    assert!(
        ledger.registered.len() >= 4 && !ledger.rotations.is_empty() && !ledger.logouts.is_empty(),
        "too little load to prove anything: {}",
        ledger.summary()
    );
    assert_eq!(
        ledger.refused(),
        0,
        "a healthy server refused writes: {}",
        ledger.summary()
    );

    let server = start(env).await;
    let check = verify(url, &ledger, Refusals::NeverKept).await;
    let api = Api::new(&server.base).await;
    let ledger_after = Mutex::new(Ledger::default());
    register(&api, &ledger_after, "after-restart@example.com")
        .await
        .expect("the restarted server takes writes");
    drop(server);
    println!("kill -9 on {label}: under load {}", ledger.summary());
    println!("kill -9 on {label}: after a restart {check}");
    println!("kill -9 on {label}: took {:?}", started.elapsed());
}

fn sqlite_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LATCHKEY_DATABASE_URL", url.to_owned()),
        ("LATCHKEY_DATABASE_ACQUIRE_TIMEOUT_SECONDS", "2".to_owned()),
        ("LATCHKEY_HASH_QUEUE", "256".to_owned()),
    ]
}

async fn start(env: &[(&'static str, String)]) -> ServerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&env).await
}

#[tokio::test]
async fn a_full_disk_never_acknowledges_a_write_it_did_not_commit() {
    if !in_default_pass("full disk") {
        return;
    }
    let started = Instant::now();
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("latchkey.db").display());
    let env = sqlite_env(&url);
    let server = start(&env).await;
    let api = Api::new(&server.base).await;
    let ledger = Mutex::new(Ledger::default());

    // Before the fault: accounts, one rotation, one logout.
    let mut before = Vec::new();
    for i in 0..4 {
        before.push(
            register(&api, &ledger, &format!("before{i}@example.com"))
                .await
                .unwrap(),
        );
    }
    assert!(rotate(&api, &ledger, &mut before[0]).await);
    assert!(logout(&api, &ledger, &before[1]).await);
    let acked_before = ledger.lock().unwrap().summary();

    // The fault: no free byte left.
    let filler = disk.fill();
    let mut during = 0;
    let mut readiness_failed = false;
    for i in 0..6 {
        during += 1;
        register(&api, &ledger, &format!("during{i}@example.com")).await;
        rotate(&api, &ledger, &mut before[2]).await;
        if api.ready().await == StatusCode::SERVICE_UNAVAILABLE {
            readiness_failed = true;
        }
    }
    let logout_refused = !logout(&api, &ledger, &before[3]).await;
    {
        let ledger = ledger.lock().unwrap();
        assert!(
            ledger.refused() > 0,
            "nothing was refused on a full disk: {}",
            ledger.summary()
        );
    }
    assert!(readiness_failed, "/readyz stayed 200 while writes failed");
    let during_summary = ledger.lock().unwrap().summary();

    // The fault clears: service resumes by itself, no restart.
    std::fs::remove_file(filler).unwrap();
    let recovered_in = api.wait_ready(Duration::from_secs(10)).await;
    // Seen from a second connection while the server runs.
    let snapshot = ledger.lock().unwrap().clone();
    let live_check = verify(&url, &snapshot, Refusals::NeverKept).await;
    let mut after = Vec::new();
    for i in 0..3 {
        let account = register(&api, &ledger, &format!("after{i}@example.com")).await;
        after.push(account.expect("a registration after the fault cleared is acknowledged"));
    }
    assert!(rotate(&api, &ledger, &mut after[0]).await);
    assert!(logout(&api, &ledger, &after[1]).await);
    assert!(
        rotate(&api, &ledger, &mut before[2]).await,
        "the account used during the fault works"
    );
    if logout_refused {
        assert!(
            logout(&api, &ledger, &before[3]).await,
            "a refused logout can be retried"
        );
    }

    // After a restart.
    server.terminate();
    let server = start(&env).await;
    let ledger = ledger.into_inner().unwrap();
    let restart_check = verify(&url, &ledger, Refusals::NeverKept).await;
    let api = Api::new(&server.base).await;
    let me = api
        .http
        .get(format!("{}/auth/me", api.base))
        .bearer_auth(&before[1].access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::UNAUTHORIZED,
        "a logout before the fault holds"
    );
    drop(server);

    println!("full disk: before the fault {acked_before}");
    println!("full disk: after {during} rounds on a full disk {during_summary}; /readyz was 503");
    println!("full disk: ready again {recovered_in:?} after space was freed; second connection {live_check}");
    println!("full disk: in all {}", ledger.summary());
    println!("full disk: after a restart {restart_check}");
    println!("full disk: took {:?}", started.elapsed());
}

#[tokio::test]
async fn kill_9_under_write_load_on_sqlite_loses_no_acknowledged_write() {
    if !in_default_pass("kill -9 on SQLite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    kill_under_write_load("SQLite", &sqlite_env(&url), &url).await;
}

fn postgres_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LATCHKEY_DATABASE_URL", url.to_owned()),
        ("LATCHKEY_DATABASE_ACQUIRE_TIMEOUT_SECONDS", "1".to_owned()),
        ("LATCHKEY_HASH_QUEUE", "256".to_owned()),
    ]
}

#[tokio::test]
async fn kill_9_under_write_load_on_postgres_loses_no_acknowledged_write() {
    if !in_default_pass("kill -9 on PostgreSQL") || !common::postgres_available().await {
        return;
    }
    let url = common::fresh_postgres_database().await;
    kill_under_write_load("PostgreSQL", &postgres_env(&url), &url).await;
    common::drop_postgres_database(&url).await;
}

/// Every backend of the server on database `url` ended by PostgreSQL
/// (`pg_terminate_backend`), never one of another database; how many.
async fn terminate_backends_of(url: &str) -> i64 {
    let (base, name) = url.rsplit_once('/').unwrap();
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    ended.into_iter().filter(|ended| *ended).count() as i64
}

#[tokio::test]
async fn postgres_going_away_mid_load_gives_503s_and_service_resumes_without_a_restart() {
    if !in_default_pass("PostgreSQL outage") || !common::postgres_available().await {
        return;
    }
    let started = Instant::now();
    let direct = common::fresh_postgres_database().await;
    let proxy = common::Proxy::start().await;
    let env = postgres_env(&proxy.url_for(&direct));
    let server = start(&env).await;
    let api = Api::new(&server.base).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers = write_load(&api, &ledger, &stop, 4, "outage");
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Connections killed by PostgreSQL, three times: the pool reconnects.
    let mut terminated = 0;
    for _ in 0..3 {
        terminated += terminate_backends_of(&direct).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(terminated > 0, "no backend of the server was terminated");
    let after_terminate = ledger.lock().unwrap().summary();

    // PostgreSQL refusing connections: every write is refused with a 503.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        api.ready().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "/readyz during the outage"
    );
    let refused_before = ledger.lock().unwrap().refused();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let refused_during = ledger.lock().unwrap().refused() - refused_before;
    assert!(
        refused_during > 0,
        "no write was refused while the database was away"
    );
    let outage = ledger.lock().unwrap().summary();

    // Back: ready again without a restart, and the load's writes succeed.
    proxy.restore().await;
    let recovered_in = api.wait_ready(Duration::from_secs(10)).await;
    let acked_at_recovery = ledger.lock().unwrap().registered.len();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop_load(&stop, workers).await;
    let ledger = ledger.lock().unwrap().clone();
    assert!(
        ledger.registered.len() > acked_at_recovery,
        "no registration acknowledged after recovery: {}",
        ledger.summary()
    );
    let check = verify(&direct, &ledger, Refusals::OutcomeUnknown).await;
    server.terminate();
    let server = start(&postgres_env(&direct)).await;
    let restart_check = verify(&direct, &ledger, Refusals::OutcomeUnknown).await;
    drop(server);
    proxy.cut();
    common::drop_postgres_database(&direct).await;

    println!("PostgreSQL outage: {terminated} backends terminated; by then {after_terminate}");
    println!("PostgreSQL outage: connections refused for 3 s, /readyz 503; by then {outage}");
    println!(
        "PostgreSQL outage: ready again {recovered_in:?} after the database came back; in all {}",
        ledger.summary()
    );
    println!("PostgreSQL outage: second connection {check}");
    println!("PostgreSQL outage: after a restart {restart_check}");
    println!("PostgreSQL outage: took {:?}", started.elapsed());
}
