//! Routes of the account lifecycle: profile, password reset, email
//! verification, email change, deletion.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::super::error::ApiError;
use super::super::extract::{Caller, Client, Form};
use super::super::openapi::{ErrorBody, FieldErrorsBody};
use super::super::requests::account::{
    EmailChangeRequest, EmailTokenRequest, PasswordRequest, PasswordResetRequest, RenameRequest,
    ResetConfirmRequest,
};
use super::super::AppState;
use super::DetailBody;
use crate::auth::Profile;

/// The caller: `{"id","email","name","email_verified"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Profile)]
pub(in crate::http) struct ProfileBody<'a> {
    id: i64,
    email: &'a str,
    name: &'a str,
    /// Whether the address was proven (verification link, password reset,
    /// confirmed change, or the operator).
    email_verified: bool,
}

impl<'a> From<&'a Profile> for ProfileBody<'a> {
    fn from(p: &'a Profile) -> Self {
        Self {
            id: p.user.id,
            email: &p.user.email,
            name: &p.user.name,
            email_verified: p.email_verified,
        }
    }
}

fn detail(detail: &'static str) -> Response {
    Json(DetailBody { detail }).into_response()
}

/// The user behind the access token.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The current user", body = ProfileBody),
        (status = 401, description = "Missing, invalid, expired or revoked access token", body = ErrorBody),
    ))]
pub async fn me(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let profile = state.auth.profile(&caller);
    Ok(Json(ProfileBody::from(&profile)).into_response())
}

/// Rename the caller.
#[utoipa::path(patch, path = "/auth/me", tag = "account", request_body = RenameRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Renamed", body = ProfileBody),
        (status = 400, description = "Invalid or taken name", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
    ))]
pub async fn rename(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<RenameRequest>,
) -> Result<Response, ApiError> {
    let profile = state.auth.rename(&caller, &form.parse()?).await?;
    Ok(Json(ProfileBody::from(&profile)).into_response())
}

/// Delete the caller's account and everything of it; every session ends.
#[utoipa::path(delete, path = "/auth/me", tag = "account", request_body = PasswordRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Deleted; the email and name are free again"),
        (status = 400, description = "Missing or wrong password", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords (the login throttle of the account)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<PasswordRequest>,
) -> Result<Response, ApiError> {
    state.auth.delete_account(&caller, form.parse()?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Mail a password reset link, if the address has an active account. The
/// answer is the same either way.
#[utoipa::path(post, path = "/auth/password/reset", tag = "account", request_body = PasswordResetRequest,
    security(("csrf" = [])),
    responses(
        (status = 200, description = "The same answer for every address", body = DetailBody),
        (status = 400, description = "Missing or malformed email", body = FieldErrorsBody),
        (status = 429, description = "Too many requests from the client's address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until requests are accepted again"))),
    ))]
pub async fn password_reset(
    State(state): State<AppState>,
    Client(client): Client,
    Form(form): Form<PasswordResetRequest>,
) -> Result<Response, ApiError> {
    state
        .auth
        .request_password_reset(&form.parse()?, &client)
        .await?;
    Ok(detail(
        "If an account with this email exists, a password reset link has been sent.",
    ))
}

/// Set a new password with the token of a reset link; every session ends.
#[utoipa::path(post, path = "/auth/password/reset/confirm", tag = "account",
    request_body = ResetConfirmRequest, security(("csrf" = [])),
    responses(
        (status = 200, description = "Reset; log in with the new password", body = DetailBody),
        (status = 400, description = "Unknown, used or expired token, or a new password the policy refuses (the token stays usable)", body = FieldErrorsBody),
    ))]
pub async fn password_reset_confirm(
    State(state): State<AppState>,
    Form(form): Form<ResetConfirmRequest>,
) -> Result<Response, ApiError> {
    let (token, new_password) = form.parse()?;
    state
        .auth
        .confirm_password_reset(&token, new_password)
        .await?;
    Ok(detail("Password has been reset."))
}

/// Verify the address with the token of a verification link.
#[utoipa::path(post, path = "/auth/email/verify", tag = "account",
    request_body = EmailTokenRequest, security(("csrf" = [])),
    responses(
        (status = 200, description = "Verified", body = DetailBody),
        (status = 400, description = "Unknown, used or expired token", body = FieldErrorsBody),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    Form(form): Form<EmailTokenRequest>,
) -> Result<Response, ApiError> {
    state.auth.verify_email(&form.parse()?).await?;
    Ok(detail("Email verified."))
}

/// Mail the caller a new verification link.
#[utoipa::path(post, path = "/auth/email/verify/resend", tag = "account",
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Sent, or the address is verified already", body = DetailBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 429, description = "Too many resends", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until resends are accepted again"))),
    ))]
pub async fn resend_verification(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    use crate::auth::Resent;
    Ok(match state.auth.resend_verification(&caller).await? {
        Resent::Sent => detail("Verification email sent."),
        Resent::AlreadyVerified => detail("Email is already verified."),
    })
}

/// Ask to change the address: a confirmation link goes to the new one, a
/// notice to the current one.
#[utoipa::path(post, path = "/auth/email/change", tag = "account",
    request_body = EmailChangeRequest, security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Confirmation link sent to the new address", body = DetailBody),
        (status = 400, description = "Invalid, current or taken address; missing or wrong password", body = FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords (the login throttle of the account)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn change_email(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<EmailChangeRequest>,
) -> Result<Response, ApiError> {
    let (email, password) = form.parse()?;
    state
        .auth
        .request_email_change(&caller, &email, password)
        .await?;
    Ok(detail(
        "A confirmation link has been sent to the new address.",
    ))
}

/// Confirm an email change with the token mailed to the new address.
#[utoipa::path(post, path = "/auth/email/change/confirm", tag = "account",
    request_body = EmailTokenRequest, security(("csrf" = [])),
    responses(
        (status = 200, description = "The address is changed (and verified)", body = DetailBody),
        (status = 400, description = "Unknown, used or expired token, or the address was taken meanwhile", body = FieldErrorsBody),
    ))]
pub async fn change_email_confirm(
    State(state): State<AppState>,
    Form(form): Form<EmailTokenRequest>,
) -> Result<Response, ApiError> {
    state.auth.confirm_email_change(&form.parse()?).await?;
    Ok(detail("Email changed."))
}
