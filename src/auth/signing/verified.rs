//! Asymmetric signatures already checked. Every request of a session
//! carries the same access token until it is refreshed, and an EdDSA,
//! ES256 or RS256 verification costs tens of microseconds where a SHA-256
//! digest of the token costs one; so a token whose signature verified is
//! remembered by its digest, and presented again skips the check.
//!
//! Only the signature is remembered. Everything else is decided again on
//! every use: the `kid` must still name a usable key of the current set
//! (a retired or revoked key's tokens stop verifying at the next reload),
//! and the claims (type, expiry, issuer, audience) are read and checked.
//! Only a token that verified is ever stored, so input cannot fill the
//! memory or evict what real sessions use; the digest binds the header,
//! payload and signature, so a different token matches only through a
//! SHA-256 collision.
//!
//! Bounded: a direct-mapped table of [`SLOTS`] digests (about 160 KiB), each
//! slot its own lock; a new token takes the slot its digest selects.

use std::sync::Mutex;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Slots in the table: more than the live sessions one instance serves per
/// access-token lifetime in a small deployment; a busy one verifies more
/// often, never wrongly.
pub const SLOTS: usize = 4096;

/// The digests of tokens whose signature verified.
pub struct VerifiedSignatures {
    slots: Box<[Mutex<Option<[u8; 32]>>]>,
}

impl Default for VerifiedSignatures {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl VerifiedSignatures {
    fn slot(&self, digest: &[u8; 32]) -> &Mutex<Option<[u8; 32]>> {
        let index = usize::from(u16::from_le_bytes([digest[0], digest[1]])) % SLOTS;
        &self.slots[index]
    }

    /// Whether `token`'s signature verified before.
    pub fn contains(&self, token: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let held = match self.slot(&digest).lock() {
            Ok(slot) => *slot,
            Err(poisoned) => *poisoned.into_inner(),
        };
        held.is_some_and(|held| bool::from(held.ct_eq(&digest)))
    }

    /// Remembers that `token`'s signature verified.
    pub fn insert(&self, token: &str) {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match self.slot(&digest).lock() {
            Ok(mut slot) => *slot = Some(digest),
            Err(poisoned) => *poisoned.into_inner() = Some(digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_is_remembered_only_once_inserted() {
        let table = VerifiedSignatures::default();
        assert!(!table.contains("a.b.c"));
        table.insert("a.b.c");
        assert!(table.contains("a.b.c"));
        assert!(!table.contains("a.b.d"));
    }

    #[test]
    fn the_table_never_grows_past_its_slots() {
        let table = VerifiedSignatures::default();
        for n in 0..(SLOTS * 4) {
            table.insert(&format!("token-{n}"));
        }
        assert_eq!(table.slots.len(), SLOTS);
        // The newest tokens are there; most of the oldest were displaced.
        assert!(table.contains(&format!("token-{}", SLOTS * 4 - 1)));
        let kept = (0..SLOTS)
            .filter(|n| table.contains(&format!("token-{n}")))
            .count();
        assert!(
            kept < SLOTS / 4,
            "{kept} of the first {SLOTS} are still held"
        );
    }

    proptest! {
        #[test]
        fn a_token_that_differs_from_the_stored_one_is_not_taken_for_it(
            stored in ".{1,400}", other in ".{1,400}"
        ) {
            prop_assume!(stored != other);
            let table = VerifiedSignatures::default();
            table.insert(&stored);
            prop_assert!(!table.contains(&other));
        }
    }
}
