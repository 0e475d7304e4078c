#!/usr/bin/env bash
# Schema-driven fuzzing: validate /openapi.json as OpenAPI 3.1, then let
# schemathesis (from PyPI) generate requests from it against a real server
# and check that nothing answers 500 and every answer matches the document
# (status codes, content types, headers, bodies).
#
#   scripts/api-fuzz.sh            # builds the debug binary if needed
#
# Env: LATCHKEY_BIN (a prebuilt binary), FUZZ_MAX_EXAMPLES (default 100),
# FUZZ_VENV (default target/fuzz-venv, reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FUZZ_VENV:-target/fuzz-venv}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-100}"
BIN="${LATCHKEY_BIN:-target/debug/latchkey}"

if [ ! -x "$VENV/bin/schemathesis" ] || [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'schemathesis>=4,<5' 'openapi-spec-validator>=0.7,<1'
fi
if [ -z "${LATCHKEY_BIN:-}" ]; then
  cargo build -q --bin latchkey
fi

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# Every fuzzed registration comes from 127.0.0.1: lift the per-address
# registration limit (it has tests of its own) so the fuzzer is not reduced
# to exploring 429s.
LATCHKEY_BIND="127.0.0.1:$PORT" LATCHKEY_DATABASE_URL="sqlite://$WORK/fuzz.db" \
  LATCHKEY_MAIL_DIR="$WORK/mail" LATCHKEY_REGISTRATIONS_PER_ADDRESS=1000000 LATCHKEY_LOG=warn "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do
  curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done

echo "==> /openapi.json validates as OpenAPI 3.1"
curl -fs "$BASE/openapi.json" >"$WORK/openapi.json"
"$VENV/bin/python" - "$WORK/openapi.json" <<'PY'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
doc = json.load(open(sys.argv[1]))
assert doc["openapi"].startswith("3.1"), doc["openapi"]
validate(doc, cls=OpenAPIV31SpecValidator)
print(f"valid: {len(doc['paths'])} paths")
PY

# Credentials for the fuzzer: a CSRF token (header only, no cookie) and an
# access token of a registered user, so authenticated paths are reached.
CSRF="$(curl -fs "$BASE/auth/csrf" | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["csrfToken"])')"
ACCESS="$(curl -fs -X POST "$BASE/auth/register" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
  -d '{"name":"fuzzer","email":"fuzzer@example.com","password":"Fuzzy-Lantern-Cobalt-88"}' |
  "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["tokens"]["access"])')"

echo "==> schemathesis against $BASE"
# Checks: no 500, and every response conforms to the document. Not run:
# positive_data_acceptance / negative_data_rejection (the schema cannot say
# which emails are taken or which passwords are too weak), and the stateful
# checks that assume REST resources (use_after_free, ensure_resource_availability,
# ignored_auth: the fuzzer's own generated logouts end its session).
"$VENV/bin/schemathesis" run "$BASE/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance \
  --phases examples,coverage,fuzzing \
  -H "X-CSRF-Token: $CSRF" \
  -H "Authorization: Bearer $ACCESS" \
  --max-examples "$MAX_EXAMPLES" \
  --workers 2 \
  --suppress-health-check all \
  --exclude-path-regex '^/docs' \
  --warnings off
if grep -q '"level":"ERROR"\|ERROR' "$WORK/server.log"; then
  echo "server logged errors:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
echo "==> API fuzz passed"
