#!/usr/bin/env bash
# Signing and verification cost per JWT algorithm: instructions per request
# under valgrind's callgrind for GET /auth/me and POST /auth/token/verify/
# (one verification each), POST /auth/token/refresh/ (a verification and
# two signatures, plus the rotation's writes) and POST /auth/login (two
# signatures beside Argon2id), with LATCHKEY_JWT_ALGORITHM = HS256, EdDSA,
# ES256 and RS256 in turn. docs/benchmarks.md records the figures.
#
#   bench/callgrind-algorithms.sh                 # 1,000 requests per row, 10 logins
#   CG_REQUESTS=200 CG_LOGINS=4 bench/callgrind-algorithms.sh
#
# Needs valgrind (apt-get install -y valgrind) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is required: apt-get install -y valgrind" >&2; exit 1; }
# The same build as bench/callgrind.sh (the example unifies the features).
cargo build -q --release --bin latchkey --example ceiling
N="${CG_REQUESTS:-1000}"
LOGINS="${CG_LOGINS:-10}"
W="$(mktemp -d)"
VG=""
trap '[ -n "$VG" ] && kill $VG 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
cat >"$W/measure.py" <<'PY'
import http.client, json, os, subprocess, sys, time, glob
port, n, logins, pid, w, alg = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
for _ in range(900):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30); c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
def call(method, path, body=None, headers={}):
    h = dict(headers)
    if body is not None:
        body = json.dumps(body); h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse(); data = r.read()
    return r.status, data
_, data = call("GET", "/auth/csrf/")
csrf = {"X-CSRFToken": json.loads(data)["csrfToken"]}
creds = {"email": "cg@example.com", "password": "Callgrind-Otter-Kite-17"}
_, data = call("POST", "/auth/register", dict(creds, name="cg"), csrf)
tokens = json.loads(data)["tokens"]
auth = {"Authorization": "Bearer " + tokens["access"]}
state = {"refresh": tokens["refresh"]}
def refresh():
    status, data = call("POST", "/auth/token/refresh/", {"refresh": state["refresh"]}, csrf)
    state["refresh"] = json.loads(data)["refresh"]
    return status, data
rows = [
    ("GET /auth/me", n, lambda: call("GET", "/auth/me", headers=auth)),
    ("POST /auth/token/verify/", n, lambda: call("POST", "/auth/token/verify/", {"token": tokens["access"]}, csrf)),
    ("POST /auth/token/refresh/", n, refresh),
    ("POST /auth/login", logins, lambda: call("POST", "/auth/login", creds, csrf)),
]
def total():
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
    time.sleep(0.5)
    s = 0
    for f in glob.glob(os.path.join(w, "cg.out*")):
        for line in open(f):
            if line.startswith("totals:"):
                s += int(line.split()[1]); break
        os.remove(f)
    return s
for name, count, fn in rows:
    for _ in range(min(count, 20)):
        status, _ = fn(); assert status == 200, (name, status)
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    for _ in range(count):
        fn()
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
    print(f"{alg:6} {name:28} {total() / count:>16,.0f}", flush=True)
PY
printf '%-6s %-28s %16s\n' "alg" "endpoint" "instructions/req"
for ALG in HS256 EdDSA ES256 RS256; do
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  rm -f "$W"/cg.db* "$W"/cg.out*
  LATCHKEY_BIND="127.0.0.1:$PORT" LATCHKEY_DATABASE_URL="sqlite://$W/cg.db" LATCHKEY_JWT_ALGORITHM="$ALG" \
    LATCHKEY_REGISTRATIONS_PER_ADDRESS=1000000 LATCHKEY_REFRESH_REUSE_GRACE_SECONDS=0 \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.out" \
    target/release/latchkey serve >"$W/server-$ALG.log" 2>&1 &
  VG=$!
  python3 "$W/measure.py" "$PORT" "$N" "$LOGINS" "$VG" "$W" "$ALG"
  kill $VG; wait $VG 2>/dev/null || true
  VG=""
done
