#!/usr/bin/env python3
"""latchkey against better-auth (bench/better-auth/), called by bench/peers.sh.

Both servers run side by side on this machine, each on a fresh SQLite file;
every row loads each of them once per round, the order reversed every other
round (`run.rounds`), and a ratio is the median of the per-round ratios
(as `run.paired`, a zero rate giving ∞). better-auth runs once for the whole benchmark; latchkey is
started once per configuration (LATCHKEY_JWT_ALGORITHM HS256, EdDSA, ES256,
and HS256 with LATCHKEY_REFRESH_COOKIE=true), on a fresh database each time.
Standard library only; the helpers come from bench/run.py.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: wrk, rounds, paired, summarize, Server, ...)

BENCH = run.BENCH
PEER = os.path.join(BENCH, "better-auth")
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(run.ROOT, "target")
LATCHKEY = os.environ.get("LATCHKEY_BIN") or os.path.join(TARGET, "release", "latchkey")
HASH_COST = os.environ.get("LATCHKEY_HASH_COST") or os.path.join(TARGET, "release", "examples", "hash_cost")
RUNS, DURATION, THREADS, USERS, PASSWORD = run.RUNS, run.DURATION, run.THREADS, run.USERS, run.PASSWORD
FLOOD_CONNECTIONS = 64


def seconds(duration):
    m = re.fullmatch(r"(\d+)(s|m|h)?", duration)
    if not m:
        sys.exit(f"BENCH_DURATION: not a wrk duration: {duration}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


# Sign-in runs (and the flood) last at least 10 s, even in the quick mode: a
# better-auth sign-in under 32 waiting connections takes seconds on a busy
# machine, and a 3 s run would count none of them.
SIGNIN_DURATION = f"{max(seconds(DURATION), 10)}s"
# Hashes per timing (median): each sign-in run is bracketed by two timings.
HASH_ROUNDS = os.environ.get("BENCH_HASH_ROUNDS", "21")
run.PORTS.update({"latchkey": 8411, "better-auth": 8412})

_wrk = run.wrk


def safe_wrk(*args, **kwargs):
    """run.wrk, but a run that got no answer at all (wrk prints no latency
    lines) counts as 0 req/s with an error instead of stopping the bench."""
    try:
        r = _wrk(*args, **kwargs)
        if r["errors"]:
            print(f"errors in a run ({args or kwargs.get('url')}):\n{r['raw']}", file=sys.stderr)
        return r
    except AttributeError:
        return {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 1, "raw": ""}


run.wrk = safe_wrk  # run.rounds calls it through the module

CONFIGS = [
    ("HS256", {"LATCHKEY_JWT_ALGORITHM": "HS256"}),
    ("EdDSA", {"LATCHKEY_JWT_ALGORITHM": "EdDSA"}),
    ("ES256", {"LATCHKEY_JWT_ALGORITHM": "ES256"}),
    ("HS256 + refresh cookie", {"LATCHKEY_JWT_ALGORITHM": "HS256", "LATCHKEY_REFRESH_COOKIE": "true"}),
]
# BENCH_CONFIGS="EdDSA,ES256" runs only those (names as above).
if only := os.environ.get("BENCH_CONFIGS"):
    CONFIGS = [c for c in CONFIGS if c[0] in only.split(",")]
FLOORS = {"session": 50.0, "memory": 0.25, "flood_p99": 0.25}


def post(url, body, headers=None, tries=10):
    """POST JSON; (status, parsed body, the response's Set-Cookie values).
    A 503 (latchkey's hashing queue full, or its database pool timing out
    on a starved machine) is retried after its Retry-After, up to `tries`."""
    for _ in range(tries - 1):
        status, parsed, cookies = post_once(url, body, headers)
        if status != 503:
            return status, parsed, cookies
        time.sleep(1)
    return post_once(url, body, headers)


def post_once(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}"), r.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), e.headers.get_all("Set-Cookie") or []


def cookie_value(set_cookies, name):
    for value in set_cookies:
        if m := re.match(rf"{re.escape(name)}=([^;]*)", value):
            return m.group(1)
    return None


# --- better-auth ----------------------------------------------------------

def install_peer():
    """`npm ci` from the committed lock file, once: nothing downloads later."""
    stamp = os.path.join(PEER, "node_modules", ".package-lock.json")
    lock = os.path.join(PEER, "package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)


def start_peer(workdir):
    env = {"NODE_ENV": "production", "PORT": str(run.PORTS["better-auth"]),
           "BETTER_AUTH_DB": os.path.join(workdir, "better-auth.db"), "BETTER_AUTH_TELEMETRY": "0"}
    peer = LoggedServer("better-auth", ["node", os.path.join(PEER, "server.mjs")], env, cwd=PEER,
                        log=log_file("better-auth"))
    run.wait_up(peer.base + "/api/auth/ok")
    return peer


def prepare_peer(base):
    """Sign up USERS accounts ba0..; return the first one's session cookie."""
    cookie = None
    for i in range(USERS):
        status, body, set_cookies = post(f"{base}/api/auth/sign-up/email",
                                         {"name": f"ba{i}", "email": f"ba{i}@example.com", "password": PASSWORD})
        if status != 200:
            sys.exit(f"better-auth sign-up failed: {status} {body}")
        token = cookie_value(set_cookies, "better-auth.session_token")
        cookie = cookie or f"better-auth.session_token={token}"
    # get-session answers 200 with `null` for a cookie it does not know, so
    # a wrong cookie would not show as errors: check it once here.
    req = urllib.request.Request(f"{base}/api/auth/get-session", headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=60) as r:
        session = json.loads(r.read() or b"null")
    if not session or session.get("user", {}).get("email") != "ba0@example.com":
        sys.exit(f"better-auth get-session does not know the sign-up's cookie: {session}")
    return cookie


def peer_hash_seconds(concurrent=1):
    out = subprocess.run(["node", os.path.join(PEER, "hash_cost.mjs"), HASH_ROUNDS, str(concurrent)],
                         capture_output=True, text=True, cwd=PEER, check=True).stdout
    return float(out.strip())


# --- latchkey -------------------------------------------------------------

class LoggedServer(run.Server):
    """run.Server with stderr kept in a file (BENCH_LOGS, a directory), to
    find out why a run failed."""

    def __init__(self, name, cmd, env=None, cwd=None, log=None):
        if not log:
            super().__init__(name, cmd, env, cwd)
            return
        self.name = name
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd, stdout=f, stderr=f,
                                         start_new_session=True)
        self.base = f"http://127.0.0.1:{run.PORTS[name]}"


