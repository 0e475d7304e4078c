//! Passwords: the newtype that keeps them out of logs, and the Argon2id
//! hasher that runs on a bounded blocking pool; the policy that rejects weak
//! ones is in `policy.rs`.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::PasswordHash;
#[cfg(test)]
use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

mod policy;

pub use policy::{PasswordPolicy, MIN_LENGTH};

/// OWASP's minimum Argon2id memory cost, in KiB.
pub const MIN_MEMORY_KIB: u32 = 19_456;
/// OWASP's minimum Argon2id iteration count at that memory cost.
pub const MIN_ITERATIONS: u32 = 2;

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

/// The outcome of a login's password check.
pub struct Verified {
    /// The password matched the stored hash.
    pub matched: bool,
    /// A new Argon2id hash of the password, when the stored one should be replaced.
    pub upgraded: Option<String>,
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("matched", &self.matched)
            .field("upgraded", &self.upgraded.is_some())
            .finish()
    }
}

/// Why hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the waiting queue is full.
    #[error("the password hashing queue is full")]
    Overloaded,
    /// A worker failed (a panic in a job) or the OS RNG failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce() + Send>;

/// Buckets of the queue-wait histogram, in seconds.
const WAIT_BUCKETS: [f64; 10] = [0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Argon2id hashing and verification on a small pool of dedicated threads
/// (`workers` of them, never the async runtime's), with at most `queue` jobs
/// waiting; beyond that, [`HashError::Overloaded`] at once.
///
/// Argon2 memory is reused between jobs while the workers are busy (no
/// 19 MiB allocation per hash; resident memory bounded by `workers` × the
/// memory cost) and released after a second without work.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    params: Params,
    workers: usize,
    queue: usize,
    busy: Arc<AtomicUsize>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    /// Seconds each job waited for a worker.
    wait: prometheus::Histogram,
    /// A well-formed hash nobody's password matches, verified for unknown
    /// accounts (and hashes nothing can verify) so they cost the same work
    /// as a wrong password.
    dummy_hash: Arc<str>,
}

