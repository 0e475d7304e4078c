//! Extractors: a handler's signature says what it needs — a JSON object, an
//! authenticated caller, the client's address — and gets it already checked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::AppState;
use crate::auth::{ClientInfo, Principal};

/// A request body that is a JSON object, read within the size limit.
pub struct JsonObject(pub Map<String, Value>);

/// A request body read into the typed form `T` (see `requests.rs`): a JSON
/// object within the size limit, each field as received.
pub struct Form<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let JsonObject(fields) = JsonObject::from_request(req, state).await?;
        // The forms' fields take any JSON value (see `requests::Text`), so
        // an object always reads.
        serde_json::from_value(Value::Object(fields))
            .map(Self)
            .map_err(|e| ApiError::JsonSyntax(e.to_string()))
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        let limit = state.max_body_bytes;
        // A client that stops mid-body would otherwise hold the request
        // (and its connection) for as long as it likes.
        let read = axum::body::to_bytes(req.into_body(), limit);
        let bytes = tokio::time::timeout(state.body_read_timeout, read)
            .await
            .map_err(|_| ApiError::BodyTimeout)?
            .map_err(|e| {
                // `to_bytes` reports the limit as a `LengthLimitError` somewhere in the source chain.
                let mut source: Option<&dyn std::error::Error> = Some(&e);
                while let Some(err) = source {
                    if err.is::<http_body_util::LengthLimitError>() {
                        return ApiError::PayloadTooLarge(limit);
                    }
                    source = err.source();
                }
                ApiError::BodyRead
            })?;
        match content_type {
            Some(ct) if !is_json(&ct) => {
                return Err(ApiError::UnsupportedMediaType(
                    ct.chars().take(100).collect(),
                ));
            }
            // A POST with neither a body nor a type reads as `{}`, as DRF does.
            None if bytes.is_empty() => return Ok(Self(Map::new())),
            None => return Err(ApiError::UnsupportedMediaType(String::new())),
            Some(_) => {}
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(Value::Array(_)) => Err(ApiError::NotAnObject("list")),
            Ok(Value::String(_)) => Err(ApiError::NotAnObject("str")),
            Ok(Value::Number(n)) => Err(ApiError::NotAnObject(if n.is_f64() {
                "float"
            } else {
                "int"
            })),
            Ok(Value::Bool(_)) => Err(ApiError::NotAnObject("bool")),
            Ok(Value::Null) => Err(ApiError::NotAnObject("NoneType")),
            Err(e) => Err(ApiError::JsonSyntax(e.to_string())),
        }
    }
}

/// The caller, proven by a valid, unrevoked access token.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::NotAuthenticated);
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::BadAuthorizationHeader)?;
        let mut words = value.split_ascii_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("Bearer"), Some(token), None) => Ok(Self(state.auth.authenticate(token).await?)),
            (Some("Bearer"), _, _) => Err(ApiError::BadAuthorizationHeader),
            // Another scheme (e.g. Basic) is not ours: as DRF, no credentials.
            _ => Err(ApiError::NotAuthenticated),
        }
    }
}

/// The client's address (after trusted proxies) and user agent.
pub struct Client(pub ClientInfo);

/// Longest `User-Agent` kept with a session.
const USER_AGENT_MAX: usize = 256;

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let addr = client_addr(peer, &parts.headers, state.trusted_proxy_hops);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(USER_AGENT_MAX).collect());
        let device = cookie(&parts.headers, super::DEVICE_COOKIE).map(str::to_owned);
        Ok(Self(ClientInfo {
            addr,
            user_agent,
            device,
        }))
    }
}

/// The client address: the socket peer, or, behind `hops` trusted proxies,
/// the `hops`-th `X-Forwarded-For` entry from the right (the one the
/// outermost trusted proxy saw). Entries left of it are client-controlled.
pub fn client_addr(peer: IpAddr, headers: &axum::http::HeaderMap, hops: usize) -> IpAddr {
    if hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(hops)
        .and_then(|i| entries[i].parse().ok())
        .unwrap_or(peer)
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use proptest::prelude::*;

    #[test]
    fn forwarded_for_is_read_from_the_right_by_hop_count() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.2".parse().unwrap(),
        );
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_addr(peer, &h, 0), peer);
        assert_eq!(client_addr(peer, &h, 1).to_string(), "10.0.0.2");
        assert_eq!(client_addr(peer, &h, 2).to_string(), "1.2.3.4");
        assert_eq!(client_addr(peer, &h, 9), peer);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; csrftoken=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "csrftoken"), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }

    proptest! {
        #[test]
        fn header_parsing_never_panics(xff in "[ -~]{0,100}", cookies in "[ -~]{0,100}", hops in 0usize..4) {
            let mut h = HeaderMap::new();
            if let Ok(v) = xff.parse() { h.insert("x-forwarded-for", v); }
            if let Ok(v) = cookies.parse() { h.insert(header::COOKIE, v); }
            let _ = client_addr(IpAddr::V4(Ipv4Addr::LOCALHOST), &h, hops);
            let _ = cookie(&h, "csrftoken");
        }
    }
}
