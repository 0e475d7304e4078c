//! Moving from the Django backend latchkey replaces: a real Django database
//! (the reference project in `tests/django/`, run by `tests/django/make_db.py`) is imported with `latchkey
//! import django`, and its users log in with their original passwords and
//! keep their SimpleJWT tokens through the migration window.
//!
//! Needs Python with Django: `LATCHKEY_TEST_DJANGO_PYTHON`, else
//! `tests/django/.venv` (made by its `setup.sh`), else a venv this test makes under the target directory from
//! `tests/django/requirements.txt` (network access to PyPI the first time).
//! Without them the Django tests are skipped, except under `CI=true`, where
//! they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{assert_error, claims, fresh_database_url, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row as _;

const HERE: &str = env!("CARGO_MANIFEST_DIR");

/// The Django reference project, part of this repository.
fn django_dir() -> PathBuf {
    Path::new(HERE).join("tests/django")
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether `python` can import every module in `modules`.
fn imports(python: &Path, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

const NEEDED: &str = "django, rest_framework_simplejwt, corsheaders, argon2, bcrypt";

/// A Python that runs the reference project with the hashers, set up once.
fn find_or_make_python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("django-venv");
    let candidates = [
        std::env::var_os("LATCHKEY_TEST_DJANGO_PYTHON").map(PathBuf::from),
        Some(django_dir().join(".venv/bin/python")),
        Some(venv.join("bin/python")),
    ];
    for python in candidates.into_iter().flatten() {
        if imports(&python, NEEDED) {
            return Ok(python);
        }
    }
    // Under the target directory rather than by setup.sh in the source tree,
    // which may be read-only; the same pins either way.
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !made.success() {
        return Err("python3 -m venv failed".into());
    }
    let python = venv.join("bin/python");
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(django_dir().join("requirements.txt"))
        .status()
        .map_err(|e| format!("pip install: {e}"))?;
    if !installed.success() || !imports(&python, NEEDED) {
        return Err("pip install -r tests/django/requirements.txt failed".into());
    }
    Ok(python)
}

/// The Python to run Django with, or `None` (skip) outside CI.
fn django_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_make_python) {
        Ok(python) => Some(python.clone()),
        Err(e) if in_ci() => panic!("Django is required in CI: {e}"),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// Run make_db.py against `database_url`; what it made.
fn make_django_db(python: &Path, database_url: &str, model: &str) -> Value {
    let out = tempfile::NamedTempFile::new().unwrap();
    let run = Command::new(python)
        .arg(django_dir().join("make_db.py"))
        .arg(database_url)
        .arg(model)
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "make_db.py failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap()
}

/// `latchkey import django --from SOURCE ARGS...` into `target`: success, stdout, stderr.
/// As an operator does: `latchkey migrate` first (an import, like every admin
/// command, never creates nor migrates a database), then the import.
fn import(target: &str, source: &str, args: &[&str]) -> (bool, String, String) {
    let command = || {
        let mut cmd = common::latchkey_command();
        cmd.env("LATCHKEY_DATABASE_URL", target)
            .env("LATCHKEY_LOG", "warn");
        cmd
    };
    let migrated = command().arg("migrate").output().unwrap();
    assert!(
        migrated.status.success(),
        "latchkey migrate: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let out = command()
        .args(["import", "django", "--from", source])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A successful import's report.
fn import_ok(target: &str, source: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = import(target, source, args);
    assert!(ok, "import failed:\n{stdout}\n{stderr}");
    stdout
}

/// Every user row of latchkey's database, in id order.
async fn users(database_url: &str) -> Vec<(i64, String, String, String, i64, i64)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let rows = sqlx::query(
        "SELECT id, email, name, password_hash, is_active, date_joined FROM users ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| {
            let hash = common::stored_hash_text(r, 3);
            (r.get(0), r.get(1), r.get(2), hash, r.get(4), r.get(5))
        })
        .collect()
}

async fn password_hash(database_url: &str, id: i64) -> String {
    users(database_url)
        .await
        .into_iter()
        .find(|u| u.0 == id)
        .map(|u| u.3)
        .unwrap()
}

fn token<'a>(made: &'a Value, name: &str) -> &'a str {
    made["tokens"][name].as_str().unwrap()
}

