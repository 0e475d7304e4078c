#!/usr/bin/env python3
"""Does the time of a password reset request tell a real account apart?

Starts latchkey on a fresh SQLite database (mail as .eml files in a temporary
folder), registers users, then times POST /auth/password/reset for known and
unknown addresses, interleaved, each address asked once (so the per-address
limit never suppresses a known one). Prints the medians, in milliseconds.

    cargo build --release && bench/reset_timing.py [--rounds 200]

LATCHKEY_BIN overrides the binary (default target/release/latchkey);
LATCHKEY_DATABASE_URL (e.g. a postgres:// URL) the database.
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("LATCHKEY_BIN", os.path.join(ROOT, "target", "release", "latchkey"))
PASSWORD = "Tr1cky-Lantern-Owl"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="latchkey-reset-timing-")
    port = free_port()
    env = dict(os.environ, LATCHKEY_BIND=f"127.0.0.1:{port}", LATCHKEY_LOG="warn",
               LATCHKEY_REGISTRATIONS_PER_ADDRESS="100000",
               LATCHKEY_MAIL_REQUESTS_PER_ADDRESS="1000000",
               LATCHKEY_MAIL_DIR=os.path.join(work, "mail"))
    env.setdefault("LATCHKEY_DATABASE_URL", f"sqlite://{os.path.join(work, 'latchkey.db')}")
    server = subprocess.Popen([BIN, "serve"], env=env)
    try:
        conn = None
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.05)
        conn.request("GET", "/auth/csrf/")
        csrf = json.loads(conn.getresponse().read())["csrfToken"]
        headers = {"Content-Type": "application/json", "X-CSRFToken": csrf}

        def post(path, body):
            start = time.perf_counter()
            conn.request("POST", path, json.dumps(body), headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, data, (time.perf_counter() - start) * 1000

        for i in range(args.rounds):
            status, _, _ = post("/auth/register", {"name": f"timed {i}", "email": f"timed{i}@example.com",
                                                   "password": PASSWORD})
            assert status == 201, status
        # Let the registrations' verification mail drain first.
        time.sleep(2)
        times = {"known address": [], "unknown address": []}
        bodies = set()
        for i in range(args.rounds):
            for kind, email in (("known address", f"timed{i}@example.com"),
                                ("unknown address", f"nobody{i}@example.com")):
                status, data, ms = post("/auth/password/reset", {"email": email})
                assert status == 200, (status, data)
                bodies.add(data)
                times[kind].append(ms)
        assert len(bodies) == 1, bodies
        print(f"POST /auth/password/reset, {args.rounds} each, one keep-alive connection, "
              f"{env['LATCHKEY_DATABASE_URL'].split(':')[0]}:")
        for kind, ms in times.items():
            q = statistics.quantiles(ms, n=4)
            print(f"  {kind:16} median {statistics.median(ms):6.2f} ms   quartiles {q[0]:.2f}-{q[2]:.2f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
