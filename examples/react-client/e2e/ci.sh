#!/usr/bin/env bash
# CI's way into the React example's end-to-end test (called by .ci/run):
# installs Debian's Chromium when missing, then runs `npm run e2e`, which
# installs the npm packages, builds latchkey and starts both servers itself.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
npm run e2e
# The refresh token in an HttpOnly cookie (LATCHKEY_REFRESH_COOKIE=true).
npm run e2e:cookie