impl Hasher {
    /// A hasher at the given cost, never below OWASP's minimum.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        workers: usize,
        queue: usize,
    ) -> Result<Self, HashError> {
        let (memory_kib, iterations) = (
            memory_kib.max(MIN_MEMORY_KIB),
            iterations.max(MIN_ITERATIONS),
        );
        // Hashes made at the configured cost must stay verifiable.
        if let Some(why) = argon2_cost_out_of_bounds(memory_kib, iterations, 1) {
            return Err(HashError::Failed(format!("configured {why}")));
        }
        let params = Params::new(memory_kib, iterations, 1, Some(32))
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let mut salt = [0u8; 16];
        let mut output = [0u8; 32];
        getrandom::getrandom(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
        getrandom::getrandom(&mut output).map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy_hash: Arc<str> = phc_string(&params, &salt, &output).into();

        large_allocations_unmap_on_free();
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        let workers = workers.max(1);
        for n in 0..workers {
            let (receiver, queued, busy) = (receiver.clone(), queued.clone(), busy.clone());
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{n}"))
                .spawn(move || worker(&receiver, &queued, &busy))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        Ok(Self {
            inner: Arc::new(HasherInner {
                params,
                workers,
                queue,
                busy,
                jobs,
                queued,
                wait: prometheus::Histogram::with_opts(
                    prometheus::HistogramOpts::new(
                        "latchkey_password_hash_wait_seconds",
                        "Time password-hash jobs waited for a worker.",
                    )
                    .buckets(WAIT_BUCKETS.to_vec()),
                )
                .map_err(|e| HashError::Failed(e.to_string()))?,
                dummy_hash,
            }),
        })
    }

    /// The histogram of queue waits, for the metrics registry.
    pub fn wait_histogram(&self) -> prometheus::Histogram {
        self.inner.wait.clone()
    }

    /// Jobs waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Whether the queue is full right now: lets a caller answer 503 before
    /// doing any other work. Advisory only; [`Hasher::run`] decides.
    pub fn is_saturated(&self) -> bool {
        let inner = &self.inner;
        inner.busy.load(Ordering::Relaxed) >= inner.workers && self.queue_depth() >= inner.queue
    }

    /// Run CPU-bound `job` on a hashing worker.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let (enqueued, wait) = (std::time::Instant::now(), self.inner.wait.clone());
        let job: Job = Box::new(move || {
            wait.observe(enqueued.elapsed().as_secs_f64());
            // The caller may have gone away; its result is then dropped.
            let _ = done.send(job());
        });
        self.inner.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.inner.jobs.try_send(job) {
            self.inner.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(match e {
                std::sync::mpsc::TrySendError::Full(_) => HashError::Overloaded,
                std::sync::mpsc::TrySendError::Disconnected(_) => {
                    HashError::Failed("hash workers stopped".into())
                }
            });
        }
        result
            .await
            .map_err(|_| HashError::Failed("a hashing job failed".into()))
    }

    /// Hash `password` into a PHC string (`$argon2id$v=19$m=...`).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let params = self.inner.params.clone();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// Check `password` against `phc` (or, for an unknown account, against a
    /// dummy hash, spending the same work). False for unparsable hashes.
    /// Hashes imported from Django are accepted too.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        Ok(self.check(password, phc, false).await?.matched)
    }

    /// As [`Hasher::verify`], for a login: also accepts hashes imported from
    /// Django, and after a match whose hash is not Argon2id at this hasher's
    /// parameters (a Django hash, or the configured cost changed), hashes the
    /// password again, on the same worker, for the caller to store.
    pub async fn verify_and_upgrade(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verified, HashError> {
        self.check(password, stored, true).await
    }

    async fn check(
        &self,
        password: Password,
        stored: Option<String>,
        upgrade: bool,
    ) -> Result<Verified, HashError> {
        let params = self.inner.params.clone();
        let dummy = Arc::clone(&self.inner.dummy_hash);
        self.run(move || {
            let (matched, outdated) = match stored {
                Some(stored) => verify_stored(&password, &stored, &params, &dummy),
                None => {
                    // An unknown account: the same work as a wrong password.
                    let _ = verify_argon2_phc(&password, &dummy);
                    (false, false)
                }
            };
            let upgraded = if upgrade && matched && outdated {
                hash_blocking(&params, &password).ok()
            } else {
                None
            };
            Verified { matched, upgraded }
        })
        .await
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

/// A hashing thread: run jobs until every [`Hasher`] clone is gone.
fn worker(
    receiver: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>,
    queued: &AtomicUsize,
    busy: &AtomicUsize,
) {
    lower_own_priority();
    loop {
        let job = match receiver.lock() {
            Ok(rx) => rx.recv_timeout(IDLE_RELEASE),
            Err(_) => return,
        };
        let job = match job {
            Ok(job) => job,
            // No job reached this worker for a while: the spare Argon2
            // buffers (those no job is using) can go back to the OS. A busy
            // worker's buffer is not in the spare pool and stays.
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                release_spare_memory();
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        busy.fetch_add(1, Ordering::AcqRel);
        queued.fetch_sub(1, Ordering::AcqRel);
        // A panicking job must not take the worker down with it; its caller
        // sees the dropped result channel as a failure.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run this thread at a lower scheduling priority (nice 10), so that under a
/// login flood the async workers serving cheap requests still get the CPU
/// first; hashing takes whatever is left, which when idle is all of it.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory-safety preconditions; on Linux, `who`
    // 0 with PRIO_PROCESS names the calling thread. Failure leaves the
    // priority unchanged, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// The largest memory cost a stored hash may ask for (256 MiB, 2.5×
/// Django's 100 MiB): every hash worker may verify one at once (and, through
/// the decoys, for unknown accounts too), so this times the workers is the
/// most hashing can take.
const MAX_VERIFY_MEMORY_KIB: u32 = 1 << 18;
/// The most Argon2 work (memory cost × passes, in KiB) a stored hash may
/// ask for: 2 GiB of block computations, about 2 s on one core of a small
/// machine — 54× latchkey's default cost and 10× Django's. Beyond it one
/// verification would hold a hash worker for minutes (`t=4294967295`).
pub const MAX_ARGON2_WORK_KIB: u64 = 1 << 21;
/// The most passes a stored Argon2 hash may ask for.
const MAX_ARGON2_PASSES: u32 = 64;
/// The most lanes a stored Argon2 hash may ask for (they share its memory;
/// latchkey computes them one after another).
const MAX_ARGON2_LANES: u32 = 64;

/// Why Argon2 parameters `m` (KiB), `t` and `p` are beyond what latchkey
/// verifies, if they are.
pub(crate) fn argon2_cost_out_of_bounds(m: u32, t: u32, p: u32) -> Option<String> {
    let work = u64::from(m) * u64::from(t);
    (m > MAX_VERIFY_MEMORY_KIB
        || t > MAX_ARGON2_PASSES
        || p > MAX_ARGON2_LANES
        || work > MAX_ARGON2_WORK_KIB)
        .then(|| {
            format!(
                "argon2 cost m={m},t={t},p={p} is beyond the bound (m <= {MAX_VERIFY_MEMORY_KIB} KiB, \
                 t <= {MAX_ARGON2_PASSES}, p <= {MAX_ARGON2_LANES}, m*t <= {MAX_ARGON2_WORK_KIB})"
            )
        })
}

/// Why the Argon2 PHC string `phc` asks for more work than latchkey
/// verifies, if it does (an unparsable one is not judged here).
pub(crate) fn argon2_phc_out_of_bounds(phc: &str) -> Option<String> {
    let hash = PasswordHash::new(phc).ok()?;
    let params = Params::try_from(&hash).ok()?;
    argon2_cost_out_of_bounds(params.m_cost(), params.t_cost(), params.p_cost())
}

/// Argon2 working memory not in use, kept between jobs so a busy worker does
/// not allocate (and fault in) 19 MiB per hash; handed back to the OS once
/// the workers have been idle for [`IDLE_RELEASE`].
static SPARE: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

/// How long the workers stay idle before their spare memory is released.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

fn release_spare_memory() {
    let released = match SPARE.lock() {
        Ok(mut spare) => std::mem::take(&mut *spare).len(),
        Err(_) => 0,
    };
    if released > 0 {
        tracing::debug!(buffers = released, "idle: password-hash memory released");
    }
}

/// Make glibc serve allocations of a MiB or more with their own mappings,
/// returned to the OS when freed. By default it raises that threshold to
/// the size of the first large block freed, after which the next 19 MiB
/// Argon2 buffers come from a thread's arena, where freeing them never
/// lowers resident memory.
fn large_allocations_unmap_on_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; any value is valid and
    // a failure leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Argon2id of `password` with `salt` into `out`, in this thread's reused memory.
fn argon2id(
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    argon2_with(Algorithm::Argon2id, params, password, salt, out)
}

/// Argon2 (of the given variant) into `out`, in this thread's reused memory.
fn argon2_with(
    algorithm: Algorithm,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let argon2 = Argon2::new(algorithm, Version::V0x13, params.clone());
    let needed = params.block_count();
    if needed > MAX_KEPT_BLOCKS {
        // A costlier hash than a worker keeps memory for (Django's argon2
        // uses 100 MiB): memory for this one computation only.
        let mut blocks = vec![argon2::Block::default(); needed];
        return argon2.hash_password_into_with_memory(password, salt, out, &mut blocks);
    }
    let mut blocks = SPARE
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .unwrap_or_default();
    if blocks.len() < needed {
        blocks.resize(needed, argon2::Block::default());
    }
    let result = argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed]);
    if let Ok(mut spare) = SPARE.lock() {
        spare.push(blocks);
    }
    result
}

/// Most Argon2 memory a worker keeps between jobs, in 1 KiB blocks (64 MiB).
const MAX_KEPT_BLOCKS: usize = 64 * 1024;

fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    )
}

fn hash_blocking(params: &Params, password: &Password) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
    let mut output = [0u8; 32];
    argon2id(params, password.expose().as_bytes(), &salt, &mut output)
        .map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(phc_string(params, &salt, &output))
}

