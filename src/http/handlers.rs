//! Route handlers: extract, call the domain, shape the JSON.

pub(super) mod account;
pub(super) mod keys;
pub(super) mod mfa;
pub(super) mod passkeys;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{cookie, Caller, Client, Form};
use super::openapi::ErrorBody;
use super::requests::{
    LoginRequest, PasswordChangeRequest, RefreshRequest, RegisterRequest, VerifyRequest,
};
use super::{refresh_cookie, AppState, CSRF_COOKIE, DEVICE_COOKIE};
use crate::auth::{LoggedIn, SessionView, TokenPair, UserView};

/// A user: `{"id","email","name"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub(super) struct UserBody<'a> {
    id: i64,
    email: &'a str,
    name: &'a str,
}

impl<'a> From<&'a UserView> for UserBody<'a> {
    fn from(u: &'a UserView) -> Self {
        Self {
            id: u.id,
            email: &u.email,
            name: &u.name,
        }
    }
}

/// The seed's "user + tokens" shape; `refresh` before `access`, as the seed.
#[derive(Serialize, ToSchema)]
#[schema(as = UserWithTokens)]
pub(super) struct UserWithTokens<'a> {
    #[serde(flatten)]
    user: UserBody<'a>,
    tokens: RefreshFirst<'a>,
}

/// A registration while verified addresses are required: the user, no tokens.
#[derive(Serialize, ToSchema)]
#[schema(as = UnverifiedUser)]
pub(super) struct UnverifiedUser<'a> {
    #[serde(flatten)]
    user: UserBody<'a>,
    /// Always false: the verification link is on its way.
    email_verified: bool,
}

/// A fresh token pair.
#[derive(Serialize, ToSchema)]
#[schema(as = TokenPair)]
pub(super) struct RefreshFirst<'a> {
    /// Refresh token (JWT, `token_type` `refresh`). Absent with
    /// `LATCHKEY_REFRESH_COOKIE=true`: it is in the `latchkey_refresh` cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh: Option<&'a str>,
    /// Access token (JWT, `token_type` `access`).
    access: &'a str,
}

/// `GET /auth/csrf/`'s body.
#[derive(Serialize, ToSchema)]
pub(super) struct CsrfBody {
    /// The token to send back in `X-CSRF-Token` (also set as the `csrftoken` cookie).
    #[serde(rename = "csrfToken")]
    csrf_token: String,
}

/// A success message.
#[derive(Serialize, ToSchema)]
pub(super) struct DetailBody {
    /// What happened.
    detail: &'static str,
}

/// `POST /auth/logout/all`'s body.
#[derive(Serialize, ToSchema)]
pub(super) struct LogoutAllBody {
    /// What happened.
    detail: &'static str,
    /// How many sessions ended.
    sessions_ended: u64,
}

/// A token-verification success: an empty object.
#[derive(Serialize, ToSchema)]
pub(super) struct Empty {}

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub(super) struct StatusBody {
    /// Always `ok`.
    status: &'static str,
}

/// One of the caller's live sessions.
#[derive(Serialize, ToSchema)]
pub(super) struct SessionBody {
    /// Session id (the tokens' `sid` claim).
    id: String,
    /// Start (login or registration), RFC 3339 UTC.
    created: String,
    /// Last time the session issued tokens (start or refresh), RFC 3339 UTC.
    last_used: String,
    /// When the session ends unless refreshed, RFC 3339 UTC.
    expires: String,
    /// Client address at login.
    client_addr: Option<String>,
    /// `User-Agent` at login.
    user_agent: Option<String>,
    /// Whether the access token of this request belongs to it.
    current: bool,
}

impl From<SessionView> for SessionBody {
    fn from(s: SessionView) -> Self {
        Self {
            id: s.id,
            created: super::rfc3339(s.created_at),
            last_used: super::rfc3339(s.last_used_at),
            expires: super::rfc3339(s.expires_at),
            client_addr: s.client_addr,
            user_agent: s.user_agent,
            current: s.current,
        }
    }
}

fn user_with_tokens(
    state: &AppState,
    status: StatusCode,
    user: &UserView,
    tokens: &TokenPair,
) -> Response {
    let body = UserWithTokens {
        user: user.into(),
        tokens: token_pair(state, tokens),
    };
    with_refresh_cookie(state, (status, Json(body)).into_response(), tokens)
}

/// The pair as a body: without the refresh token in cookie mode.
fn token_pair<'a>(state: &AppState, tokens: &'a TokenPair) -> RefreshFirst<'a> {
    RefreshFirst {
        refresh: state
            .refresh_cookie
            .is_none()
            .then_some(tokens.refresh.as_str()),
        access: &tokens.access,
    }
}

