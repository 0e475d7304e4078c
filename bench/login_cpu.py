#!/usr/bin/env python3
"""Where a login's CPU goes (bench/login_cpu.sh): latchkey (release build,
default configuration, a fresh SQLite file) under the login load of
bench/run.sh (wrk 2 threads × 32 connections, round-robin over 64
accounts), with each of its threads' CPU time read from
/proc/PID/task/*/stat before and after every run, grouped by thread name
(the hashing workers, the async runtime's workers, SQLite's connection
workers), as shares of the whole machine's CPU time (/proc/stat).

Each run is bracketed by timings of one Argon2id hash with every core
hashing at once (`examples/hash_cost`, as bench/run.py): logins per second
against that rate is the issue's sign-in target, and the hashing workers'
CPU time per login against the same timing tells whether the hash itself
ran slower in the server or the CPU went elsewhere.

    bench/login_cpu.sh                  # 3 runs of 10 s
    BENCH_RUNS=5 bench/login_cpu.sh
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (BENCH, CONNECTIONS, HASH_COST, LATCHKEY, PASSWORD, PORTS, THREADS, USERS,  # noqa: E402
                 Server, http, wait_up)

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DURATION = 10
TICK = os.sysconf("SC_CLK_TCK")


def threads(pid):
    """Thread name → (user, system) CPU ticks, summed over threads of that name."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue  # the thread ended meanwhile
        name = re.sub(r"-?\d+$", "", stat[stat.index("(") + 1:stat.rindex(")")])
        fields = stat[stat.rindex(")") + 2:].split()
        user, system = out.get(name, (0, 0))
        out[name] = (user + int(fields[11]), system + int(fields[12]))
    return out


def machine_ticks():
    return sum(int(f) for f in open("/proc/stat").readline().split()[1:8])


def all_core_hash_seconds(cores):
    out = subprocess.run([HASH_COST, "21", str(cores)], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def main():
    cores = os.cpu_count() or 1
    workdir = tempfile.mkdtemp(prefix="latchkey-login-cpu-")
    server = Server("latchkey", [LATCHKEY, "serve"], {
        "LATCHKEY_DATABASE_URL": f"sqlite://{workdir}/latchkey.db",
        "LATCHKEY_BIND": f"127.0.0.1:{PORTS['latchkey']}",
        "LATCHKEY_REGISTRATIONS_PER_ADDRESS": "1000000",
    })
    base = server.base
    try:
        wait_up(base + "/healthz")
        csrf = http("GET", f"{base}/auth/csrf/")[1]["csrfToken"]
        for i in range(USERS):
            status, body = http("POST", f"{base}/auth/register",
                                {"name": f"cpu{i}", "email": f"cpu{i}@example.com", "password": PASSWORD},
                                {"X-CSRFToken": csrf})
            if status != 201:
                sys.exit(f"register failed: {status} {body}")
        pid = server.proc.pid
        shares, splits = [], []
        for n in range(RUNS):
            before_hash = all_core_hash_seconds(cores)
            t0, m0 = threads(pid), machine_ticks()
            out = subprocess.run(
                ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{DURATION}s", "--timeout", "60s",
                 "-s", os.path.join(BENCH, "login.lua"), base + "/auth/login"],
                capture_output=True, text=True,
                env={**os.environ, "BENCH_CSRF": csrf, "BENCH_USERS": str(USERS), "BENCH_PREFIX": "cpu"}).stdout
            t1, m1 = threads(pid), machine_ticks()
            time.sleep(2)  # the logins wrk left in flight finish
            after_hash = all_core_hash_seconds(cores)
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
                sys.exit(f"run {n}: some logins failed:\n{out}")
            hash_s = statistics.mean([before_hash, after_hash])
            share = rps * hash_s / cores
            total = m1 - m0
            split = {name: (sum(t1[name]) - sum(t0.get(name, (0, 0)))) / total for name in t1}
            hashing = sum(t1.get("latchkey-hash", (0, 0))) - sum(t0.get("latchkey-hash", (0, 0)))
            per_login_ms = hashing / TICK / (rps * DURATION) * 1000
            shares.append(share)
            splits.append(split)
            print(f"run {n + 1}: {rps:.1f} logins/s; one hash with all {cores} cores hashing {hash_s * 1000:.2f} ms "
                  f"→ {share:.1%} of the all-core rate; the hashing workers' CPU per login {per_login_ms:.2f} ms")
            for name, part in sorted(split.items(), key=lambda kv: -kv[1]):
                if part >= 0.001:
                    print(f"    {name:24s} {part:6.1%} of the machine's CPU")
            print(f"    {'(outside latchkey)':24s} {1 - sum(split.values()):6.1%}")
        names = sorted({n for s in splits for n in s}, key=lambda n: -statistics.median(s.get(n, 0) for s in splits))
        print()
        print(f"median of {RUNS} runs: logins at {statistics.median(shares):.1%} of the all-core hash rate")
        for name in names:
            part = statistics.median(s.get(name, 0) for s in splits)
            if part >= 0.001:
                print(f"    {name:24s} {part:6.1%}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
