//! CSRF tokens: an HMAC over a random nonce and the issue time, so the server
//! can check a token without storing it, and refuse it once it is too old.
//!
//! Wire form: base64url(nonce[16] ‖ issued_at as u64 big-endian[8] ‖ tag[32]),
//! 75 characters, safe in a cookie and a header.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const NONCE_LEN: usize = 16;
const TIME_LEN: usize = 8;
const TAG_LEN: usize = 32;
const RAW_LEN: usize = NONCE_LEN + TIME_LEN + TAG_LEN;
/// Length of an encoded token.
pub const TOKEN_LEN: usize = (RAW_LEN * 4).div_ceil(3);

/// Why a CSRF token was refused. The messages follow Django's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    /// No token was sent.
    #[error("CSRF token missing.")]
    Missing,
    /// The token is not one of ours in shape.
    #[error("CSRF token has incorrect format.")]
    Malformed,
    /// The tag does not verify: forged or signed with another key.
    #[error("CSRF token incorrect.")]
    Incorrect,
    /// Older than the configured maximum age.
    #[error("CSRF token expired.")]
    Expired,
    /// The header token differs from the `csrftoken` cookie.
    #[error("CSRF token from the header does not match the cookie.")]
    CookieMismatch,
}

/// Issues and verifies CSRF tokens with a key derived for this purpose only.
#[derive(Clone)]
pub struct CsrfSigner {
    /// HMAC state with the key already absorbed (cloned per token).
    keyed: Hmac<Sha256>,
    max_age_seconds: u64,
    leeway_seconds: u64,
}

impl CsrfSigner {
    /// A signer with `key` whose tokens expire after `max_age_seconds`.
    pub fn new(key: [u8; 32], max_age_seconds: u64) -> Self {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self {
            keyed,
            max_age_seconds,
            leeway_seconds: 0,
        }
    }

    /// The same signer, tolerating `seconds` of clock skew between
    /// instances: a token issued up to that far in the future is accepted,
    /// and one further ahead refused (it would otherwise outlive its age).
    pub fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway_seconds = seconds;
        self
    }

    fn tag(&self, signed: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(signed);
        mac
    }

    /// A new token issued at `now` (seconds since the epoch).
    pub fn issue(&self, now: u64) -> Result<String, getrandom::Error> {
        let mut raw = [0u8; RAW_LEN];
        raw[..NONCE_LEN].copy_from_slice(&super::ids::random::<NONCE_LEN>()?);
        raw[NONCE_LEN..NONCE_LEN + TIME_LEN].copy_from_slice(&now.to_be_bytes());
        let tag = self
            .tag(&raw[..NONCE_LEN + TIME_LEN])
            .finalize()
            .into_bytes();
        raw[NONCE_LEN + TIME_LEN..].copy_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Check that `token` is ours and not older than the maximum age at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<(), CsrfError> {
        if token.is_empty() {
            return Err(CsrfError::Missing);
        }
        if token.len() != TOKEN_LEN {
            return Err(CsrfError::Malformed);
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(CsrfError::Malformed),
        }
        let (signed, tag) = raw.split_at(NONCE_LEN + TIME_LEN);
        // `verify_slice` compares in constant time.
        self.tag(signed)
            .verify_slice(tag)
            .map_err(|_| CsrfError::Incorrect)?;
        let mut time = [0u8; TIME_LEN];
        time.copy_from_slice(&signed[NONCE_LEN..]);
        let issued_at = u64::from_be_bytes(time);
        if issued_at > now.saturating_add(self.leeway_seconds)
            || now.saturating_sub(issued_at)
                > self.max_age_seconds.saturating_add(self.leeway_seconds)
        {
            return Err(CsrfError::Expired);
        }
        Ok(())
    }
}

/// Constant-time equality of two tokens (the header and the cookie).
pub fn tokens_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> CsrfSigner {
        CsrfSigner::new([7; 32], 100)
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let token = signer().issue(1_000).unwrap();
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(signer().verify(&token, 1_000), Ok(()));
        assert_eq!(signer().verify(&token, 1_100), Ok(()));
        assert_eq!(signer().verify(&token, 1_101), Err(CsrfError::Expired));
    }

    #[test]
    fn a_token_from_an_instance_ahead_is_accepted_within_the_leeway_only() {
        let token = signer().issue(1_000).unwrap();
        let lenient = signer().with_leeway(5);
        assert_eq!(lenient.verify(&token, 995), Ok(()));
        assert_eq!(lenient.verify(&token, 994), Err(CsrfError::Expired));
        // Without leeway a token from the future never verifies: it would
        // otherwise outlive its maximum age by the skew.
        assert_eq!(signer().verify(&token, 999), Err(CsrfError::Expired));
        assert_eq!(lenient.verify(&token, 1_105), Ok(()));
        assert_eq!(lenient.verify(&token, 1_106), Err(CsrfError::Expired));
    }

    #[test]
    fn a_token_from_another_key_is_incorrect() {
        let other = CsrfSigner::new([8; 32], 100).issue(1_000).unwrap();
        assert_eq!(signer().verify(&other, 1_000), Err(CsrfError::Incorrect));
    }

    #[test]
    fn tokens_are_unique() {
        assert_ne!(signer().issue(5).unwrap(), signer().issue(5).unwrap());
    }

    #[test]
    fn empty_and_wrong_length_tokens_are_told_apart() {
        assert_eq!(signer().verify("", 0), Err(CsrfError::Missing));
        assert_eq!(signer().verify("abc", 0), Err(CsrfError::Malformed));
        assert_eq!(
            signer().verify(&"!".repeat(TOKEN_LEN), 0),
            Err(CsrfError::Malformed)
        );
    }

    #[test]
    fn tokens_match_compares_whole_strings() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "abcd"));
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_never_verifies(input in ".{0,200}") {
            prop_assert!(signer().verify(&input, 1_000).is_err());
        }

        #[test]
        fn arbitrary_well_shaped_input_never_verifies(input in "[A-Za-z0-9_-]{75}") {
            prop_assert!(signer().verify(&input, 1_000).is_err());
        }

        #[test]
        fn flipping_any_character_breaks_the_token(pos in 0usize..TOKEN_LEN, c in "[A-Za-z0-9_-]") {
            let token = signer().issue(1_000).unwrap();
            let mut chars: Vec<char> = token.chars().collect();
            let c = c.chars().next().unwrap();
            prop_assume!(chars[pos] != c);
            chars[pos] = c;
            let changed: String = chars.into_iter().collect();
            prop_assert!(signer().verify(&changed, 1_000).is_err());
        }
    }
}
