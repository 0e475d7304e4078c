#!/usr/bin/env bash
# Instructions per request, per endpoint, under valgrind's callgrind: a
# measure that does not depend on what else the machine is doing (unlike
# requests per second on a shared 2-core box). Used to see what a change
# costs on the cheap paths.
#
#   bench/callgrind.sh              # 2,000 requests per endpoint
#   CG_REQUESTS=500 bench/callgrind.sh
#
# The last rows are the bare axum JSON endpoint of the throughput benchmark
# (examples/ceiling.rs): the floor any axum server pays per request; and the
# same endpoint behind tower-http's layers wrapped once around the router
# (examples/edge_tower_http.rs), the idiomatic alternative to latchkey's
# hand-written edge service.
#
# Needs valgrind (apt-get install -y valgrind) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is required: apt-get install -y valgrind" >&2; exit 1; }
cargo build -q --release --bin latchkey --example ceiling --example edge_tower_http
N="${CG_REQUESTS:-2000}"
W="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LATCHKEY_BIND="127.0.0.1:$PORT" LATCHKEY_DATABASE_URL="sqlite://$W/cg.db" LATCHKEY_REGISTRATIONS_PER_ADDRESS=1000000 \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.out" \
  target/release/latchkey serve >"$W/server.log" 2>&1 &
VG=$!
trap 'kill $VG 2>/dev/null || true; wait $VG 2>/dev/null || true; rm -rf "$W"' EXIT
cat >"$W/measure.py" <<'PY'
import http.client, json, os, subprocess, sys, time, glob
port, n, pid, w, target = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
probe = "/" if target in ("ceiling", "tower-http") else "/healthz"
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30); c.request("GET", probe); c.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def call(method, path, body=None, headers={}):
    h = dict(headers)
    if body is not None:
        body = json.dumps(body); h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse(); data = r.read()
    return r.status, data
if target == "ceiling":
    rows = [("bare axum JSON (ceiling)", lambda: call("GET", "/"))]
elif target == "tower-http":
    rows = [("ceiling + tower-http edge", lambda: call("GET", "/"))]
else:
  _, data = call("GET", "/auth/csrf/")
  csrf = json.loads(data)["csrfToken"]
  _, data = call("POST", "/auth/register", {"name": "cg", "email": "cg@example.com", "password": "Callgrind-Otter-Kite-17"}, {"X-CSRFToken": csrf})
  tokens = json.loads(data)["tokens"]
  auth = {"Authorization": "Bearer " + tokens["access"]}
  rows = [
    ("GET /healthz", lambda: call("GET", "/healthz")),
    ("GET /auth/csrf/", lambda: call("GET", "/auth/csrf/")),
    ("GET /auth/me", lambda: call("GET", "/auth/me", headers=auth)),
    ("POST /auth/token/verify/", lambda: call("POST", "/auth/token/verify/", {"token": tokens["access"]}, {"X-CSRFToken": csrf})),
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
if target == "latchkey":
    print(f"{'endpoint':28} {'instructions/request':>22}")
for name, fn in rows:
    for _ in range(50):
        status, _ = fn(); assert status == 200, (name, status)
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    for _ in range(n):
        fn()
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
    print(f"{name:28} {total() / n:>22,.0f}")
PY
python3 "$W/measure.py" "$PORT" "$N" "$VG" "$W" latchkey
kill $VG; wait $VG 2>/dev/null || true
rm -f "$W"/cg.out*
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.out" \
  target/release/examples/ceiling "127.0.0.1:$PORT" >"$W/ceiling.log" 2>&1 &
VG=$!
python3 "$W/measure.py" "$PORT" "$N" "$VG" "$W" ceiling
kill $VG; wait $VG 2>/dev/null || true
rm -f "$W"/cg.out*
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.out" \
  target/release/examples/edge_tower_http "127.0.0.1:$PORT" >"$W/tower-http.log" 2>&1 &
VG=$!
python3 "$W/measure.py" "$PORT" "$N" "$VG" "$W" tower-http
