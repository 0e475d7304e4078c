//! Password hashes as `users.password_hash` keeps them (migration 0012;
//! docs/benchmarks.md, "Cost as the data grows"): an Argon2id hash in
//! latchkey's PHC form as its numbers and bytes, 55 bytes where its text is
//! 97; any other hash (an imported Django one, say) as its text's bytes.
//! Converted here, at the edge of storage, so every other layer keeps the
//! PHC text the `argon2` crate reads and writes.
//!
//! The compact form is a tag byte ([`TAG_ARGON2ID`]), then `m`, `t` and `p`
//! as LEB128, the salt's length in a byte, the salt, and the hash. A hash is
//! stored compactly only when that form gives back exactly its text, so no
//! text is ever changed by the round trip. Text starts with any byte but
//! the two tags (a hash written before 0012 is its text, which starts with
//! `$` or a letter); a text that would start with one is stored after
//! [`TAG_TEXT`].

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

use super::StoreError;

/// The tag of a compact Argon2id (version 19) hash.
const TAG_ARGON2ID: u8 = 1;
/// The tag of text that would otherwise start with a tag.
const TAG_TEXT: u8 = 0;
/// What a PHC Argon2id (version 19) hash starts with.
const PREFIX: &str = "$argon2id$v=19$";

/// The stored bytes of password hash `hash`.
pub(super) fn encode(hash: &str) -> Vec<u8> {
    if let Some(compact) = compact(hash) {
        if decode(&compact).ok().as_deref() == Some(hash) {
            return compact;
        }
    }
    match hash.as_bytes().first() {
        Some(&TAG_ARGON2ID | &TAG_TEXT) => [&[TAG_TEXT][..], hash.as_bytes()].concat(),
        _ => hash.as_bytes().to_vec(),
    }
}

/// The stored bytes of a `password_hash` column of `row`: a BLOB, or text
/// an operator wrote by hand (SQLite keeps a text literal as text).
pub(super) fn column(row: &sqlx::any::AnyRow, index: usize) -> Result<Vec<u8>, sqlx::Error> {
    use sqlx::Row as _;
    row.try_get::<Vec<u8>, _>(index)
        .or_else(|_| row.try_get::<String, _>(index).map(String::into_bytes))
}

/// The bytes an Argon2id hash's row holds if it was written before
/// migration 0012: its text's.
pub(super) fn encode_before_0012(hash: &str) -> Vec<u8> {
    hash.as_bytes().to_vec()
}

/// What stored bytes start with when they hold latchkey's Argon2id (v19)
/// hash: the compact form's tag, or (written before 0012) the PHC prefix.
pub(super) const ARGON2ID_PREFIXES: (&[u8], &[u8]) = (&[TAG_ARGON2ID], PREFIX.as_bytes());

/// The PHC text of a stored hash (public for tools and tests that read
/// the database).
pub fn decode(stored: &[u8]) -> Result<String, StoreError> {
    let corrupt = |what: &str| StoreError::Other(format!("a stored password hash {what}"));
    match stored.split_first() {
        Some((&TAG_ARGON2ID, mut rest)) => {
            let m = leb128(&mut rest).ok_or_else(|| corrupt("has a bad m"))?;
            let t = leb128(&mut rest).ok_or_else(|| corrupt("has a bad t"))?;
            let p = leb128(&mut rest).ok_or_else(|| corrupt("has a bad p"))?;
            let (&salt_len, rest) = rest.split_first().ok_or_else(|| corrupt("has no salt"))?;
            if rest.len() < usize::from(salt_len) {
                return Err(corrupt("is cut short"));
            }
            let (salt, hash) = rest.split_at(usize::from(salt_len));
            Ok(format!(
                "{PREFIX}m={m},t={t},p={p}${}${}",
                STANDARD_NO_PAD.encode(salt),
                STANDARD_NO_PAD.encode(hash)
            ))
        }
        Some((&TAG_TEXT, text)) => {
            String::from_utf8(text.to_vec()).map_err(|_| corrupt("is not text"))
        }
        _ => String::from_utf8(stored.to_vec()).map_err(|_| corrupt("is not text")),
    }
}

