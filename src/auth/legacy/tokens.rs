//! Tokens SimpleJWT issued, signed HS256 with the Django project's
//! `SECRET_KEY` (or its `SIMPLE_JWT["SIGNING_KEY"]`): parsed as strictly as
//! latchkey's own (algorithm pinned, signature checked in constant time
//! before the claims are read), but with SimpleJWT's claims: no session id,
//! and `user_id` an integer or, as SimpleJWT 5.5 writes it, a string.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::auth::ids::RandomId;
use crate::auth::tokens::{verified_payload, TokenError, TokenType};

/// The Django signing key (`LATCHKEY_LEGACY_DJANGO_KEY`). `Debug` never
/// prints it. Any non-empty value is accepted: it is whatever Django used.
#[derive(Clone, PartialEq, Eq)]
pub struct DjangoKey(Vec<u8>);

impl fmt::Debug for DjangoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DjangoKey([redacted])")
    }
}

/// The configured Django key was empty.
#[derive(Debug, thiserror::Error)]
#[error("the legacy Django key is empty")]
pub struct EmptyDjangoKey;

impl FromStr for DjangoKey {
    type Err = EmptyDjangoKey;

    /// The key as Django holds it: the UTF-8 bytes of the string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(EmptyDjangoKey);
        }
        Ok(Self(s.as_bytes().to_vec()))
    }
}

/// The claims latchkey reads from a SimpleJWT token. Others (`iat`, custom
/// claims) are ignored, as SimpleJWT ignores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyClaims {
    /// `access` or `refresh`.
    pub token_type: TokenType,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time (SimpleJWT always writes it).
    pub iat: Option<i64>,
    /// Token id: SimpleJWT's `uuid4().hex`.
    pub jti: RandomId,
    /// The Django user id, which the import kept as the latchkey user id.
    pub user_id: i64,
}

#[derive(Deserialize)]
struct RawClaims {
    token_type: TokenType,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    jti: RandomId,
    user_id: UserIdClaim,
}

/// SimpleJWT writes `user_id` as `str(user.pk)` since 5.5, as an integer before.
#[derive(Deserialize)]
#[serde(untagged)]
enum UserIdClaim {
    Integer(i64),
    Text(String),
}

impl UserIdClaim {
    fn parse(self) -> Option<i64> {
        match self {
            Self::Integer(id) => Some(id),
            // Plain ASCII digits only: no sign, spaces or leading `+`.
            Self::Text(s)
                if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) =>
            {
                s.parse().ok()
            }
            Self::Text(_) => None,
        }
    }
}

/// Verifies SimpleJWT tokens with the Django key. Never signs any.
#[derive(Clone)]
pub struct SimpleJwtVerifier {
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for SimpleJwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimpleJwtVerifier([redacted])")
    }
}

impl SimpleJwtVerifier {
    /// A verifier for tokens signed with `key`.
    pub fn new(key: &DjangoKey) -> Self {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self { keyed }
    }

