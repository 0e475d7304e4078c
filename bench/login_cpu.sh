#!/usr/bin/env bash
# Where a login's CPU goes: latchkey under the login load, per-thread CPU
# time against one hash with every core hashing (bench/login_cpu.py).
#   bench/login_cpu.sh                  # 3 runs of 10 s
#   BENCH_RUNS=5 bench/login_cpu.sh
# Needs: wrk (apt-get install -y wrk), python3, Linux (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --bin latchkey --example hash_cost
exec python3 bench/login_cpu.py "$@"
