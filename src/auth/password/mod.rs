//! Passwords: the plaintext newtype (`plain`), the policy a new one must
//! satisfy (`policy`), every stored hash kind parsed into one type
//! (`stored`), the Argon2 primitive (`argon2`) and the bounded pool that
//! runs the CPU-bound work (`hasher`). `hasher → stored → argon2 → plain`,
//! never back.

mod argon2;
mod hasher;
mod plain;
mod policy;
mod stored;

pub use argon2::{Phc, MAX_ARGON2_WORK_KIB};
pub use hasher::{
    at_least_owasp, HashError, Hasher, Verified, DEFAULT_ITERATIONS, DEFAULT_MEMORY_KIB,
    OWASP_FLOOR,
};
pub use plain::Password;
pub use policy::{PasswordPolicy, MIN_LENGTH};
pub use stored::StoredHash;