    /// The claims of `token` if it is well-formed, signed with the Django
    /// key under HS256, and unexpired at `now` (of either type).
    pub fn decode(&self, token: &str, now: i64) -> Result<LegacyClaims, TokenError> {
        let payload_json = verified_payload(&self.keyed, token)?;
        let raw: RawClaims =
            serde_json::from_slice(&payload_json).map_err(|_| TokenError::Malformed)?;
        let user_id = raw.user_id.parse().ok_or(TokenError::Malformed)?;
        if raw.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(LegacyClaims {
            token_type: raw.token_type,
            exp: raw.exp,
            iat: raw.iat,
            jti: raw.jti,
            user_id,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use proptest::prelude::*;

    pub(crate) const DJANGO_KEY: &str =
        "django-insecure-_v=m1pvazsu7!hd11*@r93z__&ed!vv^z=88o$(%3==i0lwyy0";

    /// A token as SimpleJWT signs it (PyJWT's sorted header).
    pub(crate) fn sign(key: &str, payload: &str) -> String {
        let head = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(head.as_bytes());
        format!(
            "{head}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn verifier() -> SimpleJwtVerifier {
        SimpleJwtVerifier::new(&DJANGO_KEY.parse().unwrap())
    }

    const JTI: &str = "5d1e2f0c3b4a49d8a7e6f5c4b3a29181";

    #[test]
    fn a_simplejwt_5_5_token_with_a_string_user_id_is_read() {
        let token = sign(
            DJANGO_KEY,
            &format!(
                r#"{{"token_type":"access","exp":2000,"iat":1000,"jti":"{JTI}","user_id":"42"}}"#
            ),
        );
        assert_eq!(
            verifier().decode(&token, 1_500),
            Ok(LegacyClaims {
                token_type: TokenType::Access,
                exp: 2000,
                iat: Some(1000),
                jti: RandomId::parse(JTI).unwrap(),
                user_id: 42,
            })
        );
    }

    #[test]
    fn an_integer_user_id_and_extra_claims_are_accepted() {
        let token = sign(
            DJANGO_KEY,
            &format!(
                r#"{{"token_type":"refresh","exp":2000,"iat":1000,"jti":"{JTI}","user_id":7,"aud":"x"}}"#
            ),
        );
        let claims = verifier().decode(&token, 0).unwrap();
        assert_eq!(claims.user_id, 7);
        assert_eq!(claims.token_type, TokenType::Refresh);
    }

    #[test]
    fn expired_forged_and_odd_tokens_are_refused() {
        let payload = format!(
            r#"{{"token_type":"access","exp":2000,"iat":1000,"jti":"{JTI}","user_id":"1"}}"#
        );
        assert_eq!(
            verifier().decode(&sign(DJANGO_KEY, &payload), 2_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verifier().decode(&sign("another key", &payload), 0),
            Err(TokenError::BadSignature)
        );
        for user_id in [
            r#""-1""#, r#"" 1""#, r#""+1""#, r#""1e3""#, r#""""#, "null", "1.5",
        ] {
            let odd = format!(
                r#"{{"token_type":"access","exp":2000,"jti":"{JTI}","user_id":{user_id}}}"#
            );
            assert_eq!(
                verifier().decode(&sign(DJANGO_KEY, &odd), 0),
                Err(TokenError::Malformed),
                "{user_id}"
            );
        }
        let no_jti = r#"{"token_type":"access","exp":2000,"user_id":"1"}"#;
        assert_eq!(
            verifier().decode(&sign(DJANGO_KEY, no_jti), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn only_hs256_is_accepted() {
        let payload =
            format!(r#"{{"token_type":"access","exp":2000,"jti":"{JTI}","user_id":"1"}}"#);
        let token = sign(DJANGO_KEY, &payload);
        let body = token.split_once('.').unwrap().1;
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"HS512","typ":"JWT"}"#] {
            let swapped = format!("{}.{body}", URL_SAFE_NO_PAD.encode(header));
            assert_eq!(
                verifier().decode(&swapped, 0),
                Err(TokenError::WrongAlgorithm)
            );
        }
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let key: DjangoKey = DJANGO_KEY.parse().unwrap();
        assert_eq!(format!("{key:?}"), "DjangoKey([redacted])");
        assert!("".parse::<DjangoKey>().is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_never_verifies(input in ".{0,600}") {
            prop_assert!(verifier().decode(&input, 0).is_err());
        }

        #[test]
        fn arbitrary_segments_never_verify(a in "[A-Za-z0-9_-]{0,200}", b in "[A-Za-z0-9_-]{0,400}", c in "[A-Za-z0-9_-]{0,60}") {
            let token = format!("{a}.{b}.{c}");
            prop_assert!(verifier().decode(&token, 0).is_err());
        }

        #[test]
        fn arbitrary_signed_payloads_never_panic(payload in ".{0,300}") {
            // Signed with the right key: only the claims parser stands guard.
            let _ = verifier().decode(&sign(DJANGO_KEY, &payload), 0);
        }

        #[test]
        fn any_single_byte_change_is_refused(pos in 0usize..400, byte in any::<u8>()) {
            let token = sign(DJANGO_KEY, &format!(r#"{{"token_type":"refresh","exp":99999999999,"jti":"{JTI}","user_id":"3"}}"#));
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(verifier().decode(&changed, 0).is_err());
            }
        }
    }
}
