#!/usr/bin/env bash
# Side-by-side benchmark: latchkey (release build) against the Django
# reference and a bare axum endpoint, with wrk. Prints one table.
#
#   bench/run.sh                 # 3 runs of 10 s per row, medians
#   BENCH_RUNS=1 BENCH_DURATION=3s bench/run.sh   # a quick look
#
# Needs: wrk (apt-get install -y wrk), python3, and network access to PyPI
# once, for the Django reference's venv.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --bin latchkey --example ceiling --example hash_cost
exec python3 bench/run.py "$@"
