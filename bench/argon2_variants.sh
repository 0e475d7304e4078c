#!/usr/bin/env bash
# Argon2id at the five costs OWASP's Password Storage Cheat Sheet lists as
# equally strong (m=19456 KiB/t=2, its first, and m=47104/t=1, m=12288/t=3,
# m=9216/t=4, m=7168/t=5, latchkey's default), timed on this machine: one hash
# alone and with every core hashing at once (what a sign-in flood sees),
# medians of ROUNDS hashes, the sets interleaved over PASSES passes so the
# machine's drift falls on all of them alike. Prints a Markdown table.
#
#   bench/argon2_variants.sh                 # 3 passes of 21 hashes
#   ROUNDS=11 PASSES=1 bench/argon2_variants.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-21}"
PASSES="${PASSES:-3}"
CORES="$(nproc)"
if [ -z "${LATCHKEY_HASH_COST:-}" ]; then
  cargo build --release --example hash_cost
  LATCHKEY_HASH_COST="${CARGO_TARGET_DIR:-target}/release/examples/hash_cost"
fi
sets=("19456 2" "47104 1" "12288 3" "9216 4" "7168 5")
declare -A alone all
for pass in $(seq "$PASSES"); do
  for set in "${sets[@]}"; do
    read -r m t <<<"$set"
    alone[$set]+="$("$LATCHKEY_HASH_COST" "$ROUNDS" 1 "$m" "$t") "
    all[$set]+="$("$LATCHKEY_HASH_COST" "$ROUNDS" "$CORES" "$m" "$t") "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "Argon2id p=1 on $CORES cores, $PASSES passes × $ROUNDS hashes per set, $(date -u +%FT%TZ), uptime load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| m (KiB) | t | ms per hash alone | ms per hash, $CORES cores hashing | sign-ins/s the cores sustain | vs m=19456 t=2 |"
echo "|---|---|---|---|---|---|"
base=""
for set in "${sets[@]}"; do
  read -r m t <<<"$set"
  a="$(echo "${alone[$set]}" | median)"
  c="$(echo "${all[$set]}" | median)"
  [ -z "$base" ] && base="$c"
  awk -v m="$m" -v t="$t" -v a="$a" -v c="$c" -v n="$CORES" -v b="$base" \
    'BEGIN { printf "| %d | %d | %.2f | %.2f | %.1f | %+.1f%% |\n", m, t, a*1000, c*1000, n/c, (b/c-1)*100 }'
done
