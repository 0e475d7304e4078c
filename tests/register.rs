//! `POST /auth/register`: the seed's shape, validation, uniqueness, races.

mod common;

use common::{assert_error, claims, TestServer, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn register_returns_201_with_the_seeds_user_and_tokens_shape() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "soban", "email": "msoban@gmail.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let body: Value = r.json().await.unwrap();
    let obj = body.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["email", "id", "name", "tokens"]
    );
    assert!(body["id"].is_i64());
    assert_eq!(body["email"], "msoban@gmail.com");
    assert_eq!(body["name"], "soban");
    let tokens = body["tokens"].as_object().unwrap();
    assert_eq!(tokens.len(), 2);
    let access = claims(tokens["access"].as_str().unwrap());
    let refresh = claims(tokens["refresh"].as_str().unwrap());
    assert_eq!(access["token_type"], "access");
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(access["user_id"], body["id"]);
    for c in [&access, &refresh] {
        let jti = c["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 32);
        assert!(jti
            .chars()
            .all(|ch| ch.is_ascii_digit() || ('a'..='f').contains(&ch)));
        assert!(c["iat"].is_i64() && c["exp"].is_i64());
    }
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        86_400
    );
    assert_eq!(
        refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(),
        7 * 86_400
    );
}

#[tokio::test]
async fn the_email_domain_is_lowercased_and_the_name_trimmed() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "  Ada  ", "email": "Ada.L@Example.COM", "password": PASSWORD}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "Ada.L@example.com");
    assert_eq!(body["name"], "Ada");
}

#[tokio::test]
async fn missing_fields_are_each_reported_as_required() {
    let s = TestServer::start().await;
    let r = s.post("/auth/register", json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    for field in ["name", "email", "password"] {
        assert_eq!(body[field], json!(["This field is required."]), "{body}");
    }
}

#[tokio::test]
async fn blank_null_and_non_string_fields_get_drf_messages() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "   ", "email": null, "password": 12345678}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], json!(["This field may not be blank."]));
    assert_eq!(body["email"], json!(["This field may not be null."]));
    assert_eq!(body["password"], json!(["Not a valid string."]));
}