const ARGON2ID_AT_OWASP_COST: &str = "$argon2id$v=19$m=7168,t=5,p=1$";

#[tokio::test]
async fn django_users_keep_their_ids_passwords_and_tokens() {
    let Some(python) = django_python() else {
        return;
    };
    let source_dir = tempfile::tempdir().unwrap();
    let source = format!(
        "sqlite://{}",
        source_dir.path().join("db.sqlite3").display()
    );
    let made = make_django_db(&python, &source, "custom");
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;

    // First run: everyone in, ids kept, the namesake renamed, md5 reported.
    let report = import_ok(&db, &source, &[]);
    assert!(
        report.contains("table accounts_user, name column name"),
        "{report}"
    );
    assert!(
        report.contains("users: 7 imported, 0 updated, 0 unchanged, 0 skipped"),
        "{report}"
    );
    assert!(
        report.contains(
            "password hashes: argon2 1, bcrypt_sha256 1, md5 1, pbkdf2_sha256 3, unusable 1"
        ),
        "{report}"
    );
    assert!(
        report.contains("unsupported password hash md5") && report.contains("users 31"),
        "{report}"
    );
    assert!(
        report.contains(r#"renamed user 40: "ada lovelace" -> "ada lovelace (40)""#),
        "{report}"
    );
    assert!(
        report.contains("blacklisted refresh tokens: 1 recorded, 0 already known"),
        "{report}"
    );
    assert!(
        !report.contains("pbkdf2_sha256$"),
        "no hash is ever printed"
    );

    let imported = users(&db).await;
    let ids: Vec<i64> = imported.iter().map(|u| u.0).collect();
    assert_eq!(ids, [7, 12, 19, 23, 31, 40, 50]);
    let ada = &imported[0];
    assert_eq!(
        (ada.1.as_str(), ada.2.as_str()),
        ("ada@example.com", "Ada Lovelace")
    );
    assert_eq!(ada.5, made["joined_epoch"].as_i64().unwrap());
    assert!(ada.3.starts_with("pbkdf2_sha256$"));
    assert_eq!(
        imported[1].1, "grace@example.com",
        "the domain is lowercased"
    );
    assert_eq!(imported[3].4, 0, "Ian is inactive");

    // Second run: nothing changes.
    let again = import_ok(&db, &source, &[]);
    assert!(
        again.contains("users: 0 imported, 0 updated, 7 unchanged, 0 skipped"),
        "{again}"
    );
    assert!(again.contains("0 recorded, 1 already known"), "{again}");
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(users(&db).await, imported);

    let key = made["secret_key"].as_str().unwrap().to_owned();
    let server = TestServer::start_on(dir, db.clone(), |c| {
        c.legacy_django_key = Some(key.parse().unwrap());
        c.refresh_reuse_grace_seconds = 0;
    })
    .await;

    // Django's access tokens work until they expire, for active users only.
    let me = server.get_as(token(&made, "ada_access"), "/auth/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        me,
        json!({"id": 7, "email": "ada@example.com", "name": "Ada Lovelace", "email_verified": false})
    );
    let verified = server
        .post(
            "/auth/token/verify/",
            json!({"token": token(&made, "ada_access")}),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    assert_error(
        server
            .get_as(token(&made, "inactive_access"), "/auth/me")
            .await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    let expired = assert_error(
        server
            .get_as(token(&made, "expired_access"), "/auth/me")
            .await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_eq!(expired["detail"], "Token is expired");
    assert_error(
        server.get_as(token(&made, "ada_refresh"), "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;

    // /auth/token/verify/ knows them too.
    for (name, status) in [
        ("grace_refresh", StatusCode::OK),
        ("grace_refresh_blacklisted", StatusCode::UNAUTHORIZED),
        ("inactive_access", StatusCode::UNAUTHORIZED),
    ] {
        let r = server
            .post("/auth/token/verify/", json!({"token": token(&made, name)}))
            .await;
        assert_eq!(r.status(), status, "{name}");
    }

    // A refresh token Django blacklisted is refused.
    let blacklisted = assert_error(
        server
            .post(
                "/auth/token/refresh/",
                json!({"refresh": token(&made, "grace_refresh_blacklisted")}),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_eq!(blacklisted["detail"], "Token is blacklisted");

    // A legacy refresh token becomes a rotating latchkey session, once.
    let r = server
        .post(
            "/auth/token/refresh/",
            json!({"refresh": token(&made, "ada_refresh")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair: Value = r.json().await.unwrap();
    let access = pair["access"].as_str().unwrap();
    let refresh = pair["refresh"].as_str().unwrap();
    assert_eq!(claims(access)["user_id"], 7, "latchkey's integer user_id");
    assert!(claims(refresh)["sid"].is_string());
    let me = server.get_as(access, "/auth/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    let rotated = server
        .post("/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let newest = rotated["refresh"].as_str().unwrap();
    assert_ne!(newest, refresh);

    // Presented again, it is reuse: refused, and the session it became ends.
    assert_error(
        server
            .post(
                "/auth/token/refresh/",
                json!({"refresh": token(&made, "ada_refresh")}),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_error(
        server
            .post("/auth/token/refresh/", json!({"refresh": newest}))
            .await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;

    // Logging out with Django's tokens (an SPA that has not refreshed since
    // the switch) blacklists the refresh token; only the caller's own.
    let foreign = server
        .post_as(
            token(&made, "alan_access"),
            "/auth/logout",
            json!({"refresh": token(&made, "grace_refresh")}),
        )
        .await;
    assert_error(foreign, StatusCode::FORBIDDEN, "permission_denied").await;
    let logout = server
        .post_as(
            token(&made, "alan_access"),
            "/auth/logout",
            json!({"refresh": token(&made, "alan_refresh")}),
        )
        .await;
    assert_eq!(logout.status(), StatusCode::OK);
    let after = server
        .post(
            "/auth/token/refresh/",
            json!({"refresh": token(&made, "alan_refresh")}),
        )
        .await;
    assert_error(after, StatusCode::UNAUTHORIZED, "token_not_valid").await;

    // Everyone logs in with their Django password; the hash becomes Argon2id.
    let wrong = server.login("alan@example.com", "Enigma-Bombe-1941").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(password_hash(&db, 19).await.starts_with("bcrypt_sha256$"));
    for (id, email, password, name) in [
        (
            7,
            "ada@example.com",
            "Analytical-Engine-1843",
            "Ada Lovelace",
        ),
        (
            12,
            "grace@example.com",
            "Cobol-Compiler-1959!",
            "Grace Hopper",
        ),
        (19, "alan@example.com", "Enigma-Bombe-1940", "Alan Turing"),
        (
            40,
            "ada.two@example.com",
            "Second-Ada-Namesake-2",
            "ada lovelace (40)",
        ),
    ] {
        let r = server.login(email, password).await;
        assert_eq!(r.status(), StatusCode::OK, "{email}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (body["id"].as_i64(), body["name"].as_str()),
            (Some(id), Some(name))
        );
        let stored = password_hash(&db, id).await;
        assert!(
            stored.starts_with(ARGON2ID_AT_OWASP_COST),
            "{email}: {}",
            &stored[..20]
        );
        let again = server.login(email, password).await;
        assert_eq!(again.status(), StatusCode::OK, "{email} after the upgrade");
        assert_eq!(password_hash(&db, id).await, stored, "upgraded once");
    }
    for (email, password) in [
        ("ian@example.com", "Dormant-Volcano-77"),
        ("olga@example.com", "Vintage-Hash-1999"),
        ("nopw@example.com", "anything-at-all-1"),
    ] {
        let r = server.login(email, password).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
    }
    assert!(password_hash(&db, 31).await.starts_with("md5$"));

    // New registrations never take an imported id.
    let fresh = server.new_user().await;
    assert!(fresh["id"].as_i64().unwrap() > 50, "{fresh}");

    // Importing again keeps the upgraded hashes: Django's rows did not change.
    let third = import_ok(&db, &source, &[]);
    assert!(
        third.contains("0 imported, 0 updated, 7 unchanged"),
        "{third}"
    );
    assert!(password_hash(&db, 7)
        .await
        .starts_with(ARGON2ID_AT_OWASP_COST));

    // Without the Django key, nothing legacy is accepted.
    let plain = TestServer::start_on(tempfile::tempdir().unwrap(), db.clone(), |_| {}).await;
    assert_error(
        plain.get_as(token(&made, "ada_access"), "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_error(
        plain
            .post(
                "/auth/token/refresh/",
                json!({"refresh": token(&made, "grace_refresh")}),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    // ... while the key-holding server still takes it.
    let r = server
        .post(
            "/auth/token/refresh/",
            json!({"refresh": token(&made, "grace_refresh")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn djangos_stock_auth_user_is_imported_with_username_as_the_name() {
    let Some(python) = django_python() else {
        return;
    };
    let source_dir = tempfile::tempdir().unwrap();
    let source = format!(
        "sqlite://{}",
        source_dir.path().join("db.sqlite3").display()
    );
    let made = make_django_db(&python, &source, "stock");
    assert_eq!(made["user_table"], "auth_user");
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;

    let report = import_ok(&db, &source, &[]);
    assert!(
        report.contains("table auth_user, name column username"),
        "{report}"
    );
    assert!(
        report.contains("users: 6 imported, 0 updated, 0 unchanged, 0 skipped"),
        "{report}"
    );

    let key = made["secret_key"].as_str().unwrap().to_owned();
    let server = TestServer::start_on(dir, db.clone(), |c| {
        c.legacy_django_key = Some(key.parse().unwrap());
    })
    .await;
    let by_name = server
        .post(
            "/auth/login",
            json!({"name": "Alan Turing", "password": "Enigma-Bombe-1940"}),
        )
        .await;
    assert_eq!(by_name.status(), StatusCode::OK);
    let body: Value = by_name.json().await.unwrap();
    assert_eq!(body["id"], 19);
    assert!(password_hash(&db, 19)
        .await
        .starts_with(ARGON2ID_AT_OWASP_COST));

    let me = server
        .get_as(token(&made, "grace_access"), "/auth/me")
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["name"], "Grace Hopper");
}

#[tokio::test]
async fn a_django_database_on_postgresql_is_imported() {
    if !common::postgres_available().await {
        return;
    }
    let Some(python) = django_python() else {
        return;
    };
    if !imports(&python, "psycopg") {
        assert!(!in_ci(), "psycopg is required in CI");
        eprintln!(
            "skipping: psycopg is not installed for {}",
            python.display()
        );
        return;
    }
    let source = common::fresh_postgres_database().await;
    let made = make_django_db(&python, &source, "custom");
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;

    let report = import_ok(&db, &source, &[]);
    assert!(
        report.contains("users: 7 imported, 0 updated, 0 unchanged, 0 skipped"),
        "{report}"
    );
    assert!(report.contains("1 recorded"), "{report}");
    assert_eq!(
        users(&db).await[0].5,
        made["joined_epoch"].as_i64().unwrap()
    );
    let again = import_ok(&db, &source, &[]);
    assert!(again.contains("nothing changed"), "{again}");

    let key = made["secret_key"].as_str().unwrap().to_owned();
    let server = TestServer::start_on(dir, db.clone(), |c| {
        c.legacy_django_key = Some(key.parse().unwrap());
    })
    .await;
    let r = server
        .login("grace@example.com", "Cobol-Compiler-1959!")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let refused = server
        .post(
            "/auth/token/refresh/",
            json!({"refresh": token(&made, "grace_refresh_blacklisted")}),
        )
        .await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "token_not_valid").await;
}

#[tokio::test]
async fn an_import_refuses_odd_table_names_and_missing_databases() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let missing = format!("sqlite://{}", dir.path().join("nope.sqlite3").display());
    let (ok, _, stderr) = import(&db, &missing, &[]);
    assert!(!ok);
    assert!(stderr.contains("Django database"), "{stderr}");
    assert!(
        !dir.path().join("nope.sqlite3").exists(),
        "the source is opened read-only, never created"
    );

    let (ok, _, stderr) = import(&db, &db, &["--user-table", "users; DROP TABLE users"]);
    assert!(!ok);
    assert!(
        stderr.contains("not a plain table or column name"),
        "{stderr}"
    );

    // latchkey's own database has no Django user table.
    let (ok, _, stderr) = import(&db, &db, &[]);
    assert!(!ok);
    assert!(stderr.contains("no user table found"), "{stderr}");
}

/// A token as SimpleJWT 5.5 signs it: HS256 with the Django key, string
/// `user_id`, issued a moment ago.
fn simplejwt_token(key: &str, token_type: &str, user_id: i64, exp: i64) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let jti = latchkey::auth::ids::RandomId::generate().unwrap();
    let payload = format!(
        r#"{{"token_type":"{token_type}","exp":{exp},"iat":{},"jti":"{jti}","user_id":"{user_id}"}}"#,
        latchkey::auth::now() - 10
    );
    let head = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(head.as_bytes());
    format!(
        "{head}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Django 5.2's pbkdf2_sha256 of `common::PASSWORD` (at 1000 iterations).
const DJANGO_HASH_OF_PASSWORD: &str =
    "pbkdf2_sha256$1000$HqBXTtbp7Qrit6N65bnKBP$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=";

/// A Django database reduced to the reference's user table (no Python needed),
/// holding users `ids` (`user<id>@example.com`, password `common::PASSWORD`);
/// its URL.
async fn tiny_django_source(dir: &tempfile::TempDir, ids: &[i64]) -> String {
    let source = format!("sqlite://{}", dir.path().join("django.sqlite3").display());
    run_sql(
        &format!("{source}?mode=rwc"),
        "CREATE TABLE accounts_user (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, \
         password varchar(128) NOT NULL, last_login datetime NULL, is_superuser bool NOT NULL, \
         email varchar(254) NOT NULL UNIQUE, name varchar(150) NOT NULL, is_active bool NOT NULL, \
         is_staff bool NOT NULL, date_joined datetime NOT NULL)",
    )
    .await;
    for id in ids {
        run_sql(
            &source,
            &format!(
                "INSERT INTO accounts_user VALUES ({id}, '{DJANGO_HASH_OF_PASSWORD}', NULL, 0, \
                 'user{id}@example.com', 'User {id}', 1, 0, '2024-03-01 12:00:00.123456')"
            ),
        )
        .await;
    }
    source
}

async fn run_sql(database_url: &str, statement: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    sqlx::query(statement).execute(&pool).await.unwrap();
    pool.close().await;
}

/// [`tiny_django_source`], imported into a fresh latchkey database; the latter's URL.
async fn imported_tiny_django_db(dir: &tempfile::TempDir, ids: &[i64]) -> String {
    let source = tiny_django_source(dir, ids).await;
    let target = fresh_database_url(dir).await;
    let report = import_ok(&target, &source, &[]);
    assert!(
        report.contains(&format!("users: {} imported", ids.len())),
        "{report}"
    );
    target
}

#[tokio::test]
async fn a_changed_django_row_is_updated_and_an_upgraded_hash_kept() {
    let dir = tempfile::tempdir().unwrap();
    let source = tiny_django_source(&dir, &[7]).await;
    let db = fresh_database_url(&dir).await;
    import_ok(&db, &source, &[]);
    let server = TestServer::start_on(tempfile::tempdir().unwrap(), db.clone(), |_| {}).await;
    let r = server.login("user7@example.com", common::PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, refresh) = common::tokens(&r.json().await.unwrap());
    let upgraded = password_hash(&db, 7).await;
    assert!(upgraded.starts_with(ARGON2ID_AT_OWASP_COST));
    let refreshed = |refresh: String| {
        let server = &server;
        async move {
            let r = server
                .post("/auth/token/refresh/", json!({ "refresh": refresh }))
                .await;
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };

    // Renamed in Django: the name follows, the upgraded hash stays.
    run_sql(
        &source,
        "UPDATE accounts_user SET name = 'Renamed Seven' WHERE id = 7",
    )
    .await;
    let report = import_ok(&db, &source, &[]);
    assert!(
        report.contains("0 imported, 1 updated, 0 unchanged"),
        "{report}"
    );
    let row = users(&db).await.remove(0);
    assert_eq!(row.2, "Renamed Seven");
    assert_eq!(row.3, upgraded);
    // A rename ends no session.
    let (status, pair) = refreshed(refresh).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let refresh = pair["refresh"].as_str().unwrap().to_owned();

    // A new password in Django replaces the hash.
    run_sql(
        &source,
        "UPDATE accounts_user SET password = \
         'bcrypt_sha256$$2b$12$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS' WHERE id = 7",
    )
    .await;
    let report = import_ok(&db, &source, &[]);
    assert!(report.contains("1 updated"), "{report}");
    assert!(password_hash(&db, 7).await.starts_with("bcrypt_sha256$"));
    // ... and ends the sessions started with the old one, as a password
    // change in latchkey does.
    let (status, body) = refreshed(refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let r = server.login("user7@example.com", common::PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, refresh) = common::tokens(&r.json().await.unwrap());
    assert!(password_hash(&db, 7)
        .await
        .starts_with(ARGON2ID_AT_OWASP_COST));

    // Deactivated in Django: the session ends too.
    run_sql(
        &source,
        "UPDATE accounts_user SET is_active = 0 WHERE id = 7",
    )
    .await;
    let report = import_ok(&db, &source, &[]);
    assert!(report.contains("1 updated"), "{report}");
    let (status, body) = refreshed(refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn the_django_key_is_read_from_the_environment_only() {
    const KEY: &str = "django-insecure-a-key-as-django-makes-them-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let db = imported_tiny_django_db(&dir, &[7]).await;
    let server = common::ServerProcess::start(&[
        ("LATCHKEY_DATABASE_URL", &db),
        ("LATCHKEY_LEGACY_DJANGO_KEY", KEY),
    ])
    .await;
    let client = reqwest::Client::new();
    let exp = latchkey::auth::now() + 300;
    let me = |token: String| client.get(server.url("/auth/me")).bearer_auth(token).send();

    let r = me(simplejwt_token(KEY, "access", 7, exp)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "user7@example.com");
    let forged = simplejwt_token("another-key-entirely-0123456789abcdef", "access", 7, exp);
    assert_eq!(me(forged).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // A latchkey user (id 8, after the imported 7) is not who a Django token
    // for user 8 meant: only imported users are named by legacy tokens.
    let csrf: Value = client
        .get(server.url("/auth/csrf/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered: Value = client
        .post(server.url("/auth/register"))
        .header("X-CSRFToken", csrf["csrfToken"].as_str().unwrap())
        .json(
            &json!({"name": "Keyed Kim", "email": "kim@example.com", "password": common::PASSWORD}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let native = registered["id"].as_i64().unwrap();
    assert_eq!(native, 8);
    let r = me(simplejwt_token(KEY, "access", native, exp))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The imported Django hash logs in, without Python anywhere.
    let login = client
        .post(server.url("/auth/login"))
        .header("X-CSRFToken", csrf["csrfToken"].as_str().unwrap())
        .json(&json!({"email": "user7@example.com", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(password_hash(&db, 7)
        .await
        .starts_with(ARGON2ID_AT_OWASP_COST));
}

#[tokio::test]
async fn two_tabs_exchanging_one_legacy_refresh_token_share_one_session() {
    const KEY: &str = "django-insecure-another-key-as-django-makes-them-42";
    let dir = tempfile::tempdir().unwrap();
    let db = imported_tiny_django_db(&dir, &[7]).await;
    let server = TestServer::start_on(tempfile::tempdir().unwrap(), db, |c| {
        c.legacy_django_key = Some(KEY.parse().unwrap());
    })
    .await;
    let legacy = simplejwt_token(KEY, "refresh", 7, latchkey::auth::now() + 3600);

    // Two tabs present it at the same moment: both get a pair, of one session.
    let (tab_a, tab_b) = tokio::join!(
        server.post("/auth/token/refresh/", json!({ "refresh": legacy })),
        server.post("/auth/token/refresh/", json!({ "refresh": legacy })),
    );
    let mut sids = Vec::new();
    for answer in [tab_a, tab_b] {
        assert_eq!(answer.status(), StatusCode::OK);
        let pair: Value = answer.json().await.unwrap();
        sids.push(claims(pair["refresh"].as_str().unwrap())["sid"].clone());
    }
    assert_eq!(sids[0], sids[1], "one session for both tabs");
    let sessions: Value = server
        .get_as(
            pair_access(&server, &legacy).await.as_str(),
            "/auth/sessions",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");

    // A later presentation (within the grace window) joins the same session.
    let r = server
        .post("/auth/token/refresh/", json!({ "refresh": legacy }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "still within the grace window");
    let pair: Value = r.json().await.unwrap();
    let me = server
        .get_as(pair["access"].as_str().unwrap(), "/auth/me")
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let sid = claims(pair["refresh"].as_str().unwrap())["sid"].clone();
    let again = server
        .post("/auth/token/refresh/", json!({ "refresh": legacy }))
        .await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(claims(again["refresh"].as_str().unwrap())["sid"], sid);
    assert_eq!(sid, sids[0]);
}

/// An access token of the session a legacy refresh token was exchanged for.
async fn pair_access(server: &TestServer, legacy: &str) -> String {
    let r = server
        .post("/auth/token/refresh/", json!({ "refresh": legacy }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair: Value = r.json().await.unwrap();
    pair["access"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn logging_out_everywhere_refuses_the_users_django_tokens_too() {
    const KEY: &str = "django-insecure-yet-another-key-for-this-test-1234";
    let dir = tempfile::tempdir().unwrap();
    let db = imported_tiny_django_db(&dir, &[7, 9]).await;
    let server = TestServer::start_on(tempfile::tempdir().unwrap(), db, |c| {
        c.legacy_django_key = Some(KEY.parse().unwrap());
    })
    .await;
    let exp = latchkey::auth::now() + 3600;
    let access = simplejwt_token(KEY, "access", 9, exp);
    let refresh_tab_a = simplejwt_token(KEY, "refresh", 9, exp);
    let refresh_tab_b = simplejwt_token(KEY, "refresh", 9, exp);
    let others = simplejwt_token(KEY, "access", 7, exp);
    // All of user 9's Django tokens work before the logout.
    assert_eq!(
        server.get_as(&access, "/auth/me").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        server
            .post("/auth/token/verify/", json!({ "token": refresh_tab_b }))
            .await
            .status(),
        StatusCode::OK
    );

    let r = server
        .post("/auth/token/refresh/", json!({ "refresh": refresh_tab_a }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair: Value = r.json().await.unwrap();
    let everywhere = server
        .post_as(
            pair["access"].as_str().unwrap(),
            "/auth/logout/all",
            json!({}),
        )
        .await;
    assert_eq!(everywhere.status(), StatusCode::OK);

    assert_error(
        server
            .post("/auth/token/refresh/", json!({ "refresh": refresh_tab_b }))
            .await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    assert_error(
        server.get_as(&access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
    // Another user's Django tokens are untouched.
    assert_eq!(
        server.get_as(&others, "/auth/me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_id_beyond_javascripts_exact_integers_is_refused_and_registration_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let source = tiny_django_source(&dir, &[5, 9_223_372_036_854_775_807]).await;
    let db = fresh_database_url(&dir).await;
    let report = import_ok(&db, &source, &[]);
    assert!(report.contains("users: 1 imported"), "{report}");
    assert!(
        report.contains("skipped user 9223372036854775807: its id is outside 1..=9007199254740991"),
        "{report}"
    );
    let server = TestServer::start_on(tempfile::tempdir().unwrap(), db, |_| {}).await;
    let user = server.register("after", "after@example.com").await;
    assert_eq!(user["id"], 6, "{user}");
}

#[tokio::test]
async fn hashes_asking_for_unbounded_work_are_refused_at_import_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let source = tiny_django_source(&dir, &[1, 2, 3, 4]).await;
    for (id, hash) in [
        (
            1,
            "argon2$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ),
        (
            2,
            "argon2$argon2id$v=19$m=1048576,t=40,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ),
        (
            3,
            "pbkdf2_sha256$900000000$salt$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=",
        ),
    ] {
        run_sql(
            &source,
            &format!("UPDATE accounts_user SET password = '{hash}' WHERE id = {id}"),
        )
        .await;
    }
    let db = fresh_database_url(&dir).await;
    let report = import_ok(&db, &source, &[]);
    assert!(report.contains("users: 1 imported"), "{report}");
    for (id, why) in [
        (
            1,
            "argon2 cost m=19456,t=4294967295,p=1 is beyond the bound",
        ),
        (2, "argon2 cost m=1048576,t=40,p=1 is beyond the bound"),
        (3, "pbkdf2_sha256 iterations 900000000 are beyond the bound"),
    ] {
        assert!(
            report.contains(&format!(
                "skipped user {id}: its password hash is refused: {why}"
            )),
            "{report}"
        );
    }
}

#[tokio::test]
async fn blacklist_rows_without_a_jti_are_skipped_and_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let source = tiny_django_source(&dir, &[7]).await;
    run_sql(
        &source,
        "CREATE TABLE token_blacklist_outstandingtoken (id integer PRIMARY KEY, jti varchar(255) NULL, \
         token text NOT NULL, created_at datetime NULL, expires_at datetime NULL, user_id bigint NULL)",
    )
    .await;
    run_sql(
        &source,
        "CREATE TABLE token_blacklist_blacklistedtoken (id integer PRIMARY KEY, blacklisted_at datetime NOT NULL, \
         token_id bigint NOT NULL UNIQUE)",
    )
    .await;
    for statement in [
        "INSERT INTO token_blacklist_outstandingtoken VALUES (1, NULL, 't', NULL, '2999-01-01 00:00:00', 7)",
        "INSERT INTO token_blacklist_outstandingtoken VALUES (2, '0123456789abcdef0123456789abcdef', 't', NULL, '2999-01-01 00:00:00', 7)",
        "INSERT INTO token_blacklist_blacklistedtoken VALUES (1, '2024-01-01 00:00:00', 1)",
        "INSERT INTO token_blacklist_blacklistedtoken VALUES (2, '2024-01-01 00:00:00', 2)",
        // Revoked in Django with no expiry kept: still refused, not dropped.
        "INSERT INTO token_blacklist_outstandingtoken VALUES (3, 'fedcba9876543210fedcba9876543210', 't', NULL, NULL, 7)",
        "INSERT INTO token_blacklist_blacklistedtoken VALUES (3, '2024-01-01 00:00:00', 3)",
    ] {
        run_sql(&source, statement).await;
    }
    let db = fresh_database_url(&dir).await;
    let report = import_ok(&db, &source, &[]);
    assert!(report.contains("users: 1 imported"), "{report}");
    assert!(
        report.contains("2 recorded") && report.contains("1 without a jti (skipped)"),
        "{report}"
    );
}

#[tokio::test]
async fn addresses_django_allauth_verified_stay_verified_and_the_rest_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let source = tiny_django_source(&dir, &[3, 4, 5]).await;
    run_sql(
        &source,
        "CREATE TABLE account_emailaddress (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, \
         email varchar(254) NOT NULL, verified bool NOT NULL, \"primary\" bool NOT NULL, \
         user_id integer NOT NULL)",
    )
    .await;
    // User 3 verified their address; user 4 did not; user 5 verified an
    // address that is no longer theirs.
    run_sql(
        &source,
        "INSERT INTO account_emailaddress (email, verified, \"primary\", user_id) VALUES \
         ('User3@example.com', 1, 1, 3), ('user4@example.com', 0, 1, 4), ('old5@example.com', 1, 0, 5)",
    )
    .await;
    let target = fresh_database_url(&dir).await;
    let report = import_ok(&target, &source, &[]);
    assert!(
        report.contains("verified addresses (django-allauth): 1"),
        "{report}"
    );
    let server = TestServer::start_on(tempfile::tempdir().unwrap(), target, |_| {}).await;
    for (id, verified) in [(3, true), (4, false), (5, false)] {
        let r = server
            .login(&format!("user{id}@example.com"), common::PASSWORD)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let (access, _) = common::tokens(&r.json().await.unwrap());
        let me: Value = server
            .get_as(&access, "/auth/me")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["email_verified"], verified, "user {id}: {me}");
    }
}

#[tokio::test]
async fn without_django_allauth_imported_addresses_are_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let target = imported_tiny_django_db(&dir, &[8]).await;
    let server = TestServer::start_on(tempfile::tempdir().unwrap(), target, |_| {}).await;
    let r = server.login("user8@example.com", common::PASSWORD).await;
    let (access, _) = common::tokens(&r.json().await.unwrap());
    let me: Value = server
        .get_as(&access, "/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], false);
}
