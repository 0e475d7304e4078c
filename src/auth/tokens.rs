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
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `{"alg":"HS256","typ":"JWT"}`, base64url-encoded, exactly as SimpleJWT.
    const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

    fn codec() -> TokenCodec {
        TokenCodec::hs256(&"k".repeat(40).parse().unwrap())
    }

    fn claims(token_type: TokenType, exp: i64) -> Claims {
        Claims {
            token_type,
            exp,
            iat: 1_000,
            jti: RandomId::generate().unwrap(),
            user_id: 7,
            sid: RandomId::generate().unwrap(),
        }
    }

    fn sign_raw(header: &str, payload: &str) -> String {
        let key = "k".repeat(40);
        let head = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(head.as_bytes());
        format!(
            "{head}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_token_round_trips_with_simplejwt_claims_in_order() {
        let c = claims(TokenType::Access, 2_000);
        let token = codec().encode(&c).unwrap();
        assert!(token.starts_with(HEADER_B64));
        let payload = token.split('.').nth(1).unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert!(
            json.starts_with(r#"{"token_type":"access","exp":2000,"iat":1000,"jti":""#),
            "{json}"
        );
        assert!(json.contains(r#""user_id":7"#));
        assert_eq!(codec().decode(&token, TokenType::Access, 1_999), Ok(c));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
        assert_eq!(
            codec().decode(&token, TokenType::Access, 2_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_stays_valid_for_the_leeway_past_its_expiry_and_no_longer() {
        let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
        let lenient = codec().with_leeway(5);
        assert!(lenient.decode(&token, TokenType::Access, 2_004).is_ok());
        assert_eq!(
            lenient.decode(&token, TokenType::Access, 2_005),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_issued_further_ahead_than_the_leeway_is_refused() {
        // iat 1_000: an instance whose clock is 5 s behind still accepts it.
        let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
        let lenient = codec().with_leeway(5);
        assert!(lenient.decode(&token, TokenType::Access, 995).is_ok());
        assert_eq!(
            lenient.decode(&token, TokenType::Access, 994),
            Err(TokenError::IssuedInFuture)
        );
    }

    #[test]
    fn the_token_type_must_match() {
        let refresh = codec().encode(&claims(TokenType::Refresh, 2_000)).unwrap();
        assert_eq!(
            codec().decode(&refresh, TokenType::Access, 1_000),
            Err(TokenError::WrongType)
        );
        let access = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
        assert_eq!(
            codec().decode(&access, TokenType::Refresh, 1_000),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = TokenCodec::hs256(&"z".repeat(40).parse().unwrap());
        let token = other.encode(&claims(TokenType::Access, 2_000)).unwrap();
        assert_eq!(
            codec().decode(&token, TokenType::Access, 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn the_none_and_other_algorithms_are_refused() {
        let payload = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":1,"sid":"0123456789abcdef0123456789abcdef"}"#;
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"hs256"}"#,
        ] {
            let token = sign_raw(header, payload);
            assert_eq!(
                codec().decode(&token, TokenType::Access, 0),
                Err(TokenError::WrongAlgorithm)
            );
        }
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        );
        assert!(codec().decode(&unsigned, TokenType::Access, 0).is_err());
        let good = sign_raw(r#"{"alg":"HS256","typ":"JWT"}"#, payload);
        assert!(codec().decode(&good, TokenType::Access, 1).is_ok());
    }

    #[test]
    fn a_string_user_id_or_a_missing_claim_is_malformed() {
        let string_id = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":"1","sid":"0123456789abcdef0123456789abcdef"}"#;
        let no_sid = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":1}"#;
        for payload in [string_id, no_sid] {
            let token = sign_raw(r#"{"alg":"HS256","typ":"JWT"}"#, payload);
            assert_eq!(
                codec().decode(&token, TokenType::Access, 0),
                Err(TokenError::Malformed)
            );
        }
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let token = codec().encode(&claims(TokenType::Access, 2_000)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap())
                .unwrap()
                .replace("\"user_id\":7", "\"user_id\":8"),
        );
        assert_eq!(
            codec().decode(&parts.join("."), TokenType::Access, 0),
            Err(TokenError::BadSignature)
        );
    }

    fn asymmetric(algorithm: Algorithm) -> (TokenCodec, String, Vec<u8>) {
        use crate::auth::signing::PrivateKey;
        let der = PrivateKey::generate(algorithm).unwrap();
        let key = Arc::new(PrivateKey::from_pkcs8(algorithm, &der).unwrap());
        let kid = key.public().thumbprint();
        let set = KeySet::asymmetric(
            (&kid, key.clone()),
            vec![(kid.clone(), key.public().clone())],
        )
        .unwrap();
        (TokenCodec::new(Arc::new(set), Arc::default()), kid, der)
    }

    fn header_of(token: &str) -> serde_json::Value {
        let header = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
    }

    #[test]
    fn asymmetric_tokens_round_trip_with_their_kid_in_the_header() {
        for algorithm in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
            let (codec, kid, _) = asymmetric(algorithm);
            let c = claims(TokenType::Access, 2_000);
            let token = codec.encode(&c).unwrap();
            assert_eq!(
                header_of(&token),
                serde_json::json!({"alg": algorithm.as_str(), "kid": kid, "typ": "JWT"})
            );
            assert_eq!(codec.decode(&token, TokenType::Access, 1_999), Ok(c));
        }
    }

    #[test]
    fn an_hs256_token_signed_with_the_public_key_is_refused_alg_confusion() {
        let (codec, kid, _) = asymmetric(Algorithm::EdDsa);
        let jwks: serde_json::Value = serde_json::from_slice(&codec.keys.jwks()).unwrap();
        let public = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
        let payload = r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"0123456789abcdef0123456789abcdef","user_id":1,"sid":"0123456789abcdef0123456789abcdef"}"#;
        for secret in [
            public.clone(),
            String::from_utf8(URL_SAFE_NO_PAD.decode(&public).unwrap_or_default())
                .unwrap_or_default(),
        ] {
            let head = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"JWT"}}"#)),
                URL_SAFE_NO_PAD.encode(payload)
            );
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(head.as_bytes());
            let forged = format!(
                "{head}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            );
            assert_eq!(
                codec.decode(&forged, TokenType::Access, 1),
                Err(TokenError::WrongAlgorithm)
            );
        }
        // And an HS256 codec never accepts an asymmetric token.
        let token = codec.encode(&claims(TokenType::Access, 2_000)).unwrap();
        assert_eq!(
            super::tests::codec().decode(&token, TokenType::Access, 1),
            Err(TokenError::WrongAlgorithm)
        );
    }

    #[test]
    fn a_token_of_another_asymmetric_algorithm_or_an_unknown_kid_is_refused() {
        let (eddsa, _, _) = asymmetric(Algorithm::EdDsa);
        let (es256, _, _) = asymmetric(Algorithm::Es256);
        let token = eddsa.encode(&claims(TokenType::Access, 2_000)).unwrap();
        assert_eq!(
            es256.decode(&token, TokenType::Access, 1),
            Err(TokenError::WrongAlgorithm)
        );
        let (other_eddsa, _, _) = asymmetric(Algorithm::EdDsa);
        assert_eq!(
            other_eddsa.decode(&token, TokenType::Access, 1),
            Err(TokenError::UnknownKey)
        );
        // The right kid on a token signed by another key.
        let mut parts: Vec<&str> = token.split('.').collect();
        let foreign = other_eddsa
            .encode(&claims(TokenType::Access, 2_000))
            .unwrap();
        let foreign_sig = foreign.split('.').nth(2).unwrap().to_owned();
        parts[2] = &foreign_sig;
        assert_eq!(
            eddsa.decode(&parts.join("."), TokenType::Access, 1),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_remembered_signature_still_needs_a_usable_kid_and_live_claims() {
        use crate::auth::signing::{PrivateKey, VerifiedSignatures};
        let verified = Arc::new(VerifiedSignatures::default());
        let key_set =
            |key: &Arc<PrivateKey>, usable: Vec<(String, crate::auth::signing::PublicKey)>| {
                let kid = key.public().thumbprint();
                let set = KeySet::asymmetric((&kid, key.clone()), usable).unwrap();
                TokenCodec::new(Arc::new(set.remembering(verified.clone())), Arc::default())
            };
        let old = Arc::new(
            PrivateKey::from_pkcs8(
                Algorithm::EdDsa,
                &PrivateKey::generate(Algorithm::EdDsa).unwrap(),
            )
            .unwrap(),
        );
        let new = Arc::new(
            PrivateKey::from_pkcs8(
                Algorithm::EdDsa,
                &PrivateKey::generate(Algorithm::EdDsa).unwrap(),
            )
            .unwrap(),
        );
        let both = key_set(
            &old,
            vec![
                (old.public().thumbprint(), old.public().clone()),
                (new.public().thumbprint(), new.public().clone()),
            ],
        );
        let c = claims(TokenType::Access, 2_000);
        let token = both.encode(&c).unwrap();
        assert!(!verified.contains(&token));
        assert_eq!(both.decode(&token, TokenType::Access, 1_000), Ok(c.clone()));
        assert!(
            verified.contains(&token),
            "a verified signature is remembered"
        );
        // Remembered, it is still checked for type and expiry every time.
        assert_eq!(
            both.decode(&token, TokenType::Refresh, 1_000),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            both.decode(&token, TokenType::Access, 2_000),
            Err(TokenError::Expired)
        );
        // The key retired (a set without it): the remembered token stops verifying.
        let only_new = key_set(
            &new,
            vec![(new.public().thumbprint(), new.public().clone())],
        );
        assert_eq!(
            only_new.decode(&token, TokenType::Access, 1_000),
            Err(TokenError::UnknownKey)
        );
        // A token whose signature fails is never remembered.
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(both.decode(&forged, TokenType::Access, 1_000).is_err());
        assert!(!verified.contains(&forged));
    }

    #[test]
    fn a_missing_kid_or_a_crit_header_is_refused() {
        let (codec, kid, _) = asymmetric(Algorithm::EdDsa);
        let token = codec.encode(&claims(TokenType::Access, 2_000)).unwrap();
        let rest = token.split_once('.').unwrap().1;
        for header in [
            r#"{"alg":"EdDSA","typ":"JWT"}"#.to_owned(),
            format!(r#"{{"alg":"EdDSA","kid":"{kid}","crit":["exp"]}}"#),
            format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, "a".repeat(65)),
        ] {
            let changed = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header));
            assert!(codec.decode(&changed, TokenType::Access, 1).is_err());
        }
    }

    #[test]
    fn issuer_and_audience_are_added_and_required_when_configured() {
        let keys = Arc::new(KeySet::hs256(&"k".repeat(40).parse().unwrap()));
        let rules = ClaimRules {
            leeway: 0,
            issuer: Some("https://auth.example.com".into()),
            audience: Some("api".into()),
        };
        let strict = TokenCodec::new(keys.clone(), Arc::new(rules.clone()));
        let c = claims(TokenType::Access, 2_000);
        let token = strict.encode(&c).unwrap();
        let json: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["iss"], "https://auth.example.com");
        assert_eq!(json["aud"], "api");
        assert_eq!(
            strict.decode(&token, TokenType::Access, 1_500),
            Ok(c.clone())
        );
        // A token without them, or with other values, is refused.
        let plain = TokenCodec::new(keys.clone(), Arc::default())
            .encode(&c)
            .unwrap();
        assert_eq!(
            strict.decode(&plain, TokenType::Access, 1_500),
            Err(TokenError::WrongIssuerOrAudience)
        );
        let other = TokenCodec::new(
            keys.clone(),
            Arc::new(ClaimRules {
                audience: Some("billing".into()),
                ..rules
            }),
        );
        assert_eq!(
            other.decode(&token, TokenType::Access, 1_500),
            Err(TokenError::WrongIssuerOrAudience)
        );
        // Unconfigured, a token naming an audience is not for us either.
        assert_eq!(
            TokenCodec::new(keys, Arc::default()).decode(&token, TokenType::Access, 1_500),
            Err(TokenError::WrongIssuerOrAudience)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_never_verifies(input in ".{0,600}") {
            prop_assert!(codec().decode_any(&input, 0).is_err());
        }

        #[test]
        fn arbitrary_segments_never_verify(a in "[A-Za-z0-9_-]{0,200}", b in "[A-Za-z0-9_-]{0,400}", c in "[A-Za-z0-9_-]{0,60}") {
            let token = format!("{a}.{b}.{c}");
            prop_assert!(codec().decode_any(&token, 0).is_err());
            let with_header = format!("{HEADER_B64}.{b}.{c}");
            prop_assert!(codec().decode_any(&with_header, 0).is_err());
        }

        #[test]
        fn any_single_byte_change_is_refused(pos in 0usize..200, byte in any::<u8>()) {
            let token = codec().encode(&claims(TokenType::Refresh, i64::MAX)).unwrap();
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(codec().decode_any(&changed, 0).is_err());
            }
        }

        #[test]
        fn arbitrary_input_never_verifies_under_an_asymmetric_key(input in "[A-Za-z0-9_.-]{0,600}") {
            let (codec, _, _) = asymmetric(Algorithm::Es256);
            prop_assert!(codec.decode_any(&input, 0).is_err());
        }
    }
}
