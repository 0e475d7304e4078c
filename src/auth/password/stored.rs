//! Every kind of password hash latchkey may hold, parsed once into one
//! [`StoredHash`] (kanidm's `Kdf` is the model): latchkey's own Argon2id,
//! and Django's formats as `latchkey import django` brings them in
//! (`<algorithm>$<data>`). The pool, the import and the upgrade path all
//! talk about this one type; each kind has its work bounded here.
//!
//! Verification is CPU-bound: [`StoredHash::verify`] runs only on the
//! hashing workers (`hasher.rs`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::argon2::Phc;
use super::plain::Password;
use crate::auth::ids::hex;

/// Most PBKDF2 iterations a stored hash may ask for (Django 5.2 uses one
/// million, ~110 ms here; this is ~0.45 s): a corrupt or hostile hash must
/// not hold a worker for seconds.
const MAX_PBKDF2_ITERATIONS: u64 = 4_000_000;
/// Highest bcrypt cost a stored hash may ask for (Django uses 12, ~0.25 s;
/// each step doubles the work, so 14 is ~1 s).
const MAX_BCRYPT_COST: u32 = 14;

/// A stored password hash, parsed. `Debug` shows the kind and cost only.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredHash {
    /// latchkey's own Argon2id PHC string.
    Latchkey(Phc),
    /// Django's `argon2` (argon2-cffi): `argon2` followed by a PHC string
    /// without its leading `$` (Argon2id, or the older Argon2i).
    DjangoArgon2(Phc),
    /// Django's `pbkdf2_sha256` (its default):
    /// `pbkdf2_sha256$<iterations>$<salt>$<base64 of 32 bytes>`.
    Pbkdf2Sha256 {
        /// PBKDF2-HMAC-SHA256 iterations.
        iterations: u64,
        /// The salt, as Django stores it (text).
        salt: String,
        /// The derived key.
        hash: [u8; 32],
    },
    /// Django's `bcrypt_sha256` (bcrypt over the hex SHA-256 of the
    /// password) or `bcrypt` (over the password's first 72 bytes).
    Bcrypt {
        /// `bcrypt_sha256` rather than `bcrypt`.
        sha256: bool,
        /// The bcrypt cost (log2 of the rounds).
        cost: u32,
        /// The modular crypt string, `$2b$<cost>$<salt and hash>`.
        mcf: String,
    },
    /// Django's unusable password (`!...`, or empty): no password logs in.
    Unusable,
    /// A Django algorithm latchkey cannot verify, by name (`md5`, `scrypt`,
    /// `pbkdf2_sha1`, ...), or `unknown` when it names none.
    Unsupported(String),
    /// A format latchkey knows, named, whose data does not parse: it never
    /// verifies.
    Malformed(&'static str),
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latchkey(phc) | Self::DjangoArgon2(phc) => write!(f, "{}: {phc:?}", self.name()),
            Self::Pbkdf2Sha256 { iterations, .. } => write!(f, "pbkdf2_sha256({iterations})"),
            Self::Bcrypt { cost, .. } => write!(f, "{}({cost})", self.name()),
            Self::Unusable => f.write_str("unusable"),
            Self::Unsupported(name) => write!(f, "unsupported({name})"),
            Self::Malformed(name) => write!(f, "malformed({name})"),
        }
    }
}