def log_file(name):
    logs = os.environ.get("BENCH_LOGS")
    if not logs:
        return None
    os.makedirs(logs, exist_ok=True)
    return os.path.join(logs, re.sub(r"[^A-Za-z0-9]+", "-", name) + ".log")


def start_latchkey(workdir, name, env):
    db = os.path.join(workdir, f"latchkey-{re.sub(r'[^A-Za-z0-9]+', '-', name)}.db")
    lk_env = {"LATCHKEY_DATABASE_URL": f"sqlite://{db}", "LATCHKEY_BIND": f"127.0.0.1:{run.PORTS['latchkey']}",
              # The benchmark's users all register from 127.0.0.1.
              "LATCHKEY_REGISTRATIONS_PER_ADDRESS": "100000000", **env}
    lk = LoggedServer("latchkey", [LATCHKEY, "serve"], lk_env, log=log_file(f"latchkey-{name}"))
    run.wait_up(lk.base + "/healthz")
    return lk


def prepare_latchkey(base, cookie_mode):
    """Register USERS accounts lk0..; return the CSRF token and an access token."""
    csrf = run.http("GET", f"{base}/auth/csrf/")[1]["csrfToken"]
    access = None
    for i in range(USERS):
        status, body, _ = post(f"{base}/auth/register",
                               {"name": f"lk{i}", "email": f"lk{i}@example.com", "password": PASSWORD},
                               {"X-CSRFToken": csrf})
        if status != 201:
            sys.exit(f"latchkey register failed: {status} {body}")
        access = access or body["tokens"]["access"]
    return csrf, access


def fresh_refresh_tokens(base, csrf, cookie_mode, path):
    """One login per account: USERS new sessions, their refresh tokens written
    to `path` (a rotation uses each once, so every run needs new chains)."""
    tokens = []
    for i in range(USERS):
        status, body, set_cookies = post(f"{base}/auth/login", {"email": f"lk{i}@example.com", "password": PASSWORD},
                                         {"X-CSRFToken": csrf})
        if status != 200:
            sys.exit(f"latchkey login failed: {status} {body}")
        token = cookie_value(set_cookies, "latchkey_refresh") if cookie_mode else body["tokens"]["refresh"]
        if not token:
            sys.exit("latchkey login returned no refresh token")
        tokens.append(token)
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")


# --- rows -----------------------------------------------------------------

