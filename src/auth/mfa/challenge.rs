//! The `mfa_token` of a login waiting for its second factor: 256 random
//! bits as 64 hex characters, opaque (no JWT: it cannot be mistaken for, or
//! presented as, an access or refresh token), stored only as its SHA-256.

use sha2::{Digest as _, Sha256};

/// How long a challenge lives.
pub const LIFETIME_SECONDS: i64 = 300;
/// Wrong codes a challenge survives before it dies.
pub const MAX_FAILURES: i64 = 5;

/// A fresh token.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(crate::auth::ids::hex(&bytes))
}

/// A presented token's stored form, or `None` when it is not of the
/// shape [`generate`] makes (so nothing else reaches the database).
pub fn parse_and_hash(presented: &str) -> Option<String> {
    let valid = presented.len() == 64
        && presented
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| hash(presented))
}

/// The stored form of a token (a fast hash: the token is 256 random bits).
pub fn hash(token: &str) -> String {
    crate::auth::ids::hex(&Sha256::digest(token.as_bytes()))
}

/// A digest of the password hash a login proved, so a password change
/// between the two steps voids the challenge.
pub fn password_digest(password_hash: &str) -> String {
    crate::auth::ids::hex(&Sha256::digest(password_hash.as_bytes()))
}

/// Whether `stored` is the digest of `password_hash` (constant time).
pub fn same_digest(stored: &str, password_hash: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(
        stored
            .as_bytes()
            .ct_eq(password_digest(password_hash).as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_tokens_parse_and_hash_apart_from_themselves() {
        let token = generate().unwrap();
        let stored = parse_and_hash(&token).unwrap();
        assert_ne!(stored, token);
        assert_eq!(stored, hash(&token));
        assert_ne!(generate().unwrap(), token);
    }

    #[test]
    fn jwts_and_other_shapes_are_refused() {
        assert!(parse_and_hash("eyJhbGciOiJIUzI1NiJ9.e30.sig").is_none());
        assert!(parse_and_hash(&"A".repeat(64)).is_none());
        assert!(parse_and_hash(&"a".repeat(63)).is_none());
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepts_only_64_hex(input in any::<String>()) {
            if parse_and_hash(&input).is_some() {
                prop_assert_eq!(input.len(), 64);
            }
        }

        #[test]
        fn every_64_hex_string_parses(input in "[0-9a-f]{64}") {
            prop_assert!(parse_and_hash(&input).is_some());
        }
    }
}
