//! Django's password hash formats (`<algorithm>$<data>`), as imported by
//! `latchkey import django`: recognised, and verified in constant time.
//!
//! Verification is CPU-bound: it runs only on the [`Hasher`] workers, which
//! call [`verify`] before latchkey's own Argon2id check. A match always asks
//! for an upgrade to latchkey's Argon2id parameters.
//!
//! [`Hasher`]: crate::auth::password::Hasher

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::auth::ids::hex;
use crate::auth::password::{argon2_phc_out_of_bounds, verify_argon2_phc, Password};

/// Most PBKDF2 iterations a stored hash may ask for (Django 5.2 uses one
/// million, ~110 ms here; this is ~0.45 s): a corrupt or hostile hash must
/// not hold a worker for seconds.
const MAX_PBKDF2_ITERATIONS: u32 = 4_000_000;
/// Highest bcrypt cost a stored hash may ask for (Django uses 12, ~0.25 s;
/// each step doubles the work, so 14 is ~1 s).
const MAX_BCRYPT_COST: u32 = 14;

/// What a stored password hash is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKind {
    /// latchkey's own Argon2id PHC string.
    Latchkey,
    /// Django's `pbkdf2_sha256` (its default).
    Pbkdf2Sha256,
    /// Django's `argon2` (argon2-cffi).
    Argon2,
    /// Django's `bcrypt_sha256`: bcrypt over the hex SHA-256 of the password.
    BcryptSha256,
    /// Django's `bcrypt`: bcrypt over the password (first 72 bytes).
    Bcrypt,
    /// Django's unusable password (`!...`, or empty): no password logs in.
    Unusable,
    /// A Django algorithm latchkey cannot verify, by name (`md5`, `scrypt`,
    /// `pbkdf2_sha1`, ...), or `unknown` when it names none.
    Unsupported(String),
}

impl HashKind {
    /// The algorithm's name, as Django writes it (for reports).
    pub fn name(&self) -> &str {
        match self {
            Self::Latchkey => "argon2id (latchkey)",
            Self::Pbkdf2Sha256 => "pbkdf2_sha256",
            Self::Argon2 => "argon2",
            Self::BcryptSha256 => "bcrypt_sha256",
            Self::Bcrypt => "bcrypt",
            Self::Unusable => "unusable",
            Self::Unsupported(name) => name,
        }
    }

    /// Whether a login can verify a password against a hash of this kind.
    pub fn is_supported(&self) -> bool {
        !matches!(self, Self::Unusable | Self::Unsupported(_))
    }
}

/// Classify a stored hash without verifying anything.
pub fn classify(stored: &str) -> HashKind {
    if stored.is_empty() || stored.starts_with('!') {
        return HashKind::Unusable;
    }
    if stored.starts_with("$argon2id$") {
        return HashKind::Latchkey;
    }
    match stored.split_once('$').map(|(algorithm, _)| algorithm) {
        Some("pbkdf2_sha256") => HashKind::Pbkdf2Sha256,
        Some("argon2") => HashKind::Argon2,
        Some("bcrypt_sha256") => HashKind::BcryptSha256,
        Some("bcrypt") => HashKind::Bcrypt,
        Some(name)
            if !name.is_empty()
                && name.len() <= 32
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            HashKind::Unsupported(name.to_owned())
        }
        _ => HashKind::Unsupported("unknown".to_owned()),
    }
}

/// Check `password` against a Django hash of `kind` (from [`classify`]);
/// `false` for a malformed hash, and for kinds that are not Django formats
/// latchkey verifies (latchkey's own, unusable, unsupported).
pub fn verify(kind: &HashKind, password: &Password, stored: &str) -> bool {
    let Some((_, data)) = stored.split_once('$') else {
        return false;
    };
    let pw = password.expose().as_bytes();
    match kind {
        HashKind::Pbkdf2Sha256 => verify_pbkdf2_sha256(pw, data),
        // Django writes "argon2" followed by the PHC string minus its leading `$`.
        HashKind::Argon2 => verify_argon2_phc(password, &format!("${data}")),
        HashKind::BcryptSha256 => verify_bcrypt(hex(&Sha256::digest(pw)).as_bytes(), data),
        HashKind::Bcrypt => verify_bcrypt(pw, data),
        HashKind::Latchkey | HashKind::Unusable | HashKind::Unsupported(_) => false,
    }
}

