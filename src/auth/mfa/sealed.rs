//! TOTP secrets at rest: ChaCha20-Poly1305 under a key derived from the
//! server's secret key, with the user id as associated data (a sealed
//! secret copied onto another user's row does not open). Stored as
//! `v1:` and base64 of nonce and ciphertext.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 12;

/// The sealing key (derived from the server's secret key).
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

/// A sealed secret did not open: the server key changed, or the row was
/// tampered with.
#[derive(Debug, thiserror::Error)]
#[error("the TOTP secret cannot be opened with the current server key")]
pub struct Unopenable;

impl SecretBox {
    /// A box for `key` (see `SecretKey::derive`).
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// `secret` sealed for `user_id`.
    pub fn seal(&self, user_id: i64, secret: &[u8]) -> Result<String, crate::auth::AuthError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce)?;
        let aad = aad(user_id);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| crate::auth::AuthError::Internal("sealing failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD_NO_PAD.encode(bytes)))
    }

    /// The secret `stored` holds for `user_id`.
    pub fn open(&self, user_id: i64, stored: &str) -> Result<Vec<u8>, Unopenable> {
        let encoded = stored.strip_prefix(PREFIX).ok_or(Unopenable)?;
        let bytes = STANDARD_NO_PAD.decode(encoded).map_err(|_| Unopenable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(Unopenable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let aad = aad(user_id);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| Unopenable)
    }
}

fn aad(user_id: i64) -> Vec<u8> {
    format!("latchkey/totp/user/{user_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sealed_secret_opens_for_its_user_and_key_only() {
        let sealed_box = SecretBox::new([7; 32]);
        let stored = sealed_box.seal(42, b"secret bytes").unwrap();
        assert!(!stored.contains("secret"));
        assert_eq!(sealed_box.open(42, &stored).unwrap(), b"secret bytes");
        assert!(sealed_box.open(43, &stored).is_err(), "another user");
        assert!(
            SecretBox::new([8; 32]).open(42, &stored).is_err(),
            "another key"
        );
        let other = sealed_box.seal(42, b"secret bytes").unwrap();
        assert_ne!(other, stored, "a fresh nonce each time");
    }

    proptest! {
        #[test]
        fn opening_garbage_never_panics(stored in any::<String>()) {
            let _ = SecretBox::new([1; 32]).open(1, &stored);
        }
    }
}
