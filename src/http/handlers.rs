//! Route handlers: extract, call the domain, shape the JSON.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{cookie, Caller, Client, JsonObject};
use super::{AppState, CSRF_COOKIE};
use crate::auth::{Credentials, Registration, TokenPair, UserView};

/// `{"id","email","name"}`.
#[derive(Serialize)]
struct UserBody<'a> {
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
#[derive(Serialize)]
struct UserWithTokens<'a> {
    #[serde(flatten)]
    user: UserBody<'a>,
    tokens: RefreshFirst<'a>,
}

#[derive(Serialize)]
struct RefreshFirst<'a> {
    refresh: &'a str,
    access: &'a str,
}

fn user_with_tokens(status: StatusCode, user: &UserView, tokens: &TokenPair) -> Response {
    let body = UserWithTokens {
        user: user.into(),
        tokens: RefreshFirst {
            refresh: &tokens.refresh,
            access: &tokens.access,
        },
    };
    (status, Json(body)).into_response()
}

/// `GET /auth/csrf/`: the token in the body and in a script-readable cookie.
pub async fn csrf_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = state.auth.csrf_token(cookie(&headers, CSRF_COOKIE))?;
    let secure = if state.https { "; Secure" } else { "" };
    let set_cookie = format!(
        "{CSRF_COOKIE}={token}; Max-Age={}; Path=/; SameSite=Lax{secure}",
        state.csrf_max_age
    );
    let mut response = Json(json!({ "csrfToken": token })).into_response();
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /auth/register`.
pub async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let form = Registration {
        name: body.required("name"),
        email: body.required("email"),
        password: body.password("password"),
    };
    let (user, tokens) = state.auth.register(form, &client).await?;
    Ok(user_with_tokens(StatusCode::CREATED, &user, &tokens))
}

/// `POST /auth/login`.
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let form = Credentials {
        email: body.field("email"),
        name: body.field("name"),
        password: body.password("password"),
    };
    let (user, tokens) = state.auth.login(form, &client).await?;
    Ok(user_with_tokens(StatusCode::OK, &user, &tokens))
}

/// `POST /auth/logout`: needs the access token and the refresh token.
pub async fn logout(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let refresh = token_field(&body, "refresh")?;
    state.auth.logout(&caller, &refresh).await?;
    Ok(Json(json!({ "detail": "Successfully logged out." })).into_response())
}

/// `GET /auth/me`.
pub async fn me(Caller(caller): Caller) -> Response {
    Json(UserBody::from(&caller.user)).into_response()
}

/// `POST /auth/token/refresh/`: rotation.
pub async fn refresh(
    State(state): State<AppState>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let refresh = token_field(&body, "refresh")?;
    let tokens = state.auth.refresh(&refresh).await?;
    Ok(Json(json!({ "access": tokens.access, "refresh": tokens.refresh })).into_response())
}

/// `POST /auth/token/verify/`.
pub async fn verify(State(state): State<AppState>, body: JsonObject) -> Result<Response, ApiError> {
    let token = token_field(&body, "token")?;
    state.auth.verify(&token).await?;
    Ok(Json(json!({})).into_response())
}

/// A required, non-blank token field.
fn token_field(body: &JsonObject, name: &str) -> Result<String, ApiError> {
    let value = body.required(name).and_then(|t| {
        if t.is_empty() {
            Err("This field may not be blank.".to_owned())
        } else {
            Ok(t)
        }
    });
    value
        .map_err(|m| crate::auth::AuthError::Invalid(crate::auth::FieldErrors::one(name, m)).into())
}

/// `GET /healthz`: the process serves.
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.auth.store().ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(_) => super::unavailable(),
    }
}
