#!/usr/bin/env bash
# latchkey against better-auth (bench/better-auth/), with wrk. Prints the
# tables docs/benchmarks.md's "better-auth" section shows.
#
#   bench/peers.sh                                  # 3 rounds of 10 s per row
#   BENCH_RUNS=1 BENCH_DURATION=3s bench/peers.sh   # a quick look
#   LATCHKEY_BIN=path/to/latchkey LATCHKEY_HASH_COST=path/to/hash_cost bench/peers.sh   # no build
#
# Needs: wrk (apt-get install -y wrk), python3, Node 20 and npm (the peer is
# installed once with `npm ci` from bench/better-auth/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
command -v node >/dev/null || { echo "Node 20 is required" >&2; exit 1; }
if [ -z "${LATCHKEY_BIN:-}" ]; then
  cargo build --release --bin latchkey --example hash_cost
fi
exec python3 bench/peers.py "$@"