def rounds_prepared(targets, servers):
    """`run.rounds`, but each target is a function called just before its run
    (to make what the run consumes) and returning wrk's arguments, and each
    run is followed by waiting for its server to go idle."""
    runs = {name: [] for name in targets}
    order = list(targets)
    for i in range(RUNS):
        for name in order if i % 2 == 0 else order[::-1]:
            runs[name].append(run.wrk(**targets[name]()))
            wait_idle(servers[name])
    return runs


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
        except (FileNotFoundError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(server, limit=120):
    """Wait until `server` has used under 5% of a core for half a second: a
    sign-in keeps hashing after wrk hangs up, and a queue of them would
    spill into the next run (better-auth's drain at a few per second)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        before = cpu_seconds(server.pids())
        time.sleep(0.5)
        if cpu_seconds(server.pids()) - before < 0.025:
            return
    print(f"warning: {server.name} still busy after {limit} s", file=sys.stderr)


def pair(runs):
    ratios = [a["rps"] / b["rps"] if b["rps"] > 0 else float("inf")
              for a, b in zip(runs["latchkey"], runs["better-auth"])]
    return {"latchkey": run.summarize(runs["latchkey"]), "better-auth": run.summarize(runs["better-auth"]),
            "ratio": statistics.median(ratios)}


def session_row(lk, peer, s):
    return pair(run.rounds({
        "latchkey": {"url": f"{lk.base}/auth/me", "script": "get_bearer.lua", "env": {"BENCH_TOKEN": s["access"]}},
        "better-auth": {"url": f"{peer.base}/api/auth/get-session", "script": "get_cookie.lua",
                        "env": {"BENCH_COOKIE": s["cookie"]}},
    }))


def mint_row(lk, peer, s, workdir, cookie_mode):
    tokens = os.path.join(workdir, "refresh-tokens.txt")

    def latchkey():
        fresh_refresh_tokens(lk.base, s["csrf"], cookie_mode, tokens)
        return {"url": f"{lk.base}/auth/token/refresh/",
                "script": "refresh_cookie.lua" if cookie_mode else "refresh.lua",
                "env": {"BENCH_CSRF": s["csrf"], "BENCH_TOKENS": tokens, "BENCH_THREADS": str(THREADS)}}

    def better_auth():
        return {"url": f"{peer.base}/api/auth/token", "script": "get_cookie.lua", "env": {"BENCH_COOKIE": s["cookie"]}}

    return pair(rounds_prepared({"latchkey": latchkey, "better-auth": better_auth},
                                {"latchkey": lk, "better-auth": peer}))


def signin_targets(lk, peer, s):
    return {
        "latchkey": {"BENCH_PATH": "/auth/login", "BENCH_PREFIX": "lk", "BENCH_CSRF": s["csrf"], "url": lk.base},
        "better-auth": {"BENCH_PATH": "/api/auth/sign-in/email", "BENCH_PREFIX": "ba", "BENCH_CSRF": "",
                        "url": peer.base},
    }


def signin_row(lk, peer, s, cores):
    """Sign-in in rounds, each run bracketed by timings of one hash on its own
    side (just before and just after, averaged): share = rate × hash time ÷
    cores, the fraction of its own hash-bound limit it reaches."""
    hashers = {"latchkey": lambda: run_hash(HASH_COST), "better-auth": peer_hash_seconds}
    runs = {name: [] for name in hashers}
    hashes = {name: [] for name in hashers}
    order = list(hashers)
    targets = signin_targets(lk, peer, s)
    servers = {"latchkey": lk, "better-auth": peer}
    for i in range(RUNS):
        for name in order if i % 2 == 0 else order[::-1]:
            t = targets[name]
            before = hashers[name]()
            runs[name].append(run.wrk(t["url"] + t["BENCH_PATH"], "signin.lua", timeout="60s",
                                      duration=SIGNIN_DURATION,
                                      env={**{k: v for k, v in t.items() if k != "url"}, "BENCH_USERS": str(USERS)}))
            wait_idle(servers[name])
            after = hashers[name]()
            hashes[name].append(statistics.mean([before, after]))
    row = pair(runs)
    for name in order:
        row[name]["hash_ms"] = statistics.median(hashes[name]) * 1000
        row[name]["share"] = statistics.median(r["rps"] * h / cores for r, h in zip(runs[name], hashes[name]))
    return row


def run_hash(binary):
    out = subprocess.run([binary, HASH_ROUNDS, "1"], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def signup_row(lk, peer, s):
    stamp = int(time.time())
    count = iter(range(1_000_000))

    def target(base, path, csrf):
        def make():
            return {"url": base + path, "script": "signup.lua",
                    "env": {"BENCH_PATH": path, "BENCH_PREFIX": f"up{stamp}x{next(count)}", "BENCH_CSRF": csrf}}
        return make

    return pair(rounds_prepared({"latchkey": target(lk.base, "/auth/register", s["csrf"]),
                                 "better-auth": target(peer.base, "/api/auth/sign-up/email", "")},
                                {"latchkey": lk, "better-auth": peer}))


def flood(base, t, server):
    """FLOOD_CONNECTIONS connections of sign-ins for DURATION, one wrk thread
    per connection (bench/flood.lua times each answer by status)."""
    cmd = ["wrk", "-t", str(FLOOD_CONNECTIONS), "-c", str(FLOOD_CONNECTIONS), "-d", SIGNIN_DURATION, "--timeout", "60s",
           "-s", os.path.join(BENCH, "flood.lua"), base + t["BENCH_PATH"]]
    env = {**os.environ, **{k: v for k, v in t.items() if k != "url"}, "BENCH_USERS": str(USERS)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
    wait_idle(server)
    m = re.search(r"FLOOD ok=(\d+) p50=([-\d.]+) p99=([-\d.]+) rejected=(\d+) other=(\d+) pending=(\d+)", out)
    if not m:
        # wrk stops at once when it cannot connect (the server is gone).
        print(f"flood on {base}: no summary from wrk (reported as 0 sign-ins):\n{out}", file=sys.stderr)
        return {"ok": 0, "p50": float("nan"), "p99": float("nan"), "rejected": 0, "other": 0, "pending": 0,
                "socket_errors": 1}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"ok": int(m.group(1)), "p50": float(m.group(2)), "p99": float(m.group(3)),
            "rejected": int(m.group(4)), "other": int(m.group(5)), "pending": int(m.group(6)),
            "socket_errors": sum(map(int, sock.groups())) if sock else 0}


def flood_row(lk, peer, s):
    """One flood on each, latchkey first; then (the sign-ins drained, idle
    3 s) the resident memory of both."""
    targets = signin_targets(lk, peer, s)
    row = {}
    servers = {"latchkey": lk, "better-auth": peer}
    for name in ("latchkey", "better-auth"):
        # Queued sign-ins finish after wrk hangs up: `flood` waits for them.
        row[name] = flood(targets[name]["url"], targets[name], servers[name])
    time.sleep(3)
    row["rss"] = {"latchkey": run.rss_kib(lk.pids()), "better-auth": run.rss_kib(peer.pids())}
    row["peak"] = {"latchkey": run.rss_kib(lk.pids(), "VmHWM:"), "better-auth": run.rss_kib(peer.pids(), "VmHWM:")}
    return row


# --- report ---------------------------------------------------------------

def met(ok):
    return "met" if ok else "**NOT met**"


def fmt(r):
    return f"{r['rps']:,.1f}" if r["rps"] < 100 else f"{r['rps']:,.0f}"


def report(results, cores, hash_alone):
    print()
    print(f"runs per row: {RUNS} × {DURATION} (sign-in {SIGNIN_DURATION}), wrk -t{THREADS} -c{run.CONNECTIONS}, latchkey and better-auth "
          f"alternating in each round; rates are medians of runs, ratios medians of per-round ratios; "
          f"{cores} cores; `uptime` before: {results['load_before']}, after: {results['load_after']}")
    print(f"password hash alone (median of {HASH_ROUNDS}, timed before and after every sign-in run): latchkey Argon2id "
          f"m=7168 t=5 p=1 {hash_alone['latchkey'] * 1000:.1f} ms; better-auth scrypt N=16384 r=16 p=1 "
          f"{hash_alone['better-auth'] * 1000:.1f} ms (at start)")
    print()
    print("| row | latchkey config | latchkey req/s | p99 ms | errors | better-auth req/s | p99 ms | errors | ratio "
          "| floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for config, rows in results["configs"].items():
        for row, r in rows.items():
            if row == "flood":
                continue
            lk, ba = r["latchkey"], r["better-auth"]
            floor = ""
            if row.startswith("session check"):
                ok = r["ratio"] >= FLOORS["session"] and lk["errors"] == 0 and ba["errors"] == 0
                floor = f"≥ 50×: {met(ok)}"
            elif row.startswith("sign-in"):
                floor = (f"share of own hash-bound limit (rate × hash ÷ cores): latchkey {lk['share']:.0%} "
                         f"({lk['hash_ms']:.1f} ms/hash), better-auth {ba['share']:.0%} ({ba['hash_ms']:.1f} ms/hash)")
            elif row.startswith("token mint"):
                floor = "latchkey's is a write (rotation), better-auth's a read + sign"
            print(f"| {row} | {config} | {fmt(lk)} | {lk['p99']:.2f} | {lk['errors']} | {fmt(ba)} | {ba['p99']:.2f} "
                  f"| {ba['errors']} | {r['ratio']:.1f}× | {floor} |")
    print()
    print(f"sign-in flood ({FLOOD_CONNECTIONS} connections × {SIGNIN_DURATION} on each, one wrk thread per connection; p50/p99 "
          f"over the 2xx answers and the sign-ins still unanswered at the end (at their age then, if older than the run's slowest 503), 503s counted apart) and resident memory after it (idle 3 s):")
    print()
    print("| latchkey config | latchkey sign-ins (+ unanswered) | p50 ms | p99 ms | 503 | other "
          "| better-auth sign-ins (+ unanswered) | p50 ms | p99 ms | other | p99 floor (≤ ¼) | latchkey RSS MiB (peak) | better-auth RSS MiB (peak) "
          "| memory floor (≤ 25%) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for config, rows in results["configs"].items():
        f = rows.get("flood")
        if not f:
            continue
        lk, ba = f["latchkey"], f["better-auth"]
        p99_ok = lk["ok"] > 0 and ba["ok"] > 0 and lk["p99"] <= ba["p99"] * FLOORS["flood_p99"]
        mem = f["rss"]["latchkey"] / f["rss"]["better-auth"]
        print(f"| {config} | {lk['ok']:,} (+{lk['pending']}) | {lk['p50']:.0f} | {lk['p99']:.0f} | {lk['rejected']:,} "
              f"| {lk['other'] + lk['socket_errors']} | {ba['ok']:,} (+{ba['pending']}) | {ba['p50']:.0f} | {ba['p99']:.0f} "
              f"| {ba['other'] + ba['socket_errors'] + ba['rejected']} "
              f"| {lk['p99'] / ba['p99'] if ba['p99'] > 0 else float('nan'):.0%} of it: {met(p99_ok)} "
              f"| {f['rss']['latchkey'] / 1024:.1f} ({f['peak']['latchkey'] / 1024:.1f}) "
              f"| {f['rss']['better-auth'] / 1024:.1f} ({f['peak']['better-auth'] / 1024:.1f}) "
              f"| {mem:.0%}: {met(mem <= FLOORS['memory'])} |")


def main():
    for path in (LATCHKEY, HASH_COST):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run bench/peers.sh (it builds them) or set LATCHKEY_BIN/LATCHKEY_HASH_COST")
    install_peer()
    workdir = tempfile.mkdtemp(prefix="latchkey-peers-")
    cores = os.cpu_count() or 1
    results = {"configs": {}}
    results["load_before"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    hash_alone = {"latchkey": run_hash(HASH_COST), "better-auth": peer_hash_seconds()}
    peer = start_peer(workdir)
    lk = None
    try:
        cookie = prepare_peer(peer.base)
        for config, env in CONFIGS:
            cookie_mode = env.get("LATCHKEY_REFRESH_COOKIE") == "true"
            print(f"== latchkey {config}", file=sys.stderr, flush=True)
            lk = start_latchkey(workdir, config, env)
            csrf, access = prepare_latchkey(lk.base, cookie_mode)
            s = {"csrf": csrf, "access": access, "cookie": cookie}
            rows = {}
            if not cookie_mode:
                rows["session check (GET /auth/me vs get-session)"] = session_row(lk, peer, s)
            rows["token mint (POST /auth/token/refresh/ vs GET /api/auth/token)"] = mint_row(
                lk, peer, s, workdir, cookie_mode)
            if not cookie_mode:
                rows["sign-in (POST /auth/login vs /api/auth/sign-in/email)"] = signin_row(lk, peer, s, cores)
                if config == "HS256":
                    rows["sign-up (POST /auth/register vs /api/auth/sign-up/email)"] = signup_row(lk, peer, s)
                rows["flood"] = flood_row(lk, peer, s)
            results["configs"][config] = rows
            lk.stop()
            lk = None
    finally:
        if lk:
            lk.stop()
        peer.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_after"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    report(results, cores, hash_alone)


if __name__ == "__main__":
    main()
