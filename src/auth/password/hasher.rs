//! The hashing pool: Argon2id hashing and every stored kind's verification
//! on a few dedicated threads, never the async runtime's, with a bounded
//! queue in front of them.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ::argon2::Params;

use super::argon2::{self, Phc};
use super::plain::Password;
use super::policy::PasswordPolicy;
use super::stored::StoredHash;

/// The Argon2id costs (memory in KiB, iterations; p=1) OWASP's Password
/// Storage Cheat Sheet lists as equally strong, the floor latchkey never
/// hashes below: a configured cost must reach one of them in both memory
/// and iterations.
pub const OWASP_FLOOR: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];
/// latchkey's default memory cost: the floor's least memory, whose hash
/// was the fastest of the five on the development machine (22% more hashes
/// per second with every core hashing than m=19456, t=2;
/// `bench/argon2_variants.sh`, docs/benchmarks.md): the working set fits in
/// the CPU's caches.
pub const DEFAULT_MEMORY_KIB: u32 = 7_168;
/// latchkey's default iteration count, at [`DEFAULT_MEMORY_KIB`].
pub const DEFAULT_ITERATIONS: u32 = 5;

/// The cost to hash at when `memory_kib` and `iterations` are asked for:
/// unchanged if it reaches the OWASP floor; otherwise at least the floor's
/// least memory, with the iterations the floor asks at that memory.
pub fn at_least_owasp(memory_kib: u32, iterations: u32) -> (u32, u32) {
    let memory_kib = memory_kib.max(DEFAULT_MEMORY_KIB);
    let needed = OWASP_FLOOR
        .iter()
        .filter(|(m, _)| memory_kib >= *m)
        .map(|(_, t)| *t)
        .min()
        .unwrap_or(DEFAULT_ITERATIONS);
    (memory_kib, iterations.max(needed))
}

/// How long the workers stay idle before their spare memory is released.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a job may wait for room in a full queue before it is refused.
/// A refusal costs the server almost nothing, so a client that retries at
/// once (a flood) would otherwise be answered tens of thousands of times a
/// second, and that answering took the CPU from the hashing workers (which
/// run at a lower priority): under a 64-connection sign-in flood latchkey
/// hashed a tenth of what the cores sustain (docs/benchmarks.md). Waiting
/// costs nothing (an async timer), bounds the refusals to one per
/// connection per wait, and admits the job if a worker frees meanwhile.
pub const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

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
/// waiting; beyond that, a job waits up to [`ADMISSION_WAIT`] for room and
/// is then refused with [`HashError::Overloaded`].
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
    /// Told each time a worker finishes a job (there is room again).
    freed: Arc<tokio::sync::Notify>,
    /// Seconds each job waited for a worker.
    wait: prometheus::Histogram,
    /// A well-formed hash nobody's password matches, verified for unknown
    /// accounts (and hashes nothing can verify) so they cost the same work
    /// as a wrong password.
    dummy: Arc<Phc>,
    /// Dummy verifications done, for the proof that a check of an unknown
    /// account (or a hash nothing can verify) spends the work.
    dummy_checks: Arc<AtomicUsize>,
}

