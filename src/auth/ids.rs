//! Random identifiers: token ids (`jti`) and session ids.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 128 random bits as 32 lowercase hex characters, SimpleJWT's `jti` format.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RandomId(String);

impl RandomId {
    /// A fresh id from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)?;
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
    fn generated_ids_are_32_lowercase_hex_and_distinct() {
        let a = RandomId::generate().unwrap();
        let b = RandomId::generate().unwrap();
        assert_eq!(a.as_str().len(), 32);
        assert!(RandomId::parse(a.as_str()).is_some());
        assert_ne!(a, b);
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
