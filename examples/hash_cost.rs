//! Time one Argon2id hash at latchkey's parameters, the unit of the login
//! target: the machine's limit is cores ÷ this time. `bench/run.sh` runs it.
//!
//!     cargo run --release --example hash_cost [-- ROUNDS [THREADS [M_KIB T]]]
//!
//! With THREADS > 1, that many threads hash at once (each with its own
//! memory) and the time is the median over all their hashes: what one hash
//! costs when every core is hashing, which is what a login flood sees.
//! M_KIB and T set other Argon2id parameters than latchkey's (m=7168, t=5;
//! `bench/argon2_variants.sh` times OWASP's equivalents).

use std::time::Instant;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use latchkey::auth::password::{DEFAULT_ITERATIONS, DEFAULT_MEMORY_KIB};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(21);
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let memory_kib: u32 = args
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(DEFAULT_MEMORY_KIB);
    let iterations: u32 = args
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let mut times: Vec<f64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| s.spawn(move || time_hashes(rounds, memory_kib, iterations)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    times.sort_by(f64::total_cmp);
    // Median seconds per hash, for the script to read.
    println!(
        "{:.6}",
        times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
    );
}

fn time_hashes(rounds: usize, memory_kib: u32, iterations: u32) -> Vec<f64> {
    let params = Params::new(memory_kib, iterations, 1, Some(32)).unwrap_or_default();
    // Memory allocated once, as latchkey's hashing workers do: the time is
    // the hash itself, the best any server can do per core.
    let mut blocks = vec![Block::default(); params.block_count()];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = [0u8; 32];
    (0..rounds)
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
        .collect()
}