impl Hasher {
    /// A hasher at the given cost, never below OWASP's floor ([`at_least_owasp`]).
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        workers: usize,
        queue: usize,
    ) -> Result<Self, HashError> {
        let (memory_kib, iterations) = at_least_owasp(memory_kib, iterations);
        // Hashes made at the configured cost must stay verifiable.
        if let Some(why) = argon2::cost_out_of_bounds(memory_kib, iterations, 1) {
            return Err(HashError::Failed(format!("configured {why}")));
        }
        let params = Params::new(memory_kib, iterations, 1, Some(32))
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let mut salt = [0u8; 16];
        let mut output = [0u8; 32];
        getrandom::getrandom(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
        getrandom::getrandom(&mut output).map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy = Phc::parse(&argon2::latchkey_phc(&params, &salt, &output))
            .ok_or_else(|| HashError::Failed("the dummy hash does not parse".into()))?;

        argon2::large_allocations_unmap_on_free();
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        let freed = Arc::new(tokio::sync::Notify::new());
        let workers = workers.max(1);
        for n in 0..workers {
            let (receiver, queued, busy, freed) = (
                receiver.clone(),
                queued.clone(),
                busy.clone(),
                freed.clone(),
            );
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{n}"))
                .spawn(move || worker(&receiver, &queued, &busy, &freed))
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
                freed,
                wait: prometheus::Histogram::with_opts(
                    prometheus::HistogramOpts::new(
                        "latchkey_password_hash_wait_seconds",
                        "Time password-hash jobs waited for a worker.",
                    )
                    .buckets(WAIT_BUCKETS.to_vec()),
                )
                .map_err(|e| HashError::Failed(e.to_string()))?,
                dummy: Arc::new(dummy),
                dummy_checks: Arc::new(AtomicUsize::new(0)),
            }),
        })
    }

    /// How many checks were spent on the dummy hash so far.
    pub fn dummy_verifications(&self) -> usize {
        self.inner.dummy_checks.load(Ordering::Relaxed)
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

    /// Whether the queue has room now, or gets it within [`ADMISSION_WAIT`]:
    /// lets a caller answer 503 before doing any other work. Advisory only;
    /// [`Hasher::run`] decides.
    pub async fn has_room(&self) -> bool {
        self.room_by(tokio::time::Instant::now() + ADMISSION_WAIT)
            .await
    }

    async fn room_by(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let freed = self.inner.freed.notified();
            if !self.is_saturated() {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return !self.is_saturated();
            }
        }
    }

    /// Run CPU-bound `job` on a hashing worker (waiting up to
    /// [`ADMISSION_WAIT`] for room in a full queue).
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let (enqueued, wait) = (std::time::Instant::now(), self.inner.wait.clone());
        let mut job: Job = Box::new(move || {
            wait.observe(enqueued.elapsed().as_secs_f64());
            // The caller may have gone away; its result is then dropped.
            let _ = done.send(job());
        });
        let deadline = tokio::time::Instant::now() + ADMISSION_WAIT;
        loop {
            self.inner.queued.fetch_add(1, Ordering::AcqRel);
            match self.inner.jobs.try_send(job) {
                Ok(()) => break,
                Err(std::sync::mpsc::TrySendError::Full(back)) => {
                    self.inner.queued.fetch_sub(1, Ordering::AcqRel);
                    if !self.room_by(deadline).await {
                        return Err(HashError::Overloaded);
                    }
                    job = back;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    self.inner.queued.fetch_sub(1, Ordering::AcqRel);
                    return Err(HashError::Failed("hash workers stopped".into()));
                }
            }
        }
        result
            .await
            .map_err(|_| HashError::Failed("a hashing job failed".into()))
    }

    /// Hash `password` into a PHC string (`$argon2id$v=19$m=...`).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let params = self.inner.params.clone();
        self.run(move || argon2::hash(&params, &password).map_err(HashError::Failed))
            .await?
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
        let dummy = Arc::clone(&self.inner.dummy);
        let dummy_checks = Arc::clone(&self.inner.dummy_checks);
        self.run(move || {
            let stored = stored.map(|s| StoredHash::parse(&s));
            let (matched, outdated) = match stored {
                Some(stored) if stored.is_verifiable() => {
                    (stored.verify(&password), stored.needs_rehash(&params))
                }
                // No account, or a hash nothing can verify (Django's
                // unusable `!...` passwords, algorithms latchkey does not
                // support, costs beyond the bounds): the same work as a
                // wrong password, on the dummy, and no match.
                _ => {
                    let _ = dummy.verify(&password);
                    dummy_checks.fetch_add(1, Ordering::Relaxed);
                    (false, false)
                }
            };
            let upgraded = if upgrade && matched && outdated {
                argon2::hash(&params, &password).ok()
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
            argon2::hash(&params, &password)
                .map(Ok)
                .map_err(HashError::Failed)
        })
        .await?
    }
}

/// A hashing thread: run jobs until every [`Hasher`] clone is gone.
fn worker(
    receiver: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>,
    queued: &AtomicUsize,
    busy: &AtomicUsize,
    freed: &tokio::sync::Notify,
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
                argon2::release_spare_memory();
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
        freed.notify_one();
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

#[cfg(test)]
mod tests;
