#!/usr/bin/env python3
"""Does login timing tell unknown accounts from imported, not-yet-upgraded ones?

Builds a Django-shaped SQLite database (standard library only) with users
whose hashes are Django's default, PBKDF2-SHA256 at 1,000,000 iterations,
imports it into a fresh latchkey database beside users registered through
the API (Argon2id), and times wrong-password logins to each kind and to
unknown addresses. Prints the median per kind, in milliseconds.

    cargo build --release && bench/login_timing.py [--rounds 15]

LATCHKEY_BIN overrides the binary (default target/release/latchkey).
"""
import argparse, base64, hashlib, json, os, socket, sqlite3, statistics
import subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("LATCHKEY_BIN", os.path.join(ROOT, "target", "release", "latchkey"))
PASSWORD = "Tr1cky-Lantern-Owl"


def django_pbkdf2(password, iterations=1_000_000):
    salt = base64.b64encode(os.urandom(12)).decode().rstrip("=").replace("+", "a").replace("/", "b")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(base, path, body, csrf):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-CSRFToken": csrf})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_up(base):
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/healthz")
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("latchkey did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="latchkey-timing-")
    source = os.path.join(work, "django.sqlite3")
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE accounts_user (id integer PRIMARY KEY, password varchar(128) NOT NULL, "
               "email varchar(254) NOT NULL, name varchar(150) NOT NULL, is_active bool NOT NULL, "
               "date_joined datetime NOT NULL)")
    legacy = 40
    for i in range(1, legacy + 1):
        db.execute("INSERT INTO accounts_user VALUES (?, ?, ?, ?, 1, '2024-01-01 00:00:00')",
                   (i, django_pbkdf2(PASSWORD), f"legacy{i}@example.com", f"legacy {i}"))
    db.commit()
    db.close()
    target = f"sqlite://{os.path.join(work, 'latchkey.db')}"
    env = dict(os.environ, LATCHKEY_DATABASE_URL=target, LATCHKEY_LOG="warn",
               LATCHKEY_LOGIN_FAILURES_PER_ACCOUNT="100000", LATCHKEY_LOGIN_FAILURES_PER_ADDRESS="100000",
               LATCHKEY_REGISTRATIONS_PER_ADDRESS="100000")
    subprocess.run([BIN, "migrate"], env=env, check=True)
    subprocess.run([BIN, "import", "django", "--from", f"sqlite://{source}"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    env["LATCHKEY_BIND"] = f"127.0.0.1:{port}"
    server = subprocess.Popen([BIN, "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
        with urllib.request.urlopen(base + "/auth/csrf/") as r:
            csrf = json.load(r)["csrfToken"]
        for i in range(legacy):
            post(base, "/auth/register", {"name": f"fresh {i}", "email": f"fresh{i}@example.com",
                                          "password": PASSWORD}, csrf)
        # Restart, so the census of stored hashes (taken at start-up, then
        # every ten minutes) sees both kinds.
        server.terminate()
        server.wait()
        server = subprocess.Popen([BIN, "serve"], env=env)
        wait_up(base)
        kinds = {
            "imported PBKDF2 (10^6 iterations)": lambda i: f"legacy{i % legacy + 1}@example.com",
            "latchkey Argon2id": lambda i: f"fresh{i % legacy}@example.com",
            "unknown address": lambda i: f"nobody{i}@example.com",
        }
        times = {k: [] for k in kinds}
        for r in range(args.rounds):
            for kind, email in kinds.items():
                for i in range(r * 4, r * 4 + 4):
                    start = time.perf_counter()
                    status = post(base, "/auth/login", {"email": email(i), "password": "Wrong-Guess-42"}, csrf)
                    times[kind].append((time.perf_counter() - start) * 1000)
                    assert status == 401, status
        print(f"wrong-password login, median of {args.rounds * 4} each ({legacy} imported, {legacy} native users):")
        for kind, ms in times.items():
            q = statistics.quantiles(ms, n=4)
            print(f"  {kind:38} median {statistics.median(ms):7.1f} ms   quartiles {q[0]:.1f}-{q[2]:.1f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
