//! A second-factor code as a client typed it: a TOTP code or a recovery
//! code, told apart by shape. Untrusted input: parsed, never trusted.

use super::recovery::{RECOVERY_ALPHABET, RECOVERY_CHARS};

/// Longest input looked at; anything longer is not a code.
const MAX_INPUT: usize = 64;

/// A code of a known shape.
#[derive(Clone, PartialEq, Eq)]
pub enum Code {
    /// Six digits.
    Totp(u32),
    /// A recovery code, normalised (lower case, no separators).
    Recovery(String),
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Totp(_) => f.write_str("Code::Totp([redacted])"),
            Self::Recovery(_) => f.write_str("Code::Recovery([redacted])"),
        }
    }
}

impl Code {
    /// Read a code: spaces and hyphens are ignored (apps show `123 456`,
    /// recovery codes are shown `abcd-efgh-jkmn`), case does not matter.
    /// `None` for anything else.
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > MAX_INPUT {
            return None;
        }
        let compact: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if compact.len() == super::totp::DIGITS as usize
            && compact.bytes().all(|b| b.is_ascii_digit())
        {
            return compact.parse().ok().map(Self::Totp);
        }
        if compact.len() == RECOVERY_CHARS
            && compact.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
        {
            return Some(Self::Recovery(compact));
        }
        None
    }

    /// Only a TOTP code (enrolment is confirmed with one).
    pub fn totp(self) -> Option<u32> {
        match self {
            Self::Totp(code) => Some(code),
            Self::Recovery(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn totp_codes_are_six_digits_with_optional_spaces() {
        assert_eq!(Code::parse("123456"), Some(Code::Totp(123_456)));
        assert_eq!(Code::parse("012 345"), Some(Code::Totp(12_345)));
        assert_eq!(Code::parse("12345"), None);
        assert_eq!(Code::parse("1234567"), None);
        assert_eq!(Code::parse("12345a"), None);
        assert_eq!(Code::parse("١٢٣٤٥٦"), None, "only ASCII digits");
    }

    #[test]
    fn recovery_codes_ignore_case_and_hyphens() {
        let parsed = Code::parse("ABCD-EFGH-2345");
        assert_eq!(parsed, Some(Code::Recovery("abcdefgh2345".into())));
        assert_eq!(Code::parse("abcd-efgh-234"), None);
        assert_eq!(
            Code::parse("abcd-efgh-2301"),
            None,
            "0 and 1 are not base32"
        );
    }

    #[test]
    fn debug_never_shows_the_code() {
        let shown = format!("{:?}", Code::parse("123456"));
        assert!(!shown.contains("123456"));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in any::<String>()) {
            let _ = Code::parse(&input);
        }

        #[test]
        fn every_six_digit_code_parses_as_itself(n in 0u32..1_000_000) {
            prop_assert_eq!(Code::parse(&format!("{n:06}")), Some(Code::Totp(n)));
        }

        #[test]
        fn every_generated_recovery_code_parses(_seed in any::<u8>()) {
            let code = super::super::recovery::generate_one().unwrap();
            prop_assert!(matches!(Code::parse(&code), Some(Code::Recovery(_))));
            prop_assert!(matches!(Code::parse(&code.to_uppercase()), Some(Code::Recovery(_))));
        }

        #[test]
        fn anything_accepted_is_a_code_shape(input in "[0-9a-zA-Z -]{0,20}") {
            match Code::parse(&input) {
                Some(Code::Totp(n)) => prop_assert!(n < 1_000_000),
                Some(Code::Recovery(s)) => prop_assert_eq!(s.len(), RECOVERY_CHARS),
                None => {}
            }
        }
    }
}