/// Whether `phc` is an Argon2id hash at exactly `params` (else a successful
/// login rehashes it: the configured cost changed, or it is not ours).
fn at_params(phc: &str, params: &Params) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(recorded) = Params::try_from(&hash) else {
        return false;
    };
    hash.algorithm.as_str() == "argon2id"
        && hash.version == Some(0x13)
        && recorded.m_cost() == params.m_cost()
        && recorded.t_cost() == params.t_cost()
        && recorded.p_cost() == params.p_cost()
        && hash
            .hash
            .is_some_and(|h| Some(h.len()) == params.output_len())
}

/// Check `password` against whatever `stored` holds: latchkey's Argon2id, or
/// a hash imported from Django. The second value says whether a match should
/// be rehashed at `params`. A hash nothing can verify (Django's unusable
/// `!...` passwords, algorithms latchkey does not support, costs beyond
/// the bounds) costs a check against `dummy`, so timing does not tell such
/// accounts apart.
fn verify_stored(password: &Password, stored: &str, params: &Params, dummy: &str) -> (bool, bool) {
    use super::legacy::hashes::{self, HashKind};
    match hashes::classify(stored) {
        HashKind::Latchkey => (
            verify_argon2_phc(password, stored),
            !at_params(stored, params),
        ),
        kind if kind.is_supported() && hashes::cost_out_of_bounds(&kind, stored).is_none() => {
            (hashes::verify(&kind, password, stored), true)
        }
        // Nothing can verify it, or it asks for more work than latchkey
        // spends: the same work as an unknown account, and no match.
        _ => {
            let _ = verify_argon2_phc(password, dummy);
            (false, false)
        }
    }
}

