//! JSON Web Tokens as SimpleJWT writes them, with the claims `token_type`,
//! `exp`, `iat`, `jti`, `user_id`, plus our session id `sid` (and `iss`
//! and `aud` when configured, RFC 8725).
//!
//! The codec is small and strict on purpose: the algorithm is pinned to the
//! configured one (a token whose header names anything else is refused
//! before its claims are read, so an HS256 token "signed" with a public key
//! goes nowhere), an asymmetric token's `kid` selects only among the keys
//! the [`KeySet`] lists as usable, the signature is checked (in constant
//! time for HMAC) before the claims are read, and nothing but a
//! well-formed, unexpired token of the expected type, issuer and audience
//! gets through.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ids::RandomId;
use super::signing::{Algorithm, KeySet, MAX_KID_LEN};

/// Tokens longer than this are refused before any decoding work (an RS256
/// signature of a 4096-bit key is 683 characters).
pub const MAX_TOKEN_LEN: usize = 2048;

/// Which of the pair a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived bearer credential for API calls.
    Access,
    /// Long-lived credential exchanged at `/auth/token/refresh/`.
    Refresh,
}

/// The claims of every token latchkey issues. Field order is SimpleJWT's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// `access` or `refresh`.
    pub token_type: TokenType,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Unique token id: 32 lowercase hex characters.
    pub jti: RandomId,
    /// The user's integer id.
    pub user_id: i64,
    /// The session (one login) this token belongs to.
    pub sid: RandomId,
}

/// The claims as written: [`Claims`], then `iss` and `aud` when configured.
#[derive(Serialize)]
struct WireOut<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// The claims as read: exactly [`Claims`]' members, plus `iss` and `aud`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    token_type: TokenType,
    exp: i64,
    iat: i64,
    jti: RandomId,
    user_id: i64,
    sid: RandomId,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url segments of JSON, or claims of the wrong shape.
    #[error("token is malformed")]
    Malformed,
    /// The header names an algorithm other than the configured one.
    #[error("token uses an algorithm other than the configured one")]
    WrongAlgorithm,
    /// The header's `kid` is missing or names no usable key.
    #[error("token names no usable key")]
    UnknownKey,
    /// The signature does not match.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token is expired")]
    Expired,
    /// A refresh token where an access token was expected, or the reverse.
    #[error("token has the wrong type")]
    WrongType,
    /// `iat` is further in the future than the clock leeway allows: no
    /// instance whose clock is within the tolerated skew issued it.
    #[error("token is issued in the future")]
    IssuedInFuture,
    /// `iss` or `aud` is not the configured one (or is missing).
    #[error("token has the wrong issuer or audience")]
    WrongIssuerOrAudience,
    /// The key could not sign (the random number generator failed).
    #[error("token could not be signed")]
    SigningFailed,
}

/// What every token must say beyond its signature: the tolerated clock
/// skew, and the configured issuer and audience.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimRules {
    /// Seconds of clock skew tolerated between instances (`exp`, `iat`).
    pub leeway: i64,
    /// `iss`, added and required when set.
    pub issuer: Option<String>,
    /// `aud`, added and required when set.
    pub audience: Option<String>,
}

/// Signs and verifies tokens with one snapshot of the keys.
#[derive(Clone)]
pub struct TokenCodec {
    keys: Arc<KeySet>,
    rules: Arc<ClaimRules>,
}

#[derive(Deserialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(default)]
    typ: Option<&'a str>,
    #[serde(default)]
    kid: Option<&'a str>,
    /// Extensions a verifier must understand (RFC 7515 §4.1.11): we
    /// understand none, so a token naming any is refused.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

impl TokenCodec {
    /// A codec over `keys` applying `rules`.
    pub fn new(keys: Arc<KeySet>, rules: Arc<ClaimRules>) -> Self {
        Self { keys, rules }
    }

    /// An HS256 codec signing with `key` (used directly, as SimpleJWT uses
    /// its `SIGNING_KEY`), with no leeway, issuer or audience.
    pub fn hs256(key: &super::keys::SecretKey) -> Self {
        Self::new(Arc::new(KeySet::hs256(key)), Arc::default())
    }

    /// The same codec, tolerating `seconds` of clock skew: a token stays
    /// valid until `exp + seconds`, and one issued up to `seconds` in the
    /// future is accepted (another instance's clock may be that far ahead).
    pub fn with_leeway(mut self, seconds: i64) -> Self {
        Arc::make_mut(&mut self.rules).leeway = seconds.max(0);
        self
    }

