//! The one place errors become HTTP responses: status codes and the
//! contract's JSON shapes (DRF's), in a single `match`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::auth::{AuthError, TokenRejection};

/// DRF's words for a field that is not what its form wants.
pub mod drf {
    /// A required field is absent.
    pub const REQUIRED: &str = "This field is required.";
    /// A field is `null`.
    pub const NULL: &str = "This field may not be null.";
    /// A string field holds another JSON value.
    pub const NOT_A_STRING: &str = "Not a valid string.";
    /// A string field that must not be empty is.
    pub const BLANK: &str = "This field may not be blank.";
}

/// Everything a request can fail with, domain errors included.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain error.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No `Authorization: Bearer ...` header on a protected route.
    #[error("not authenticated")]
    NotAuthenticated,
    /// `Authorization: Bearer` with no token, or with more than one part.
    #[error("bad authorization header")]
    BadAuthorizationHeader,
    /// An unsafe request from an origin that is neither allowed nor our own.
    #[error("CSRF origin check failed")]
    CsrfOrigin(String),
    /// No such route.
    #[error("not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed(String),
    /// The body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// A body with a `Content-Type` other than JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// The body is not valid JSON.
    #[error("JSON parse error")]
    JsonSyntax(String),
    /// The body is JSON but not an object.
    #[error("JSON body is not an object")]
    NotAnObject(&'static str),
    /// The body could not be read (client went away mid-body).
    #[error("could not read the request body")]
    BodyRead,
    /// The body did not arrive within the body-read timeout.
    #[error("request body timed out")]
    BodyTimeout,
}

fn detail(status: StatusCode, detail: &str, code: &str) -> Response {
    (
        status,
        axum::Json(json!({ "detail": detail, "code": code })),
    )
        .into_response()
}

fn with_header(mut response: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

const INVALID_TOKEN: &str = "Given token not valid for any token type";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let unauthorized = |d: &str, code: &str| {
            with_header(
                detail(S::UNAUTHORIZED, d, code),
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"api\"",
            )
        };
        match self {
            ApiError::Auth(e) => match e {
                AuthError::Invalid(fields) => (S::BAD_REQUEST, axum::Json(fields.0)).into_response(),
                AuthError::InvalidCredentials => unauthorized(
                    "No active account found with the given credentials",
                    "no_active_account",
                ),
                AuthError::MfaRequired(challenge) => with_header(
                    (
                        S::UNAUTHORIZED,
                        axum::Json(json!({
                            "detail": "Two-factor authentication required.",
                            "code": "mfa_required",
                            "mfa_token": challenge.token,
                            "methods": challenge.methods,
                        })),
                    )
                        .into_response(),
                    header::WWW_AUTHENTICATE,
                    "Bearer realm=\"api\"",
                ),
                AuthError::Throttled { retry_after } => with_header(
                    detail(
                        S::TOO_MANY_REQUESTS,
                        &format!("Request was throttled. Expected available in {retry_after} seconds."),
                        "throttled",
                    ),
                    header::RETRY_AFTER,
                    &retry_after.to_string(),
                ),
                AuthError::Token(TokenRejection::Invalid) => unauthorized(INVALID_TOKEN, "token_not_valid"),
                AuthError::Token(TokenRejection::Expired) => unauthorized("Token is expired", "token_not_valid"),
                AuthError::Token(TokenRejection::Revoked) => unauthorized("Token is blacklisted", "token_not_valid"),
                AuthError::NotOwner => detail(
                    S::FORBIDDEN,
                    "The refresh token does not belong to the authenticated user.",
                    "permission_denied",
                ),
                AuthError::EmailNotVerified => {
                    detail(S::FORBIDDEN, "E-mail is not verified.", "email_not_verified")
                }
                AuthError::NotFound => detail(S::NOT_FOUND, "Not found.", "not_found"),
                AuthError::Csrf(reason) => detail(S::FORBIDDEN, &format!("CSRF Failed: {reason}"), "csrf_failed"),
                AuthError::Overloaded => with_header(
                    detail(
                        S::SERVICE_UNAVAILABLE,
                        "Too many password checks are in progress; retry shortly.",
                        "service_unavailable",
                    ),
                    header::RETRY_AFTER,
                    "1",
                ),
                AuthError::Unavailable(cause) => {
                    tracing::error!(%cause, "database unavailable");
                    unavailable()
                }
                AuthError::Internal(cause) => {
                    tracing::error!(%cause, "internal error");
                    internal_error()
                }
            },
            ApiError::NotAuthenticated => {
                unauthorized("Authentication credentials were not provided.", "not_authenticated")
            }
            ApiError::BadAuthorizationHeader => unauthorized(
                "Authorization header must contain two space-delimited values",
                "bad_authorization_header",
            ),
            ApiError::CsrfOrigin(origin) => detail(
                S::FORBIDDEN,
                &format!("CSRF Failed: Origin checking failed - {origin} does not match any trusted origins."),
                "csrf_failed",
            ),
            ApiError::NotFound => detail(S::NOT_FOUND, "Not found.", "not_found"),
            ApiError::MethodNotAllowed(method) => {
                detail(S::METHOD_NOT_ALLOWED, &format!("Method \"{method}\" not allowed."), "method_not_allowed")
            }
            ApiError::BodyTimeout => with_header(
                detail(
                    S::REQUEST_TIMEOUT,
                    "The request body did not arrive in time.",
                    "request_timeout",
                ),
                header::CONNECTION,
                "close",
            ),
            ApiError::PayloadTooLarge(limit) => detail(
                S::PAYLOAD_TOO_LARGE,
                &format!("Request body exceeds the limit of {limit} bytes."),
                "payload_too_large",
            ),
            ApiError::UnsupportedMediaType(ct) => detail(
                S::UNSUPPORTED_MEDIA_TYPE,
                &format!("Unsupported media type \"{ct}\" in request."),
                "unsupported_media_type",
            ),
            ApiError::JsonSyntax(msg) => detail(S::BAD_REQUEST, &format!("JSON parse error - {msg}"), "parse_error"),
            ApiError::NotAnObject(kind) => (
                S::BAD_REQUEST,
                axum::Json(json!({
                    "non_field_errors": [format!("Invalid data. Expected a dictionary, but got {kind}.")]
                })),
            )
                .into_response(),
            ApiError::BodyRead => detail(S::BAD_REQUEST, "The request body could not be read.", "parse_error"),
        }
    }
}

/// The 503 of a database that cannot serve (unreachable, busy, or unable
/// to take writes), also `/readyz`'s answer then.
pub fn unavailable() -> Response {
    with_header(
        detail(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; retry shortly.",
            "service_unavailable",
        ),
        header::RETRY_AFTER,
        "1",
    )
}

/// The 500 body, also used for panics caught by the outermost layer.
pub fn internal_error() -> Response {
    detail(
        StatusCode::INTERNAL_SERVER_ERROR,
        "A server error occurred.",
        "error",
    )
}

/// A JSON body for a bare error status produced outside our handlers.
pub fn for_status(status: StatusCode, method: &str) -> Response {
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound.into_response(),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(method.to_owned()).into_response()
        }
        s if s.is_server_error() => internal_error(),
        s => {
            let text = s.canonical_reason().unwrap_or("Error");
            let code: Value = text.to_ascii_lowercase().replace(' ', "_").into();
            (
                s,
                axum::Json(json!({ "detail": format!("{text}."), "code": code })),
            )
                .into_response()
        }
    }
}