#[tokio::test]
async fn an_invalid_or_overlong_email_is_rejected() {
    let s = TestServer::start().await;
    for email in ["not-an-email", "a@b", "a b@example.com", "@example.com"] {
        let r = s
            .post(
                "/auth/register",
                json!({"name": "n1", "email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["email"],
            json!(["Enter a valid email address."]),
            "{email}"
        );
    }
    let long = format!("{}@example.com", "a".repeat(243));
    let r = s
        .post(
            "/auth/register",
            json!({"name": "n1", "email": long, "password": PASSWORD}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["email"],
        json!(["Ensure this field has no more than 254 characters."])
    );
}

#[tokio::test]
async fn names_over_150_characters_are_rejected_and_150_accepted() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "n".repeat(151), "email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["name"],
        json!(["Ensure this field has no more than 150 characters."])
    );
    let r = s
        .post(
            "/auth/register",
            json!({"name": "n".repeat(150), "email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn password_errors(s: &TestServer, password: &str) -> Vec<String> {
    let r = s
        .post(
            "/auth/register",
            json!({"name": "marguerite", "email": "marguerite@example.com", "password": password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{password}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    serde_json::from_value(body["password"].clone()).unwrap()
}

#[tokio::test]
async fn weak_passwords_are_rejected_under_password() {
    let s = TestServer::start().await;
    assert!(password_errors(&s, "Xq7#p").await.contains(
        &"This password is too short. It must contain at least 8 characters.".to_owned()
    ));
    assert!(password_errors(&s, "password")
        .await
        .contains(&"This password is too common.".to_owned()));
    assert!(password_errors(&s, "qwerty123")
        .await
        .contains(&"This password is too common.".to_owned()));
    assert!(password_errors(&s, "80417263591")
        .await
        .contains(&"This password is entirely numeric.".to_owned()));
    assert!(password_errors(&s, "marguerite1")
        .await
        .iter()
        .any(|m| m.starts_with("The password is too similar to the")));
    assert_eq!(
        password_errors(&s, &"aB3$".repeat(65)).await,
        ["Ensure this field has no more than 256 characters."]
    );
    assert_eq!(
        password_errors(&s, "").await,
        ["This field may not be blank."]
    );
}

#[tokio::test]
async fn the_maximum_password_length_is_configurable() {
    let s = TestServer::start_with(|c| c.password_max_length = 20).await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "n", "email": "n@example.com", "password": "Tr1cky-Lantern-Owl-Moth"}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["password"],
        json!(["Ensure this field has no more than 20 characters."])
    );
}

#[tokio::test]
async fn a_duplicate_email_is_rejected_case_insensitively() {
    let s = TestServer::start().await;
    s.register("first", "dup@example.com").await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "second", "email": "DUP@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"email": ["user with this email already exists."]})
    );
}

#[tokio::test]
async fn a_duplicate_name_is_rejected_case_insensitively() {
    let s = TestServer::start().await;
    s.register("Grace", "grace@example.com").await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "gRACE", "email": "other@example.com", "password": PASSWORD}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name": ["user with this name already exists."]})
    );
}

#[tokio::test]
async fn racing_registrations_of_one_email_give_exactly_one_201_and_never_a_500() {
    let s = TestServer::start().await;
    let bodies = (0..16)
        .map(|i| json!({"name": format!("racer{i}"), "email": "race@example.com", "password": PASSWORD}))
        .collect();
    let statuses: Vec<StatusCode> = s
        .post_all_at_once("/auth/register", bodies)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn register_without_csrf_is_forbidden() {
    let s = TestServer::start().await;
    let r = s
        .client
        .post(s.url("/auth/register"))
        .json(&json!({"name": "n", "email": "n@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "csrf_failed").await;
}

#[tokio::test]
async fn invalid_registrations_count_against_the_address_too() {
    // Otherwise the form could probe for taken addresses at any speed.
    let s = TestServer::start_with(|c| c.registrations_per_address = 2).await;
    for _ in 0..2 {
        let r = s.post("/auth/register", json!({})).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = s
        .post(
            "/auth/register",
            json!({"name": "late", "email": "late@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

#[tokio::test]
async fn registrations_from_one_address_are_throttled() {
    let s = TestServer::start_with(|c| {
        c.registrations_per_address = 3;
        c.trusted_proxy_hops = 1;
    })
    .await;
    let register_from = |ip: &'static str, i: usize| {
        let s = &s;
        async move {
            s.request(reqwest::Method::POST, "/auth/register")
                .await
                .header("X-Forwarded-For", ip)
                .json(&json!({
                    "name": format!("burst{i}"),
                    "email": format!("burst{i}@example.com"),
                    "password": PASSWORD,
                }))
                .send()
                .await
                .unwrap()
        }
    };
    for i in 0..3 {
        assert_eq!(
            register_from("203.0.113.5", i).await.status(),
            StatusCode::CREATED
        );
    }
    let r = register_from("203.0.113.5", 3).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    // Another address is not affected, and nothing was created for the refused one.
    assert_eq!(
        register_from("198.51.100.5", 4).await.status(),
        StatusCode::CREATED
    );
    let login = s.login("burst3@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

/// Run `statements` on the test server's database from a connection of the test's own.
async fn run_sql(database_url: &str, statements: &[&str]) {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(database_url).await.unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_registration_whose_session_cannot_be_written_leaves_no_account_and_a_retry_succeeds() {
    let s = TestServer::start().await;
    // Inject the fault between the two writes: the session insert fails.
    let postgres = s.database_url.starts_with("postgres");
    if postgres {
        run_sql(
            &s.database_url,
            &[
                "CREATE FUNCTION refuse_sessions() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions \
                 FOR EACH ROW EXECUTE FUNCTION refuse_sessions()",
            ],
        )
        .await;
    } else {
        run_sql(
            &s.database_url,
            &["CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions \
               BEGIN SELECT RAISE(ABORT, 'injected fault'); END"],
        )
        .await;
    }
    let form = json!({"name": "ada", "email": "ada@example.com", "password": PASSWORD});
    let r = s.post("/auth/register", form.clone()).await;
    assert!(r.status().is_server_error(), "status {}", r.status());

    // No account was left behind.
    use sqlx::Connection as _;
    let mut db = sqlx::AnyConnection::connect(&s.database_url).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, 0, "a failed registration left its account");
    db.close().await.unwrap();

    let drop = if postgres {
        "DROP TRIGGER refuse_sessions ON sessions"
    } else {
        "DROP TRIGGER refuse_sessions"
    };
    run_sql(&s.database_url, &[drop]).await;
    let r = s.post("/auth/register", form).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "the retry is not told the account exists"
    );
    let body: Value = r.json().await.unwrap();
    let access = body["tokens"]["access"].as_str().unwrap();
    assert_eq!(s.get_as(access, "/auth/me").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn look_alike_names_do_not_register_as_different_users() {
    let s = TestServer::start().await;
    s.register("soban", "msoban@gmail.com").await;
    let attempt = |name: &'static str, i: usize| {
        let s = &s;
        async move {
            s.post(
                "/auth/register",
                json!({"name": name, "email": format!("look{i}@example.com"), "password": PASSWORD}),
            )
            .await
        }
    };
    let taken = attempt("ｓｏｂａｎ", 1).await;
    assert_eq!(taken.status(), StatusCode::BAD_REQUEST);
    let body: Value = taken.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name": ["user with this name already exists."]})
    );
    for (i, sneaky) in ["soban\u{200B}", "\u{202E}soban", "so\u{200D}ban"]
        .into_iter()
        .enumerate()
    {
        let r = attempt(sneaky, i + 2).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{sneaky:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({"name": ["Enter a valid name: invisible formatting characters are not allowed."]}),
            "{sneaky:?}"
        );
    }
    // The fullwidth spelling logs in to the one account.
    let r = s
        .post(
            "/auth/login",
            json!({"name": "ｓｏｂａｎ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_password_policy_judges_the_nfkc_form_but_the_password_is_kept_as_sent() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "wide", "email": "wide@example.com", "password": "ｐａｓｓｗｏｒｄ"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["password"]
            .as_array()
            .unwrap()
            .contains(&json!("This password is too common.")),
        "{body}"
    );
    // A strong fullwidth password is hashed as sent: its ASCII look-alike is
    // another password.
    let strong = "Ｔｒ１ｃｋｙ-Ｌａｎｔｅｒｎ-Ｏｗｌ";
    let r = s
        .post(
            "/auth/register",
            json!({"name": "wide", "email": "wide@example.com", "password": strong}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.login("wide@example.com", strong).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.login("wide@example.com", "Tr1cky-Lantern-Owl")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn names_stored_before_nfkc_are_rekeyed_once_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let before = TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), |_| {}).await;
    drop(before);
    // A row as an earlier latchkey stored it: the fullwidth name as its key.
    run_sql(
        &url,
        &[
            "INSERT INTO users (email, email_key, name, name_key, password_hash, is_active, date_joined) \
             VALUES ('wide@example.com', 'wide@example.com', 'ｂｏｂ', 'ｂｏｂ', '!', 1, 0)",
            "DELETE FROM server_settings WHERE name = 'name_keys_nfkc_v1'",
        ],
    )
    .await;
    let s = TestServer::start_on(tempfile::tempdir().unwrap(), url, |_| {}).await;
    let r = s
        .post(
            "/auth/register",
            json!({"name": "bob", "email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name": ["user with this name already exists."]})
    );
}
