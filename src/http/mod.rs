//! The HTTP layer: routes, extractors, middleware and the error mapping.
//! Handlers are thin: extract, call the domain, shape the JSON.

mod docs;
pub mod error;
pub mod extract;
mod handlers;
pub mod middleware;
pub mod openapi;
pub mod refresh_cookie;
mod requests;
pub mod server;

use axum::http::Method;
use axum::Router;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use middleware::Origins;

/// Name of the CSRF cookie (Django's).
pub const CSRF_COOKIE: &str = "csrftoken";

/// Name of the device cookie a login leaves (see `auth::device`).
pub const DEVICE_COOKIE: &str = "latchkey_device";

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
    /// Time a request's body has to arrive once its head has.
    pub body_read_timeout: std::time::Duration,
    /// Reverse proxies trusted to append `X-Forwarded-For`.
    pub trusted_proxy_hops: usize,
    /// What follows `csrftoken=<token>` in `Set-Cookie` (see [`csrf_cookie_attributes`]).
    pub csrf_cookie_attributes: String,
    /// What follows `latchkey_device=<token>` in `Set-Cookie`.
    pub device_cookie_attributes: String,
    /// The refresh cookie, when `LATCHKEY_REFRESH_COOKIE` is on: refresh
    /// tokens then travel in it only, never in a JSON body.
    pub refresh_cookie: Option<refresh_cookie::RefreshCookie>,
    /// `/metrics` is served by this router (else on its own address).
    pub metrics_here: bool,
    /// The OpenAPI document, serialised once.
    pub openapi_json: axum::body::Bytes,
}

/// The CSRF cookie's attributes: it lives as long as the token is valid,
/// is sent on same-site navigations and requests only, is readable by the
/// page's script (the page copies it into the header), and is `Secure`
/// when clients use HTTPS.
pub fn csrf_cookie_attributes(max_age_seconds: u64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("; Max-Age={max_age_seconds}; Path=/; SameSite=Lax{secure}")
}

/// The device cookie's attributes: script cannot read it (it is no
/// credential, but nothing needs it but the login route), it goes only to
/// `/auth/`, lives as long as a device is remembered, and is `Secure` when
/// clients use HTTPS.
pub fn device_cookie_attributes(https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    let max_age = crate::auth::device::DEVICE_MAX_AGE_SECONDS;
    format!("; Max-Age={max_age}; Path=/auth; HttpOnly; SameSite=Lax{secure}")
}

/// The `/auth/` policy, stated once: every route under `/auth/` is the API
/// a page calls with the user's cookies, so its answers are `no-store`, and
/// its unsafe requests (see [`is_unsafe`]) pass the CSRF check before any
/// handler runs. The edge service enforces it (`middleware.rs`) and the
/// OpenAPI document describes it (`openapi.rs`), both through these two
/// functions.
pub fn is_auth_route(path: &str) -> bool {
    path == "/auth" || path.starts_with("/auth/")
}

/// Whether a request with `method` on `path` must pass the CSRF check.
pub fn needs_csrf(path: &str, method: &Method) -> bool {
    is_unsafe(method) && is_auth_route(path)
}

/// Methods that change state (RFC 9110's unsafe methods).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// What is served on a listener: the router behind the edge service.
pub type Service = middleware::Edge;

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
        routes!(
            handlers::account::me,
            handlers::account::rename,
            handlers::account::delete_me
        ),
        routes!(handlers::account::password_reset),
        routes!(handlers::account::password_reset_confirm),
        routes!(handlers::account::verify_email),
        routes!(handlers::account::resend_verification),
        routes!(handlers::account::change_email),
        routes!(handlers::account::change_email_confirm),
        routes!(handlers::change_password),
        routes!(handlers::sessions),
        routes!(handlers::end_session),
        routes!(handlers::refresh),
        routes!(handlers::verify),
        routes!(handlers::keys::jwks),
        routes!(handlers::mfa::login_mfa),
        routes!(handlers::mfa::mfa_status),
        routes!(handlers::mfa::start_totp, handlers::mfa::disable_totp),
        routes!(handlers::mfa::confirm_totp),
        routes!(handlers::mfa::regenerate_recovery_codes),
        routes!(handlers::passkeys::passkey_registration_options),
        routes!(handlers::passkeys::register_passkey),
        routes!(handlers::passkeys::passkeys),
        routes!(handlers::passkeys::delete_passkey),
        routes!(handlers::passkeys::passkey_login_options),
        routes!(handlers::passkeys::login_passkey),
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

/// The whole application: the routes of `doc` (the document of
/// [`api_routes`]) behind the edge service.
pub fn router(
    state: AppState,
    doc: &utoipa::openapi::OpenApi,
) -> Result<Service, middleware::RouteTableError> {
    let metrics_here = state.metrics_here;
    let keep = |path: &str| path != METRICS_PATH || metrics_here;
    let mut router = Router::new();
    for (_, paths, method_router) in api_routes() {
        for path in paths.paths.keys().filter(|p| keep(p)) {
            router = router
                .route(path, method_router.clone())
                .route(&format!("{path}/"), method_router.clone());
        }
    }
    Ok(with_edge(
        router,
        state,
        middleware::Routes::new(doc, keep)?,
    ))
}

/// A router serving only `/metrics` (for `LATCHKEY_METRICS_BIND`).
pub fn metrics_router(
    state: AppState,
    doc: &utoipa::openapi::OpenApi,
) -> Result<Service, middleware::RouteTableError> {
    let route = axum::routing::get(handlers::metrics);
    let router = Router::new()
        .route(METRICS_PATH, route.clone())
        .route(&format!("{METRICS_PATH}/"), route);
    let routes = middleware::Routes::new(doc, |path| path == METRICS_PATH)?;
    Ok(with_edge(router, state, routes))
}

/// JSON 404/405 fallbacks, and the edge service around it all.
fn with_edge(router: Router<AppState>, state: AppState, routes: middleware::Routes) -> Service {
    let router = router
        .fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|method: Method| async move {
            error::ApiError::MethodNotAllowed(method.to_string())
        })
        .with_state(state.clone());
    middleware::Edge::new(router, state, routes)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-25T09:30:00Z`); a value beyond
/// the years 1–9999 is shown as the nearest end of that range.
pub fn rfc3339(unix: i64) -> String {
    let unix = unix.clamp(-62_135_596_800, 253_402_300_799);
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
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
