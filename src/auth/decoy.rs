//! Logins to accounts that do not exist must take as long as logins to
//! accounts that do. An unknown account costs a verification against a
//! stand-in hash; with only latchkey's Argon2id in the database one stand-in
//! does, but while users imported from Django still hold their Django hashes
//! (PBKDF2 at 10^6 iterations takes ~110 ms, Argon2id ~19 ms), a single
//! stand-in would tell those accounts apart from unknown ones.
//!
//! So the stand-in follows the database: a census of the stored hash kinds
//! and costs (a sample, refreshed every ten minutes) gives decoy hashes of
//! the same kinds and costs in the same proportions, and each unknown
//! identifier is assigned one of them by a keyed hash of the identifier —
//! always the same one, so repeating a probe shows an unknown address one
//! steady cost, as a real account would, drawn from the costs real accounts
//! have.

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How the stored hashes are spread, as sampled.
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// Users in all.
    pub users: u64,
    /// Users whose hash is not latchkey's Argon2id.
    pub legacy: u64,
    /// Decoys like the sampled non-Argon2id hashes (`None`: a sampled hash
    /// that costs the Argon2id stand-in, such as an unusable one).
    pub decoys: Vec<Option<String>>,
}

/// The decoy hashes in use, and the key that assigns them.
pub struct Decoys {
    key: Hmac<Sha256>,
    census: RwLock<Arc<Census>>,
}

impl Decoys {
    /// No census yet: every unknown account gets the Argon2id stand-in.
    pub fn new(key: [u8; 32]) -> Self {
        let key = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self {
            key,
            census: RwLock::new(Arc::default()),
        }
    }

    /// Use `census` from now on.
    pub fn update(&self, census: Census) {
        if let Ok(mut current) = self.census.write() {
            *current = Arc::new(census);
        }
    }

    /// The decoy for unknown account `identifier`: `None` for the Argon2id
    /// stand-in, else a hash to verify the password against (and ignore).
    pub fn for_identifier(&self, identifier: &str) -> Option<String> {
        let census = self.census.read().ok()?.clone();
        if census.legacy == 0 || census.users == 0 || census.decoys.is_empty() {
            return None;
        }
        let mut mac = self.key.clone();
        mac.update(identifier.as_bytes());
        let digest = mac.finalize().into_bytes();
        let pick = |bytes: &[u8]| {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            u64::from_be_bytes(word)
        };
        if pick(&digest[..8]) % census.users >= census.legacy {
            return None;
        }
        let len = u64::try_from(census.decoys.len()).ok()?;
        let index = usize::try_from(pick(&digest[8..16]) % len).ok()?;
        census.decoys.get(index).cloned().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoys(users: u64, legacy: u64) -> Decoys {
        let d = Decoys::new([9; 32]);
        d.update(Census {
            users,
            legacy,
            decoys: vec![Some("pbkdf2".into()), Some("bcrypt".into())],
        });
        d
    }

    #[test]
    fn without_legacy_hashes_every_unknown_account_gets_the_argon2id_stand_in() {
        let d = decoys(100, 0);
        assert!((0..200).all(|i| d.for_identifier(&format!("u{i}@x.com")).is_none()));
        assert_eq!(Decoys::new([1; 32]).for_identifier("a@b.com"), None);
    }

    #[test]
    fn unknown_accounts_get_decoys_in_the_proportion_of_legacy_hashes() {
        let d = decoys(100, 30);
        let with_decoy = (0..10_000)
            .filter(|i| d.for_identifier(&format!("u{i}@x.com")).is_some())
            .count();
        assert!((2_600..3_400).contains(&with_decoy), "{with_decoy}");
    }

    #[test]
    fn an_identifier_always_gets_the_same_decoy() {
        let d = decoys(100, 50);
        for i in 0..100 {
            let id = format!("u{i}@x.com");
            assert_eq!(d.for_identifier(&id), d.for_identifier(&id));
        }
    }
}
