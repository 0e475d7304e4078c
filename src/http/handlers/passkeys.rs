//! The passkeys' routes: registration (options, then the credential), the
//! list, deletion, and the login (options, then the assertion). Options go
//! out in the WebAuthn JSON encoding `PublicKeyCredential.parseCreationOptionsFromJSON`
//! / `parseRequestOptionsFromJSON` take, under `publicKey`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::super::error::ApiError;
use super::super::extract::{Caller, Client, Form};
use super::super::openapi::{ErrorBody, FieldErrorsBody};
use super::super::requests::{PasskeyLoginRequest, PasskeyRegisterRequest};
use super::super::AppState;
use crate::auth::passkeys::{CeremonyOptions, PasskeyView};
use crate::auth::AuthError;

/// A ceremony's options.
#[derive(Serialize, ToSchema)]
pub(in crate::http) struct PasskeyOptionsBody {
    /// Send it back with the credential.
    challenge_id: String,
    /// For `PublicKeyCredential.parseCreationOptionsFromJSON` (registration)
    /// or `parseRequestOptionsFromJSON` (login): base64url binary fields.
    #[serde(rename = "publicKey")]
    #[schema(value_type = Value)]
    public_key: Value,
}

impl PasskeyOptionsBody {
    fn new<T: Serialize>(challenge_id: String, public_key: &T) -> Result<Self, ApiError> {
        let public_key = serde_json::to_value(public_key)
            .map_err(|e| AuthError::Internal(format!("passkey options: {e}")))?;
        Ok(Self {
            challenge_id,
            public_key,
        })
    }
}

/// A passkey of the caller.
#[derive(Serialize, ToSchema)]
pub(in crate::http) struct PasskeyBody {
    /// Id, for `DELETE /auth/passkeys/{id}`.
    id: String,
    /// The name given at registration.
    name: String,
    /// Registration, RFC 3339.
    created_at: String,
    /// The last login with it, RFC 3339 (`null`: never).
    last_used_at: Option<String>,
}

impl From<PasskeyView> for PasskeyBody {
    fn from(p: PasskeyView) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: super::super::rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(super::super::rfc3339),
        }
    }
}

/// Start registering a passkey: options for `navigator.credentials.create`
/// (a discoverable credential, user verification required, `none`
/// attestation, the caller's passkeys excluded). The challenge lives 5
/// minutes and is used once.
#[utoipa::path(post, path = "/auth/passkeys/register/options", tag = "passkeys",
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The options", body = PasskeyOptionsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 404, description = "Passkeys are off (no origin on the rp id)", body = ErrorBody),
    ))]
pub async fn passkey_registration_options(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let CeremonyOptions {
        challenge_id,
        options,
    } = state.auth.passkey_registration_options(&caller).await?;
    let body = PasskeyOptionsBody::new(challenge_id, &options.public_key)?;
    Ok(Json(body).into_response())
}

/// Finish registering: the created credential (`credential.toJSON()`) and
/// its name.
#[utoipa::path(post, path = "/auth/passkeys/register", tag = "passkeys",
    request_body = PasskeyRegisterRequest, security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 201, description = "Registered", body = PasskeyBody),
        (status = 400, description = "Missing fields, a challenge that is unknown, expired, used or not this user's registration (`challenge_id`), a credential that does not verify (origin, rp id, no user verification) or is registered already (`credential`)", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 404, description = "Passkeys are off", body = ErrorBody),
    ))]
pub async fn register_passkey(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<PasskeyRegisterRequest>,
) -> Result<Response, ApiError> {
    let passkey = state.auth.register_passkey(&caller, form.parse()?).await?;
    Ok((StatusCode::CREATED, Json(PasskeyBody::from(passkey))).into_response())
}

/// The caller's passkeys, oldest first.
#[utoipa::path(get, path = "/auth/passkeys", tag = "passkeys", security(("bearer" = [])),
    responses(
        (status = 200, description = "The passkeys", body = Vec<PasskeyBody>),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
    ))]
pub async fn passkeys(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let passkeys = state.auth.passkeys(&caller).await?;
    let body: Vec<PasskeyBody> = passkeys.into_iter().map(PasskeyBody::from).collect();
    Ok(Json(body).into_response())
}

/// Delete one of the caller's passkeys: it logs in no more. The last one
/// of an account without a password is kept.
#[utoipa::path(delete, path = "/auth/passkeys/{id}", tag = "passkeys",
    params(("id" = String, Path, description = "Passkey id, from `GET /auth/passkeys`")),
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The account's last way to log in (no password)", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 404, description = "No passkey of the caller with that id", body = ErrorBody),
    ))]
pub async fn delete_passkey(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.auth.delete_passkey(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Start a passkey login: options for `navigator.credentials.get` (any
/// discoverable credential of the rp id; no account named), for a button
/// or for `mediation: "conditional"`. The challenge lives 5 minutes and is
/// used once.
#[utoipa::path(post, path = "/auth/passkeys/login/options", tag = "passkeys",
    security(("csrf" = [])),
    responses(
        (status = 200, description = "The options", body = PasskeyOptionsBody),
        (status = 404, description = "Passkeys are off", body = ErrorBody),
        (status = 429, description = "The address holds LATCHKEY_PASSKEY_CHALLENGES_PER_ADDRESS unanswered challenges", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the oldest of them expires"))),
    ))]
pub async fn passkey_login_options(
    State(state): State<AppState>,
    Client(client): Client,
) -> Result<Response, ApiError> {
    let CeremonyOptions {
        challenge_id,
        options,
    } = state.auth.passkey_login_options(&client).await?;
    let body = PasskeyOptionsBody::new(challenge_id, &options.public_key)?;
    Ok(Json(body).into_response())
}

/// Log in with a passkey: the assertion (`credential.toJSON()`). A passkey
/// with user verification needs no second step, TOTP or not.
#[utoipa::path(post, path = "/auth/passkeys/login", tag = "passkeys",
    request_body = PasskeyLoginRequest, security(("csrf" = [])),
    responses(
        (status = 200, description = "Logged in; also `Set-Cookie: latchkey_device=...` (HttpOnly)", body = super::UserWithTokens),
        (status = 400, description = "Missing fields, or a challenge that is unknown, expired, used or not a login's (`challenge_id`)", body = FieldErrorsBody),
        (status = 401, description = "The assertion is refused: unknown or deleted passkey, wrong origin or rp id, no user verification, bad signature, a sign counter gone backwards, inactive account", body = ErrorBody),
        (status = 403, description = "The address is not verified while LATCHKEY_REQUIRE_VERIFIED_EMAIL is on", body = ErrorBody),
        (status = 404, description = "Passkeys are off", body = ErrorBody),
        (status = 429, description = "Too many failed logins from the address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn login_passkey(
    State(state): State<AppState>,
    Client(client): Client,
    Form(form): Form<PasskeyLoginRequest>,
) -> Result<Response, ApiError> {
    let logged_in = state.auth.login_passkey(form.parse()?, &client).await?;
    Ok(super::logged_in_response(&state, &logged_in))
}
