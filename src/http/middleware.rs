//! Cross-cutting request handling: security headers, CORS, CSRF, early body
//! size checks, and JSON bodies for errors produced outside our handlers.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{self, ApiError};
use super::AppState;

/// `X-Content-Type-Options: nosniff` on every response; `Cache-Control:
/// no-store` on everything under `/auth/` (tokens, user data, CSRF tokens).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let private = req.uri().path().starts_with("/auth");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The configured CORS origins.
#[derive(Debug, Clone)]
pub struct Origins {
    allowed: Vec<String>,
}

impl Origins {
    /// Normalise the configured list (no trailing slashes, scheme and host lowercased).
    pub fn new(list: &[String]) -> Self {
        let allowed = list
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty() && o != "*")
            .collect();
        Self { allowed }
    }

    /// Whether `origin` is in the list (exact match; `*` is never honoured).
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
    }
}

const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
const ALLOW_HEADERS: &str = "Content-Type, Authorization, X-CSRFToken, X-CSRF-Token";
const EXPOSE_HEADERS: &str = "Retry-After, X-Request-Id";

/// CORS with credentials for allowed origins only: preflights are answered
/// here; other responses get the `Access-Control-Allow-*` headers when, and
/// only when, the request's `Origin` is allowed. `Vary: Origin` always.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| state.origins.allows(o))
        .and_then(|o| HeaderValue::from_str(o).ok());

    let mut response = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(ALLOW_METHODS));
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        if origin.is_some() {
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
        }
        r
    } else {
        let mut r = next.run(req).await;
        if origin.is_some() {
            r.headers_mut().insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
        r
    };
    let headers = response.headers_mut();
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// CSRF protection for unsafe requests under `/auth/`: the `Origin`, when
/// sent, must be allowed or our own; the signed token must be in
/// `X-CSRFToken` or `X-CSRF-Token`, and equal the `csrftoken` cookie when
/// that is sent too.
pub async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_unsafe(req.method()) {
        if let Err(e) = check_csrf(&state, req.headers()) {
            return e.into_response();
        }
    }
    next.run(req).await
}

fn check_csrf(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !state.origins.allows(origin) && !is_own_origin(origin, headers, state.https) {
            let shown: String = origin.chars().take(200).collect();
            return Err(ApiError::CsrfOrigin(shown));
        }
    }
    let header = ["x-csrftoken", "x-csrf-token"]
        .iter()
        .find_map(|name| headers.get(*name))
        .map(|v| v.to_str().unwrap_or(""));
    let cookie = super::extract::cookie(headers, super::CSRF_COOKIE);
    state.auth.check_csrf(header, cookie)?;
    Ok(())
}

/// Whether `origin` is this server as the client reached it (`Host`).
fn is_own_origin(origin: &str, headers: &HeaderMap, https: bool) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let scheme = if https { "https" } else { "http" };
    origin
        .strip_prefix(scheme)
        .and_then(|rest| rest.strip_prefix("://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// Refuse a declared `Content-Length` over the limit before reading anything.
pub async fn body_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes as u64) {
        return ApiError::PayloadTooLarge(state.max_body_bytes).into_response();
    }
    next.run(req).await
}

/// Give any error response that is not already JSON (from the router or a
/// layer) the contract's JSON body, keeping its status and headers.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (json_parts, body) = error::for_status(status, method.as_str()).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        json_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_never_by_wildcard() {
        let o = Origins::new(&["http://localhost:3000/".into(), "*".into()]);
        assert!(o.allows("http://localhost:3000"));
        assert!(!o.allows("http://localhost:3001"));
        assert!(!o.allows("http://evil.example"));
        assert!(!o.allows("null"));
    }

    #[test]
    fn own_origin_follows_host_and_scheme() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "api.example.com".parse().unwrap());
        assert!(is_own_origin("http://api.example.com", &h, false));
        assert!(!is_own_origin("https://api.example.com", &h, false));
        assert!(is_own_origin("https://api.example.com", &h, true));
        assert!(!is_own_origin("http://api.example.com.evil", &h, false));
    }
}
