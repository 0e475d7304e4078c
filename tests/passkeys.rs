//! Passkeys (CONTRACT.md Part 2, "Passkeys (WebAuthn)"): registration of
//! discoverable credentials, login with no email typed, the list and
//! deletion, and every refusal: a replayed challenge, one of the wrong
//! purpose or user, an expired one, the wrong origin or rp id, no user
//! verification, a sign counter going backwards, a deleted credential.
//! The authenticator is the tests' own (`common::passkey`): ES256, the
//! authenticator data built by hand. Time moves by the injected clock.

mod common;

use common::passkey::Authenticator;
use common::{assert_error, tokens, totp, TestServer, PASSWORD};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

async fn json_of(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    r.json().await.unwrap()
}

async fn delete_as(s: &TestServer, access: &str, path: &str) -> Response {
    s.request(Method::DELETE, path)
        .await
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn registration_options(s: &TestServer, access: &str) -> Value {
    json_of(
        s.post_as(access, "/auth/passkeys/register/options", json!({}))
            .await,
        StatusCode::OK,
    )
    .await
}

async fn login_options(s: &TestServer) -> Value {
    json_of(
        s.post("/auth/passkeys/login/options", json!({})).await,
        StatusCode::OK,
    )
    .await
}

async fn finish_registration(
    s: &TestServer,
    access: &str,
    options: &Value,
    credential: Value,
    name: &str,
) -> Response {
    s.post_as(
        access,
        "/auth/passkeys/register",
        json!({"challenge_id": options["challenge_id"], "credential": credential, "name": name}),
    )
    .await
}

/// Register a passkey named `name` for `access`'s user on `authenticator`.
async fn register_passkey(
    s: &TestServer,
    access: &str,
    authenticator: &mut Authenticator,
    name: &str,
) -> Value {
    let options = registration_options(s, access).await;
    let credential = authenticator.create(&options["publicKey"]);
    json_of(
        finish_registration(s, access, &options, credential, name).await,
        StatusCode::CREATED,
    )
    .await
}

async fn login_with(s: &TestServer, options: &Value, credential: Value) -> Response {
    s.post(
        "/auth/passkeys/login",
        json!({"challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await
}

/// A user with one passkey: (user body, access token, authenticator).
async fn user_with_passkey(s: &TestServer) -> (Value, String, Authenticator) {
    let user = s.new_user().await;
    // In refresh-cookie mode the body has no refresh token.
    let access = user["tokens"]["access"].as_str().unwrap().to_owned();
    let mut authenticator = Authenticator::new();
    register_passkey(s, &access, &mut authenticator, "Laptop").await;
    (user, access, authenticator)
}

fn is_base64url(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[tokio::test]
async fn registration_options_ask_for_a_discoverable_verified_credential_in_the_browsers_json() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let options = registration_options(&s, &access).await;
    assert_eq!(options["challenge_id"].as_str().unwrap().len(), 64);
    let pk = &options["publicKey"];
    // parseCreationOptionsFromJSON: base64url without padding for binary fields.
    assert!(is_base64url(&pk["challenge"]), "{pk}");
    assert!(is_base64url(&pk["user"]["id"]), "{pk}");
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["user"]["name"], user["email"]);
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["attestation"], "none");
    assert_eq!(pk["timeout"], 300_000);
    assert!(pk["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["alg"] == -7 && p["type"] == "public-key"));
    assert!(
        !pk.as_object().unwrap().values().any(Value::is_null),
        "no null member (the browser's parser refuses them): {pk}"
    );
}

#[tokio::test]
async fn a_registered_passkey_logs_in_with_no_email_typed_and_answers_like_login() {
    let s = TestServer::start().await;
    let (user, _, mut authenticator) = user_with_passkey(&s).await;

    let options = login_options(&s).await;
    let pk = &options["publicKey"];
    assert!(is_base64url(&pk["challenge"]), "{pk}");
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["userVerification"], "required");
    assert_eq!(
        pk["allowCredentials"],
        json!([]),
        "discoverable: no account named"
    );

    let r = login_with(&s, &options, authenticator.get(pk)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("latchkey_device=")));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], user["id"]);
    assert_eq!(body["email"], user["email"]);
    let (access, refresh) = tokens(&body);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    assert!(!refresh.is_empty());

    // The counter advanced: the next login (counter 2) is accepted too.
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn several_passkeys_per_user_are_named_listed_counted_and_deleted() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut laptop = Authenticator::new();
    let mut phone = Authenticator::new();
    let first = register_passkey(&s, &access, &mut laptop, "  Laptop ").await;
    // The list is oldest first, by the second of registration.
    s.clock.advance(1);
    let second = register_passkey(&s, &access, &mut phone, "Phone").await;
    assert_eq!(first["name"], "Laptop");
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert_ne!(first["id"], second["id"]);

    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Laptop", "Phone"]);
    assert_eq!(list[0]["last_used_at"], Value::Null);
    let mfa = json_of(s.get_as(&access, "/auth/mfa").await, StatusCode::OK).await;
    assert_eq!(mfa["passkeys"], 2);

    // Both log in; the one used shows when.
    for authenticator in [&mut laptop, &mut phone] {
        let options = login_options(&s).await;
        let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    assert!(list[0]["last_used_at"].as_str().is_some());

    let path = format!("/auth/passkeys/{}", first["id"].as_str().unwrap());
    assert_eq!(
        delete_as(&s, &access, &path).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        delete_as(&s, &access, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let mfa = json_of(s.get_as(&access, "/auth/mfa").await, StatusCode::OK).await;
    assert_eq!(mfa["passkeys"], 1);
}

#[tokio::test]
async fn a_deleted_passkey_no_longer_logs_in() {
    let s = TestServer::start().await;
    let (_, access, mut authenticator) = user_with_passkey(&s).await;
    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    let path = format!("/auth/passkeys/{}", list[0]["id"].as_str().unwrap());
    assert_eq!(
        delete_as(&s, &access, &path).await.status(),
        StatusCode::NO_CONTENT
    );

    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
}

#[tokio::test]
async fn another_users_passkey_cannot_be_deleted() {
    let s = TestServer::start().await;
    let (_, owner, _) = user_with_passkey(&s).await;
    let list = json_of(s.get_as(&owner, "/auth/passkeys").await, StatusCode::OK).await;
    let path = format!("/auth/passkeys/{}", list[0]["id"].as_str().unwrap());
    let other = s.new_user().await;
    let (other, _) = tokens(&other);
    assert_error(
        delete_as(&s, &other, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list = json_of(s.get_as(&owner, "/auth/passkeys").await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_replayed_challenge_is_refused() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();

    // Registration: the same answer twice.
    let options = registration_options(&s, &access).await;
    let credential = authenticator.create(&options["publicKey"]);
    let r = finish_registration(&s, &access, &options, credential.clone(), "One").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = finish_registration(&s, &access, &options, credential, "Two").await;
    let body = json_of(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );

    // Login: a captured assertion sent again.
    let options = login_options(&s).await;
    let assertion = authenticator.get(&options["publicKey"]);
    assert_eq!(
        login_with(&s, &options, assertion.clone()).await.status(),
        StatusCode::OK
    );
    let body = json_of(
        login_with(&s, &options, assertion).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );
}

#[tokio::test]
async fn a_challenge_answered_wrongly_is_used_up_too() {
    let s = TestServer::start().await;
    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    let options = login_options(&s).await;
    authenticator.origin = "http://localhost:9999".into();
    let wrong = authenticator.get(&options["publicKey"]);
    assert_error(
        login_with(&s, &options, wrong).await,
        StatusCode::UNAUTHORIZED,
        "no_active_account",
    )
    .await;
    authenticator.origin = common::passkey::ORIGIN.into();
    let right = authenticator.get(&options["publicKey"]);
    let body = json_of(
        login_with(&s, &options, right).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );
}

#[tokio::test]
async fn a_challenge_of_the_other_purpose_is_refused() {
    let s = TestServer::start().await;
    let (_, access, mut authenticator) = user_with_passkey(&s).await;

    // A registration challenge cannot log in...
    let registration = registration_options(&s, &access).await;
    let assertion = authenticator.get(&registration["publicKey"]);
    let body = json_of(
        login_with(&s, &registration, assertion).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );

    // ...and a login challenge cannot register.
    let login = login_options(&s).await;
    let mut public_key = login["publicKey"].clone();
    public_key["user"] = json!({"id": "AAAA"});
    let credential = Authenticator::new().create(&public_key);
    let body = json_of(
        finish_registration(&s, &access, &login, credential, "Sneaky").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );
}

#[tokio::test]
async fn a_registration_challenge_belongs_to_the_user_it_was_issued_to() {
    let s = TestServer::start().await;
    let alice = s.new_user().await;
    let (alice, _) = tokens(&alice);
    let mallory = s.new_user().await;
    let (mallory, _) = tokens(&mallory);
    let options = registration_options(&s, &alice).await;
    let credential = Authenticator::new().create(&options["publicKey"]);
    let body = json_of(
        finish_registration(&s, &mallory, &options, credential, "Mine").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );
}

#[tokio::test]
async fn challenges_expire_after_five_minutes_by_the_clock() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();

    let options = registration_options(&s, &access).await;
    let credential = authenticator.create(&options["publicKey"]);
    s.clock.advance(301);
    let body = json_of(
        finish_registration(&s, &access, &options, credential, "Late").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );

    // Just inside the five minutes: accepted.
    let options = registration_options(&s, &access).await;
    let credential = authenticator.create(&options["publicKey"]);
    s.clock.advance(299);
    let r = finish_registration(&s, &access, &options, credential, "Just in time").await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let options = login_options(&s).await;
    let assertion = authenticator.get(&options["publicKey"]);
    s.clock.advance(301);
    let body = json_of(
        login_with(&s, &options, assertion).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );
}

#[tokio::test]
async fn a_ceremony_from_another_origin_is_refused() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();
    authenticator.origin = "http://evil.localhost.example:3000".into();
    let options = registration_options(&s, &access).await;
    let credential = authenticator.create(&options["publicKey"]);
    let body = json_of(
        finish_registration(&s, &access, &options, credential, "Phished").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["credential"],
        json!(["The passkey could not be verified."])
    );

    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    // 127.0.0.1:3000 is a CORS origin, but not on the rp id `localhost`.
    for origin in [
        "https://localhost:3000",
        "http://127.0.0.1:3000",
        "http://localhost:3001",
    ] {
        authenticator.origin = origin.into();
        let options = login_options(&s).await;
        let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
    }
}

#[tokio::test]
async fn a_ceremony_for_another_rp_id_is_refused() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();
    authenticator.rp_id = "example.com".into();
    let options = registration_options(&s, &access).await;
    let credential = authenticator.create(&options["publicKey"]);
    let body = json_of(
        finish_registration(&s, &access, &options, credential, "Elsewhere").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["credential"],
        json!(["The passkey could not be verified."])
    );

    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    authenticator.rp_id = "example.com".into();
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
}

#[tokio::test]
async fn without_user_verification_neither_registration_nor_login_is_accepted() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();
    authenticator.user_verification = false;
    let options = registration_options(&s, &access).await;
    let credential = authenticator.create(&options["publicKey"]);
    let body = json_of(
        finish_registration(&s, &access, &options, credential, "Presence only").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["credential"],
        json!(["The passkey could not be verified."])
    );
    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    assert_eq!(list, json!([]));

    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    authenticator.user_verification = false;
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
}

#[tokio::test]
async fn a_sign_counter_that_goes_backwards_is_refused_and_the_passkey_kept() {
    let s = TestServer::start().await;
    let (_, access, mut authenticator) = user_with_passkey(&s).await;
    authenticator.credentials[0].counter = 9;
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_eq!(r.status(), StatusCode::OK, "counter 10");

    // A clone still at counter 5, then one repeating 10: both refused.
    for clone_counter in [4, 9] {
        authenticator.credentials[0].counter = clone_counter;
        let options = login_options(&s).await;
        let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
    }

    // The passkey stays registered, its counter where it was: an assertion
    // beyond it is accepted (docs/design.md, "Passkeys").
    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    authenticator.credentials[0].counter = 10;
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_eq!(r.status(), StatusCode::OK, "counter 11");
}

#[tokio::test]
async fn a_forged_signature_or_another_users_handle_is_refused() {
    let s = TestServer::start().await;
    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    let options = login_options(&s).await;
    let mut assertion = authenticator.get(&options["publicKey"]);
    assertion["response"]["signature"] = json!("MEUCIQDx");
    let r = login_with(&s, &options, assertion).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;

    let (_, _, other) = user_with_passkey(&s).await;
    let options = login_options(&s).await;
    authenticator.credentials[0].user_handle = other.credentials[0].user_handle.clone();
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
}

#[tokio::test]
async fn the_same_credential_cannot_be_registered_twice() {
    let s = TestServer::start().await;
    let (_, access, authenticator) = user_with_passkey(&s).await;
    let registered = &authenticator.credentials[0];
    // The options exclude the registered credential...
    let options = registration_options(&s, &access).await;
    let excluded = &options["publicKey"]["excludeCredentials"];
    assert_eq!(excluded.as_array().unwrap().len(), 1);
    assert!(is_base64url(&excluded[0]["id"]));
    // ...and registering it again (an authenticator ignoring that, or one
    // reusing ids across accounts) is refused.
    let credential = Authenticator::new().create_with_id(&options["publicKey"], &registered.id);
    let r = finish_registration(&s, &access, &options, credential, "Again").await;
    let body = json_of(r, StatusCode::BAD_REQUEST).await;
    assert!(body["credential"].is_array(), "{body}");
    let other = s.new_user().await;
    let (other, _) = tokens(&other);
    let options = registration_options(&s, &other).await;
    let credential = Authenticator::new().create_with_id(&options["publicKey"], &registered.id);
    let r = finish_registration(&s, &other, &options, credential, "Theirs").await;
    let body = json_of(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        body["credential"],
        json!(["This passkey is already registered."])
    );
    let list = json_of(s.get_as(&other, "/auth/passkeys").await, StatusCode::OK).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn a_totp_user_logs_in_with_a_passkey_without_a_second_step() {
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let email = user["email"].as_str().unwrap().to_owned();
    let (access, _) = tokens(&user);
    let enrolment = json_of(
        s.post_as(&access, "/auth/mfa/totp", json!({"password": PASSWORD}))
            .await,
        StatusCode::OK,
    )
    .await;
    let code = totp(enrolment["secret"].as_str().unwrap(), s.clock.now());
    let r = s
        .post_as(&access, "/auth/mfa/totp/confirm", json!({"code": code}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut authenticator = Authenticator::new();
    register_passkey(&s, &access, &mut authenticator, "Laptop").await;

    // The password alone now yields only an mfa_token...
    let r = s.login(&email, PASSWORD).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "mfa_required").await;
    // ...and the passkey, tokens at once.
    let options = login_options(&s).await;
    let body = json_of(
        login_with(&s, &options, authenticator.get(&options["publicKey"])).await,
        StatusCode::OK,
    )
    .await;
    let (access, _) = tokens(&body);
    assert_eq!(s.get_as(&access, "/auth/me").await.status(), StatusCode::OK);
    let mfa = json_of(s.get_as(&access, "/auth/mfa").await, StatusCode::OK).await;
    assert_eq!(
        (mfa["totp"].clone(), mfa["passkeys"].clone()),
        (json!(true), json!(1))
    );
}

#[tokio::test]
async fn a_challenge_issued_by_one_instance_is_accepted_by_another() {
    let first = TestServer::start().await;
    let second = TestServer::start_on(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        |_| {},
    )
    .await;
    let user = first.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();

    let options = registration_options(&first, &access).await;
    let credential = authenticator.create(&options["publicKey"]);
    let r = finish_registration(&second, &access, &options, credential, "Laptop").await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let options = login_options(&second).await;
    let assertion = authenticator.get(&options["publicKey"]);
    assert_eq!(
        login_with(&first, &options, assertion.clone())
            .await
            .status(),
        StatusCode::OK
    );
    // Used once, on every instance.
    let r = login_with(&second, &options, assertion).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deleting_the_account_deletes_its_passkeys() {
    let s = TestServer::start().await;
    let (_, access, mut authenticator) = user_with_passkey(&s).await;
    let r = s
        .request(Method::DELETE, "/auth/me")
        .await
        .bearer_auth(&access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "no_active_account").await;
    // Nothing of it is left to collide with: the same credential id
    // registers again for someone else.
    let other = s.new_user().await;
    let (other, _) = tokens(&other);
    let options = registration_options(&s, &other).await;
    let old_id = authenticator.credentials[0].id.clone();
    let credential = Authenticator::new().create_with_id(&options["publicKey"], &old_id);
    let r = finish_registration(&s, &other, &options, credential, "Fresh").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_last_passkey_of_an_account_without_a_password_is_kept() {
    let s = TestServer::start().await;
    let (user, access, mut authenticator) = user_with_passkey(&s).await;
    let user_id = user["id"].as_i64().unwrap();
    // As an imported Django account with an unusable password.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.database_url).await.unwrap();
    sqlx::query("UPDATE users SET password_hash = '!unusable' WHERE id = $1")
        .bind(user_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    let only = format!("/auth/passkeys/{}", list[0]["id"].as_str().unwrap());
    let body = json_of(delete_as(&s, &access, &only).await, StatusCode::BAD_REQUEST).await;
    assert!(body["non_field_errors"][0]
        .as_str()
        .unwrap()
        .contains("only way to log in"));

    // With a second passkey, either may go.
    register_passkey(&s, &access, &mut authenticator, "Spare").await;
    assert_eq!(
        delete_as(&s, &access, &only).await.status(),
        StatusCode::NO_CONTENT
    );
    let list = json_of(s.get_as(&access, "/auth/passkeys").await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_passkey_login_sets_the_refresh_cookie_in_cookie_mode() {
    let s = TestServer::start_with(|c| c.refresh_cookie = true).await;
    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("latchkey_refresh=")));
    let body: Value = r.json().await.unwrap();
    assert!(body["tokens"].get("refresh").is_none(), "{body}");
}

#[tokio::test]
async fn failed_passkey_logins_are_throttled_per_address() {
    let s = TestServer::start_with(|c| c.login_failures_per_address = 3).await;
    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    authenticator.user_verification = false;
    for _ in 0..3 {
        let options = login_options(&s).await;
        let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    authenticator.user_verification = true;
    let options = login_options(&s).await;
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
}

/// `POST path` with `body` from client address `ip` (the test server
/// trusts one proxy hop).
async fn post_from(s: &TestServer, ip: &str, path: &str, body: Value) -> Response {
    s.request(Method::POST, path)
        .await
        .header("X-Forwarded-For", ip)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_address_holds_only_so_many_unanswered_login_challenges() {
    // Anyone may ask for one and each is a stored row, so a client address
    // holds LATCHKEY_PASSKEY_CHALLENGES_PER_ADDRESS live ones at most; an
    // answered one, or one expired, makes room again.
    let s = TestServer::start_with(|c| {
        c.passkey_challenges_per_address = 2;
        c.trusted_proxy_hops = 1;
    })
    .await;
    let (_, _, mut authenticator) = user_with_passkey(&s).await;
    let options_from =
        |ip: &'static str| post_from(&s, ip, "/auth/passkeys/login/options", json!({}));

    let first = json_of(options_from("203.0.113.1").await, StatusCode::OK).await;
    s.clock.advance(100);
    json_of(options_from("203.0.113.1").await, StatusCode::OK).await;
    // Until the oldest expires: 300 seconds after it was issued, 200 from
    // now (199 if the wall clock's second turned meanwhile).
    let retry_after = |r: &Response| -> u64 {
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    for _ in 0..3 {
        let r = options_from("203.0.113.1").await;
        assert!((199..=200).contains(&retry_after(&r)), "{:?}", r.headers());
        assert_error(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    }
    // Another address is not affected.
    assert_eq!(options_from("203.0.113.2").await.status(), StatusCode::OK);

    // Answering a challenge (from anywhere) makes room at once, refused
    // requests before it notwithstanding: what is counted is live rows.
    let assertion = authenticator.get(&first["publicKey"]);
    let r = login_with(&s, &first, assertion).await;
    assert_eq!(r.status(), StatusCode::OK);
    let third = json_of(options_from("203.0.113.1").await, StatusCode::OK).await;
    assert_eq!(
        options_from("203.0.113.1").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A wrong answer uses its challenge up too.
    authenticator.user_verification = false;
    let r = login_with(&s, &third, authenticator.get(&third["publicKey"])).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(options_from("203.0.113.1").await.status(), StatusCode::OK);

    // So does expiry, by the clock: both live ones were issued at +100.
    s.clock.advance(300);
    for _ in 0..2 {
        assert_eq!(options_from("203.0.113.1").await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn an_account_keeps_only_its_three_newest_registration_challenges() {
    // A signed-in client cannot pile up stored challenges either: a fourth
    // registration under way supersedes the oldest.
    let s = TestServer::start().await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();
    let oldest = registration_options(&s, &access).await;
    let mut newer = Vec::new();
    for _ in 0..3 {
        newer.push(registration_options(&s, &access).await);
    }
    let credential = authenticator.create(&oldest["publicKey"]);
    let body = json_of(
        finish_registration(&s, &access, &oldest, credential, "Oldest").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["challenge_id"],
        json!(["Invalid or expired challenge."])
    );
    // Another account's registrations do not supersede this one's.
    let other = s.new_user().await;
    let (other_access, _) = tokens(&other);
    for _ in 0..3 {
        registration_options(&s, &other_access).await;
    }
    for (i, options) in newer.iter().enumerate() {
        let credential = authenticator.create(&options["publicKey"]);
        let r = finish_registration(&s, &access, options, credential, &format!("Key {i}")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn the_passkey_routes_need_csrf_and_registration_needs_a_login() {
    let s = TestServer::start().await;
    let r = s
        .client
        .post(s.url("/auth/passkeys/login/options"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "csrf_failed").await;
    let r = s.post("/auth/passkeys/register/options", json!({})).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
}

#[tokio::test]
async fn malformed_answers_are_field_errors() {
    let s = TestServer::start().await;
    let body = json_of(
        s.post("/auth/passkeys/login", json!({})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["challenge_id"], json!(["This field is required."]));
    assert_eq!(body["credential"], json!(["This field is required."]));
    let body = json_of(
        s.post(
            "/auth/passkeys/login",
            json!({"challenge_id": "nope", "credential": {"id": "x"}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["credential"], json!(["Not a valid credential."]));
}

#[tokio::test]
async fn with_no_origin_on_the_rp_id_passkeys_are_off() {
    let s = TestServer::start_with(|c| c.webauthn_rp_id = "example.com".into()).await;
    let r = s.post("/auth/passkeys/login/options", json!({})).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn configured_origins_replace_the_derived_ones() {
    let s = TestServer::start_with(|c| {
        c.webauthn_rp_id = "example.com".into();
        c.webauthn_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let user = s.new_user().await;
    let (access, _) = tokens(&user);
    let mut authenticator = Authenticator::new();
    authenticator.rp_id = "example.com".into();
    authenticator.origin = "https://app.example.com".into();
    register_passkey(&s, &access, &mut authenticator, "Work").await;
    let options = login_options(&s).await;
    assert_eq!(options["publicKey"]["rpId"], "example.com");
    let r = login_with(&s, &options, authenticator.get(&options["publicKey"])).await;
    assert_eq!(r.status(), StatusCode::OK);
}
