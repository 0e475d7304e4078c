#!/usr/bin/env bash
# Cost as the data grows: fills SQLite and PostgreSQL databases with N users
# (bulk SQL), runs the standard rows against each, times flush-expired under
# load, measures bytes per user, prints the query plans and draws a plot.
#
#   bench/scale.sh                                        # 10^3, 10^5, 10^6 on both backends
#   BENCH_SIZES=1000,100000 BENCH_BACKENDS=sqlite bench/scale.sh   # a quick look
#   LATCHKEY_BIN=path/to/latchkey bench/scale.sh          # skip the build
#
# Needs: python3, psql and PostgreSQL (BENCH_PG, default
# postgres://postgres@127.0.0.1:5432) for the PostgreSQL rows, and PyPI
# once for matplotlib (bench/.venv-plot). Results: docs/bench-scale.{json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LATCHKEY_BIN:-}" ]; then
  cargo build --release --bin latchkey
fi
exec python3 bench/scale.py "$@"
