//! The idiomatic alternative to latchkey's hand-written edge service, for
//! `bench/callgrind.sh` to weigh: the ceiling's bare JSON route with
//! tower-http's layers, wrapped once around the whole router (not per
//! route), doing what `src/http/middleware.rs`'s `Edge` does on every
//! request — a request id (made and echoed), CORS for the allowed origins,
//! `nosniff` and, under `/auth/`, `no-store`, a CSRF check of unsafe
//! `/auth/` requests, a body-size limit, a panic guard, and a request
//! counter with a latency histogram.
//!
//!     cargo run --release --example edge_tower_http -- 127.0.0.1:8091
//!
//! What it leaves out is in latchkey's favour: the route template as the
//! metric label (outside the router tower-http has no matched path; the raw
//! path stands in), JSON bodies for the router's own 404/405, and the
//! request id in every log line of the request.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A random request id, as latchkey makes one.
#[derive(Clone, Default)]
struct RandomId;

impl MakeRequestId for RandomId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).ok()?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        HeaderValue::from_str(&hex).ok().map(RequestId::new)
    }
}

/// The CSRF gate of unsafe `/auth/` requests (the real check's work, an
/// HMAC verification, happens only on those; this route is a GET).
async fn csrf(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let guarded = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) && (path == "/auth" || path.starts_with("/auth/"));
    if guarded && !request.headers().contains_key("x-csrftoken") {
        return (StatusCode::FORBIDDEN, Json(serde_json::json!({"detail": "CSRF Failed: CSRF token missing.", "code": "csrf_failed"}))).into_response();
    }
    next.run(request).await
}

/// Request metrics and `no-store` under `/auth/`.
async fn metrics(
    axum::extract::State(m): axum::extract::State<(
        prometheus::IntCounterVec,
        prometheus::HistogramVec,
    )>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let mut response = next.run(request).await;
    if path == "/auth" || path.starts_with("/auth/") {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let status = response.status();
    m.0.with_label_values(&[&path, method.as_str(), status.as_str()])
        .inc();
    m.1.with_label_values(&[&path, method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".into());
    let counter = prometheus::IntCounterVec::new(
        prometheus::Opts::new("http_requests_total", "Requests."),
        &["route", "method", "status"],
    )?;
    let latency = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("http_request_duration_seconds", "Latency."),
        &["route", "method"],
    )?;
    let origins = [
        "http://localhost:3000",
        "http://127.0.0.1:3000",
        "http://localhost:5173",
        "http://127.0.0.1:5173",
    ]
    .map(HeaderValue::from_static);
    let edge = ServiceBuilder::new()
        .map_response(|r: axum::http::Response<_>| r.map(axum::body::Body::new))
        .layer(CatchPanicLayer::new())
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomId))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_credentials(true)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    HeaderName::from_static("x-csrftoken"),
                    HeaderName::from_static("x-csrf-token"),
                ])
                .expose_headers([header::RETRY_AFTER, REQUEST_ID]),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn_with_state(
            (counter, latency),
            metrics,
        ))
        .layer(axum::middleware::from_fn(csrf))
        .layer(RequestBodyLimitLayer::new(64 * 1024));
    let router = Router::new().route(
        "/",
        get(|| async { Json(serde_json::json!({"status": "ok"})) }),
    );
    // Around the router once, as a service of its own: `Router::layer`
    // would wrap each route instead.
    let app = edge.service(router);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(
        listener,
        axum::ServiceExt::<axum::http::Request<axum::body::Body>>::into_make_service(app),
    )
    .await?;
    Ok(())
}
