#!/usr/bin/env bash
# CI's way into the browser tests (called by .ci/run): installs Debian's
# Chromium when missing, builds latchkey in release mode once, then runs
# latchkey-client's checks (clients/js/ci.sh), the seed-style page's e2e
# (`npm run e2e`), the SDK page's multi-tab e2e (`npm run e2e:sdk`, and in the
# SDK's cookie mode `npm run e2e:sdk:cookie`), the two-factor e2e
# (`npm run e2e:mfa`), the account pages' e2e through a real SMTP server
# (`npm run e2e:account`, aiosmtpd from tests/smtp) and the passkeys e2e
# (`npm run e2e:passkeys`, a DevTools virtual authenticator), all
# on that one binary. The npm scripts install their packages themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(cd ../.. && pwd)"
command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
if [ -z "${LATCHKEY_BIN:-}" ]; then
  (cd "$repo" && cargo build --release --bin latchkey)
  export LATCHKEY_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/latchkey"
fi
"$repo/clients/js/ci.sh"
npm run e2e
# The refresh token in an HttpOnly cookie (LATCHKEY_REFRESH_COOKIE=true).
npm run e2e:cookie
npm run e2e:sdk
npm run e2e:sdk:cookie
npm run e2e:mfa
npm run e2e:account
npm run e2e:passkeys
