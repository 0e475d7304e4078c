//! `GET /.well-known/jwks.json`: the public keys other services verify
//! latchkey's tokens with.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::signing::JWKS_MAX_AGE_SECONDS;
use crate::http::AppState;

/// One public key (RFC 7517), as the JWKS lists it.
#[derive(Serialize, ToSchema)]
#[schema(as = Jwk)]
#[allow(dead_code)]
pub(in crate::http) struct JwkBody {
    /// `OKP` (Ed25519), `EC` (P-256) or `RSA`.
    kty: String,
    /// `Ed25519` or `P-256`.
    crv: Option<String>,
    /// The Ed25519 point or the P-256 x coordinate, base64url.
    x: Option<String>,
    /// The P-256 y coordinate, base64url.
    y: Option<String>,
    /// The RSA modulus, base64url.
    n: Option<String>,
    /// The RSA exponent, base64url.
    e: Option<String>,
    /// Key id: the `kid` header of the tokens it signs (its RFC 7638 thumbprint).
    kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    use_: String,
}

/// A JWK Set.
#[derive(Serialize, ToSchema)]
#[schema(as = Jwks)]
#[allow(dead_code)]
pub(in crate::http) struct JwksBody {
    /// The current key, the next one, and every previous key that may have
    /// signed a token still live; empty with HS256.
    keys: Vec<JwkBody>,
}

/// The public keys of the asymmetric signing keys (`LATCHKEY_JWT_ALGORITHM`
/// EdDSA, ES256 or RS256), for verifiers of access tokens; `{"keys": []}`
/// with HS256. Cacheable for five minutes; a key is published before it
/// signs anything.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "The JWK Set", body = JwksBody,
        headers(("Cache-Control" = String, description = "`public, max-age=300`")))))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.auth.jwks().await;
    let cache = format!("public, max-age={JWKS_MAX_AGE_SECONDS}");
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_vec(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&cache) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
