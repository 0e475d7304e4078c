//! JSON Web Tokens as SimpleJWT writes them: HS256, with the claims
//! `token_type`, `exp`, `iat`, `jti`, `user_id`, plus our session id `sid`.
//!
//! The codec is small and strict on purpose: the algorithm is pinned to HS256
//! (a token whose header names anything else is refused before its claims are
//! read), the signature is checked in constant time, and nothing but a
//! well-formed, unexpired token of the expected type gets through.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ids::RandomId;
use super::keys::SecretKey;

/// `{"alg":"HS256","typ":"JWT"}`, base64url-encoded, exactly as SimpleJWT.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Tokens longer than this are refused before any decoding work.
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

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url segments of JSON, or claims of the wrong shape.
    #[error("token is malformed")]
    Malformed,
    /// The header names an algorithm other than HS256.
    #[error("token uses an algorithm other than HS256")]
    WrongAlgorithm,
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
}

/// Signs and verifies tokens with one key.
#[derive(Clone)]
pub struct TokenCodec {
    /// HMAC state with the key already absorbed: cloning it skips the two
    /// key-block compressions every token would otherwise pay for.
    keyed: Hmac<Sha256>,
    /// Seconds of clock skew tolerated between instances (`exp`, `iat`).
    leeway: i64,
}

#[derive(Deserialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(default)]
    typ: Option<&'a str>,
}

impl TokenCodec {
    /// A codec signing with `key` (used directly, as SimpleJWT uses its
    /// `SIGNING_KEY`, so other services holding the key can verify tokens).
    pub fn new(key: SecretKey) -> Self {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self { keyed, leeway: 0 }
    }

    /// The same codec, tolerating `seconds` of clock skew: a token stays
    /// valid until `exp + seconds`, and one issued up to `seconds` in the
    /// future is accepted (another instance's clock may be that far ahead).
    pub fn with_leeway(mut self, seconds: i64) -> Self {
        self.leeway = seconds.max(0);
        self
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.keyed.clone()
    }

    /// Serialise and sign `claims`.
    pub fn encode(&self, claims: &Claims) -> String {
        // Claims are plain data; serialising them cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 48);
        token.push_str(HEADER_B64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let signature = mac.finalize().into_bytes();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }

    /// Verify `token` and return its claims if it is well-formed, signed with
    /// our key under HS256, unexpired at `now`, and of type `expected`.
    pub fn decode(&self, token: &str, expected: TokenType, now: i64) -> Result<Claims, TokenError> {
        let claims = self.decode_any(token, now)?;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        Ok(claims)
    }

    /// As [`decode`](Self::decode), accepting either token type.
    pub fn decode_any(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let payload = verified_payload(&self.keyed, token)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(TokenError::Expired);
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }
}

/// The decoded payload of `token` if it is a compact JWS of at most
/// [`MAX_TOKEN_LEN`] bytes whose header names HS256 and whose signature is
/// `keyed`'s, checked in constant time before anything else is read. Shared
/// by latchkey's codec and the SimpleJWT verifier (`legacy::tokens`).
pub(crate) fn verified_payload(keyed: &Hmac<Sha256>, token: &str) -> Result<Vec<u8>, TokenError> {
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
    if parsed.alg != "HS256" || parsed.typ.is_some_and(|t| t != "JWT") {
        return Err(TokenError::WrongAlgorithm);
    }

    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let signed_len = header.len() + 1 + payload.len();
    let mut mac = keyed.clone();
    mac.update(&token.as_bytes()[..signed_len]);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;

    URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec() -> TokenCodec {
        TokenCodec::new("k".repeat(40).parse().unwrap())
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
        let token = codec().encode(&c);
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
        let token = codec().encode(&claims(TokenType::Access, 2_000));
        assert_eq!(
            codec().decode(&token, TokenType::Access, 2_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_stays_valid_for_the_leeway_past_its_expiry_and_no_longer() {
        let token = codec().encode(&claims(TokenType::Access, 2_000));
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
        let token = codec().encode(&claims(TokenType::Access, 2_000));
        let lenient = codec().with_leeway(5);
        assert!(lenient.decode(&token, TokenType::Access, 995).is_ok());
        assert_eq!(
            lenient.decode(&token, TokenType::Access, 994),
            Err(TokenError::IssuedInFuture)
        );
    }

    #[test]
    fn the_token_type_must_match() {
        let refresh = codec().encode(&claims(TokenType::Refresh, 2_000));
        assert_eq!(
            codec().decode(&refresh, TokenType::Access, 1_000),
            Err(TokenError::WrongType)
        );
        let access = codec().encode(&claims(TokenType::Access, 2_000));
        assert_eq!(
            codec().decode(&access, TokenType::Refresh, 1_000),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = TokenCodec::new("z".repeat(40).parse().unwrap());
        let token = other.encode(&claims(TokenType::Access, 2_000));
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
        let token = codec().encode(&claims(TokenType::Access, 2_000));
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
            let token = codec().encode(&claims(TokenType::Refresh, i64::MAX));
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(codec().decode_any(&changed, 0).is_err());
            }
        }
    }
}
