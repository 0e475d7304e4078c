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
///
/// A token is bound to the account's password hash at issue time (it goes
/// into the MAC, never into the token): a password change, a reset by the
/// operator or a rehash ends every device token of the account, so whoever
/// once knew an old password keeps no throttle budget of their own.
#[derive(Clone)]
pub struct DeviceSigner {
    keyed: Hmac<Sha256>,
    leeway: i64,
}

impl DeviceSigner {
    /// A signer with `key` (derived for device tokens only).
    pub fn new(key: [u8; 32]) -> Self {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self { keyed, leeway: 0 }
    }

    /// The same signer, accepting tokens issued up to `seconds` in the
    /// future (by an instance whose clock is ahead).
    pub fn with_leeway(mut self, seconds: i64) -> Self {
        self.leeway = seconds.max(0);
        self
    }

    fn tag(&self, signed: &[u8], password_hash: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(signed);
        mac.update(password_hash.as_bytes());
        mac
    }

    /// A token for a device that just logged in to `user_id` at `now`,
    /// whose password hash is now `password_hash`.
    pub fn issue(
        &self,
        user_id: i64,
        password_hash: &str,
        now: i64,
    ) -> Result<String, getrandom::Error> {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&user_id.to_be_bytes());
        raw[8..8 + NONCE_LEN].copy_from_slice(&super::ids::random::<NONCE_LEN>()?);
        raw[8 + NONCE_LEN..RAW_LEN - 32].copy_from_slice(&now.to_be_bytes());
        let tag = self.tag(&raw[..RAW_LEN - 32], password_hash).finalize();
        raw[RAW_LEN - 32..].copy_from_slice(&tag.into_bytes());
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// The device behind `token`, if it is ours, of the account whose
    /// password hash is `password_hash` (and was when it was issued),
    /// unexpired at `now`, and not from the future beyond the leeway.
    /// Signature compared in constant time.
    pub fn verify(&self, token: &str, password_hash: &str, now: i64) -> Option<Device> {
        let mut raw = [0u8; RAW_LEN];
        if token.len() > 128 || URL_SAFE_NO_PAD.decode_slice(token, &mut raw).ok()? != RAW_LEN {
            return None;
        }
        let (signed, tag) = raw.split_at(RAW_LEN - 32);
        self.tag(signed, password_hash).verify_slice(tag).ok()?;
        let user_id = i64::from_be_bytes(signed[..8].try_into().ok()?);
        let issued = i64::from_be_bytes(signed[8 + NONCE_LEN..].try_into().ok()?);
        if issued > now.saturating_add(self.leeway) || now - issued > DEVICE_MAX_AGE_SECONDS {
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

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

    fn signer() -> DeviceSigner {
        DeviceSigner::new([3; 32])
    }

    #[test]
    fn an_issued_token_names_its_account_until_it_expires() {
        let token = signer().issue(42, HASH, 1_000).unwrap();
        let device = signer().verify(&token, HASH, 1_000).unwrap();
        assert_eq!(device.user_id, 42);
        assert_eq!(device.nonce.len(), 32);
        let last = 1_000 + DEVICE_MAX_AGE_SECONDS;
        assert!(signer().verify(&token, HASH, last).is_some());
        assert!(signer().verify(&token, HASH, last + 1).is_none());
        assert!(signer().verify(&token, HASH, 999).is_none());
        assert!(signer().with_leeway(5).verify(&token, HASH, 995).is_some());
    }

    #[test]
    fn a_new_password_ends_every_device_token_of_the_account() {
        let token = signer().issue(42, HASH, 1_000).unwrap();
        assert!(signer().verify(&token, "$argon2id$other", 1_000).is_none());
    }

    #[test]
    fn a_token_of_another_key_or_altered_is_refused() {
        let token = DeviceSigner::new([4; 32]).issue(42, HASH, 1_000).unwrap();
        assert!(signer().verify(&token, HASH, 1_000).is_none());
        let mut mine = signer().issue(42, HASH, 1_000).unwrap().into_bytes();
        mine[3] = if mine[3] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(mine).unwrap();
        assert!(signer().verify(&altered, HASH, 1_000).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_never_verifies(input in ".{0,200}") {
            prop_assert!(signer().verify(&input, HASH, 1_000).is_none());
        }
    }
}