/// `response`, with the refresh cookie set in cookie mode.
fn with_refresh_cookie(state: &AppState, mut response: Response, tokens: &TokenPair) -> Response {
    if let Some(cookie) = &state.refresh_cookie {
        cookie.set(&mut response, &tokens.refresh);
    }
    response
}

/// `response`, with the refresh cookie cleared in cookie mode.
fn clearing_refresh_cookie(state: &AppState, mut response: Response) -> Response {
    if let Some(cookie) = &state.refresh_cookie {
        cookie.clear(&mut response);
    }
    response
}

/// A CSRF token, in the body and in a script-readable cookie. A request
/// carrying a still-valid `csrftoken` cookie gets that same token back.
#[utoipa::path(get, path = "/auth/csrf", tag = "auth",
    responses((status = 200, description = "A CSRF token; also `Set-Cookie: csrftoken=...`", body = CsrfBody)))]
pub async fn csrf_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = state.auth.csrf_token(cookie(&headers, CSRF_COOKIE))?;
    let attributes = &state.csrf_cookie_attributes;
    let mut set_cookie =
        String::with_capacity(CSRF_COOKIE.len() + 1 + token.len() + attributes.len());
    set_cookie.push_str(CSRF_COOKIE);
    set_cookie.push('=');
    set_cookie.push_str(&token);
    set_cookie.push_str(attributes);
    let mut response = Json(CsrfBody { csrf_token: token }).into_response();
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Create an account and log it in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    security(("csrf" = [])),
    responses(
        (status = 201, description = "Registered; the first session's tokens, and a verification link mailed. With `LATCHKEY_REQUIRE_VERIFIED_EMAIL=true`: the user with `email_verified: false` and no tokens", body = UserWithTokens),
        (status = 400, description = "Invalid fields, taken email or name, weak password", body = super::openapi::FieldErrorsBody),
        (status = 429, description = "Too many registrations from the client's address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until registrations are accepted again"))),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    Form(form): Form<RegisterRequest>,
) -> Result<Response, ApiError> {
    let (user, tokens) = state.auth.register(form.parse(), &client).await?;
    Ok(match tokens {
        Some(tokens) => user_with_tokens(&state, StatusCode::CREATED, &user, &tokens),
        // LATCHKEY_REQUIRE_VERIFIED_EMAIL: no session until the address is verified.
        None => (
            StatusCode::CREATED,
            Json(UnverifiedUser {
                user: (&user).into(),
                email_verified: false,
            }),
        )
            .into_response(),
    })
}

/// Log in with `email` (or `name`) and `password`; starts a session.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    security(("csrf" = [])),
    responses(
        (status = 200, description = "Logged in; also `Set-Cookie: latchkey_device=...` (HttpOnly), which exempts this device from lockouts caused by other clients' failed logins", body = UserWithTokens),
        (status = 400, description = "Missing or invalid fields", body = super::openapi::FieldErrorsBody),
        (status = 401, description = "Wrong password, unknown or inactive account (indistinguishable); or, for a right password of an account with a second factor, `mfa_required` with an `mfa_token` and no tokens (continue at `/auth/login/mfa`)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for the account or address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    Form(form): Form<LoginRequest>,
) -> Result<Response, ApiError> {
    let logged_in = state.auth.login(form.parse()?, &client).await?;
    Ok(logged_in_response(&state, &logged_in))
}

/// A login's 200: the user and tokens, and the device cookie.
fn logged_in_response(state: &AppState, logged_in: &LoggedIn) -> Response {
    let mut response = user_with_tokens(state, StatusCode::OK, &logged_in.user, &logged_in.tokens);
    let set_cookie = format!(
        "{DEVICE_COOKIE}={}{}",
        logged_in.device, state.device_cookie_attributes
    );
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// End the session of the given refresh token (and the access token's).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Logged out", body = DetailBody),
        (status = 400, description = "Missing refresh field", body = super::openapi::FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access or refresh token", body = ErrorBody),
        (status = 403, description = "CSRF failed, or the refresh token belongs to another user", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Form(form): Form<RefreshRequest>,
) -> Result<Response, ApiError> {
    let mode = state.refresh_cookie.as_ref();
    let (refresh, source) = refresh_cookie::presented(form, &headers, mode)?;
    if let Err(e) = state.auth.logout(&caller, &refresh).await {
        return Ok(refresh_cookie::refused(e.into(), source, mode));
    }
    let response = Json(DetailBody {
        detail: "Successfully logged out.",
    })
    .into_response();
    Ok(clearing_refresh_cookie(&state, response))
}

/// End every session of the caller, this one included.
#[utoipa::path(post, path = "/auth/logout/all", tag = "account",
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Every session ended", body = LogoutAllBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
    ))]
