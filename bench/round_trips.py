#!/usr/bin/env python3
"""Database round trips per endpoint, per backend (bench/round_trips.sh).

PostgreSQL: latchkey connects through a counting TCP proxy (TLS off on that
loopback hop, so the protocol is readable); every frontend `Sync` (the end
of an extended-protocol exchange) and every simple `Query` is one round trip
the request waited for. SQLite has no network: there the count is of
statements latchkey handed to SQLite's worker thread (sqlx's statement log,
`LATCHKEY_LOG=sqlx::query=debug`), each one hop between the async runtime
and the database thread, plus each `BEGIN`/`COMMIT`.

Each endpoint is called once to warm the statement caches, then counted on
a second call.

    bench/round_trips.sh            # both backends
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, Server, wait_up  # noqa: E402
from scale import Client  # noqa: E402

LATCHKEY = os.environ.get("LATCHKEY_BIN", os.path.join(ROOT, "target", "release", "latchkey"))
PG_HOST, PG_PORT = "127.0.0.1", 5432
PROXY_PORT = 55439
PORT = 8422
PASSWORD = "Tr1cky-Lantern-Owl"


class CountingProxy:
    """Forwards TCP to PostgreSQL, counting the client's Sync and Query messages."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", PROXY_PORT))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection((PG_HOST, PG_PORT))
            threading.Thread(target=self.frontend, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def frontend(self, src, dst):
        buffer, started = b"", False
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                buffer += data
                while True:
                    if not started:
                        # The startup message: a length, no type byte.
                        if len(buffer) < 4:
                            break
                        length = int.from_bytes(buffer[:4], "big")
                        if len(buffer) < length:
                            break
                        buffer, started = buffer[length:], True
                        continue
                    if len(buffer) < 5:
                        break
                    kind, length = buffer[:1], int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < 1 + length:
                        break
                    if kind in (b"S", b"Q"):
                        with self.lock:
                            self.count += 1
                    buffer = buffer[1 + length:]
        except OSError:
            pass
        finally:
            dst.close()

    def take(self):
        with self.lock:
            n, self.count = self.count, 0
        return n


def scenario(client, counter):
    """Each endpoint once to warm up, then counted: name → round trips."""
    counts = {}
    tag = str(int(time.time() * 1000))

    def counted(name, fn):
        # Background work (the mail sender's poll, a key reload) also talks
        # to the database: the fewest of three counted calls is the request's.
        fn()
        seen = []
        for _ in range(3):
            time.sleep(0.7)  # past the session cache's 500 ms, so /auth/me reads the database
            counter()
            fn()
            seen.append(counter())
        counts[name] = min(seen)

    state = {}

    def register():
        state["n"] = state.get("n", 0) + 1
        n = f"{tag}x{state['n']}"
        status, body, _ = client.call("POST", "/auth/register", {"name": f"rt{n}", "email": f"rt{n}@example.com",
                                                                 "password": PASSWORD})
        assert status == 201, (status, body)
        state["tokens"] = body["tokens"]
        state["email"] = f"rt{n}@example.com"

    def login():
        status, body, _ = client.call("POST", "/auth/login", {"email": state["email"], "password": PASSWORD})
        assert status == 200, (status, body)
        state["tokens"] = body["tokens"]

    def me():
        status, _, _ = client.call("GET", "/auth/me", bearer=state["tokens"]["access"])
        assert status == 200, status

    def refresh():
        status, body, _ = client.call("POST", "/auth/token/refresh/", {"refresh": state["tokens"]["refresh"]})
        assert status == 200, (status, body)
        state["tokens"] = {"access": body["access"], "refresh": body["refresh"]}

    def verify():
        status, _, _ = client.call("POST", "/auth/token/verify/", {"token": state["tokens"]["access"]})
        assert status == 200, status

    def logout():
        status, body, _ = client.call("POST", "/auth/logout", {"refresh": state["tokens"]["refresh"]},
                                      bearer=state["tokens"]["access"])
        assert status == 200, (status, body)
        login()

    client.fetch_csrf()
    counted("POST /auth/register", register)
    counted("POST /auth/login", login)
    counted("GET /auth/me (session cache missed)", me)
    counted("POST /auth/token/refresh/", refresh)
    counted("POST /auth/token/verify/", verify)
    counted("POST /auth/logout (+ the login after it)", logout)
    return counts


def postgres():
    db = f"latchkey_rt_{os.getpid()}"
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {db}"], check=True)
    try:
        proxy = CountingProxy()
        url = f"postgres://postgres@127.0.0.1:{PROXY_PORT}/{db}?sslmode=disable"
        server = start(url, {})
        try:
            return scenario(Client(PORT), proxy.take)
        finally:
            server.stop()
    finally:
        subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=True)


def sqlite():
    workdir = tempfile.mkdtemp(prefix="latchkey-rt-")
    log = os.path.join(workdir, "log.jsonl")
    server = start(f"sqlite://{workdir}/rt.db", {"LATCHKEY_LOG": "info,sqlx::query=debug", "LATCHKEY_LOG_FORMAT": "json"},
                   stderr=open(log, "w"))
    seen = [0]

    def counter():
        with open(log) as f:
            lines = [json.loads(line) for line in f if line.startswith("{")]
        statements = [line for line in lines if line.get("target", "").startswith("sqlx::query")]
        n = len(statements) - seen[0]
        seen[0] = len(statements)
        return n

    try:
        return scenario(Client(PORT), counter)
    finally:
        server.stop()


class Latchkey(Server):
    """latchkey serving `url`, its log to `stderr` if given."""

    def __init__(self, url, extra, stderr=None):  # noqa: super().__init__ would start another process
        env = {"LATCHKEY_DATABASE_URL": url, "LATCHKEY_BIND": f"127.0.0.1:{PORT}",
               "LATCHKEY_MAIL_DIR": os.path.join(tempfile.gettempdir(), "latchkey-rt-mail"), **extra}
        self.name = "latchkey"
        self.proc = subprocess.Popen([LATCHKEY, "serve"], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                     stderr=stderr or subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{PORT}"


def start(url, extra, stderr=None):
    server = Latchkey(url, extra, stderr)
    wait_up(server.base + "/healthz", timeout=120)
    return server


def main():
    results = {"postgres": postgres(), "sqlite": sqlite()}
    print("| endpoint | PostgreSQL round trips | SQLite statements |")
    print("|---|---|---|")
    for name in results["postgres"]:
        print(f"| {name} | {results['postgres'][name]} | {results['sqlite'][name]} |")


if __name__ == "__main__":
    main()
