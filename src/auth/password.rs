//! Passwords: the newtype that keeps them out of logs, the policy that rejects
//! weak ones, and the Argon2id hasher that runs on a bounded blocking pool.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use tokio::sync::Semaphore;

/// OWASP's minimum Argon2id memory cost, in KiB.
pub const MIN_MEMORY_KIB: u32 = 19_456;
/// OWASP's minimum Argon2id iteration count at that memory cost.
pub const MIN_ITERATIONS: u32 = 2;
/// Shortest password accepted, in characters (Django's default).
pub const MIN_LENGTH: usize = 8;

/// A plaintext password. `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wrap a password as received.
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The password, refused with DRF's message when empty.
    pub fn non_blank(self) -> Result<Self, String> {
        if self.0.is_empty() {
            Err("This field may not be blank.".into())
        } else {
            Ok(self)
        }
    }

    /// The plaintext, for hashing and the policy only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

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
        let pw = password.expose();
        let len = pw.chars().count();
        if len > self.max_length {
            return vec![format!(
                "Ensure this field has no more than {} characters.",
                self.max_length
            )];
        }
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

/// Why hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the waiting queue is full.
    #[error("the password hashing queue is full")]
    Overloaded,
    /// The blocking task failed (a panic in a worker) or the OS RNG failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Argon2id hashing and verification on the blocking thread pool, at most
/// `workers` at once, with at most `queue` callers waiting for a worker.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    params: Params,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    /// A well-formed hash nobody's password matches, verified for unknown
    /// accounts so they cost the same work as a wrong password.
    dummy_hash: String,
}

impl Hasher {
    /// A hasher at the given cost, never below OWASP's minimum.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        workers: usize,
        queue: usize,
    ) -> Result<Self, HashError> {
        let params = Params::new(
            memory_kib.max(MIN_MEMORY_KIB),
            iterations.max(MIN_ITERATIONS),
            1,
            Some(32),
        )
        .map_err(|e| HashError::Failed(e.to_string()))?;
        let mut salt = [0u8; 16];
        let mut output = [0u8; 32];
        getrandom::getrandom(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
        getrandom::getrandom(&mut output).map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy_hash = format!(
            "$argon2id$v=19$m={},t={},p=1${}${}",
            params.m_cost(),
            params.t_cost(),
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(output)
        );
        Ok(Self {
            inner: Arc::new(HasherInner {
                params,
                permits: Arc::new(Semaphore::new(workers.max(1))),
                waiting: AtomicUsize::new(0),
                queue,
                dummy_hash,
            }),
        })
    }

    /// Callers currently waiting for a hashing worker.
    pub fn queue_depth(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    fn argon2(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    /// Run CPU-bound `job` on the blocking pool once a worker is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let inner = &self.inner;
        let permit = match inner.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waiting =
                    QueueSlot::take(&inner.waiting, inner.queue).ok_or(HashError::Overloaded)?;
                let permit = inner.permits.clone().acquire_owned().await;
                drop(waiting);
                permit.map_err(|e| HashError::Failed(e.to_string()))?
            }
        };
        // The permit moves into the blocking task, so a caller that goes away
        // mid-hash does not free its worker before the work is done.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Hash `password` into a PHC string (`$argon2id$v=19$m=...`).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let params = self.inner.params.clone();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// Check `password` against `phc` (or, for an unknown account, against a
    /// dummy hash, spending the same work). False for unparsable hashes.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        let (known, phc) = match phc {
            Some(phc) => (true, phc),
            None => (false, self.inner.dummy_hash.clone()),
        };
        let matched = self.run(move || verify_blocking(&password, &phc)).await?;
        Ok(known && matched)
    }

    /// Hash `password` after checking it against `policy`; the violations when it fails.
    pub async fn check_and_hash(
        &self,
        policy: PasswordPolicy,
        password: Password,
        name: String,
        email: String,
    ) -> Result<Result<String, Vec<String>>, HashError> {
        let params = self.inner.params.clone();
        self.run(move || {
            let violations = policy.violations(&password, &name, &email);
            if !violations.is_empty() {
                return Ok(Err(violations));
            }
            hash_blocking(&params, &password).map(Ok)
        })
        .await?
    }
}

/// A place in the waiting queue, given back on drop, even when the waiting
/// request is cancelled (a client that disconnects must not leak a slot).
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(waiting: &'a AtomicUsize, limit: usize) -> Option<Self> {
        if waiting.fetch_add(1, Ordering::AcqRel) >= limit {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(waiting))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn hash_blocking(params: &Params, password: &Password) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
    Hasher::argon2(params)
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn verify_blocking(password: &Password, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        // Verification uses the parameters recorded in the hash itself.
        Ok(hash) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
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

    #[test]
    fn debug_never_shows_the_password() {
        assert_eq!(
            format!("{:?}", Password::new("hunter22".into())),
            "Password([redacted])"
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_at_owasp_cost_and_verify() {
        let hasher = Hasher::new(1, 1, 2, 4).unwrap();
        let phc = hasher
            .hash(Password::new("Tr1cky-Lantern-Owl".into()))
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher
            .verify(
                Password::new("Tr1cky-Lantern-Owl".into()),
                Some(phc.clone())
            )
            .await
            .unwrap());
        assert!(!hasher
            .verify(Password::new("wrong".into()), Some(phc))
            .await
            .unwrap());
        assert!(!hasher
            .verify(Password::new("Tr1cky-Lantern-Owl".into()), None)
            .await
            .unwrap());
        assert!(!hasher
            .verify(Password::new("x".into()), Some("garbage".into()))
            .await
            .unwrap());
    }

    type Held = tokio::task::JoinHandle<Result<(), HashError>>;

    /// Start a job that holds the hasher's single worker until the returned
    /// barrier is passed.
    async fn occupy_the_only_worker(hasher: &Hasher) -> (Arc<std::sync::Barrier>, Held) {
        let gate = Arc::new(std::sync::Barrier::new(2));
        let held = {
            let (hasher, gate) = (hasher.clone(), gate.clone());
            tokio::spawn(async move {
                hasher
                    .run(move || {
                        gate.wait();
                    })
                    .await
            })
        };
        while hasher.inner.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        (gate, held)
    }

    #[tokio::test]
    async fn a_cancelled_waiter_gives_its_queue_slot_back() {
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 1).unwrap();
        let (gate, held) = occupy_the_only_worker(&hasher).await;
        let waiter = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(|| ()).await })
        };
        while hasher.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(
            hasher.queue_depth(),
            0,
            "the aborted waiter's slot was returned"
        );
        gate.wait();
        held.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded_at_once() {
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 0).unwrap();
        let (gate, held) = occupy_the_only_worker(&hasher).await;
        assert!(matches!(
            hasher.run(|| ()).await,
            Err(HashError::Overloaded)
        ));
        gate.wait();
        held.await.unwrap().unwrap();
        assert!(hasher.run(|| ()).await.is_ok());
    }
}
