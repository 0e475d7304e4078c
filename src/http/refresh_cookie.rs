//! `LATCHKEY_REFRESH_COOKIE=true`: the refresh token travels only in an
//! `HttpOnly` cookie scoped to `/auth/`, out of every JSON body, so a
//! script injected into the page cannot read it. Handlers call these
//! helpers; nothing else changes in them.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use super::error::ApiError;
use super::extract::cookie;
use super::requests::RefreshRequest;
use crate::auth::AuthError;
use crate::config::SameSite;

/// The cookie's name.
pub const REFRESH_COOKIE: &str = "latchkey_refresh";

/// How the refresh cookie is written, when the mode is on.
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    /// What follows `latchkey_refresh=<token>`.
    attributes: String,
    /// The whole `Set-Cookie` value that removes it.
    clearing: String,
}

impl RefreshCookie {
    /// `HttpOnly; Path=/auth/`, `SameSite` as configured, `Secure` with
    /// HTTPS, and as long-lived as a refresh token.
    pub fn new(max_age_seconds: u64, same_site: SameSite, https: bool) -> Self {
        let secure = if https { "; Secure" } else { "" };
        let same_site = same_site.as_str();
        Self {
            attributes: format!(
                "; Max-Age={max_age_seconds}; Path=/auth/; HttpOnly; SameSite={same_site}{secure}"
            ),
            clearing: format!(
                "{REFRESH_COOKIE}=; Max-Age=0; Path=/auth/; HttpOnly; SameSite={same_site}{secure}"
            ),
        }
    }

    /// Add the `Set-Cookie` carrying `token` to `response`.
    pub fn set(&self, response: &mut Response, token: &str) {
        let value = format!("{REFRESH_COOKIE}={token}{}", self.attributes);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// Add the `Set-Cookie` removing it to `response`.
    pub fn clear(&self, response: &mut Response) {
        if let Ok(value) = HeaderValue::from_str(&self.clearing) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// Where the presented refresh token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The body's `refresh` field.
    Body,
    /// The refresh cookie.
    Cookie,
}

/// The refresh token a request presents: the body's `refresh` field, or,
/// when the cookie mode is on and the body has none, the cookie. Neither:
/// DRF's "This field is required." on `refresh`.
pub fn presented(
    form: RefreshRequest,
    headers: &HeaderMap,
    mode: Option<&RefreshCookie>,
) -> Result<(String, Source), ApiError> {
    let from_cookie = mode
        .and_then(|_| cookie(headers, REFRESH_COOKIE))
        .filter(|t| !t.is_empty());
    match from_cookie {
        Some(token) if form.is_absent() => Ok((token.to_owned(), Source::Cookie)),
        _ => Ok((form.parse()?, Source::Body)),
    }
}

/// `error` as a response; when the refresh token it refused came from the
/// cookie, the cookie is cleared with it (it holds a dead token).
pub fn refused(error: ApiError, source: Source, mode: Option<&RefreshCookie>) -> Response {
    use axum::response::IntoResponse as _;
    let clear = matches!(
        error,
        ApiError::Auth(AuthError::Token(_)) | ApiError::Auth(AuthError::NotOwner)
    ) && source == Source::Cookie;
    let mut response = error.into_response();
    if let (true, Some(cookie)) = (clear, mode) {
        cookie.clear(&mut response);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;

    #[test]
    fn the_cookie_is_http_only_scoped_to_auth_and_follows_the_configuration() {
        let mut response = ().into_response();
        RefreshCookie::new(604_800, SameSite::Lax, false).set(&mut response, "T");
        assert_eq!(
            response.headers()[header::SET_COOKIE],
            "latchkey_refresh=T; Max-Age=604800; Path=/auth/; HttpOnly; SameSite=Lax"
        );
        let mut response = ().into_response();
        RefreshCookie::new(60, SameSite::None, true).clear(&mut response);
        assert_eq!(
            response.headers()[header::SET_COOKIE],
            "latchkey_refresh=; Max-Age=0; Path=/auth/; HttpOnly; SameSite=None; Secure"
        );
    }

    #[test]
    fn the_body_field_wins_and_the_cookie_is_read_only_in_cookie_mode() {
        let mode = RefreshCookie::new(60, SameSite::Lax, false);
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "latchkey_refresh=C".parse().unwrap());
        let empty = || serde_json::from_value::<RefreshRequest>(serde_json::json!({})).unwrap();
        let with_body = || {
            serde_json::from_value::<RefreshRequest>(serde_json::json!({"refresh": "B"})).unwrap()
        };
        assert_eq!(
            presented(empty(), &headers, Some(&mode)).unwrap(),
            ("C".into(), Source::Cookie)
        );
        assert_eq!(
            presented(with_body(), &headers, Some(&mode)).unwrap(),
            ("B".into(), Source::Body)
        );
        assert!(presented(empty(), &headers, None).is_err());
        assert!(presented(empty(), &HeaderMap::new(), Some(&mode)).is_err());
    }
}
