//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes (the same list the router is built from, see
//! [`super::api_routes`]), plus what the middleware does to every route:
//! CSRF and body errors on unsafe `/auth` requests, 503 and 500 anywhere.

use std::collections::BTreeMap;

use axum::http::Method;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, OpenApi, Ref, RefOr};
use utoipa::{OpenApi as _, ToSchema};

/// An error: `{"detail": "...", "code": "..."}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// Human-readable message (DRF's wording where DRF has one).
    detail: String,
    /// Machine-readable code, e.g. `token_not_valid`, `csrf_failed`, `throttled`.
    code: String,
}

/// Field validation errors: `{"<field>": ["message", ...]}`.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldErrors)]
pub struct FieldErrorsBody(BTreeMap<String, Vec<String>>);

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "latchkey",
        description = "Authentication API for single-page apps: CSRF, register, login, logout, \
rotating JWT refresh tokens, sessions. Every route also answers with a trailing slash. \
Unsafe requests under `/auth/` need the token from `GET /auth/csrf` in `X-CSRF-Token` \
(or `X-CSRFToken`)."
    ),
    components(schemas(ErrorBody, FieldErrorsBody)),
    tags(
        (name = "auth", description = "CSRF, registration, login, logout, the current user"),
        (name = "tokens", description = "Refresh-token rotation and verification"),
        (name = "account", description = "Password change and session management"),
        (name = "mfa", description = "Second factor: TOTP enrolment, recovery codes, the second step of a login"),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, the list, deletion, login with no email typed"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// The whole document: the handlers' paths merged in, then the cross-cutting rules.
pub fn document(
    paths: utoipa::openapi::path::Paths,
    schemas: Vec<(String, RefOr<utoipa::openapi::schema::Schema>)>,
) -> OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.paths.merge(paths);
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.extend(schemas);
    components.security_schemes.insert(
        "bearer".into(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("`Authorization: Bearer <access token>`"))
                .build(),
        ),
    );
    components.security_schemes.insert(
        "csrf".into(),
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "The token from `GET /auth/csrf` (`X-CSRFToken` is accepted too).",
        ))),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let private = super::is_auth_route(path);
        for (method, op) in [
            (Method::GET, item.get.as_mut()),
            (Method::POST, item.post.as_mut()),
            (Method::PUT, item.put.as_mut()),
            (Method::PATCH, item.patch.as_mut()),
            (Method::DELETE, item.delete.as_mut()),
        ] {
            if let Some(op) = op {
                conventions(op, private, super::needs_csrf(path, &method));
            }
        }
    }
    doc
}

/// The responses the middleware and extractors add to an operation.
fn conventions(op: &mut Operation, private: bool, csrf: bool) {
    let error = || json_response(Ref::from_schema_name("Error"));
    let responses = &mut op.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses.entry(status.to_owned()).or_insert_with(|| {
            let mut r = error();
            r.description = description.to_owned();
            RefOr::T(r)
        });
    };
    if csrf {
        add("403", "CSRF failed: token missing, malformed, forged, expired, not matching the cookie, or a foreign `Origin`");
        add("413", "Body over the size limit");
        if op.request_body.is_some() {
            add("415", "Body not JSON");
        }
    }
    if private {
        add(
            "503",
            "Database unreachable or the password-hash queue full; `Retry-After: 1`",
        );
    }
    add("500", "A bug; the body never carries details");
    // A JSON body can also fail to parse: 400 is either shape.
    if op.request_body.is_some() {
        let either = utoipa::openapi::schema::OneOfBuilder::new()
            .item(Ref::from_schema_name("FieldErrors"))
            .item(Ref::from_schema_name("Error"))
            .build();
        let description = match responses.get("400") {
            Some(RefOr::T(r)) => r.description.clone(),
            _ => String::new(),
        };
        let description = format!("{description}; or `parse_error` for malformed JSON, or `non_field_errors` for a body that is not an object").trim_start_matches("; ").to_owned();
        let mut bad = Response::new(description);
        bad.content.insert(
            "application/json".into(),
            Content::new(Some(utoipa::openapi::schema::Schema::OneOf(either))),
        );
        responses.insert("400".into(), RefOr::T(bad));
    }
    // Every 429 and 503 says when to come back.
    for status in ["429", "503"] {
        if let Some(RefOr::T(r)) = responses.get_mut(status) {
            r.headers.entry("Retry-After".into()).or_insert_with(|| {
                let mut h = Header::new(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::Integer),
                );
                h.description = Some("Seconds to wait before retrying".into());
                h
            });
        }
    }
}

fn json_response(schema: Ref) -> Response {
    let mut r = Response::new("");
    r.content
        .insert("application/json".into(), Content::new(Some(schema)));
    r
}
