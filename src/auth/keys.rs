//! The server's signing key and the keys derived from it.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest signing key accepted, in bytes (HS256 wants at least 256 bits).
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// The signing key. Its `Debug` never prints the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// Wrap raw key bytes, refusing keys shorter than [`MIN_SECRET_KEY_BYTES`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, KeyTooShort> {
        if bytes.len() < MIN_SECRET_KEY_BYTES {
            return Err(KeyTooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = vec![0u8; MIN_SECRET_KEY_BYTES];
        getrandom::getrandom(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The raw key bytes (for storage and for HMAC keys only).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A sub-key for one purpose, so that a token of one kind can never be
    /// replayed as another: HMAC-SHA256(key, label).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl FromStr for SecretKey {
    type Err = KeyTooShort;

    /// The key as configured: its UTF-8 bytes, as Django uses `SECRET_KEY`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(s.as_bytes().to_vec())
    }
}

/// A configured key was shorter than [`MIN_SECRET_KEY_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("the secret key must be at least {MIN_SECRET_KEY_BYTES} bytes, got {0}")]
pub struct KeyTooShort(pub usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused() {
        assert!("short".parse::<SecretKey>().is_err());
        assert!("x".repeat(31).parse::<SecretKey>().is_err());
        assert!("x".repeat(32).parse::<SecretKey>().is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key: SecretKey = "super-secret-value-that-is-long-enough".parse().unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("super-secret"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn derived_keys_differ_by_label() {
        let key = SecretKey::generate().unwrap();
        assert_ne!(key.derive("a"), key.derive("b"));
        assert_eq!(key.derive("a"), key.derive("a"));
    }
}
