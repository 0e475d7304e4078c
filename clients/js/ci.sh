#!/usr/bin/env bash
# latchkey-client's checks (called by examples/react-client/e2e/ci.sh, after
# its one release build of latchkey): install from the lockfile, type-check,
# unit tests, build, the generated types against the document latchkey
# serves, and the client against a real latchkey. Needs LATCHKEY_BIN.
set -euo pipefail
cd "$(dirname "$0")"
: "${LATCHKEY_BIN:?set LATCHKEY_BIN to a latchkey binary (the e2e script builds one)}"
step() { printf '\n==> clients/js: %s\n' "$*"; }
step "npm ci"
npm ci --no-audit --no-fund
step "type-check (tsc --noEmit)"
npm run typecheck
step "unit tests (vitest)"
npm test
step "build (tsc)"
npm run build
step "src/openapi.ts matches the served OpenAPI document"
npm run openapi -- --check
step "the client against a real latchkey (vitest, test-server/)"
npm run test:server