impl StoredHash {
    /// Parse what the users table holds. Never fails: a hash that is no
    /// known kind is [`StoredHash::Unsupported`] or [`StoredHash::Malformed`].
    pub fn parse(stored: &str) -> Self {
        if stored.is_empty() || stored.starts_with('!') {
            return Self::Unusable;
        }
        if stored.starts_with("$argon2id$") {
            return Phc::parse(stored)
                .map_or(Self::Malformed("argon2id (latchkey)"), Self::Latchkey);
        }
        let Some((algorithm, data)) = stored.split_once('$') else {
            return Self::Unsupported("unknown".to_owned());
        };
        match algorithm {
            "pbkdf2_sha256" => {
                parse_pbkdf2_sha256(data).unwrap_or(Self::Malformed("pbkdf2_sha256"))
            }
            "argon2" => Phc::parse(&format!("${data}"))
                .map_or(Self::Malformed("argon2"), Self::DjangoArgon2),
            "bcrypt_sha256" => parse_bcrypt(true, data).unwrap_or(Self::Malformed("bcrypt_sha256")),
            "bcrypt" => parse_bcrypt(false, data).unwrap_or(Self::Malformed("bcrypt")),
            name if !name.is_empty()
                && name.len() <= 32
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Self::Unsupported(name.to_owned())
            }
            _ => Self::Unsupported("unknown".to_owned()),
        }
    }

    /// The algorithm's name, as Django writes it (for reports).
    pub fn name(&self) -> &str {
        match self {
            Self::Latchkey(_) => "argon2id (latchkey)",
            Self::DjangoArgon2(_) => "argon2",
            Self::Pbkdf2Sha256 { .. } => "pbkdf2_sha256",
            Self::Bcrypt { sha256: true, .. } => "bcrypt_sha256",
            Self::Bcrypt { sha256: false, .. } => "bcrypt",
            Self::Unusable => "unusable",
            Self::Unsupported(name) => name,
            Self::Malformed(name) => name,
        }
    }

    /// Why verifying this hash would cost more work than latchkey spends on
    /// one, if it would: such a hash is refused at import and, should one
    /// be in the database anyway, never attempted.
    pub fn cost_out_of_bounds(&self) -> Option<String> {
        match self {
            Self::Latchkey(phc) | Self::DjangoArgon2(phc) => phc.cost_out_of_bounds(),
            Self::Pbkdf2Sha256 { iterations, .. } => (*iterations > MAX_PBKDF2_ITERATIONS).then(|| {
                format!("pbkdf2_sha256 iterations {iterations} are beyond the bound ({MAX_PBKDF2_ITERATIONS})")
            }),
            Self::Bcrypt { cost, .. } => (*cost > MAX_BCRYPT_COST)
                .then(|| format!("bcrypt cost {cost} is beyond the bound ({MAX_BCRYPT_COST})")),
            Self::Unusable | Self::Unsupported(_) | Self::Malformed(_) => None,
        }
    }

    /// Whether a password can be checked against this hash at all, within
    /// the work bounds: else a check costs a dummy verification instead.
    pub fn is_verifiable(&self) -> bool {
        !matches!(
            self,
            Self::Unusable | Self::Unsupported(_) | Self::Malformed(_)
        ) && self.cost_out_of_bounds().is_none()
    }

    /// Whether `password` matches, in constant time; `false` for every hash
    /// that is not [verifiable](Self::is_verifiable), without computing.
    pub fn verify(&self, password: &Password) -> bool {
        if !self.is_verifiable() {
            return false;
        }
        let pw = password.expose().as_bytes();
        match self {
            Self::Latchkey(phc) | Self::DjangoArgon2(phc) => phc.verify(password),
            Self::Pbkdf2Sha256 {
                iterations,
                salt,
                hash,
            } => {
                let Ok(iterations) = u32::try_from(*iterations) else {
                    return false;
                };
                let mut computed = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt.as_bytes(), iterations, &mut computed);
                bool::from(computed.ct_eq(hash))
            }
            // The bcrypt crate compares in constant time.
            Self::Bcrypt {
                sha256: true, mcf, ..
            } => bcrypt::verify(hex(&Sha256::digest(pw)).as_bytes(), mcf).unwrap_or(false),
            Self::Bcrypt {
                sha256: false, mcf, ..
            } => bcrypt::verify(pw, mcf).unwrap_or(false),
            Self::Unusable | Self::Unsupported(_) | Self::Malformed(_) => false,
        }
    }

    /// Whether a password that matched should be hashed again at `params`:
    /// always for Django's formats; for latchkey's own when the configured
    /// cost changed.
    pub fn needs_rehash(&self, params: &argon2::Params) -> bool {
        match self {
            Self::Latchkey(phc) => !phc.is_at(params),
            _ => true,
        }
    }

    /// A random hash of the same kind and cost, which no password matches:
    /// verifying a password against it costs what verifying against this
    /// one costs. `None` for hashes that cost nothing to refuse (unusable,
    /// unsupported, malformed) or more than the bounds allow.
    pub fn decoy(&self) -> Result<Option<String>, getrandom::Error> {
        if !self.is_verifiable() {
            return Ok(None);
        }
        let random = |n: usize| -> Result<Vec<u8>, getrandom::Error> {
            let mut bytes = vec![0u8; n];
            getrandom::getrandom(&mut bytes)?;
            Ok(bytes)
        };
        Ok(match self {
            Self::Latchkey(phc) => Some(phc.decoy()?.encode()),
            Self::DjangoArgon2(phc) => Some(format!("argon2{}", phc.decoy()?.encode())),
            Self::Pbkdf2Sha256 { iterations, .. } => {
                let salt = hex(&random(11)?);
                let hash = STANDARD.encode(random(32)?);
                Some(format!("pbkdf2_sha256${iterations}${salt}${hash}"))
            }
            Self::Bcrypt { sha256, mcf, .. } => {
                const ALPHABET: &[u8] =
                    b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                let Some(prefix) = mcf.get(..7) else {
                    return Ok(None);
                };
                // 22 characters of salt, 31 of hash; the last character of
                // each holds only some bits (2 and 4), so it is `.` (zero)
                // to decode cleanly.
                let mut tail: String = random(53)?
                    .iter()
                    .map(|b| char::from(ALPHABET[usize::from(b % 64)]))
                    .collect();
                tail.replace_range(21..22, ".");
                tail.replace_range(52..53, ".");
                let algorithm = if *sha256 { "bcrypt_sha256" } else { "bcrypt" };
                Some(format!("{algorithm}${prefix}{tail}"))
            }
            Self::Unusable | Self::Unsupported(_) | Self::Malformed(_) => None,
        })
    }
}

