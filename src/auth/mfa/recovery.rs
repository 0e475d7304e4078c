//! Recovery codes: ten per user, 60 random bits each, shown once and
//! stored only as keyed hashes.
//!
//! A fast keyed hash (HMAC-SHA-256 under a key derived from the server's
//! secret) is right here, unlike for passwords: a code carries 60 bits
//! from the OS generator, so even a stolen table and key leave 2^60
//! guesses per code, and a slow hash would only slow logins. The user id
//! is hashed in, so equal codes of two users have different hashes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Codes issued at a time.
pub const CODES_PER_SET: usize = 10;
/// Characters of a code (5 bits each: 60 bits).
pub const RECOVERY_CHARS: usize = 12;
/// The characters of a code: RFC 4648's base32 alphabet, lower case.
pub const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// One fresh code, as shown: `xxxx-xxxx-xxxx`.
pub fn generate_one() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)?;
    let bits = u64::from_be_bytes(bytes);
    let mut out = String::with_capacity(RECOVERY_CHARS + 2);
    for i in 0..RECOVERY_CHARS {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let index = (bits >> (5 * i)) & 31;
        out.push(char::from(RECOVERY_ALPHABET[index as usize]));
    }
    Ok(out)
}

/// A new set of codes.
pub fn generate_set() -> Result<Vec<String>, getrandom::Error> {
    (0..CODES_PER_SET).map(|_| generate_one()).collect()
}

/// The stored form of `normalised` (see [`super::code::Code`]) for `user_id`.
pub fn hash(key: &[u8; 32], user_id: i64, normalised: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(&user_id.to_be_bytes());
    mac.update(normalised.as_bytes());
    crate::auth::ids::hex(&mac.finalize().into_bytes())
}

/// The normalised form of a code as shown (what [`hash`] takes).
pub fn normalise(shown: &str) -> String {
    shown.chars().filter(|c| *c != '-').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_ten_distinct_codes_of_the_shown_shape() {
        let set = generate_set().unwrap();
        assert_eq!(set.len(), CODES_PER_SET);
        let distinct: std::collections::HashSet<_> = set.iter().collect();
        assert_eq!(distinct.len(), CODES_PER_SET);
        for code in &set {
            assert_eq!(code.len(), 14);
            assert_eq!(normalise(code).len(), RECOVERY_CHARS);
        }
    }

    #[test]
    fn hashes_depend_on_the_key_and_the_user() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(hash(&a, 1, "x"), hash(&a, 1, "x"));
        assert_ne!(hash(&a, 1, "x"), hash(&b, 1, "x"));
        assert_ne!(hash(&a, 1, "x"), hash(&a, 2, "x"));
        assert_eq!(hash(&a, 1, "x").len(), 64);
    }
}
