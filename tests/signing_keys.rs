//! Tokens other services can verify: asymmetric signing (EdDSA, ES256,
//! RS256), the JWKS, the verifier's pinned algorithm and `kid`, key
//! rotation and revocation across instances (`latchkey keys …`), and the
//! `iss`/`aud` claims. Every test runs on the configured backend.

mod common;

use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{assert_error, claims, tokens, TestServer};
use latchkey::config::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ASYMMETRIC: [&str; 3] = ["EdDSA", "ES256", "RS256"];

/// A server signing with `algorithm`, reloading its keys on every request
/// (so another process's changes show at once) unless `adjust` says otherwise.
async fn server(algorithm: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let algorithm = algorithm.parse().unwrap();
    TestServer::start_with(|c| {
        c.jwt_algorithm = algorithm;
        c.session_cache_millis = 0;
        adjust(c);
    })
    .await
}

/// A second instance on `first`'s database.
async fn second_instance(first: &TestServer, adjust: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_on(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        adjust,
    )
    .await
}

async fn jwks(s: &TestServer) -> Value {
    let r = s
        .client
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn header(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()
}

/// Verify `token` as another service would: with the JWK its `kid` names
/// in `jwks`, and nothing else.
fn verifies_offline(token: &str, jwks: &Value) -> bool {
    use ring::signature as sig;
    let kid = header(token)["kid"].as_str().unwrap_or_default().to_owned();
    let Some(jwk) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
    else {
        return false;
    };
    let b64 = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let signed = signed.as_bytes();
    match jwk["kty"].as_str().unwrap() {
        "OKP" => sig::UnparsedPublicKey::new(&sig::ED25519, b64("x"))
            .verify(signed, &signature)
            .is_ok(),
        "EC" => {
            let mut point = vec![4u8];
            point.extend(b64("x"));
            point.extend(b64("y"));
            sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, &signature)
                .is_ok()
        }
        "RSA" => sig::RsaPublicKeyComponents {
            n: b64("n"),
            e: b64("e"),
        }
        .verify(&sig::RSA_PKCS1_2048_8192_SHA256, signed, &signature)
        .is_ok(),
        other => panic!("unexpected kty {other}"),
    }
}

