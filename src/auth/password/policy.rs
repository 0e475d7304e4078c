//! The password policy: Django's four default validators, judged on the
//! password's NFKC form, plus a maximum length.

use super::plain::Password;

/// Shortest password accepted, in characters (Django's default).
pub const MIN_LENGTH: usize = 8;

/// The password policy: Django's four default validators (minimum length,
/// similarity to the user's attributes, common passwords, entirely numeric),
/// with zxcvbn as the common-password estimator, plus a maximum length.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Longest password accepted, in characters.
    pub max_length: usize,
}

/// Django's `UserAttributeSimilarityValidator` threshold.
const MAX_SIMILARITY: f64 = 0.7;
/// Only this many leading characters are given to zxcvbn, whose cost grows
/// quickly with length; a password this long is never "common" on its own.
const ESTIMATOR_PREFIX: usize = 64;

impl PasswordPolicy {
    /// Every reason `password` is unacceptable for a user with this `name` and
    /// `email`, in Django's wording; empty when it is acceptable. CPU-bound
    /// (zxcvbn): call it from the blocking pool.
    pub fn violations(&self, password: &Password, name: &str, email: &str) -> Vec<String> {
        use unicode_normalization::UnicodeNormalization as _;
        // The length bound is on what is hashed; the rules judge the NFKC
        // form, so a fullwidth `ｐａｓｓｗｏｒｄ` is as common as `password`.
        // The hash keeps the password exactly as sent (imported Django
        // hashes depend on it).
        if password.expose().chars().count() > self.max_length {
            return vec![format!(
                "Ensure this field has no more than {} characters.",
                self.max_length
            )];
        }
        let normalized: String = password.expose().nfkc().collect();
        let pw = normalized.as_str();
        let len = pw.chars().count();
        let mut out = Vec::new();
        for (attribute, value) in [("name", name), ("email", email)] {
            if too_similar(pw, value) {
                out.push(format!("The password is too similar to the {attribute}."));
                break;
            }
        }
        if len < MIN_LENGTH {
            out.push(format!(
                "This password is too short. It must contain at least {MIN_LENGTH} characters."
            ));
        }
        if is_common(pw, name, email) {
            out.push("This password is too common.".to_owned());
        }
        if !pw.is_empty() && pw.chars().all(|c| c.is_numeric()) {
            out.push("This password is entirely numeric.".to_owned());
        }
        out
    }
}

fn is_common(password: &str, name: &str, email: &str) -> bool {
    let prefix: String = password.chars().take(ESTIMATOR_PREFIX).collect();
    let entropy = zxcvbn::zxcvbn(&prefix, &[name, email]);
    // Score 0–1: guessable within a million tries (dictionaries, keyboard
    // walks, dates, repeats, common suffixes like `123!`). Measured against
    // Django 5.2's list: it rejects 90% of the list's entries that pass the
    // length and numeric rules, the rest being random strings from leaks, and
    // many weak passwords the list lacks (`Password123!`, `userpassword`).
    (entropy.score() as u8) < 2
}

/// Django's similarity rule: the password compared with the whole attribute
/// and each of its `\W+`-separated parts, by `SequenceMatcher.quick_ratio`.
fn too_similar(password: &str, attribute: &str) -> bool {
    let password = password.to_lowercase();
    let attribute = attribute.to_lowercase();
    if attribute.is_empty() {
        return false;
    }
    let parts = attribute
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|p| !p.is_empty())
        .chain(std::iter::once(attribute.as_str()));
    let pw_len = password.chars().count();
    for part in parts {
        let part_len = part.chars().count();
        // Django skips parts far shorter than the password (`exceeds_maximum_length_ratio`).
        if pw_len >= 10 * part_len && (part_len as f64) < MAX_SIMILARITY / 2.0 * pw_len as f64 {
            continue;
        }
        if quick_ratio(&password, part) >= MAX_SIMILARITY {
            return true;
        }
    }
    false
}

/// Python's `SequenceMatcher.quick_ratio`: 2·|multiset intersection| / (|a|+|b|).
fn quick_ratio(a: &str, b: &str) -> f64 {
    let mut counts: std::collections::HashMap<char, i32> = std::collections::HashMap::new();
    for c in b.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a.chars() {
        if let Some(n) = counts.get_mut(&c) {
            if *n > 0 {
                *n -= 1;
                matches += 1;
            }
        }
    }
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    2.0 * matches as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy { max_length: 256 }
    }

    fn violations(pw: &str) -> Vec<String> {
        policy().violations(&Password::new(pw.into()), "soban", "msoban@gmail.com")
    }

    #[test]
    fn the_rules_judge_the_nfkc_form_of_the_password() {
        // Fullwidth "password": NFKC makes it the most common password.
        assert!(violations("ｐａｓｓｗｏｒｄ").contains(&"This password is too common.".to_owned()));
        // Fullwidth digits are entirely numeric too.
        assert!(violations("１２３４５６７８９０１２")
            .contains(&"This password is entirely numeric.".to_owned()));
    }

    #[test]
    fn a_strong_password_passes() {
        assert_eq!(
            violations("correct horse battery staple 42"),
            Vec::<String>::new()
        );
        assert_eq!(violations("Tr1cky-Lantern-Owl"), Vec::<String>::new());
    }

    #[test]
    fn short_passwords_are_rejected_with_djangos_message() {
        assert!(violations("x7#Qa").contains(
            &"This password is too short. It must contain at least 8 characters.".to_owned()
        ));
    }

    #[test]
    fn common_passwords_are_rejected() {
        for pw in [
            "password",
            "password123",
            "qwertyuiop",
            "iloveyou",
            "letmein1",
        ] {
            assert!(
                violations(pw).contains(&"This password is too common.".to_owned()),
                "{pw}"
            );
        }
    }

    #[test]
    fn numeric_passwords_are_rejected() {
        assert!(
            violations("80417263591").contains(&"This password is entirely numeric.".to_owned())
        );
    }

    #[test]
    fn passwords_like_the_name_or_email_are_rejected() {
        let v = policy().violations(
            &Password::new("zanzibarqueen".into()),
            "zanzibarqueen7",
            "x@y.org",
        );
        assert!(
            v.contains(&"The password is too similar to the name.".to_owned()),
            "{v:?}"
        );
        let v = policy().violations(
            &Password::new("quorvantelix".into()),
            "someone",
            "quorvantelix@mail.org",
        );
        assert!(
            v.contains(&"The password is too similar to the email.".to_owned()),
            "{v:?}"
        );
    }

    #[test]
    fn over_long_passwords_are_rejected() {
        let v = violations(&"a1B!".repeat(65));
        assert_eq!(
            v,
            vec!["Ensure this field has no more than 256 characters.".to_owned()]
        );
    }

    #[test]
    fn quick_ratio_matches_python() {
        // difflib.SequenceMatcher(a="abcd", b="bcde").quick_ratio() == 0.75
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert!((quick_ratio("aaaa", "a") - 0.4).abs() < 1e-9);
    }
}
