//! Cross-cutting request handling, in one service around the router:
//! request ids, security headers, CORS, CSRF, early body size checks, panics,
//! metrics, and JSON bodies for errors produced outside our handlers.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt as _;

use super::error::{self, ApiError};
use super::AppState;

/// The request-id header, read from clients and proxies and echoed back.
pub const REQUEST_ID: &str = "x-request-id";

/// The route table the edge consults before the router runs: each
/// template the router serves (with and without its trailing slash), the
/// methods it answers, and its `Allow` value. Built from the same OpenAPI
/// paths as the router, and matched by the same library (`matchit`), so
/// both agree on which template a path belongs to.
#[derive(Debug, Clone)]
pub struct Routes {
    table: matchit::Router<Route>,
}

/// One route template and the methods it answers.
#[derive(Debug, Clone)]
pub struct Route {
    template: Box<str>,
    methods: Vec<Method>,
    allow: HeaderValue,
}

impl Route {
    /// The template, as written in the router (`/auth/sessions/{id}`).
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Whether the request is one the CSRF check guards: an unsafe method
    /// this route answers, under `/auth/`. (Other methods get `405` from
    /// the router, unchecked, as before any handler runs.)
    fn guards(&self, method: &Method) -> bool {
        super::needs_csrf(&self.template, method) && self.methods.contains(method)
    }
}

impl Routes {
    /// The table of every path in `doc` that `keep` accepts. A path the
    /// matcher refuses is an error, never a gap: a request on a route the
    /// edge does not know would skip its CSRF check.
    pub fn new(
        doc: &utoipa::openapi::OpenApi,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self, RouteTableError> {
        let mut table = matchit::Router::new();
        for (path, item) in doc.paths.paths.iter().filter(|(p, _)| keep(p)) {
            let mut methods: Vec<Method> = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
            ]
            .into_iter()
            .filter_map(|(m, present)| present.then_some(m))
            .collect();
            methods.push(Method::OPTIONS);
            let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
            // Method names are header-safe tokens.
            let allow = HeaderValue::from_str(&names.join(", "))
                .map_err(|_| RouteTableError(format!("{path}: Allow value")))?;
            for template in [path.clone(), format!("{path}/")] {
                let route = Route {
                    template: template.as_str().into(),
                    methods: methods.clone(),
                    allow: allow.clone(),
                };
                table
                    .insert(template, route)
                    .map_err(|e| RouteTableError(format!("{path}: {e}")))?;
            }
        }
        Ok(Self { table })
    }

    /// The route `path` belongs to, if any.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.table.at(path).ok().map(|m| m.value)
    }
}

/// The route table could not be built (a bug in the route list).
#[derive(Debug, thiserror::Error)]
#[error("route table: {0}")]
pub struct RouteTableError(String);

/// Everything every request goes through, as one service around the whole
/// router (one boxed future per request; no per-route layers):
///
/// - a declared `Content-Length` over the limit is refused before the body is read;
/// - CORS: preflights are answered here; other responses get the
///   `Access-Control-Allow-*` headers when, and only when, the `Origin` is
///   allowed; `Vary: Origin` always;
/// - CSRF: unsafe requests to `/auth/` routes are checked before the router
///   runs (see [`check_csrf`]);
/// - a panic in a handler becomes the contract's `500`, with every header below;
/// - error responses made outside our handlers (the router's 404/405) get
///   the contract's JSON body;
/// - `X-Content-Type-Options: nosniff` on every response, `Cache-Control:
///   no-store` on everything under `/auth/` (tokens, user data, CSRF tokens);
/// - a request id (the client's `X-Request-Id` when well-formed, else a new
///   one) for every log line the request causes, echoed in the response;
/// - request count and latency metrics by route template, method and status.
#[derive(Clone)]
pub struct Edge {
    router: Router,
    state: AppState,
    routes: Arc<Routes>,
}

impl Edge {
    /// `router` behind the edge, with the routes it serves.
    pub fn new(router: Router, state: AppState, routes: Routes) -> Self {
        Self {
            router,
            state,
            routes: Arc::new(routes),
        }
    }
}

