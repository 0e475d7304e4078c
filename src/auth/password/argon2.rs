//! The Argon2 primitive: hashing into latchkey's PHC strings, a parsed PHC
//! string that verifies in constant time, the work bounds every stored
//! Argon2 hash is held to, and the reuse of Argon2's working memory between
//! jobs. A leaf: it knows nothing of the pool that calls it.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use super::plain::Password;

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
pub(super) fn cost_out_of_bounds(m: u32, t: u32, p: u32) -> Option<String> {
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

/// An Argon2 PHC string (`$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>`, or
/// Django's older `argon2i`), parsed once: what a verification needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Phc {
    id: bool,
    versioned: bool,
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl std::fmt::Debug for Phc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variant = if self.id { "argon2id" } else { "argon2i" };
        write!(
            f,
            "Phc({variant}, m={}, t={}, p={})",
            self.m, self.t, self.p
        )
    }
}

impl Phc {
    /// Parse `phc`; `None` when it is not an Argon2id or Argon2i hash of
    /// version 0x13 with a salt and an output.
    pub fn parse(phc: &str) -> Option<Self> {
        let hash = PasswordHash::new(phc).ok()?;
        let id = match hash.algorithm.as_str() {
            "argon2id" => true,
            "argon2i" => false,
            _ => return None,
        };
        if hash.version.is_some_and(|v| v != 0x13) {
            return None;
        }
        let params = Params::try_from(&hash).ok()?;
        let mut salt = [0u8; 64];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?.to_vec();
        // Argon2 refuses salts under 8 bytes without computing anything: such
        // a hash is malformed, not one that verifies quickly.
        if salt.len() < 8 {
            return None;
        }
        let output = hash.hash?.as_bytes().to_vec();
        Some(Self {
            id,
            versioned: hash.version.is_some(),
            m: params.m_cost(),
            t: params.t_cost(),
            p: params.p_cost(),
            salt,
            hash: output,
        })
    }

    /// Why this hash asks for more work than latchkey spends, if it does.
    pub fn cost_out_of_bounds(&self) -> Option<String> {
        cost_out_of_bounds(self.m, self.t, self.p)
    }

    /// Whether `password` is the one hashed, computed with the parameters
    /// recorded and compared in constant time; `false` without computing
    /// anything when the cost is beyond the bounds. Runs on a hashing
    /// worker only.
    pub fn verify(&self, password: &Password) -> bool {
        if self.cost_out_of_bounds().is_some() {
            return false;
        }
        let Ok(params) = Params::new(self.m, self.t, self.p, Some(self.hash.len())) else {
            return false;
        };
        let algorithm = if self.id {
            Algorithm::Argon2id
        } else {
            Algorithm::Argon2i
        };
        let mut computed = vec![0u8; self.hash.len()];
        argon2_with(
            algorithm,
            &params,
            password.expose().as_bytes(),
            &self.salt,
            &mut computed,
        )
        .is_ok()
            && bool::from(computed.as_slice().ct_eq(&self.hash))
    }

    /// Whether this is Argon2id at exactly `params` (else a successful login
    /// rehashes it: the configured cost changed, or it is not latchkey's).
    pub fn is_at(&self, params: &Params) -> bool {
        self.id
            && self.versioned
            && self.m == params.m_cost()
            && self.t == params.t_cost()
            && self.p == params.p_cost()
            && Some(self.hash.len()) == params.output_len()
    }

    /// A hash with this one's variant and cost but a random salt and
    /// output: verifying any password against it costs what this one costs,
    /// and nothing matches.
    pub fn decoy(&self) -> Result<Self, getrandom::Error> {
        let random = |n: usize| -> Result<Vec<u8>, getrandom::Error> {
            let mut bytes = vec![0u8; n];
            getrandom::getrandom(&mut bytes)?;
            Ok(bytes)
        };
        Ok(Self {
            salt: random(self.salt.len().clamp(8, 64))?,
            hash: random(self.hash.len().clamp(4, 64))?,
            ..self.clone()
        })
    }