/// The compact form of `hash`, if it is a PHC Argon2id v19 hash with
/// exactly the parameters `m`, `t` and `p`.
fn compact(hash: &str) -> Option<Vec<u8>> {
    let rest = hash.strip_prefix(PREFIX)?;
    let mut fields = rest.split('$');
    let (params, salt, digest) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let mut values = [0u64; 3];
    let mut params = params.split(',');
    for (value, name) in values.iter_mut().zip(["m=", "t=", "p="]) {
        *value = params.next()?.strip_prefix(name)?.parse().ok()?;
    }
    if params.next().is_some() {
        return None;
    }
    let salt = STANDARD_NO_PAD.decode(salt).ok()?;
    let digest = STANDARD_NO_PAD.decode(digest).ok()?;
    let mut out = vec![TAG_ARGON2ID];
    for value in values {
        push_leb128(&mut out, value);
    }
    out.push(u8::try_from(salt.len()).ok()?);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&digest);
    Some(out)
}

fn push_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A LEB128 number from the front of `bytes` (at most 64 bits).
fn leb128(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
                        i8+3vdh3BRlAHh4FpYuZBOuC0FGyLvTklxXcVuVeDDE";

    #[test]
    fn an_argon2id_hash_is_stored_in_55_bytes_and_comes_back_as_its_text() {
        let stored = encode(HASH);
        assert_eq!(stored.len(), 55, "{stored:?}");
        assert_eq!(stored[0], TAG_ARGON2ID);
        assert_eq!(decode(&stored).unwrap(), HASH);
    }

    #[test]
    fn a_real_hash_of_the_crate_round_trips() {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let hash = argon.hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(encode(&hash)[0], TAG_ARGON2ID);
        assert_eq!(decode(&encode(&hash)).unwrap(), hash);
    }

    #[test]
    fn other_hashes_are_stored_as_their_text() {
        for hash in [
            "pbkdf2_sha256$870000$salt$c2FsdHlzYWx0",
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=16$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=019456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$t=2,m=19456,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1,keyid=x$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ=$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ",
            "",
        ] {
            assert_eq!(encode(hash), hash.as_bytes(), "{hash:?}");
            assert_eq!(decode(&encode(hash)).unwrap(), hash);
        }
    }

    #[test]
    fn text_that_starts_like_a_tag_is_kept_apart_from_it() {
        for hash in ["\u{1}abc", "\u{0}abc"] {
            assert_eq!(encode(hash)[0], TAG_TEXT);
            assert_eq!(decode(&encode(hash)).unwrap(), hash);
        }
    }

    #[test]
    fn a_hash_written_before_0012_reads_as_its_text() {
        assert_eq!(decode(&encode_before_0012(HASH)).unwrap(), HASH);
        assert!(encode_before_0012(HASH).starts_with(ARGON2ID_PREFIXES.1));
        assert!(encode(HASH).starts_with(ARGON2ID_PREFIXES.0));
    }

    #[test]
    fn corrupt_stored_bytes_are_an_error_not_a_panic() {
        for stored in [
            &[TAG_ARGON2ID][..],
            &[TAG_ARGON2ID, 0x80],
            &[TAG_ARGON2ID, 1, 1, 1],
            &[TAG_ARGON2ID, 1, 1, 1, 16, 1, 2],
            &[
                TAG_ARGON2ID,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0x01,
            ],
            &[TAG_TEXT, 0xff],
            &[0xff, 0xfe],
        ] {
            assert!(decode(stored).is_err(), "{stored:?}");
        }
    }

    proptest! {
        #[test]
        fn every_argon2id_hash_comes_back_as_its_text(
            m in any::<u32>(), t in any::<u32>(), p in any::<u32>(),
            salt in proptest::collection::vec(any::<u8>(), 0..64),
            digest in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let hash = format!(
                "{PREFIX}m={m},t={t},p={p}${}${}",
                STANDARD_NO_PAD.encode(&salt),
                STANDARD_NO_PAD.encode(&digest)
            );
            let stored = encode(&hash);
            prop_assert_eq!(stored[0], TAG_ARGON2ID);
            prop_assert_eq!(decode(&stored).unwrap(), hash);
        }

        #[test]
        fn any_text_comes_back_unchanged(hash in "\\PC{0,120}") {
            prop_assert_eq!(decode(&encode(&hash)).unwrap(), hash);
        }

        #[test]
        fn any_stored_bytes_decode_or_fail_without_panicking(stored in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = decode(&stored);
        }
    }
}