/// Run `latchkey <args>` on `database_url` with `LATCHKEY_JWT_ALGORITHM=algorithm`.
fn latchkey(database_url: &str, algorithm: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env("LATCHKEY_DATABASE_URL", database_url)
        .env("LATCHKEY_JWT_ALGORITHM", algorithm)
        .env("LATCHKEY_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn me(s: &TestServer, access: &str) -> StatusCode {
    s.get_as(access, "/auth/me").await.status()
}

// The tests here wait for child `latchkey` commands synchronously: on a
// multi-threaded runtime the in-process servers keep serving meanwhile (on
// a current-thread one, a server's write transaction caught open would hold
// SQLite's write lock until the command gave up with `database is locked`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_stays_the_default_with_an_empty_jwks_and_no_kid() {
    let s = TestServer::start().await;
    assert_eq!(jwks(&s).await, json!({"keys": []}));
    let (access, _) = tokens(&s.new_user().await);
    assert_eq!(header(&access), json!({"alg": "HS256", "typ": "JWT"}));
    assert_eq!(me(&s, &access).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_asymmetric_algorithm_signs_tokens_that_verify_offline_with_the_published_key() {
    for algorithm in ASYMMETRIC {
        let s = server(algorithm, |_| {}).await;
        let published = jwks(&s).await;
        // The current key and the next one.
        assert_eq!(kids(&published).len(), 2, "{algorithm}: {published}");
        for key in published["keys"].as_array().unwrap() {
            assert_eq!(key["alg"], algorithm);
            assert_eq!(key["use"], "sig");
            assert!(key.get("d").is_none() && key.get("p").is_none(), "{key}");
        }
        let (access, refresh) = tokens(&s.new_user().await);
        for token in [&access, &refresh] {
            let h = header(token);
            assert_eq!(h["alg"], algorithm);
            assert!(kids(&published).contains(&h["kid"].as_str().unwrap().to_owned()));
            assert!(verifies_offline(token, &published), "{algorithm}");
        }
        assert_eq!(claims(&access)["token_type"], "access");
        assert_eq!(me(&s, &access).await, StatusCode::OK);
        let r = s
            .post("/auth/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{algorithm}");
        let pair: Value = r.json().await.unwrap();
        assert!(verifies_offline(
            pair["access"].as_str().unwrap(),
            &published
        ));
        let r = s
            .post("/auth/token/verify/", json!({"token": pair["access"]}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_not_signed_by_a_published_key_under_the_configured_algorithm_are_refused() {
    let s = server("EdDSA", |_| {}).await;
    let (access, _) = tokens(&s.new_user().await);
    let published = jwks(&s).await;
    let kid = header(&access)["kid"].as_str().unwrap().to_owned();
    let x = published["keys"][0]["x"].as_str().unwrap().to_owned();
    let payload = access.split('.').nth(1).unwrap().to_owned();
    let hs256 = |secret: &[u8], head: &str| {
        use hmac::Mac as _;
        let signing_input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(head));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    // Alg confusion: HS256 "signed" with the public key, as a naive
    // verifier that lets the header choose the algorithm would accept.
    let confused = hs256(
        x.as_bytes(),
        &format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"JWT"}}"#),
    );
    // HS256 signed with the server's real secret key (still used for CSRF):
    // the pinned algorithm refuses it all the same.
    let secret = stored_secret(&s.database_url).await;
    let with_secret = hs256(&secret, r#"{"alg":"HS256","typ":"JWT"}"#);
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    // The right signature under a header naming an unknown kid, or none.
    let signature = access.rsplit_once('.').unwrap().1;
    let unknown_kid = format!(
        "{}.{payload}.{signature}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"forged","typ":"JWT"}"#)
    );
    let no_kid = format!(
        "{}.{payload}.{signature}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#)
    );
    for forged in [confused, with_secret, none, unknown_kid, no_kid] {
        assert_error(
            s.get_as(&forged, "/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "token_not_valid",
        )
        .await;
        let r = s
            .post("/auth/token/verify/", json!({"token": forged}))
            .await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    }
    assert_eq!(me(&s, &access).await, StatusCode::OK);
}

async fn stored_secret(database_url: &str) -> Vec<u8> {
    use sqlx::Row as _;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let row = sqlx::query("SELECT value FROM server_settings WHERE name = 'signing_key'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let secret = row.try_get(0).unwrap();
    pool.close().await;
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_the_published_next_key_and_keeps_the_previous_until_its_tokens_expire()
{
    let s = server("ES256", |c| {
        c.access_token_lifetime_seconds = 60;
        c.refresh_token_lifetime_seconds = 120;
    })
    .await;
    let before = jwks(&s).await;
    let (old_access, old_refresh) = tokens(&s.new_user().await);
    let old_kid = header(&old_access)["kid"].as_str().unwrap().to_owned();
    let next_kid = kids(&before).into_iter().find(|k| *k != old_kid).unwrap();

    let (ok, out) = latchkey(&s.database_url, "ES256", &["keys", "rotate", "--force"]);
    assert!(ok, "{out}");
    assert!(out.contains(&next_kid), "{out}");

    // The key published as next now signs; the old one still verifies.
    let (access, _) = tokens(&s.new_user().await);
    assert_eq!(header(&access)["kid"], next_kid.as_str());
    let after = jwks(&s).await;
    assert_eq!(
        kids(&after).len(),
        3,
        "previous, current, new next: {after}"
    );
    assert!(kids(&after).contains(&old_kid));
    assert!(verifies_offline(&old_access, &after) && verifies_offline(&access, &after));
    assert_eq!(me(&s, &old_access).await, StatusCode::OK);
    let r = s
        .post("/auth/token/refresh/", json!({"refresh": old_refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    assert_eq!(
        header(rotated["access"].as_str().unwrap())["kid"],
        next_kid.as_str()
    );

    // Past the longest lifetime (+ leeway + reload), the previous key is
    // gone: from the JWKS and from verification.
    s.clock.advance(120 + 5 + 2);
    let later = jwks(&s).await;
    assert!(!kids(&later).contains(&old_kid), "{later}");
    assert_eq!(kids(&later).len(), 2);
    let (ok, out) = latchkey(&s.database_url, "ES256", &["keys", "list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("previous") && out.contains("current") && out.contains("next"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_another_instance_within_its_reload_interval() {
    let a = server("EdDSA", |c| c.session_cache_millis = 200).await;
    let b = second_instance(&a, |c| {
        c.jwt_algorithm = "EdDSA".parse().unwrap();
        c.session_cache_millis = 200;
    })
    .await;
    assert_eq!(jwks(&a).await, jwks(&b).await, "one key set for both");
    let next = kids(&jwks(&a).await)[1].clone();
    let (ok, out) = latchkey(&a.database_url, "EdDSA", &["keys", "rotate", "--force"]);
    assert!(ok, "{out}");
    // The reload interval is 200 ms here (the session cache's TTL; 500 ms
    // by default, so "within a minute" holds with room to spare).
    tokio::time::sleep(Duration::from_millis(250)).await;
    for on in [&a, &b] {
        let (access, _) = tokens(&on.new_user().await);
        assert_eq!(header(&access)["kid"], next.as_str());
        assert_eq!(
            me(if std::ptr::eq(on, &a) { &b } else { &a }, &access).await,
            StatusCode::OK
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_on_every_instance_within_the_session_cache_delay() {
    let a = server("EdDSA", |c| c.session_cache_millis = 200).await;
    let b = second_instance(&a, |c| {
        c.jwt_algorithm = "EdDSA".parse().unwrap();
        c.session_cache_millis = 200;
    })
    .await;
    let user = a.new_user().await;
    let (access, refresh) = tokens(&user);
    let leaked = header(&access)["kid"].as_str().unwrap().to_owned();
    assert_eq!(me(&b, &access).await, StatusCode::OK);

    let (ok, out) = latchkey(&a.database_url, "EdDSA", &["keys", "revoke", &leaked]);
    assert!(ok, "{out}");
    assert!(out.contains("was current"), "{out}");
    tokio::time::sleep(Duration::from_millis(250)).await;
    for on in [&a, &b] {
        assert_error(
            on.get_as(&access, "/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "token_not_valid",
        )
        .await;
        let r = on
            .post("/auth/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
        assert!(!kids(&jwks(on).await).contains(&leaked));
    }
    // The next key took over at once: logging in again works everywhere.
    let r = b
        .login(user["email"].as_str().unwrap(), common::PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (fresh, _) = tokens(&r.json().await.unwrap());
    assert_ne!(header(&fresh)["kid"], leaked.as_str());
    assert_eq!(me(&a, &fresh).await, StatusCode::OK);
    assert_eq!(kids(&jwks(&a).await).len(), 2, "a new next key was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_waits_for_verifiers_to_have_cached_the_next_key_unless_forced() {
    let s = server("EdDSA", |_| {}).await;
    let (ok, out) = latchkey(&s.database_url, "EdDSA", &["keys", "rotate"]);
    assert!(!ok, "{out}");
    assert!(out.contains("--force") && out.contains("300 s"), "{out}");
    // Nothing changed.
    let (access, _) = tokens(&s.new_user().await);
    assert_eq!(
        header(&access)["kid"].as_str().unwrap(),
        kids(&jwks(&s).await)[0]
    );
    // With HS256 there are no key pairs to manage.
    let (ok, out) = latchkey(&s.database_url, "HS256", &["keys", "list"]);
    assert!(!ok && out.contains("HS256"), "{out}");
    let (ok, out) = latchkey(&s.database_url, "EdDSA", &["keys", "revoke", "no-such-kid"]);
    assert!(
        !ok && out.contains("no EdDSA key with kid no-such-kid"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_pem_key_is_published_as_next_and_signs_after_the_rotation() {
    let s = server("EdDSA", |_| {}).await;
    let der =
        latchkey::auth::signing::PrivateKey::generate(latchkey::auth::signing::Algorithm::EdDsa)
            .unwrap();
    let pem = pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.pem");
    std::fs::write(&file, pem).unwrap();
    let (ok, out) = latchkey(
        &s.database_url,
        "EdDSA",
        &["keys", "import", file.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let kid = out.split_whitespace().nth(1).unwrap().to_owned();
    assert!(kids(&jwks(&s).await).contains(&kid));
    // The same file again is refused; a file of another algorithm too.
    let (ok, out) = latchkey(
        &s.database_url,
        "EdDSA",
        &["keys", "import", file.to_str().unwrap()],
    );
    assert!(!ok && out.contains("stored already"), "{out}");
    let (ok, out) = latchkey(
        &s.database_url,
        "ES256",
        &["keys", "import", file.to_str().unwrap()],
    );
    assert!(!ok && out.contains("ES256"), "{out}");

    let (ok, out) = latchkey(&s.database_url, "EdDSA", &["keys", "rotate", "--force"]);
    assert!(ok, "{out}");
    let (access, _) = tokens(&s.new_user().await);
    assert_eq!(header(&access)["kid"], kid.as_str());
    assert!(verifies_offline(&access, &jwks(&s).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_and_audience_are_added_when_set_and_checked_on_every_token() {
    let s = TestServer::start_with(|c| {
        c.jwt_issuer = Some("https://auth.example.com".into());
        c.jwt_audience = Some("orders-api".into());
        c.session_cache_millis = 0;
    })
    .await;
    let (access, refresh) = tokens(&s.new_user().await);
    for token in [&access, &refresh] {
        assert_eq!(claims(token)["iss"], "https://auth.example.com");
        assert_eq!(claims(token)["aud"], "orders-api");
    }
    assert_eq!(me(&s, &access).await, StatusCode::OK);
    // An instance configured for another audience, or for none, refuses them.
    let other = second_instance(&s, |c| {
        c.jwt_issuer = Some("https://auth.example.com".into());
        c.jwt_audience = Some("billing-api".into());
    })
    .await;
    let plain = second_instance(&s, |_| {}).await;
    for on in [&other, &plain] {
        assert_error(
            on.get_as(&access, "/auth/me").await,
            StatusCode::UNAUTHORIZED,
            "token_not_valid",
        )
        .await;
        let r = on
            .post("/auth/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_not_valid").await;
    }
    // And a token without them is refused where they are required.
    let (plain_access, _) = tokens(&plain.new_user().await);
    assert!(claims(&plain_access).get("aud").is_none());
    assert_error(
        s.get_as(&plain_access, "/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_keep_one_current_and_one_next_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(&dir).await;
    let adjust = |c: &mut Config| c.jwt_algorithm = "ES256".parse().unwrap();
    let (a, b) = tokio::join!(
        TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), adjust),
        TestServer::start_on(tempfile::tempdir().unwrap(), url.clone(), adjust)
    );
    let published = jwks(&a).await;
    assert_eq!(kids(&published).len(), 2, "{published}");
    assert_eq!(published, jwks(&b).await);
    let (access, _) = tokens(&a.new_user().await);
    assert_eq!(me(&b, &access).await, StatusCode::OK);
    drop(dir);
}