pub async fn logout_all(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let ended = state.auth.logout_all(&caller).await?;
    let response = Json(LogoutAllBody {
        detail: "Successfully logged out of all sessions.",
        sessions_ended: ended,
    })
    .into_response();
    Ok(clearing_refresh_cookie(&state, response))
}

/// Change the password; every other session of the user ends.
#[utoipa::path(post, path = "/auth/password/change", tag = "account",
    request_body = PasswordChangeRequest,
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Changed; other sessions ended, this one kept", body = DetailBody),
        (status = 400, description = "Wrong old password, or the new one fails the policy", body = super::openapi::FieldErrorsBody),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 429, description = "Too many wrong old passwords (the login throttle of the account)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until attempts are accepted again"))),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Form(form): Form<PasswordChangeRequest>,
) -> Result<Response, ApiError> {
    state.auth.change_password(&caller, form.parse()?).await?;
    Ok(Json(DetailBody {
        detail: "Password changed.",
    })
    .into_response())
}

/// The caller's live sessions, most recently used first.
#[utoipa::path(get, path = "/auth/sessions", tag = "account", security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = Vec<SessionBody>),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
    ))]
pub async fn sessions(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let sessions = state.auth.sessions(&caller).await?;
    let body: Vec<SessionBody> = sessions.into_iter().map(SessionBody::from).collect();
    Ok(Json(body).into_response())
}

/// End one of the caller's sessions (the current one included).
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "account",
    params(("id" = String, Path, description = "Session id, from `GET /auth/sessions`")),
    security(("bearer" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
        (status = 404, description = "No live session of the caller with that id", body = ErrorBody),
    ))]
pub async fn end_session(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.auth.end_session(&caller, &id).await?;
    let response = StatusCode::NO_CONTENT.into_response();
    if caller.session_id.as_str() == id {
        return Ok(clearing_refresh_cookie(&state, response));
    }
    Ok(response)
}

/// Rotate a refresh token into a new pair. The old token is retired;
/// presenting it again (after a short grace) revokes the whole session.
#[utoipa::path(post, path = "/auth/token/refresh", tag = "tokens", request_body = RefreshRequest,
    security(("csrf" = [])),
    responses(
        (status = 200, description = "A new pair (with `LATCHKEY_REFRESH_COOKIE=true`: `{\"access\"}`, the refresh token in `Set-Cookie: latchkey_refresh=...; HttpOnly; Path=/auth/`)", body = RefreshFirst),
        (status = 400, description = "Missing refresh field", body = super::openapi::FieldErrorsBody),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RefreshRequest>,
) -> Result<Response, ApiError> {
    let mode = state.refresh_cookie.as_ref();
    let (refresh, source) = refresh_cookie::presented(form, &headers, mode)?;
    let tokens = match state.auth.refresh(&refresh).await {
        Ok(tokens) => tokens,
        Err(e) => return Ok(refresh_cookie::refused(e.into(), source, mode)),
    };
    let response = Json(token_pair(&state, &tokens)).into_response();
    Ok(with_refresh_cookie(&state, response, &tokens))
}

/// Whether a token (access or refresh) is valid now.
#[utoipa::path(post, path = "/auth/token/verify", tag = "tokens", request_body = VerifyRequest,
    security(("csrf" = [])),
    responses(
        (status = 200, description = "Valid", body = Empty),
        (status = 400, description = "Missing token field", body = super::openapi::FieldErrorsBody),
        (status = 401, description = "Invalid, expired or revoked", body = ErrorBody),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    Form(form): Form<VerifyRequest>,
) -> Result<Response, ApiError> {
    state.auth.verify(&form.parse()?).await?;
    Ok(Json(Empty {}).into_response())
}

/// Liveness: the process serves.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Serving", body = StatusBody)))]
pub async fn healthz() -> Response {
    Json(StatusBody { status: "ok" }).into_response()
}

/// Readiness: the database answers a read and commits a write.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = StatusBody),
        (status = 503, description = "The database is not reachable or cannot take writes", body = ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.auth.store().ping().await {
        Ok(()) => Json(StatusBody { status: "ok" }).into_response(),
        Err(_) => super::error::unavailable(),
    }
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )],
        state.auth.render_metrics(),
    )
        .into_response()
}

/// This document: the OpenAPI 3.1 description of the API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi_json.clone(),
    )
        .into_response()
}

/// The interactive API reference (Swagger UI, served from the binary).
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "HTML page", content_type = "text/html", body = String)))]
pub async fn docs_page() -> Response {
    super::docs::asset("index.html")
}

/// A file of the API reference page (scripts, styles, icons).
#[utoipa::path(get, path = "/docs/{file}", tag = "operations",
    params(("file" = String, Path, description = "Asset name")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = String),
        (status = 404, description = "No such file", body = ErrorBody),
    ))]
pub async fn docs_asset(Path(file): Path<String>) -> Response {
    super::docs::asset(&file)
}