/// `<iterations>$<salt>$<base64 of PBKDF2-HMAC-SHA256(password, salt)>`.
fn parse_pbkdf2_sha256(data: &str) -> Option<StoredHash> {
    let mut parts = data.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let iterations: u64 = iterations.parse().ok().filter(|&i| i > 0)?;
    if salt.is_empty() {
        return None;
    }
    let hash: [u8; 32] = STANDARD.decode(hash).ok()?.try_into().ok()?;
    Some(StoredHash::Pbkdf2Sha256 {
        iterations,
        salt: salt.to_owned(),
        hash,
    })
}

/// `$2b$<cost>$<salt and hash>`, the modular crypt format: 60 characters,
/// so a truncated hash is malformed (and costs the dummy check) rather
/// than failing inside bcrypt at once.
fn parse_bcrypt(sha256: bool, mcf: &str) -> Option<StoredHash> {
    let version_known = ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|v| mcf.starts_with(v));
    if !version_known || mcf.len() != 60 || mcf.as_bytes().get(6) != Some(&b'$') {
        return None;
    }
    let cost: u32 = mcf.get(4..6)?.parse().ok()?;
    Some(StoredHash::Bcrypt {
        sha256,
        cost,
        mcf: mcf.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Some(matched)` for a Django format latchkey verifies, `None` otherwise.
    fn verify(password: &Password, stored: &str) -> Option<bool> {
        let hash = StoredHash::parse(stored);
        match hash {
            StoredHash::Latchkey(_)
            | StoredHash::Unusable
            | StoredHash::Unsupported(_)
            | StoredHash::Malformed("argon2id (latchkey)") => None,
            _ => Some(hash.verify(password)),
        }
    }

    fn pw(s: &str) -> Password {
        Password::new(s.to_owned())
    }

    const PW: &str = "Tr1cky-Lantern-Owl";

    // Generated by Django 5.2.19's hashers for PW (PBKDF2 at 1000
    // iterations to keep the test fast; the format is the same).
    const PBKDF2: &str =
        "pbkdf2_sha256$1000$HqBXTtbp7Qrit6N65bnKBP$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=";
    const ARGON2: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$R3FmTmJ6Rkh5R2RxaWlZVkhMNjhUaQ$llFUVxNO/vq3Qg2CwFqwK6vZ9Bu+Yrne/XT0RxzBtg4";
    const BCRYPT_SHA256: &str =
        "bcrypt_sha256$$2b$12$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS";
    const BCRYPT: &str = "bcrypt$$2b$12$8gVlT5A/I0oBT.rbwiNUgeMLBKc8xVshjqFDa5vMpJcHABNGmqg0K";
    // latchkey's own, at a small cost.
    const LATCHKEY: &str = "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$yAtgKMnnLgsf4KhZKInGEkYDYSPxGkNKsrbeHcDPGV8";

    #[test]
    fn djangos_pbkdf2_sha256_verifies() {
        assert_eq!(verify(&pw(PW), PBKDF2), Some(true));
        assert_eq!(verify(&pw("Tr1cky-Lantern-Owl "), PBKDF2), Some(false));
    }

    #[test]
    fn djangos_argon2_verifies() {
        assert_eq!(verify(&pw(PW), ARGON2), Some(true));
        assert_eq!(verify(&pw("tr1cky-Lantern-Owl"), ARGON2), Some(false));
    }

    #[test]
    fn djangos_older_argon2i_verifies() {
        // argon2-cffi's Type.I, as Django's Argon2PasswordHasher wrote before
        // argon2id; Django 5.2's check_password accepts it.
        let argon2i = "argon2$argon2i$v=19$m=512,t=2,p=2$WqYoGY7pi2OHhRsx4rZyfw$x4FCEQanX53G7cpS27qTJuoKepag2rTIJmwIfmY7IHU";
        assert_eq!(verify(&pw(PW), argon2i), Some(true));
        assert_eq!(verify(&pw("wrong"), argon2i), Some(false));
    }

    #[test]
    fn djangos_bcrypt_sha256_verifies() {
        assert_eq!(verify(&pw(PW), BCRYPT_SHA256), Some(true));
        assert_eq!(verify(&pw("Tr1cky-Lantern-Ow"), BCRYPT_SHA256), Some(false));
    }

    #[test]
    fn djangos_plain_bcrypt_verifies() {
        assert_eq!(verify(&pw(PW), BCRYPT), Some(true));
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
            assert_eq!(verify(&pw(PW), &tampered), Some(false), "{stored}");
        }
    }

    #[test]
    fn debug_shows_the_kind_and_cost_never_the_hash() {
        for stored in [PBKDF2, ARGON2, BCRYPT_SHA256, BCRYPT, LATCHKEY] {
            let shown = format!("{:?}", StoredHash::parse(stored));
            let secret = stored.rsplit('$').next().unwrap();
            assert!(!shown.contains(&secret[secret.len() - 12..]), "{shown}");
        }
        assert_eq!(
            format!("{:?}", StoredHash::parse(PBKDF2)),
            "pbkdf2_sha256(1000)"
        );
    }

    #[test]
    fn hashes_are_classified_by_their_algorithm() {
        let name = |stored: &str| StoredHash::parse(stored).name().to_owned();
        assert!(matches!(
            StoredHash::parse(PBKDF2),
            StoredHash::Pbkdf2Sha256 {
                iterations: 1000,
                ..
            }
        ));
        assert!(matches!(
            StoredHash::parse(ARGON2),
            StoredHash::DjangoArgon2(_)
        ));
        assert!(matches!(
            StoredHash::parse(BCRYPT_SHA256),
            StoredHash::Bcrypt {
                sha256: true,
                cost: 12,
                ..
            }
        ));
        assert!(matches!(
            StoredHash::parse(BCRYPT),
            StoredHash::Bcrypt {
                sha256: false,
                cost: 12,
                ..
            }
        ));
        assert!(matches!(
            StoredHash::parse(LATCHKEY),
            StoredHash::Latchkey(_)
        ));
        assert_eq!(
            name("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            "argon2id (latchkey)"
        );
        assert_eq!(
            StoredHash::parse("!6Xi0ZhduI1hZEUOJeChaQuVmz5v3ZdTURaHqEUtj"),
            StoredHash::Unusable
        );
        assert_eq!(StoredHash::parse(""), StoredHash::Unusable);
        assert_eq!(
            StoredHash::parse("md5$e5C1PdGy5uSyPlFWo0qIi4$55ef4dafb483cbd3891033160109211f"),
            StoredHash::Unsupported("md5".into())
        );
        assert_eq!(
            StoredHash::parse("scrypt$16384$salt$8$5$aGFzaA=="),
            StoredHash::Unsupported("scrypt".into())
        );
        assert_eq!(
            StoredHash::parse("no dollar sign"),
            StoredHash::Unsupported("unknown".into())
        );
        assert_eq!(
            StoredHash::parse("we<ird$x"),
            StoredHash::Unsupported("unknown".into())
        );
    }

    #[test]
    fn unsupported_and_own_formats_are_left_to_the_caller() {
        assert_eq!(
            verify(
                &pw(PW),
                "md5$e5C1PdGy5uSyPlFWo0qIi4$55ef4dafb483cbd3891033160109211f"
            ),
            None
        );
        assert_eq!(verify(&pw(PW), "!unusable"), None);
        assert_eq!(
            verify(&pw(PW), "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            None
        );
    }

    #[test]
    fn hostile_costs_are_refused_without_being_attempted() {
        assert_eq!(
            verify(
                &pw(PW),
                "pbkdf2_sha256$4000000000$salt$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo="
            ),
            Some(false)
        );
        assert_eq!(
            verify(
                &pw(PW),
                "bcrypt_sha256$$2b$31$jpQtm3nhQ2FS2yXRAWiRRuVDu6dqYVR0EHlmT8jGnCLKMNly6beRS"
            ),
            Some(false)
        );
    }

    #[test]
    fn every_kind_of_hash_has_its_work_bounded() {
        let out = |stored: &str| StoredHash::parse(stored).cost_out_of_bounds();
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
        match StoredHash::parse(stored) {
            StoredHash::Pbkdf2Sha256 { .. } => {
                stored.split('$').take(2).collect::<Vec<_>>().join("$")
            }
            StoredHash::Bcrypt { .. } => stored[..stored.len() - 53].to_owned(),
            _ => stored.rsplitn(3, '$').nth(2).unwrap_or_default().to_owned(),
        }
    }

    /// Whether `stored` is well-formed down to its salt and hash, so that
    /// verifying it does the whole work rather than failing early.
    fn well_formed(stored: &str) -> bool {
        let (_, data) = stored.split_once('$').unwrap();
        match StoredHash::parse(stored) {
            StoredHash::Pbkdf2Sha256 { .. } => {
                let parts: Vec<&str> = data.split('$').collect();
                parts.len() == 3 && STANDARD.decode(parts[2]).is_ok_and(|h| h.len() == 32)
            }
            StoredHash::Bcrypt { .. } => bcrypt::verify("x", data).is_ok(),
            StoredHash::DjangoArgon2(_) => argon2::PasswordHash::new(&format!("${data}")).is_ok(),
            StoredHash::Latchkey(_) => argon2::PasswordHash::new(stored).is_ok(),
            _ => false,
        }
    }

    #[test]
    fn a_decoy_has_the_kind_and_cost_of_its_model_and_matches_nothing() {
        for model in [PBKDF2, ARGON2, BCRYPT_SHA256, BCRYPT, LATCHKEY] {
            let decoy = StoredHash::parse(model).decoy().unwrap().expect(model);
            assert_ne!(decoy, model);
            assert_eq!(
                StoredHash::parse(&decoy).name(),
                StoredHash::parse(model).name(),
                "{decoy}"
            );
            assert_eq!(cost(&decoy), cost(model), "{decoy} vs {model}");
            assert!(well_formed(&decoy), "{decoy}");
            assert!(!StoredHash::parse(&decoy).verify(&pw(PW)), "{decoy}");
        }
        for nothing in ["", "!unusable", "md5$x$y", "pbkdf2_sha256$900000000$s$h"] {
            assert_eq!(
                StoredHash::parse(nothing).decoy().unwrap(),
                None,
                "{nothing}"
            );
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
            assert_eq!(verify(&pw(PW), stored), Some(false), "{stored}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the users table holds, parsing it and judging its cost
        /// never panic, and a check of a hash beyond the bounds or of no
        /// known kind never verifies.
        #[test]
        fn any_stored_text_parses_without_panicking(
            prefix in prop::sample::select(vec!["", "!", "$argon2id$", "argon2$$argon2i$", "pbkdf2_sha256$", "bcrypt$", "bcrypt_sha256$$2b$", "md5$"]),
            rest in "[ -~]{0,80}",
        ) {
            let stored = format!("{prefix}{rest}");
            let hash = StoredHash::parse(&stored);
            prop_assert!(!hash.name().is_empty());
            let _ = hash.cost_out_of_bounds();
            if !hash.is_verifiable() {
                prop_assert!(!hash.verify(&pw(PW)));
                prop_assert_eq!(hash.decoy().unwrap(), None);
            }
        }
    }
}