impl tower::Service<Request> for Edge {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready; it is called per request by `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let edge = self.clone();
        Box::pin(async move { Ok(edge.serve(req).await) })
    }
}

impl Edge {
    async fn serve(self, req: Request) -> Response {
        let started = Instant::now();
        let request_id = request_id(req.headers());
        let route = self.routes.find(req.uri().path());
        let method = req.method().clone();
        // The path only: query strings may carry secrets. Copied only when
        // the access line will be written.
        let path = tracing::enabled!(tracing::Level::DEBUG).then(|| req.uri().path().to_owned());
        let mut response = self.handle(route, &request_id, req).await;
        if let Some(path) = path {
            let latency_ms = started.elapsed().as_secs_f64() * 1e3;
            let status = response.status().as_u16();
            crate::telemetry::as_request(&request_id, || {
                tracing::debug!(method = %method, path, status, latency_ms, "served");
            });
        }

        self.state.auth.metrics().http_request(
            route.map_or("unmatched", Route::template),
            method.as_str(),
            response.status().as_str(),
            started.elapsed().as_secs_f64(),
        );
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        response
    }

    async fn handle(&self, route: Option<&Route>, request_id: &Arc<str>, req: Request) -> Response {
        let state = &self.state;
        let private = super::is_auth_route(req.uri().path());
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| state.origins.allows(o))
            .and_then(|o| HeaderValue::from_str(o).ok());
        let method = req.method().clone();

        let preflight_of = route.filter(|_| method == Method::OPTIONS);
        let mut response = if let Some(route) = preflight_of {
            preflight(route.allow.clone(), origin.is_some())
        } else if declares_oversized_body(req.headers(), state.max_body_bytes) {
            ApiError::PayloadTooLarge(state.max_body_bytes).into_response()
        } else {
            let checked = match route {
                Some(route) if route.guards(&method) => {
                    crate::telemetry::as_request(request_id, || check_csrf(state, req.headers()))
                }
                _ => Ok(()),
            };
            let mut r = match checked {
                Err(e) => e.into_response(),
                Ok(()) => {
                    match Guarded::new(request_id.clone(), self.router.clone().oneshot(req)).await {
                        Ok(Ok(r)) => with_json_error_body(r, &method),
                        Ok(Err(never)) => match never {},
                        Err(Panicked) => error::internal_error(),
                    }
                }
            };
            if origin.is_some() {
                r.headers_mut().insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(EXPOSE_HEADERS),
                );
            }
            r
        };

        let headers = response.headers_mut();
        headers.reserve(5);
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
}

/// A handler panicked (the panic hook has reported it).
#[derive(Debug)]
struct Panicked;

pin_project_lite::pin_project! {
    /// The router's future for one request: polled as that request (every
    /// line it logs carries the id, see [`crate::telemetry`]), with a panic
    /// while polling turned into `Err(Panicked)`.
    struct Guarded<F> {
        request_id: Arc<str>,
        #[pin]
        inner: F,
    }
}

impl<F> Guarded<F> {
    fn new(request_id: Arc<str>, inner: F) -> Self {
        Self { request_id, inner }
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let polled = crate::telemetry::as_request(this.request_id, || {
            std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
        });
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(_) => Poll::Ready(Err(Panicked)),
        }
    }
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

/// CSRF protection for unsafe requests to `/auth/` routes: the `Origin`,
/// when sent, must be allowed or our own; the signed token must be in
/// `X-CSRFToken` or `X-CSRF-Token`, and equal the `csrftoken` cookie when
/// that is sent too.
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

    #[tokio::test]
    async fn the_router_future_runs_as_its_request_and_a_panic_becomes_an_error() {
        let id: Arc<str> = Arc::from("req-1");
        let caught = Guarded::new(id.clone(), async { panic!("handler bug") }).await;
        let seen = Guarded::new(id, async { crate::telemetry::current_request_id() }).await;
        let fine = Guarded::new(Arc::from("req-2"), async { 7 }).await;
        assert!(matches!(caught, Err(Panicked)));
        assert!(matches!(fine, Ok(7)));
        assert_eq!(seen.unwrap().as_deref(), Some("req-1"));
        assert!(crate::telemetry::current_request_id().is_none());
    }

    #[test]
    fn routes_find_templates_with_and_without_slash_and_their_methods() {
        let doc = crate::http::openapi();
        let routes = Routes::new(&doc, |p| p != "/metrics").unwrap();
        let me = routes.find("/auth/me/").unwrap();
        assert_eq!(me.template(), "/auth/me/");
        assert_eq!(me.allow, "GET, PATCH, DELETE, OPTIONS");
        let session = routes.find("/auth/sessions/abc").unwrap();
        assert_eq!(session.template(), "/auth/sessions/{id}");
        assert!(session.guards(&Method::DELETE));
        assert!(!session.guards(&Method::GET));
        let login = routes.find("/auth/login").unwrap();
        assert!(login.guards(&Method::POST));
        assert!(!login.guards(&Method::PUT), "a 405 is not CSRF-checked");
        assert!(!routes.find("/healthz").unwrap().guards(&Method::POST));
        assert!(routes.find("/metrics").is_none());
        assert!(routes.find("/nope").is_none());
    }

    #[test]
    fn a_path_the_matcher_refuses_fails_the_table_instead_of_leaving_a_gap() {
        use utoipa::openapi::path::{HttpMethod, Operation, PathItem, Paths};
        let item = || PathItem::new(HttpMethod::Post, Operation::new());
        let mut doc =
            utoipa::openapi::OpenApi::new(utoipa::openapi::Info::new("t", "1"), Paths::new());
        doc.paths.paths.insert("/auth/x/{a}".into(), item());
        doc.paths.paths.insert("/auth/x/{b}".into(), item());
        assert!(Routes::new(&doc, |_| true).is_err());
        doc.paths.paths.remove("/auth/x/{b}");
        assert!(Routes::new(&doc, |_| true).is_ok());
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