/// Why a hash of `kind` asks for more work than latchkey spends on one
/// verification, if it does: such a hash is refused at import and, should
/// one be in the database anyway, never attempted. Malformed hashes are not
/// judged here (they simply never verify).
pub fn cost_out_of_bounds(kind: &HashKind, stored: &str) -> Option<String> {
    let (_, data) = stored.split_once('$')?;
    match kind {
        HashKind::Latchkey => argon2_phc_out_of_bounds(stored),
        HashKind::Argon2 => argon2_phc_out_of_bounds(&format!("${data}")),
        HashKind::Pbkdf2Sha256 => {
            let iterations: u64 = data.split('$').next()?.parse().ok()?;
            (iterations > u64::from(MAX_PBKDF2_ITERATIONS)).then(|| {
                format!("pbkdf2_sha256 iterations {iterations} are beyond the bound ({MAX_PBKDF2_ITERATIONS})")
            })
        }
        HashKind::BcryptSha256 | HashKind::Bcrypt => {
            let cost: u32 = data.get(4..6)?.parse().ok()?;
            (cost > MAX_BCRYPT_COST)
                .then(|| format!("bcrypt cost {cost} is beyond the bound ({MAX_BCRYPT_COST})"))
        }
        HashKind::Unusable | HashKind::Unsupported(_) => None,
    }
}

/// A random hash of the same kind and cost as `stored`, which no password
/// matches: verifying a password against it costs what verifying against
/// `stored` costs. `None` for hashes that cost nothing to refuse (unusable,
/// unsupported, malformed) or more than the bounds allow.
pub fn decoy_like(stored: &str) -> Result<Option<String>, getrandom::Error> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let kind = classify(stored);
    if !kind.is_supported() || cost_out_of_bounds(&kind, stored).is_some() {
        return Ok(None);
    }
    let Some((_, data)) = stored.split_once('$') else {
        return Ok(None);
    };
    let random = |n: usize| -> Result<Vec<u8>, getrandom::Error> {
        let mut bytes = vec![0u8; n];
        getrandom::getrandom(&mut bytes)?;
        Ok(bytes)
    };
    Ok(match kind {
        HashKind::Pbkdf2Sha256 => {
            let Some(iterations) = data.split('$').next().filter(|i| i.parse::<u32>().is_ok())
            else {
                return Ok(None);
            };
            let salt = hex(&random(11)?);
            let hash = STANDARD.encode(random(32)?);
            Some(format!("pbkdf2_sha256${iterations}${salt}${hash}"))
        }
        HashKind::BcryptSha256 | HashKind::Bcrypt => {
            const ALPHABET: &[u8] =
                b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            let (Some(prefix), Some(_)) = (data.get(..7), data.get(7..)) else {
                return Ok(None);
            };
            // 22 characters of salt, 31 of hash; the last character of each
            // holds only some bits (2 and 4), so it is `.` (zero) to decode
            // cleanly.
            let mut tail: String = random(53)?
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b % 64)]))
                .collect();
            tail.replace_range(21..22, ".");
            tail.replace_range(52..53, ".");
            let algorithm = stored.split_once('$').map_or("", |(a, _)| a);
            Some(format!("{algorithm}${prefix}{tail}"))
        }
        HashKind::Argon2 | HashKind::Latchkey => {
            // `<algorithm>$<v=..>$<m=..,t=..,p=..>$<salt>$<hash>`, keeping the head.
            let phc = if kind == HashKind::Argon2 {
                format!("${data}")
            } else {
                stored.to_owned()
            };
            let parts: Vec<&str> = phc.split('$').collect();
            let [_, algorithm, version, params, salt, hash] = parts[..] else {
                return Ok(None);
            };
            let salt_len = STANDARD_NO_PAD.decode(salt).map_or(16, |s| s.len());
            let hash_len = STANDARD_NO_PAD.decode(hash).map_or(32, |h| h.len());
            let decoy = format!(
                "${algorithm}${version}${params}${}${}",
                STANDARD_NO_PAD.encode(random(salt_len.clamp(8, 64))?),
                STANDARD_NO_PAD.encode(random(hash_len.clamp(4, 64))?)
            );
            Some(if kind == HashKind::Argon2 {
                format!("argon2{decoy}")
            } else {
                decoy
            })
        }
        HashKind::Unusable | HashKind::Unsupported(_) => None,
    })
}

/// `<iterations>$<salt>$<base64 of PBKDF2-HMAC-SHA256(password, salt)>`.
fn verify_pbkdf2_sha256(password: &[u8], data: &str) -> bool {
    let mut parts = data.split('$');
    let (Some(iterations), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        return false;
    };
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS || salt.is_empty() {
        return false;
    }
    let Ok(expected) = STANDARD.decode(expected) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    let mut computed = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt.as_bytes(), iterations, &mut computed);
    bool::from(computed.ct_eq(expected.as_slice()))
}

