//! Session and refresh-token ids as the `sessions` table stores them: their
//! 16 bytes, not the 32 lowercase hex characters the tokens carry (half the
//! bytes in the row and in the id's index; docs/benchmarks.md). Converted
//! here, at the edge of storage, so every other layer keeps the text form.

use super::StoreError;

/// Bytes in an id.
const LEN: usize = 16;

/// The stored bytes of `id`, ready to bind, or `None` when it is not 32
/// lowercase hex characters (such an id names no row: latchkey made every
/// stored one).
pub(super) fn key(id: &str) -> Option<Vec<u8>> {
    let text = id.as_bytes();
    if text.len() != 2 * LEN {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// The stored bytes of `id`, which is about to be written; an id not made
/// by `auth::ids` here is a bug, refused before it reaches the database.
pub(super) fn key_to_write(id: &str) -> Result<Vec<u8>, StoreError> {
    key(id).ok_or_else(|| StoreError::Other("an id to store is not 32 hex characters".into()))
}

/// Bytes of a prefix: what a session keeps of the id of the refresh token
/// it rotated last (`sessions.last_rotated_jti_prefix`, migration 0011).
/// That id is only ever compared with the id of a token latchkey signed
/// for the same session, and never handed out again; two tokens of one
/// session share their first 8 bytes with a chance of 2^-64 for each pair.
const PREFIX_LEN: usize = 8;

/// The first [`PREFIX_LEN`] bytes of a stored id, as
/// `sessions.last_rotated_jti_prefix` keeps them.
pub(super) fn prefix(stored: &[u8]) -> Vec<u8> {
    stored[..PREFIX_LEN.min(stored.len())].to_vec()
}

/// A session id as `sessions` keeps it (migration 0013): its 16 bytes as
/// two big-endian signed 64-bit halves, `id_hi` and `id_lo`. Fixed-width
/// columns, so the primary key's entries are 28 bytes where a 16-byte
/// BYTEA's are 36 on PostgreSQL (its length byte pushes an entry past 24
/// to the next 8); a time-ordered id's high half still grows with time.
pub(super) fn halves(stored: &[u8]) -> Result<(i64, i64), StoreError> {
    let (Ok(hi), Ok(lo)) = (
        <[u8; 8]>::try_from(stored.get(..8).unwrap_or_default()),
        <[u8; 8]>::try_from(stored.get(8..).unwrap_or_default()),
    ) else {
        return Err(StoreError::Other(format!(
            "a session id has {} bytes, not {LEN}",
            stored.len()
        )));
    };
    Ok((i64::from_be_bytes(hi), i64::from_be_bytes(lo)))
}

/// The halves of session id `id`, ready to bind, or `None` when it is not
/// 32 lowercase hex characters (see [`key`]).
pub(super) fn session_key(id: &str) -> Option<(i64, i64)> {
    key(id).and_then(|stored| halves(&stored).ok())
}

/// The halves of session id `id`, about to be written (see [`key_to_write`]).
pub(super) fn session_key_to_write(id: &str) -> Result<(i64, i64), StoreError> {
    halves(&key_to_write(id)?)
}

/// The text form of a session id from its halves.
pub(super) fn text_of_halves(hi: i64, lo: i64) -> Result<String, StoreError> {
    text(&[hi.to_be_bytes(), lo.to_be_bytes()].concat())
}

/// The second a time-ordered id (`auth::ids::RandomId::time_ordered`)
/// was made in, from its high half: the id starts with its milliseconds
/// since the Unix epoch, in 48 bits. So a session need not store its start
/// when its id says it (`sessions.created_at` is NULL then).
pub(super) fn seconds_of(hi: i64) -> i64 {
    // The 48 bits are unsigned: shifted as such, never negative.
    ((hi as u64) >> 16) as i64 / 1000
}

/// The text form of a stored id.
pub(super) fn text(stored: &[u8]) -> Result<String, StoreError> {
    if stored.len() != LEN {
        return Err(StoreError::Other(format!(
            "a stored id has {} bytes, not {LEN}",
            stored.len()
        )));
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * LEN);
    for b in stored {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_id_is_stored_as_its_sixteen_bytes() {
        let id = "00ff10a0b1c2d3e4f5061728394a5b6c";
        let stored = key(id).unwrap();
        assert_eq!(stored[0], 0x00);
        assert_eq!(stored[1], 0xff);
        assert_eq!(stored[15], 0x6c);
        assert_eq!(text(&stored).unwrap(), id);
    }

    #[test]
    fn text_that_latchkey_never_makes_names_no_stored_id() {
        for id in [
            "",
            "00ff10a0b1c2d3e4f5061728394a5b6",   // 31
            "00ff10a0b1c2d3e4f5061728394a5b6c0", // 33
            "00FF10A0B1C2D3E4F5061728394A5B6C",  // upper case
            "00ff10a0b1c2d3e4f5061728394a5b6g",
            "00ff10a0b1c2d3e4f5061728394a5b\u{e9}",
        ] {
            assert_eq!(key(id), None, "{id:?}");
            assert!(key_to_write(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn a_prefix_is_the_first_eight_bytes_of_the_stored_id() {
        let stored = key("00ff10a0b1c2d3e4f5061728394a5b6c").unwrap();
        assert_eq!(
            prefix(&stored),
            vec![0x00, 0xff, 0x10, 0xa0, 0xb1, 0xc2, 0xd3, 0xe4]
        );
        assert_eq!(prefix(&[1, 2]), vec![1, 2]);
    }

    #[test]
    fn a_session_id_is_stored_as_two_halves_that_give_it_back() {
        let id = "018f2a3b4c5d00ff10a0b1c2d3e4f506";
        let (hi, lo) = halves(&key(id).unwrap()).unwrap();
        assert_eq!(hi, 0x018f_2a3b_4c5d_00ff);
        assert_eq!(lo, 0x10a0_b1c2_d3e4_f506);
        assert_eq!(text_of_halves(hi, lo).unwrap(), id);
        // A half with its top bit set is negative, and still comes back.
        let id = "ffffffffffffffff8000000000000000";
        let (hi, lo) = halves(&key(id).unwrap()).unwrap();
        assert_eq!((hi, lo), (-1, i64::MIN));
        assert_eq!(text_of_halves(hi, lo).unwrap(), id);
    }

    #[test]
    fn a_time_ordered_id_says_the_second_it_was_made_in() {
        // 2026-12-04 02:00:00.999 UTC, in milliseconds.
        let millis: u64 = 1_796_349_600_999;
        let id = format!("{:012x}{}", millis, "ab".repeat(10));
        let (hi, _) = halves(&key(&id).unwrap()).unwrap();
        assert_eq!(seconds_of(hi), 1_796_349_600);
        let (hi, _) = halves(&[0xff; 16]).unwrap();
        assert_eq!(seconds_of(hi), 0xffff_ffff_ffff / 1000);
    }

    #[test]
    fn a_stored_id_of_the_wrong_length_is_an_error_not_a_panic() {
        for len in [0, 8, 15, 17] {
            assert!(halves(&vec![0u8; len]).is_err(), "{len}");
        }
        assert!(text(&[0u8; 15]).is_err());
        assert!(text(&[0u8; 17]).is_err());
        assert!(text(&[]).is_err());
    }

    proptest! {
        #[test]
        fn every_session_id_comes_back_from_its_halves(bytes in any::<[u8; 16]>()) {
            let (hi, lo) = halves(&bytes).unwrap();
            prop_assert_eq!(key(&text_of_halves(hi, lo).unwrap()), Some(bytes.to_vec()));
        }

        #[test]
        fn every_sixteen_bytes_come_back_from_their_text(bytes in any::<[u8; 16]>()) {
            let t = text(&bytes).unwrap();
            prop_assert_eq!(key(&t), Some(bytes.to_vec()));
        }

        #[test]
        fn any_text_either_names_an_id_or_none_without_panicking(s in "\\PC{0,40}") {
            if let Some(stored) = key(&s) {
                prop_assert_eq!(text(&stored).unwrap(), s);
            }
        }
    }
}