    /// Serialise and sign `claims` with the current key.
    pub fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        let wire = WireOut {
            claims,
            iss: self.rules.issuer.as_deref(),
            aud: self.rules.audience.as_deref(),
        };
        // Claims are plain data; serialising them cannot fail.
        let payload = serde_json::to_vec(&wire).unwrap_or_default();
        let header = self.keys.header_b64();
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self
            .keys
            .sign(token.as_bytes())
            .map_err(|_| TokenError::SigningFailed)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Verify `token` and return its claims if it is well-formed, signed
    /// under the configured algorithm by a usable key, unexpired at `now`,
    /// of the configured issuer and audience, and of type `expected`.
    pub fn decode(&self, token: &str, expected: TokenType, now: i64) -> Result<Claims, TokenError> {
        let claims = self.decode_any(token, now)?;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        Ok(claims)
    }

    /// As [`decode`](Self::decode), accepting either token type.
    pub fn decode_any(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let keys = &self.keys;
        let payload = verify_jws(token, |header, signed, signature| {
            if header.alg != keys.algorithm().as_str() {
                return Err(TokenError::WrongAlgorithm);
            }
            match (keys.algorithm(), keys.hmac()) {
                (Algorithm::Hs256, Some(keyed)) => check_hmac(keyed, signed, signature),
                (Algorithm::Hs256, None) => Err(TokenError::UnknownKey),
                (_, _) => {
                    let kid = header
                        .kid
                        .filter(|k| k.len() <= MAX_KID_LEN)
                        .ok_or(TokenError::UnknownKey)?;
                    let key = keys.verifier(kid).ok_or(TokenError::UnknownKey)?;
                    if keys.verified_before(token) {
                        Ok(())
                    } else if key.verify(signed, signature) {
                        keys.remember_verified(token);
                        Ok(())
                    } else {
                        Err(TokenError::BadSignature)
                    }
                }
            }
        })?;
        let wire: WireIn = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if wire.iss != self.rules.issuer || wire.aud != self.rules.audience {
            return Err(TokenError::WrongIssuerOrAudience);
        }
        let leeway = self.rules.leeway;
        if wire.exp.saturating_add(leeway) <= now {
            return Err(TokenError::Expired);
        }
        if wire.iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(Claims {
            token_type: wire.token_type,
            exp: wire.exp,
            iat: wire.iat,
            jti: wire.jti,
            user_id: wire.user_id,
            sid: wire.sid,
        })
    }
}

fn check_hmac(keyed: &Hmac<Sha256>, signed: &[u8], signature: &[u8]) -> Result<(), TokenError> {
    let mut mac = keyed.clone();
    mac.update(signed);
    // `verify_slice` compares in constant time.
    mac.verify_slice(signature)
        .map_err(|_| TokenError::BadSignature)
}

/// The decoded payload of `token` if it is a compact JWS of at most
/// [`MAX_TOKEN_LEN`] bytes whose header `check` accepts along with the
/// signature over the signing input; nothing of the payload is decoded
/// before that.
fn verify_jws(
    token: &str,
    check: impl FnOnce(&Header<'_>, &[u8], &[u8]) -> Result<(), TokenError>,
) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };

    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let parsed: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if parsed.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    if parsed.typ.is_some_and(|t| t != "JWT") {
        return Err(TokenError::WrongAlgorithm);
    }

    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let signed_len = header.len() + 1 + payload.len();
    check(&parsed, &token.as_bytes()[..signed_len], &signature)?;

    URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)
}

/// The decoded payload of `token` if it is a compact JWS of at most
/// [`MAX_TOKEN_LEN`] bytes whose header names HS256 and whose signature is
/// `keyed`'s, checked in constant time before anything else is read. The
/// SimpleJWT verifier's (`legacy::tokens`).
pub(crate) fn verified_payload(keyed: &Hmac<Sha256>, token: &str) -> Result<Vec<u8>, TokenError> {
    verify_jws(token, |header, signed, signature| {
        if header.alg != "HS256" {
            return Err(TokenError::WrongAlgorithm);
        }
        check_hmac(keyed, signed, signature)
    })
}

#[cfg(test)]
mod tests;
