//! The interactive API reference at `/docs`: Swagger UI, its files compiled
//! into the binary (nothing fetched at build or run time), pointed at
//! `/openapi.json`. A strict `Content-Security-Policy` keeps the page on
//! its own origin.

use std::sync::{Arc, LazyLock};

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa_swagger_ui::Config;

use super::error::ApiError;

static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["/openapi.json"])
            // The default validator badge calls validator.swagger.io.
            .validator_url("none")
            .try_it_out_enabled(true)
            .with_credentials(true),
    )
});

/// Everything the page may load: itself only. Swagger UI sets inline
/// styles and uses `data:` images; scripts only from files we serve.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// A file of the page (`index.html` for the page itself), or 404.
pub fn asset(name: &str) -> Response {
    let file = match utoipa_swagger_ui::serve(name, CONFIG.clone()) {
        Ok(Some(file)) => file,
        Ok(None) => return ApiError::NotFound.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "API reference asset failed");
            return super::error::internal_error();
        }
    };
    let content_type = HeaderValue::from_str(&file.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut bytes = file.bytes.into_owned();
    if name == "index.html" {
        // The page is served at `/docs` and `/docs/` alike (no redirects), so
        // its relative links must not depend on the trailing slash.
        bytes = absolute_links(&bytes).into_bytes();
    }
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// `index.html` with its asset links made absolute under `/docs/`.
fn absolute_links(html: &[u8]) -> String {
    String::from_utf8_lossy(html)
        .replace("href=\"./", "href=\"/docs/")
        .replace("src=\"./", "src=\"/docs/")
        .replace("href=\"index.css\"", "href=\"/docs/index.css\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_only_to_its_own_files_by_absolute_path() {
        let response = asset("index.html");
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        let file = utoipa_swagger_ui::serve("index.html", CONFIG.clone())
            .ok()
            .flatten()
            .map(|f| absolute_links(&f.bytes))
            .unwrap_or_default();
        for attr in ["href=\"", "src=\""] {
            for link in file.split(attr).skip(1) {
                assert!(link.starts_with("/docs/"), "{attr}{link}");
            }
        }
    }
}
