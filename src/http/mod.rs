//! The HTTP layer: routes, extractors, middleware and the error mapping.
//! Handlers are thin: extract, call the domain, shape the JSON.

mod docs;
pub mod error;
pub mod extract;
mod handlers;
pub mod middleware;
pub mod openapi;

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

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
    /// `/metrics` is served by this router (else on its own address).
    pub metrics_here: bool,
    /// The OpenAPI document, serialised once.
    pub openapi_json: axum::body::Bytes,
    /// Each route template's `Allow` value, for `OPTIONS`.
    pub allow: std::collections::HashMap<String, axum::http::HeaderValue>,
}

/// Each route template (with and without its trailing slash) and the methods
/// it answers, as an `Allow` header value (`OPTIONS` included).
pub fn allowed_methods(
    doc: &utoipa::openapi::OpenApi,
) -> std::collections::HashMap<String, axum::http::HeaderValue> {
    let mut allow = std::collections::HashMap::new();
    for (path, item) in &doc.paths.paths {
        let mut methods: Vec<&str> = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ]
        .into_iter()
        .filter_map(|(m, present)| present.then_some(m))
        .collect();
        methods.push("OPTIONS");
        if let Ok(value) = axum::http::HeaderValue::from_str(&methods.join(", ")) {
            allow.insert(format!("{path}/"), value.clone());
            allow.insert(path.clone(), value);
        }
    }
    allow
}

/// Every route: each handler with the path and method its `#[utoipa::path]`
/// attribute gives. The router and the OpenAPI document are both built from
/// this list, so they cannot disagree.
pub fn api_routes() -> Vec<UtoipaMethodRouter<AppState>> {
    vec![
        routes!(handlers::csrf_token),
        routes!(handlers::register),
        routes!(handlers::login),
        routes!(handlers::logout),
        routes!(handlers::logout_all),
        routes!(handlers::me),
        routes!(handlers::change_password),
        routes!(handlers::sessions),
        routes!(handlers::end_session),
        routes!(handlers::refresh),
        routes!(handlers::verify),
        routes!(handlers::healthz),
        routes!(handlers::readyz),
        routes!(handlers::metrics),
        routes!(handlers::openapi_json),
        routes!(handlers::docs_page),
        routes!(handlers::docs_asset),
    ]
}

/// The OpenAPI 3.1 document of [`api_routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut paths = utoipa::openapi::path::Paths::new();
    let mut schemas = Vec::new();
    for (route_schemas, route_paths, _) in api_routes() {
        paths.merge(route_paths);
        schemas.extend(route_schemas);
    }
    openapi::document(paths, schemas)
}

/// The path `/metrics` is served at.
pub const METRICS_PATH: &str = "/metrics";

/// The whole application: routes, middleware and error mapping.
pub fn router(state: AppState) -> Router {
    let mut auth = Router::new();
    let mut open = Router::new();
    for (_, paths, method_router) in api_routes() {
        for path in paths.paths.keys() {
            if path == METRICS_PATH && !state.metrics_here {
                continue;
            }
            let slashed = format!("{path}/");
            let target = if path.starts_with("/auth/") {
                &mut auth
            } else {
                &mut open
            };
            *target = std::mem::take(target)
                .route(path, method_router.clone())
                .route(&slashed, method_router.clone());
        }
    }
    let auth = auth.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::csrf,
    ));
    with_edge(Router::new().merge(auth).merge(open), state)
}

/// A router serving only `/metrics` (for `LATCHKEY_METRICS_BIND`).
pub fn metrics_router(state: AppState) -> Router {
    let route = axum::routing::get(handlers::metrics);
    with_edge(
        Router::new()
            .route(METRICS_PATH, route.clone())
            .route(&format!("{METRICS_PATH}/"), route),
        state,
    )
}

/// JSON 404/405 fallbacks, panics to 500, and the edge middleware.
fn with_edge(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|method: Method| async move {
            error::ApiError::MethodNotAllowed(method.to_string())
        })
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    state,
                    middleware::edge,
                ))
                .layer(CatchPanicLayer::custom(|_| error::internal_error())),
        )
}

/// Unix seconds as RFC 3339 UTC (`2026-11-25T09:30:00Z`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_unix_seconds_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_519_799), "2026-11-24T11:29:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_never_panics_and_has_a_fixed_shape(unix in -62_135_596_800i64..253_402_300_799) {
            let s = rfc3339(unix);
            proptest::prop_assert_eq!(s.len(), 20);
            proptest::prop_assert!(s.ends_with('Z'));
        }
    }
}
