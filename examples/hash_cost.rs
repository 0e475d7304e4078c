//! Time one Argon2id hash at latchkey's parameters, the unit of the login
//! target: the machine's limit is cores ÷ this time. `bench/run.sh` runs it.
//!
//!     cargo run --release --example hash_cost [-- ROUNDS]

use std::time::Instant;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use latchkey::auth::password::{MIN_ITERATIONS, MIN_MEMORY_KIB};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(21);
    let params = Params::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1, Some(32)).unwrap_or_default();
    // Memory allocated once, as latchkey's hashing workers do: the time is
    // the hash itself, the best any server can do per core.
    let mut blocks = vec![Block::default(); params.block_count()];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = [0u8; 32];
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let _ = argon2.hash_password_into_with_memory(
                b"Tr1cky-Lantern-Owl",
                b"benchmark-salt-1",
                &mut out,
                &mut blocks,
            );
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    // Median seconds per hash, for the script to read.
    println!("{:.6}", times[times.len() / 2]);
}
