//! The HTTP layer: routes, extractors, middleware and the error mapping.
//! Handlers are thin: extract, call the domain, shape the JSON.

pub mod error;
pub mod extract;
mod handlers;
pub mod middleware;

use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::Auth;
use middleware::Origins;

/// Name of the CSRF cookie (Django's).
pub const CSRF_COOKIE: &str = "csrftoken";

/// What every handler can reach, behind one `Arc`: axum clones the state
/// for every request and every stateful layer.
pub type AppState = std::sync::Arc<Shared>;

/// The contents of [`AppState`].
pub struct Shared {
    /// The domain service.
    pub auth: Auth,
    /// CORS / CSRF allowed origins.
    pub origins: Origins,
    /// Clients use HTTPS: `Secure` cookies, `https://` own origin.
    pub https: bool,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Reverse proxies trusted to append `X-Forwarded-For`.
    pub trusted_proxy_hops: usize,
    /// CSRF cookie `Max-Age`.
    pub csrf_max_age: u64,
}

/// The API routes, each answering with and without a trailing slash.
pub fn api_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/auth/csrf", get(handlers::csrf_token)),
        ("/auth/register", post(handlers::register)),
        ("/auth/login", post(handlers::login)),
        ("/auth/logout", post(handlers::logout)),
        ("/auth/me", get(handlers::me)),
        ("/auth/token/refresh", post(handlers::refresh)),
        ("/auth/token/verify", post(handlers::verify)),
    ]
}

/// The whole application: routes, middleware and error mapping.
pub fn router(state: AppState) -> Router {
    let mut auth = Router::new();
    for (path, route) in api_routes() {
        auth = auth
            .route(path, route.clone())
            .route(&format!("{path}/"), route);
    }
    let auth = auth.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::csrf,
    ));

    let ops = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/healthz/", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/readyz/", get(handlers::readyz));

    Router::new()
        .merge(auth)
        .merge(ops)
        .fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|method: Method| async move { error::ApiError::MethodNotAllowed(method.to_string()) })
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| error::internal_error()))
                .layer(
                    TraceLayer::new_for_http()
                        // Path only: query strings and headers may carry secrets.
                        .make_span_with(|req: &Request| {
                            // DEBUG: at INFO the span alone costs more than a cheap request.
                            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                        })
                        .on_request(())
                        // Access lines at DEBUG: at tens of thousands of requests
                        // a second, a line each would cost more than the work.
                        // Security events are logged by the domain at INFO/WARN.
                        .on_response(|res: &axum::response::Response, latency: Duration, _: &Span| {
                            tracing::debug!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "served");
                        })
                        .on_failure(()),
                )
                .layer(axum::middleware::from_fn_with_state(state, middleware::edge)),
        )
}

/// `503` for readiness failures (shared with the handler module).
fn unavailable() -> axum::response::Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"detail": "The database is not reachable.", "code": "service_unavailable"})),
    )
        .into_response()
}
