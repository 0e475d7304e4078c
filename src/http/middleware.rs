//! Cross-cutting request handling: security headers, CORS, CSRF, early body
//! size checks, and JSON bodies for errors produced outside our handlers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{self, ApiError};
use super::AppState;

/// The request-id header, read from clients and proxies and echoed back.
pub const REQUEST_ID: &str = "x-request-id";

/// Everything every request goes through, in one layer (one boxed future
/// per request instead of four):
///
/// - a declared `Content-Length` over the limit is refused before the body is read;
/// - CORS: preflights are answered here; other responses get the
///   `Access-Control-Allow-*` headers when, and only when, the `Origin` is
///   allowed; `Vary: Origin` always;
/// - error responses made outside our handlers (the router's 404/405) get
///   the contract's JSON body;
/// - `X-Content-Type-Options: nosniff` on every response, `Cache-Control:
///   no-store` on everything under `/auth/` (tokens, user data, CSRF tokens);
/// - a request id (the client's `X-Request-Id` when well-formed, else a new
///   one) on a span around the request, so every log line it causes carries
///   it, and echoed in the response;
/// - request count and latency metrics by route template, method and status.
pub async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id(req.headers());
    // A cheap clone (an `Arc<str>` inside), not a copy of the template.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map(MatchedPath::as_str);
    let method = req.method().clone();
    let mut response = crate::telemetry::with_request_id(request_id.clone(), async {
        // The path only: query strings may carry secrets. Copied only when
        // the access line will be written.
        let path = tracing::enabled!(tracing::Level::DEBUG).then(|| req.uri().path().to_owned());
        let response = handle(&state, route, req, next).await;
        if let Some(path) = path {
            let latency_ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(method = %method, path, status = response.status().as_u16(), latency_ms, "served");
        }
        response
    })
    .await;

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.auth.metrics().http_request(
        route.unwrap_or("unmatched"),
        method.as_str(),
        status,
        elapsed.as_secs_f64(),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The client's request id when it is 1–128 characters of `[A-Za-z0-9._:-]`
/// (anything else could forge or break log lines), else a fresh one.
fn request_id(headers: &HeaderMap) -> Arc<str> {
    let given = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v));
    match given {
        Some(id) => Arc::from(id),
        None => new_request_id(),
    }
}

/// Whether a client-supplied request id is safe to log and echo.
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// 32 hex digits: a random per-process prefix and a counter. Unique, not
/// secret (ids are for correlating logs, never for authorising anything).
/// Written by hand: `format!` would cost more than the rest of a cheap request.
fn new_request_id() -> Arc<str> {
    static PREFIX: LazyLock<u64> = LazyLock::new(|| {
        let mut b = [0u8; 8];
        // Without the OS RNG, the start time still separates processes.
        if getrandom::getrandom(&mut b).is_err() {
            return std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        }
        u64::from_le_bytes(b)
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    let words = [*PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed)];
    for (i, digit) in id.iter_mut().enumerate() {
        let shift = 60 - 4 * (i % 16);
        *digit = HEX[((words[i / 16] >> shift) & 0xf) as usize];
    }
    // Hex digits are ASCII: this never fails.
    Arc::from(std::str::from_utf8(&id).unwrap_or_default())
}

async fn handle(state: &AppState, route: Option<&str>, req: Request, next: Next) -> Response {
    let private = req.uri().path().starts_with("/auth");
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| state.origins.allows(o))
        .and_then(|o| HeaderValue::from_str(o).ok());

    let allow = (req.method() == Method::OPTIONS)
        .then(|| route.and_then(|r| state.allow.get(r)))
        .flatten();
    let mut response = if let Some(allow) = allow {
        preflight(allow.clone(), origin.is_some())
    } else if declares_oversized_body(req.headers(), state.max_body_bytes) {
        ApiError::PayloadTooLarge(state.max_body_bytes).into_response()
    } else {
        let method = req.method().clone();
        let mut r = with_json_error_body(next.run(req).await, &method);
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

const ALLOW_HEADERS: &str = "Content-Type, Authorization, X-CSRFToken, X-CSRF-Token, X-Request-Id";
const EXPOSE_HEADERS: &str = "Retry-After, X-Request-Id";

/// The answer to `OPTIONS` on a route: the methods it answers (`allow`),
/// and the CORS grant only for an allowed origin.
fn preflight(allow: HeaderValue, allowed_origin: bool) -> Response {
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    h.insert(header::ALLOW, allow.clone());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    if allowed_origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, allow);
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

/// Whether the request declares a `Content-Length` over `limit`.
fn declares_oversized_body(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
}

/// Give an error response that is not already JSON (from the router or a
/// layer) the contract's JSON body, keeping its status and headers.
fn with_json_error_body(response: Response, method: &Method) -> Response {
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
    if let Some(ct) = json_parts.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, ct.clone());
    }
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

    #[test]
    fn generated_request_ids_are_32_hex_digits_and_unique() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(a[..16], b[..16], "one prefix per process");
    }

    #[test]
    fn request_ids_that_could_forge_log_lines_are_refused() {
        assert!(is_valid_request_id("edge-7f3a.42:x_y"));
        for bad in ["", "a b", "a\nb", "x\"y", "é", &"z".repeat(129)] {
            assert!(!is_valid_request_id(bad), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn accepted_request_ids_are_always_safe_header_values(id in "\\PC{0,200}") {
            if is_valid_request_id(&id) {
                proptest::prop_assert!(HeaderValue::from_str(&id).is_ok());
                proptest::prop_assert!(id.len() <= 128);
            }
        }
    }
}
