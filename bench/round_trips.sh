#!/usr/bin/env bash
# Database round trips per endpoint on PostgreSQL (a counting proxy) and
# statements per endpoint on SQLite (sqlx's statement log).
#   bench/round_trips.sh            # LATCHKEY_BIN=... to skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LATCHKEY_BIN:-}" ]; then
  cargo build --release --bin latchkey
fi
exec python3 bench/round_trips.py "$@"
