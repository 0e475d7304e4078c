//! The second factor's routes: enrolment, confirmation, removal, new
//! recovery codes, the state, and the second step of a login.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::super::error::ApiError;
use super::super::extract::{Caller, Client, Form};
use super::super::openapi::{ErrorBody, FieldErrorsBody};
use super::super::requests::{MfaCodeRequest, MfaLoginRequest, MfaPasswordRequest};
use super::super::AppState;
use crate::auth::mfa::RecoveryCodes;

/// A pending TOTP enrolment.
#[derive(Serialize, ToSchema)]
pub(in crate::http) struct TotpEnrolmentBody {
    /// The secret, RFC 4648 base32 without padding (to type into an app).
    secret: String,
    /// `otpauth://totp/...`: what an authenticator app scans (as a QR code).
    otpauth_uri: String,
}

/// Recovery codes, shown once: each works once, in place of a TOTP code.
#[derive(Serialize, ToSchema)]
pub(in crate::http) struct RecoveryCodesBody {
    /// Ten single-use codes (`xxxx-xxxx-xxxx`).
    recovery_codes: Vec<String>,
}

impl From<RecoveryCodes> for RecoveryCodesBody {
    fn from(codes: RecoveryCodes) -> Self {
        Self {
            recovery_codes: codes.0,
        }
    }
}

/// The caller's second factors.
#[derive(Serialize, ToSchema)]
pub(in crate::http) struct MfaStatusBody {
    /// A confirmed TOTP secret: login needs a second factor.
    totp: bool,
    /// Unused recovery codes.
    recovery_codes_left: i64,
    /// Registered passkeys.
    passkeys: i64,
}

/// Start TOTP enrolment: a new secret, pending until confirmed (a pending
/// one is replaced). Needs the password.
#[utoipa::path(post, path = "/auth/mfa/totp", tag = "mfa", request_body = MfaPasswordRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The pending secret and its otpauth URI", body = TotpEnrolmentBody),
        (status = 400, description = "Wrong or missing password, or a second factor is already enabled", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn start_totp(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<MfaPasswordRequest>,
) -> Result<Response, ApiError> {
    let enrolment = state
        .auth
        .start_totp_enrolment(&caller, form.parse()?)
        .await?;
    Ok(Json(TotpEnrolmentBody {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
    })
    .into_response())
}

/// Confirm the pending enrolment with a current code: from now on login
/// needs a second factor. Every other session of the user ends.
#[utoipa::path(post, path = "/auth/mfa/totp/confirm", tag = "mfa", request_body = MfaCodeRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Enabled; the first recovery codes", body = RecoveryCodesBody),
        (status = 400, description = "Wrong code (`{\"code\": [\"Invalid code.\"]}`), or nothing pending", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
    ))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<MfaCodeRequest>,
) -> Result<Response, ApiError> {
    let codes = state.auth.confirm_totp(&caller, form.parse()?).await?;
    Ok(Json(RecoveryCodesBody::from(codes)).into_response())
}

/// Remove the second factor and its recovery codes. Needs the password;
/// every other session of the user ends.
#[utoipa::path(delete, path = "/auth/mfa/totp", tag = "mfa", request_body = MfaPasswordRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Removed (or there was none)"),
        (status = 400, description = "Wrong or missing password", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn disable_totp(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<MfaPasswordRequest>,
) -> Result<Response, ApiError> {
    state.auth.disable_totp(&caller, form.parse()?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ten new recovery codes; the old ones stop working. Needs the password.
#[utoipa::path(post, path = "/auth/mfa/recovery-codes", tag = "mfa", request_body = MfaPasswordRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The new codes", body = RecoveryCodesBody),
        (status = 400, description = "Wrong or missing password, or no second factor enabled", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<MfaPasswordRequest>,
) -> Result<Response, ApiError> {
    let codes = state
        .auth
        .regenerate_recovery_codes(&caller, form.parse()?)
        .await?;
    Ok(Json(RecoveryCodesBody::from(codes)).into_response())
}

/// The caller's second factors.
#[utoipa::path(get, path = "/auth/mfa", tag = "mfa", security(("bearer" = [])),
    responses(
        (status = 200, description = "The state", body = MfaStatusBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
    ))]
pub async fn mfa_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let status = state.auth.mfa_status(&caller).await?;
    Ok(Json(MfaStatusBody {
        totp: status.totp,
        recovery_codes_left: status.recovery_codes_left,
        passkeys: status.passkeys,
    })
    .into_response())
}

/// The second step of a login: the `mfa_token` of the password step and a
/// current TOTP code (±30 s, each accepted once) or an unused recovery code.
#[utoipa::path(post, path = "/auth/login/mfa", tag = "mfa", request_body = MfaLoginRequest,
    security(("csrf" = [])),
    responses(
        (status = 200, description = "Logged in; also `Set-Cookie: latchkey_device=...` (HttpOnly)", body = super::UserWithTokens),
        (status = 400, description = "Missing fields, or a wrong, replayed or used code (`{\"code\": [\"Invalid code.\"]}`)", body = FieldErrorsBody),
        (status = 401, description = "The mfa_token is unknown, expired (5 minutes), used, or dead after 5 wrong codes", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for the account or address (the login throttle)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn login_mfa(
    State(state): State<AppState>,
    Client(client): Client,
    Form(form): Form<MfaLoginRequest>,
) -> Result<Response, ApiError> {
    let logged_in = state.auth.login_mfa(form.parse()?, &client).await?;
    Ok(super::logged_in_response(&state, &logged_in))
}