/// Verify against an Argon2 PHC string (`argon2id`, or Django's older
/// `argon2i`; version 0x13), with the parameters it records, comparing in
/// constant time. Runs on a hashing worker only.
pub(crate) fn verify_argon2_phc(password: &Password, phc: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let algorithm = match hash.algorithm.as_str() {
        "argon2id" => Algorithm::Argon2id,
        "argon2i" => Algorithm::Argon2i,
        _ => return false,
    };
    if hash.version.is_some_and(|v| v != 0x13) {
        return false;
    }
    let Ok(recorded) = Params::try_from(&hash) else {
        return false;
    };
    if argon2_cost_out_of_bounds(recorded.m_cost(), recorded.t_cost(), recorded.p_cost()).is_some()
    {
        return false;
    }
    let Ok(params) = Params::new(
        recorded.m_cost(),
        recorded.t_cost(),
        recorded.p_cost(),
        Some(expected.len()),
    ) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut computed = vec![0u8; expected.len()];
    argon2_with(
        algorithm,
        &params,
        password.expose().as_bytes(),
        salt,
        &mut computed,
    )
    .is_ok()
        && bool::from(computed.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let started = Arc::new(std::sync::Barrier::new(2));
        let held = {
            let (hasher, gate, started) = (hasher.clone(), gate.clone(), started.clone());
            tokio::spawn(async move {
                hasher
                    .run(move || {
                        started.wait();
                        gate.wait();
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started.wait())
            .await
            .unwrap();
        (gate, held)
    }

    #[tokio::test]
    async fn hashes_nothing_can_verify_cost_a_full_verification_like_unknown_accounts() {
        let hasher = Hasher::new(1, 1, 1, 4).unwrap();
        let timed = |stored: Option<&str>| {
            let (hasher, stored) = (hasher.clone(), stored.map(str::to_owned));
            async move {
                let started = std::time::Instant::now();
                let matched = hasher
                    .verify(Password::new("Tr1cky-Lantern-Owl".into()), stored)
                    .await
                    .unwrap();
                assert!(!matched);
                started.elapsed()
            }
        };
        // Warm the worker's memory first.
        timed(None).await;
        let unknown = timed(None).await;
        // Django's unusable passwords, an unsupported algorithm, garbage:
        // without the dummy check each would answer in microseconds, three
        // orders of magnitude under an Argon2id verification.
        for stored in ["!unusable-XyZ", "", "md5$salt$0123abcd", "not a hash"] {
            let spent = timed(Some(stored)).await;
            assert!(
                spent * 4 > unknown,
                "{stored:?}: {spent:?} against {unknown:?} for an unknown account"
            );
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded_at_once() {
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 1).unwrap();
        let (gate, held) = occupy_the_only_worker(&hasher).await;
        let waiting = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(|| 7).await })
        };
        while hasher.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.run(|| ()).await,
            Err(HashError::Overloaded)
        ));
        gate.wait();
        held.await.unwrap().unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 7);
        assert_eq!(hasher.queue_depth(), 0);
        assert!(hasher.run(|| ()).await.is_ok());
    }

    #[tokio::test]
    async fn saturation_means_every_worker_busy_and_the_queue_full() {
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 1).unwrap();
        assert!(!hasher.is_saturated());
        let (gate, held) = occupy_the_only_worker(&hasher).await;
        assert!(!hasher.is_saturated(), "the queue still has room");
        let waiting = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(|| ()).await })
        };
        while hasher.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(hasher.is_saturated());
        gate.wait();
        held.await.unwrap().unwrap();
        waiting.await.unwrap().unwrap();
        while hasher.is_saturated() {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_worker_lives_on() {
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 1).unwrap();
        let failed = hasher.run(|| -> () { panic!("boom") }).await;
        assert!(matches!(failed, Err(HashError::Failed(_))));
        assert_eq!(hasher.run(|| 5).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn hashes_from_the_argon2_crate_verify_and_a_changed_byte_does_not() {
        use argon2::password_hash::PasswordHasher as _;
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 1).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let reference = Argon2::default()
            .hash_password(b"Tr1cky-Lantern-Owl", &salt)
            .unwrap()
            .to_string();
        assert!(hasher
            .verify(
                Password::new("Tr1cky-Lantern-Owl".into()),
                Some(reference.clone())
            )
            .await
            .unwrap());
        let mut tampered = reference.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(!hasher
            .verify(Password::new("Tr1cky-Lantern-Owl".into()), Some(tampered))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_hash_at_the_configured_cost_is_kept_and_one_at_another_cost_upgraded() {
        let current = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 4).unwrap();
        let stored = current.hash(Password::new(PW.into())).await.unwrap();
        let kept = current
            .verify_and_upgrade(Password::new(PW.into()), Some(stored.clone()))
            .await
            .unwrap();
        assert!(kept.matched);
        assert!(kept.upgraded.is_none());

        let raised = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS + 1, 1, 4).unwrap();
        let upgraded = raised
            .verify_and_upgrade(Password::new(PW.into()), Some(stored))
            .await
            .unwrap();
        assert!(upgraded.matched);
        let new_hash = upgraded.upgraded.expect("rehashed at the raised cost");
        assert!(
            new_hash.starts_with("$argon2id$v=19$m=19456,t=3,p=1$"),
            "{new_hash}"
        );
        assert!(raised
            .verify(Password::new(PW.into()), Some(new_hash))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_django_hash_verifies_and_is_upgraded_to_argon2id() {
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 4).unwrap();
        // Django 5.2's pbkdf2_sha256 of PW, at 1000 iterations.
        let django =
            "pbkdf2_sha256$1000$HqBXTtbp7Qrit6N65bnKBP$wCkbcU3pmYpdsxXgqKzzOBcDnNeBtwffVBD39tODIXo=";
        let v = hasher
            .verify_and_upgrade(Password::new(PW.into()), Some(django.into()))
            .await
            .unwrap();
        assert!(v.matched);
        let shown = format!("{v:?}");
        assert!(!shown.contains("argon2"), "{shown}");
        let new_hash = v.upgraded.expect("a Django hash is always upgraded");
        assert!(
            new_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{new_hash}"
        );

        let wrong = hasher
            .verify_and_upgrade(Password::new("wrong".into()), Some(django.into()))
            .await
            .unwrap();
        assert!(!wrong.matched && wrong.upgraded.is_none());
        let unknown = hasher
            .verify_and_upgrade(Password::new(PW.into()), None)
            .await
            .unwrap();
        assert!(!unknown.matched && unknown.upgraded.is_none());
    }

    const PW: &str = "Tr1cky-Lantern-Owl";

    #[tokio::test]
    async fn an_absurd_memory_cost_in_a_stored_hash_is_refused_not_attempted() {
        let hasher = Hasher::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, 1).unwrap();
        let hostile = "$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!hasher
            .verify(Password::new("x".into()), Some(hostile.into()))
            .await
            .unwrap());
    }
}
