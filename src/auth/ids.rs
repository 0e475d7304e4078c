//! Random identifiers: token ids (`jti`) and session ids.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 128 random bits as 32 lowercase hex characters, SimpleJWT's `jti` format.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RandomId(String);

impl RandomId {
    /// A fresh id from the operating system's CSPRNG (see [`random`]).
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self(hex(&random::<16>()?)))
    }

    /// A fresh id that sorts by creation time: the 48-bit big-endian count
    /// of milliseconds `millis` (UUIDv7's prefix), then 80 bits from the
    /// CSPRNG. For ids kept in a B-tree, like sessions': a new one lands at
    /// the index's right edge rather than on a random page, so the index
    /// stays packed and an insert touches the pages already in memory
    /// (docs/benchmarks.md, "Cost as the data grows"). Only for ids that
    /// are no secret (its creation time can be read from it, and 80 bits
    /// are left to guess): a session id is one, carried in signed tokens.
    pub fn time_ordered(millis: u64) -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        bytes[6..].copy_from_slice(&random::<10>()?);
        Ok(Self(hex(&bytes)))
    }

    /// Parse an id, accepting only 32 lowercase hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        let valid = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Bytes fetched from the OS generator per system call, per thread.
const POOL_BYTES: usize = 256;

/// `N` bytes from the operating system's CSPRNG, drawn from a per-thread
/// pool refilled [`POOL_BYTES`] at a time: one system call per 16 ids or
/// CSRF nonces instead of one each (on the cheap endpoints the call cost
/// more than the rest of the work). Every byte is handed out once and wiped
/// from the pool; what is left is only ever the next ids, never a key (keys
/// and salts take their own bytes from the OS).
pub fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    use std::cell::RefCell;
    const { assert!(N <= POOL_BYTES) };
    struct Pool {
        bytes: [u8; POOL_BYTES],
        next: usize,
    }
    thread_local! {
        static POOL: RefCell<Pool> = const {
            RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES })
        };
    }
    POOL.with_borrow_mut(|pool| {
        if POOL_BYTES - pool.next < N {
            getrandom::getrandom(&mut pool.bytes)?;
            pool.next = 0;
        }
        let taken = &mut pool.bytes[pool.next..pool.next + N];
        let mut out = [0u8; N];
        out.copy_from_slice(taken);
        taken.fill(0);
        pool.next += N;
        Ok(out)
    })
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

impl fmt::Debug for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RandomId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RandomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 32 lowercase hex characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_random_bytes_never_repeat_across_refills_sizes_and_threads() {
        let draw = || {
            let mut seen = Vec::new();
            // Mixed sizes so draws straddle the end of the pool.
            for _ in 0..100 {
                seen.push(random::<16>().unwrap().to_vec());
                seen.push(random::<24>().unwrap().to_vec());
            }
            seen
        };
        let there = std::thread::spawn(draw).join().unwrap();
        let all: Vec<Vec<u8>> = draw().into_iter().chain(there).collect();
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        assert!(all.iter().all(|b| b.iter().any(|&x| x != 0)));
    }

    #[test]
    fn generated_ids_are_32_lowercase_hex_and_distinct() {
        let a = RandomId::generate().unwrap();
        let b = RandomId::generate().unwrap();
        assert_eq!(a.as_str().len(), 32);
        assert!(RandomId::parse(a.as_str()).is_some());
        assert_ne!(a, b);
    }

    #[test]
    fn time_ordered_ids_start_with_their_millisecond_and_sort_by_it() {
        let millis = 1_796_000_000_123_u64;
        let id = RandomId::time_ordered(millis).unwrap();
        assert!(RandomId::parse(id.as_str()).is_some());
        assert_eq!(&id.as_str()[..12], format!("{millis:012x}"));
        // Ids of one millisecond differ in their random part.
        assert_ne!(id, RandomId::time_ordered(millis).unwrap());
        let mut ids: Vec<_> = (0..50)
            .map(|i| RandomId::time_ordered(millis + i).unwrap())
            .collect();
        let made = ids.clone();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(ids, made);
    }

    #[test]
    fn parse_refuses_anything_else() {
        for bad in [
            "",
            "ABCDEF0123456789abcdef0123456789",
            "0123456789abcdef0123456789abcde",
            "g123456789abcdef0123456789abcdef",
        ] {
            assert!(RandomId::parse(bad).is_none(), "{bad}");
        }
    }
}