/// `$2b$<cost>$<salt and hash>`, the modular crypt format; the bcrypt crate
/// compares in constant time.
fn verify_bcrypt(password: &[u8], data: &str) -> bool {
    let cost = data.get(4..6).and_then(|c| c.parse::<u32>().ok());
    if cost.is_none_or(|c| c > MAX_BCRYPT_COST) {
        return false;
    }
    bcrypt::verify(password, data).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "Tr1cky-Lantern-Owl";

    /// A Django hash checked as a login checks it: `None` when it is not a
    /// Django format latchkey verifies.
    fn verify(password: &Password, stored: &str) -> Option<bool> {
        let kind = classify(stored);
        (kind.is_supported() && kind != HashKind::Latchkey)
            .then(|| super::verify(&kind, password, stored))
    }

    // Generated by Django 5.2.19's hashers for PASSWORD (PBKDF2 at 1000
    // iterations to keep the test fast; the format is the same).
    const PBKDF2: &str =
        "pbkdf2_sha256$1000$HqBXTtbp7Qrit6N65bnKBP$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=";
    const ARGON2: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$R3FmTmJ6Rkh5R2RxaWlZVkhMNjhUaQ$llFUVxNO/vq3Qg2CwFqwK6vZ9Bu+Yrne/XT0RxzBtg4";
    const BCRYPT_SHA256: &str =
        "bcrypt_sha256$$2b$12$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS";
    const BCRYPT: &str = "bcrypt$$2b$12$8gVlT5A/I0oBT.rbwiNUgeMLBKc8xVshjqFDa5vMpJcHABNGmqg0K";

    fn pw(s: &str) -> Password {
        Password::new(s.to_owned())
    }

    #[test]
    fn djangos_pbkdf2_sha256_verifies() {
        assert_eq!(verify(&pw(PASSWORD), PBKDF2), Some(true));
        assert_eq!(verify(&pw("Tr1cky-Lantern-Owl "), PBKDF2), Some(false));
    }

    #[test]
    fn djangos_argon2_verifies() {
        assert_eq!(verify(&pw(PASSWORD), ARGON2), Some(true));
        assert_eq!(verify(&pw("tr1cky-Lantern-Owl"), ARGON2), Some(false));
    }

    #[test]
    fn djangos_older_argon2i_verifies() {
        // argon2-cffi's Type.I, as Django's Argon2PasswordHasher wrote before
        // argon2id; Django 5.2's check_password accepts it.
        let argon2i = "argon2$argon2i$v=19$m=512,t=2,p=2$WqYoGY7pi2OHhRsx4rZyfw$x4FCEQanX53G7cpS27qTJuoKepag2rTIJmwIfmY7IHU";
        assert_eq!(verify(&pw(PASSWORD), argon2i), Some(true));
        assert_eq!(verify(&pw("wrong"), argon2i), Some(false));
    }

    #[test]
    fn djangos_bcrypt_sha256_verifies() {
        assert_eq!(verify(&pw(PASSWORD), BCRYPT_SHA256), Some(true));
        assert_eq!(verify(&pw("Tr1cky-Lantern-Ow"), BCRYPT_SHA256), Some(false));
    }

    #[test]
    fn djangos_plain_bcrypt_verifies() {
        assert_eq!(verify(&pw(PASSWORD), BCRYPT), Some(true));
        assert_eq!(verify(&pw("wrong"), BCRYPT), Some(false));
    }

    #[test]
    fn a_changed_character_in_the_hash_fails() {
        for stored in [PBKDF2, BCRYPT_SHA256] {
            let mut tampered = stored.to_owned();
            let last = tampered.len() - 3;
            let replacement = if &tampered[last..=last] == "A" {
                "B"
            } else {
                "A"
            };
            tampered.replace_range(last..=last, replacement);
            assert_eq!(verify(&pw(PASSWORD), &tampered), Some(false), "{stored}");
        }
    }

    #[test]
    fn hashes_are_classified_by_their_algorithm() {
        assert_eq!(classify(PBKDF2), HashKind::Pbkdf2Sha256);
        assert_eq!(classify(ARGON2), HashKind::Argon2);
        assert_eq!(classify(BCRYPT_SHA256), HashKind::BcryptSha256);
        assert_eq!(classify(BCRYPT), HashKind::Bcrypt);
        assert_eq!(
            classify("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            HashKind::Latchkey
        );
        assert_eq!(
            classify("!6Xi0ZhduI1hZEUOJeChaQuVmz5v3ZdTURaHqEUtj"),
            HashKind::Unusable
        );
        assert_eq!(classify(""), HashKind::Unusable);
        assert_eq!(
            classify("md5$e5C1PdGy5uSyPlFWo0qIi4$55ef4dafb483cbd3891033160109211f"),
            HashKind::Unsupported("md5".into())
        );
        assert_eq!(
            classify("scrypt$16384$salt$8$5$aGFzaA=="),
            HashKind::Unsupported("scrypt".into())
        );
        assert_eq!(
            classify("no dollar sign"),
            HashKind::Unsupported("unknown".into())
        );
        assert_eq!(
            classify("we<ird$x"),
            HashKind::Unsupported("unknown".into())
        );
    }

    #[test]
    fn unsupported_and_own_formats_are_left_to_the_caller() {
        assert_eq!(
            verify(
                &pw(PASSWORD),
                "md5$e5C1PdGy5uSyPlFWo0qIi4$55ef4dafb483cbd3891033160109211f"
            ),
            None
        );
        assert_eq!(verify(&pw(PASSWORD), "!unusable"), None);
        assert_eq!(
            verify(
                &pw(PASSWORD),
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
            ),
            None
        );
    }

    #[test]
    fn hostile_costs_are_refused_without_being_attempted() {
        assert_eq!(
            verify(
                &pw(PASSWORD),
                "pbkdf2_sha256$4000000000$salt$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo="
            ),
            Some(false)
        );
        assert_eq!(
            verify(
                &pw(PASSWORD),
                "bcrypt_sha256$$2b$31$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS"
            ),
            Some(false)
        );
    }

    #[test]
    fn every_kind_of_hash_has_its_work_bounded() {
        let out = |stored: &str| cost_out_of_bounds(&classify(stored), stored);
        for hostile in [
            "argon2$argon2id$v=19$m=1048576,t=40,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "argon2$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "argon2$argon2id$v=19$m=19456,t=2,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=2097152,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "pbkdf2_sha256$4000001$salt$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=",
            "bcrypt_sha256$$2b$15$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS",
            "bcrypt$$2b$31$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS",
        ] {
            assert!(out(hostile).is_some(), "{hostile}");
        }
        for fine in [PBKDF2, ARGON2, BCRYPT_SHA256, BCRYPT] {
            assert_eq!(out(fine), None, "{fine}");
        }
    }

    /// The cost a hash asks for: everything before its salt.
    fn cost(stored: &str) -> String {
        match classify(stored) {
            HashKind::Pbkdf2Sha256 => stored.split('$').take(2).collect::<Vec<_>>().join("$"),
            HashKind::Bcrypt | HashKind::BcryptSha256 => stored[..stored.len() - 53].to_owned(),
            _ => stored.rsplitn(3, '$').nth(2).unwrap_or_default().to_owned(),
        }
    }

    /// Whether `stored` is well-formed down to its salt and hash, so that
    /// verifying it does the whole work rather than failing early.
    fn well_formed(stored: &str) -> bool {
        let (_, data) = stored.split_once('$').unwrap();
        match classify(stored) {
            HashKind::Pbkdf2Sha256 => {
                let parts: Vec<&str> = data.split('$').collect();
                parts.len() == 3 && STANDARD.decode(parts[2]).is_ok_and(|h| h.len() == 32)
            }
            HashKind::Bcrypt | HashKind::BcryptSha256 => bcrypt::verify("x", data).is_ok(),
            HashKind::Argon2 => argon2::PasswordHash::new(&format!("${data}")).is_ok(),
            _ => false,
        }
    }

    #[test]
    fn a_decoy_has_the_kind_and_cost_of_its_model_and_matches_nothing() {
        for model in [PBKDF2, ARGON2, BCRYPT_SHA256, BCRYPT] {
            let decoy = decoy_like(model).unwrap().expect(model);
            assert_ne!(decoy, model);
            assert_eq!(classify(&decoy), classify(model), "{decoy}");
            assert_eq!(cost(&decoy), cost(model), "{decoy} vs {model}");
            assert!(well_formed(&decoy), "{decoy}");
            assert_eq!(verify(&pw(PASSWORD), &decoy), Some(false), "{decoy}");
        }
        for nothing in ["", "!unusable", "md5$x$y", "pbkdf2_sha256$900000000$s$h"] {
            assert_eq!(decoy_like(nothing).unwrap(), None, "{nothing}");
        }
    }

    #[test]
    fn malformed_hashes_of_known_formats_fail_without_panicking() {
        for stored in [
            "pbkdf2_sha256$",
            "pbkdf2_sha256$x$salt$hash",
            "pbkdf2_sha256$1000$$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=",
            "pbkdf2_sha256$1000$salt$bm90IDMyIGJ5dGVz",
            "pbkdf2_sha256$1000$salt$hash$extra",
            "argon2$",
            "argon2$argon2id$v=19$m=1,t=1,p=1$$",
            "bcrypt_sha256$$2b$",
            "bcrypt_sha256$$2b$12$short",
            "bcrypt$$2b$1é$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS",
        ] {
            assert_eq!(verify(&pw(PASSWORD), stored), Some(false), "{stored}");
        }
    }
}
