//! Parsed identity fields: an [`Email`] or [`Name`] exists only once its raw
//! input passed validation, so code past the boundary never re-checks them.

/// Longest email accepted (RFC 5321 path limit, Django's `EmailField`).
pub const EMAIL_MAX_LENGTH: usize = 254;
/// Longest name accepted.
pub const NAME_MAX_LENGTH: usize = 150;

/// A valid email address with its domain lowercased (Django's `normalize_email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validate and normalise `raw` (trimmed first, as DRF does). On failure,
    /// the DRF-worded message for the `email` field.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("This field may not be blank.".into());
        }
        if raw.chars().count() > EMAIL_MAX_LENGTH {
            return Err(format!(
                "Ensure this field has no more than {EMAIL_MAX_LENGTH} characters."
            ));
        }
        let invalid = || "Enter a valid email address.".to_owned();
        let (local, domain) = raw.rsplit_once('@').ok_or_else(invalid)?;
        if !valid_local_part(local) || !valid_domain(domain) {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key uniqueness and login lookups use: the whole address lowercased.
    pub fn lookup_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// RFC 5322 dot-atom, as Django's `user_regex` (quoted local parts are refused).
fn valid_local_part(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{}|~-";
    !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
        })
}

/// Django's `domain_regex` (ASCII labels, a TLD of 2–63 characters) or `localhost`.
fn valid_domain(domain: &str) -> bool {
    if domain.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    !rest.is_empty() && rest.iter().all(|l| label_ok(l)) && tld.len() >= 2 && label_ok(tld)
}

/// A display name: in Unicode NFKC (as Django's `normalize_username`), so
/// a fullwidth or otherwise compatible copy of a name is that name; trimmed;
/// 1–150 characters; no control characters, and no invisible formatting
/// (zero-width characters, bidirectional overrides and the like), so no two
/// names that look alike register as different users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// Validate `raw` (normalised to NFKC, then trimmed, as DRF does). On
    /// failure, the message for the `name` field.
    pub fn parse(raw: &str) -> Result<Self, String> {
        use unicode_normalization::UnicodeNormalization as _;
        let normalized: String = raw.nfkc().collect();
        let name = normalized.trim();
        if name.is_empty() {
            return Err("This field may not be blank.".into());
        }
        if name.chars().count() > NAME_MAX_LENGTH {
            return Err(format!(
                "Ensure this field has no more than {NAME_MAX_LENGTH} characters."
            ));
        }
        if name.chars().any(char::is_control) {
            return Err("Enter a valid name: control characters are not allowed.".into());
        }
        if name.chars().any(is_invisible) {
            return Err(
                "Enter a valid name: invisible formatting characters are not allowed.".into(),
            );
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key uniqueness and login lookups use: the name lowercased (and
    /// normalised again, as lowercasing can leave NFKC).
    pub fn lookup_key(&self) -> String {
        use unicode_normalization::UnicodeNormalization as _;
        self.0.to_lowercase().nfkc().collect()
    }
}

/// Characters that change how text reads without showing: Unicode's format
/// characters (general category Cf: zero-width spaces and joiners,
/// bidirectional marks and overrides, the BOM, tag characters, ...), the
/// line and paragraph separators, and the other default-ignorable code
/// points (variation selectors, Hangul fillers, ...). Unicode 15.1.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_fullwidth_copy_of_a_name_is_that_name() {
        let plain = Name::parse("bob").unwrap();
        let wide = Name::parse("ｂｏｂ").unwrap();
        assert_eq!(wide.as_str(), "bob");
        assert_eq!(wide.lookup_key(), plain.lookup_key());
        assert_eq!(Name::parse("Ｂob").unwrap().lookup_key(), "bob");
    }

    #[test]
    fn invisible_formatting_in_a_name_is_refused() {
        for sneaky in [
            "bob\u{200B}",
            "\u{202E}bob",
            "b\u{200D}ob",
            "bob\u{FEFF}",
            "bob\u{E0041}",
            "bo\u{FE0F}b",
        ] {
            assert_eq!(
                Name::parse(sneaky),
                Err("Enter a valid name: invisible formatting characters are not allowed.".into()),
                "{sneaky:?}"
            );
        }
        // Letters of every script stay welcome.
        for fine in ["Zoë", "Łukasz", "李小龍", "محمد", "Ада"] {
            assert!(Name::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn the_domain_is_lowercased_and_the_local_part_kept() {
        assert_eq!(
            Email::parse(" MSoban@GMail.COM ").unwrap().as_str(),
            "MSoban@gmail.com"
        );
        assert_eq!(
            Email::parse("MSoban@GMail.COM").unwrap().lookup_key(),
            "msoban@gmail.com"
        );
    }

    #[test]
    fn valid_addresses_pass() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x@localhost",
            "o'neil@example.ie",
            "a@xn--bcher-kva.example",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn invalid_addresses_fail_with_djangos_message() {
        for bad in [
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "a@-example.com",
            "a@example..com",
            "a@exa_mple.com",
            "a@b@c.com",
            "ü@example.com",
            "a@bücher.de",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err("Enter a valid email address.".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn over_long_emails_fail() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long)
            .unwrap_err()
            .starts_with("Ensure this field has no more than 254"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("  soban ").unwrap().as_str(), "soban");
        assert_eq!(
            Name::parse("   "),
            Err("This field may not be blank.".to_owned())
        );
        assert!(Name::parse(&"n".repeat(150)).is_ok());
        assert!(Name::parse(&"n".repeat(151)).is_err());
        assert!(Name::parse("a\u{0}b").is_err());
        assert_eq!(
            Name::parse("Ærøskøbing").unwrap().lookup_key(),
            "ærøskøbing"
        );
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics_and_valid_results_are_bounded(s in "\\PC{0,300}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert!(e.as_str().len() <= EMAIL_MAX_LENGTH);
                prop_assert!(e.as_str().contains('@'));
            }
            if let Ok(n) = Name::parse(&s) {
                prop_assert!(!n.as_str().is_empty() && n.as_str().chars().count() <= NAME_MAX_LENGTH);
            }
        }

        #[test]
        fn a_parsed_name_is_stable_and_never_holds_invisible_characters(s in "\\PC{0,60}|[\u{200B}-\u{202E}a-z\u{FF41}-\u{FF5A}]{1,20}") {
            if let Ok(n) = Name::parse(&s) {
                prop_assert!(!n.as_str().chars().any(|c| is_invisible(c) || c.is_control()));
                let again = Name::parse(n.as_str()).unwrap();
                prop_assert_eq!(again.as_str(), n.as_str());
                prop_assert_eq!(again.lookup_key(), n.lookup_key());
            }
        }

        #[test]
        fn normalising_twice_changes_nothing(local in "[a-zA-Z0-9.+_-]{1,20}", domain in "[a-zA-Z0-9]{1,10}\\.[a-zA-Z]{2,5}") {
            if let Ok(e) = Email::parse(&format!("{local}@{domain}")) {
                prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e.clone());
            }
        }
    }
}