    /// The PHC string.
    pub fn encode(&self) -> String {
        let variant = if self.id { "argon2id" } else { "argon2i" };
        let version = if self.versioned { "$v=19" } else { "" };
        format!(
            "${variant}{version}$m={},t={},p={}${}${}",
            self.m,
            self.t,
            self.p,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(&self.hash)
        )
    }
}

/// Argon2id of `password` at `params` with a fresh random salt, as a PHC
/// string; the message when the OS RNG or Argon2 fails.
pub(super) fn hash(params: &Params, password: &Password) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let mut output = [0u8; 32];
    argon2_with(
        Algorithm::Argon2id,
        params,
        password.expose().as_bytes(),
        &salt,
        &mut output,
    )
    .map_err(|e| e.to_string())?;
    Ok(latchkey_phc(params, &salt, &output))
}

/// latchkey's PHC string for an Argon2id output at `params`.
pub(super) fn latchkey_phc(params: &Params, salt: &[u8], output: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    )
}

/// Argon2 working memory not in use, kept between jobs so a busy worker does
/// not allocate (and fault in) 19 MiB per hash; handed back to the OS by
/// [`release_spare_memory`] once the workers have been idle.
static SPARE: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

/// Most Argon2 memory a worker keeps between jobs, in 1 KiB blocks (64 MiB).
const MAX_KEPT_BLOCKS: usize = 64 * 1024;

/// Give the spare Argon2 buffers (those no job is using) back to the OS;
/// after a burst of hashing (buffers were released), also the free memory
/// the burst's requests left in the allocator's arenas.
pub(super) fn release_spare_memory() {
    let released = match SPARE.lock() {
        Ok(mut spare) => std::mem::take(&mut *spare).len(),
        Err(_) => 0,
    };
    if released > 0 {
        trim_allocator();
        tracing::debug!(buffers = released, "idle: password-hash memory released");
    }
}

/// glibc keeps freed memory in each thread's arena for reuse; a login
/// flood's thousands of requests leave megabytes there. `malloc_trim`
/// returns the free pages of every arena to the OS (once per burst, on a
/// hashing worker, off the async runtime).
fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no
    // preconditions and its result (whether anything was released) is
    // advisory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Make glibc serve allocations of a MiB or more with their own mappings,
/// returned to the OS when freed. By default it raises that threshold to
/// the size of the first large block freed, after which the next 19 MiB
/// Argon2 buffers come from a thread's arena, where freeing them never
/// lowers resident memory.
pub(super) fn large_allocations_unmap_on_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; any value is valid and
    // a failure leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s.to_owned())
    }

    #[test]
    fn a_parsed_hash_encodes_back_to_the_same_string() {
        let params = Params::new(8, 1, 1, Some(32)).unwrap();
        let phc = hash(&params, &pw("correct horse")).unwrap();
        let parsed = Phc::parse(&phc).unwrap();
        assert_eq!(parsed.encode(), phc);
        assert!(parsed.verify(&pw("correct horse")));
        assert!(!parsed.verify(&pw("correct horsf")));
        assert!(parsed.is_at(&params));
    }

    #[test]
    fn a_decoy_keeps_the_cost_and_matches_nothing() {
        let params = Params::new(8, 1, 1, Some(32)).unwrap();
        let phc = Phc::parse(&hash(&params, &pw("pw")).unwrap()).unwrap();
        let decoy = phc.decoy().unwrap();
        assert!(decoy.is_at(&params));
        assert_ne!(decoy, phc);
        assert!(!decoy.verify(&pw("pw")));
    }

    #[test]
    fn other_algorithms_and_versions_are_not_parsed() {
        for phc in [
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "$argon2id$v=16$m=8,t=1,p=1$c29tZXNhbHQ$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI",
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ",
            "not a hash",
        ] {
            assert!(Phc::parse(phc).is_none(), "{phc}");
        }
    }
}
