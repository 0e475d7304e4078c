//! Device cookies (OWASP's "device cookie" lockout defence): a browser that
//! logged in to an account gets a token naming that account, signed with a
//! key derived for this purpose only. Failed logins that present it are
//! counted on a counter of that device alone, so an attacker hammering the
//! account from elsewhere — who holds no such token — cannot lock the user
//! out. The token grants nothing else: it is no credential.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const NONCE_LEN: usize = 16;
const RAW_LEN: usize = 8 + NONCE_LEN + 8 + 32;

/// How long a device stays known without a login: as long as a known
/// address (180 days).
pub const DEVICE_MAX_AGE_SECONDS: i64 = crate::store::KNOWN_CLIENT_MAX_AGE_SECONDS;

/// A verified device token: which device, of which account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The account it logged in to.
    pub user_id: i64,
    /// The device's random id, as hex (its own throttle counter).
    pub nonce: String,
}

/// Issues and verifies device tokens.
#[derive(Clone)]
pub struct DeviceSigner {
    keyed: Hmac<Sha256>,
}

impl DeviceSigner {
    /// A signer with `key` (derived for device tokens only).
    pub fn new(key: [u8; 32]) -> Self {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self { keyed }
    }

    /// A token for a device that just logged in to `user_id` at `now`.
    pub fn issue(&self, user_id: i64, now: i64) -> Result<String, getrandom::Error> {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&user_id.to_be_bytes());
        raw[8..8 + NONCE_LEN].copy_from_slice(&super::ids::random::<NONCE_LEN>()?);
        raw[8 + NONCE_LEN..RAW_LEN - 32].copy_from_slice(&now.to_be_bytes());
        let mut mac = self.keyed.clone();
        mac.update(&raw[..RAW_LEN - 32]);
        raw[RAW_LEN - 32..].copy_from_slice(&mac.finalize().into_bytes());
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// The device behind `token`, if it is ours, unexpired at `now`, and
    /// not from the future. Signature compared in constant time.
    pub fn verify(&self, token: &str, now: i64) -> Option<Device> {
        let mut raw = [0u8; RAW_LEN];
        if token.len() > 128 || URL_SAFE_NO_PAD.decode_slice(token, &mut raw).ok()? != RAW_LEN {
            return None;
        }
        let (signed, tag) = raw.split_at(RAW_LEN - 32);
        let mut mac = self.keyed.clone();
        mac.update(signed);
        mac.verify_slice(tag).ok()?;
        let user_id = i64::from_be_bytes(signed[..8].try_into().ok()?);
        let issued = i64::from_be_bytes(signed[8 + NONCE_LEN..].try_into().ok()?);
        if issued > now || now - issued > DEVICE_MAX_AGE_SECONDS {
            return None;
        }
        Some(Device {
            user_id,
            nonce: super::ids::hex(&signed[8..8 + NONCE_LEN]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> DeviceSigner {
        DeviceSigner::new([3; 32])
    }

    #[test]
    fn an_issued_token_names_its_account_until_it_expires() {
        let token = signer().issue(42, 1_000).unwrap();
        let device = signer().verify(&token, 1_000).unwrap();
        assert_eq!(device.user_id, 42);
        assert_eq!(device.nonce.len(), 32);
        assert!(signer()
            .verify(&token, 1_000 + DEVICE_MAX_AGE_SECONDS)
            .is_some());
        assert!(signer()
            .verify(&token, 1_001 + DEVICE_MAX_AGE_SECONDS)
            .is_none());
        assert!(signer().verify(&token, 999).is_none());
    }

    #[test]
    fn a_token_of_another_key_or_altered_is_refused() {
        let token = DeviceSigner::new([4; 32]).issue(42, 1_000).unwrap();
        assert!(signer().verify(&token, 1_000).is_none());
        let mut mine = signer().issue(42, 1_000).unwrap().into_bytes();
        mine[3] = if mine[3] == b'A' { b'B' } else { b'A' };
        assert!(signer()
            .verify(&String::from_utf8(mine).unwrap(), 1_000)
            .is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_never_verifies(input in ".{0,200}") {
            prop_assert!(signer().verify(&input, 1_000).is_none());
        }
    }
}
