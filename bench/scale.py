#!/usr/bin/env python3
"""Cost as the data grows (called by bench/scale.sh after the build).

For each backend (SQLite, PostgreSQL) and each size N, fills a fresh
latchkey database with N users, 3 sessions per user (a third of them
expired), each session rotated a few times, the sessions started one after
another from users in random order (ids time-ordered, as latchkey makes
them), and one known login client per user, with bulk SQL (seconds to minutes, not hours); then, from outside over
HTTP against the release binary:

- the standard rows, one request at a time: login, `GET /auth/me`, refresh
  and register, the median latency of each (the smallest N is run again
  after the largest, and the ratios compare with the mean of its two runs,
  so the machine's drift over the run is not read as growth);
- `latchkey flush-expired` on the full database, timed, while a client
  reads `/auth/me` one request after another: that client's p99 during the
  flush;
- the storage per user (SQLite: the file's pages; PostgreSQL: every
  table's relation size, indexes and TOAST included);
- at the largest N, the query plans of the hot statements and the flush.

Writes the figures to a JSON file and draws each endpoint's median against
N for both backends (PNG, with matplotlib from a venv this script makes).

    BENCH_SIZES=1000,100000,1000000 BENCH_BACKENDS=sqlite,postgres bench/scale.sh
    BENCH_SESSION_IDS=random ...      # the filled session ids random, not time-ordered
    BENCH_USER_ORDER=sequential ...   # the filled users signed up as user1, user2, ... (default: random)

Needs: python3 (standard library), psql and a PostgreSQL server reachable at
BENCH_PG (default postgres://postgres@127.0.0.1:5432) for the PostgreSQL
rows; PyPI once, for matplotlib.
"""

import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, Server, wait_up  # noqa: E402

LATCHKEY = os.environ.get("LATCHKEY_BIN", os.path.join(ROOT, "target", "release", "latchkey"))
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1000,100000,1000000").split(",")]
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite,postgres").split(",")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "docs", "bench-scale"))
PORT = 8421
PASSWORD = "Tr1cky-Lantern-Owl"
SEQUENTIAL = {"login": 30, "me": 400, "refresh": 400, "register": 30}
# What every session's row carries: a browser's User-Agent (latchkey
# truncates them to 256 bytes; these are 111-114) and an address. The
# sessions share AGENTS distinct ones (one browser in as many versions),
# each stored once (user_agents), so the table is as large as a real one
# and its statements' plans are those of a real one.
USER_AGENT_PREFIX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0."
USER_AGENT_SUFFIX = ".0 Safari/537.36"
USER_AGENT = USER_AGENT_PREFIX + "0" + USER_AGENT_SUFFIX
AGENTS = 1000
# Every filled session's client, 203.0.113.7, as the store keeps it
# (store/stored_addrs.rs): a session's address as its 4 bytes, a known
# client's key as the IPv4 tag (4) and those bytes.
ADDRESS_HEX = "cb007107"
ADDRESS_KEY_HEX = "04" + ADDRESS_HEX
DAY = 86400
# The filled sessions started over the last 10.5 days, one after another,
# and each lives 7 days (the default refresh lifetime): the oldest third
# has expired.
LIFETIME = 7 * DAY
SPAN_MS = 21 * DAY * 1000 // 2


# How the filled sessions' ids are made: "time-ordered" as latchkey makes
# them, or "random" (16 random bytes, as before 2026-12-03) to measure
# what the order saves.
SESSION_IDS = os.environ.get("BENCH_SESSION_IDS", "time-ordered")

# The order the filled users signed up in: "random" (their addresses and
# names arrive in no order, as real sign-ups do) or "sequential" (user1,
# user2, ... as before 2026-12-04: each lands just after the previous one
# in the middle of the email and name indexes, which PostgreSQL's B-tree
# then splits in half and never fills, unlike any real one).
USERS_ORDER = {"random": "ORDER BY random()", "sequential": ""}[os.environ.get("BENCH_USER_ORDER", "random")]


def start_ms(now):
    return (now * 1000) - SPAN_MS


class Client:
    """One keep-alive HTTP/1.1 connection; each call returns (status, body, seconds)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.csrf = None
        self.cookie = None

    def call(self, method, path, body=None, bearer=None):
        # A browser's User-Agent, as an SPA's requests carry: a login or a
        # registration stores it (once per distinct string).
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.csrf:
            headers["X-CSRFToken"] = self.csrf
            headers["Cookie"] = self.cookie
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = json.dumps(body).encode() if body is not None else None
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        elapsed = time.perf_counter() - t0
        if method == "GET" and path.startswith("/auth/csrf"):
            cookie = r.getheader("Set-Cookie") or ""
            self.cookie = cookie.split(";")[0]
        return r.status, (json.loads(raw) if raw else {}), elapsed

    def fetch_csrf(self):
        status, body, _ = self.call("GET", "/auth/csrf/")
        assert status == 200, status
        self.csrf = body["csrfToken"]


def latchkey_env(url):
    return {
        "LATCHKEY_DATABASE_URL": url,
        "LATCHKEY_BIND": f"127.0.0.1:{PORT}",
        "LATCHKEY_REGISTRATIONS_PER_ADDRESS": "1000000",
        "LATCHKEY_LOGIN_FAILURES_PER_ADDRESS": "1000000",
        "LATCHKEY_MAIL_DIR": os.path.join(tempfile.gettempdir(), "latchkey-scale-mail"),
    }


def start(url):
    server = Server("latchkey", [LATCHKEY, "serve"], latchkey_env(url))
    server.base = f"http://127.0.0.1:{PORT}"
    wait_up(server.base + "/healthz", timeout=300)
    return server


class Backend:
    """A fresh database of one backend: its URL, bulk SQL and size."""

    name = ""

    def sql(self, statement):
        raise NotImplementedError


class Sqlite(Backend):
    name = "sqlite"

    def __init__(self, workdir, n):
        self.path = os.path.join(workdir, f"scale-{n}.db")
        self.url = f"sqlite://{self.path}"

    def connect(self):
        db = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        db.execute("PRAGMA busy_timeout = 60000")
        return db

    def sql(self, statement):
        db = self.connect()
        try:
            return db.execute(statement).fetchall()
        finally:
            db.close()

    def fill(self, n, hash_, now):
        db = self.connect()
        try:
            db.execute("BEGIN")
            db.execute(f"""
                WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
                INSERT INTO users (email, email_key, name, name_key, password_hash, is_active, date_joined,
                                   email_verified)
                SELECT 'user' || i || '@example.com', 'user' || i || '@example.com', 'user' || i, 'user' || i,
                       ?, 1, {now - 30 * DAY}, i % 2 FROM seq {USERS_ORDER}""", (hash_,))
            first = db.execute("SELECT MIN(id) FROM users WHERE name_key LIKE 'user%'").fetchone()[0]
            db.execute(f"""
                WITH RECURSIVE a(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM a WHERE i < {AGENTS - 1})
                INSERT INTO user_agents (value, last_seen_at)
                SELECT ? || i || ?, {now - 2 * DAY} FROM a WHERE true
                ON CONFLICT (value) DO NOTHING""", (USER_AGENT_PREFIX, USER_AGENT_SUFFIX))
            agent = db.execute("SELECT MIN(id) FROM user_agents").fetchone()[0]
            # Sessions as they arrive: in the order they started, from users
            # in no particular order, each id time-ordered as latchkey makes
            # them (auth/ids.rs): its millisecond, then random bytes; stored
            # as two signed 64-bit halves, with no start of its own, which
            # the id says (store/stored_ids.rs).
            def half(raw):
                return int.from_bytes(raw, "big", signed=True)
            if SESSION_IDS == "random":
                db.create_function("id_hi", 1, lambda ms: half(os.urandom(8)))
            else:
                db.create_function("id_hi", 1, lambda ms: half(ms.to_bytes(6, "big") + os.urandom(2)))
            db.create_function("id_lo", 1, lambda ms: half(os.urandom(8)))
            created = "ms / 1000" if SESSION_IDS == "random" else "NULL"
            db.execute(f"""
                WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 2),
                arrivals(uid, r) AS (
                    SELECT u.id, row_number() OVER (ORDER BY random()) - 1 FROM users u, k WHERE u.id >= {first}),
                started(uid, r, ms) AS (
                    SELECT uid, r, {start_ms(now)} + r * {SPAN_MS} / {3 * n} FROM arrivals)
                INSERT INTO sessions (id_hi, id_lo, user_id, created_at, last_used_at, expires_at, client_ip,
                                      user_agent_id, last_rotated_jti_prefix, current_jti, last_rotated_at)
                SELECT id_hi(ms), id_lo(ms), uid, {created}, ms / 1000, ms / 1000 + {LIFETIME},
                       X'{ADDRESS_HEX}', {agent} + r % {AGENTS},
                       randomblob(8), randomblob(16), ms / 1000
                  FROM started ORDER BY r""")
            db.execute(f"""
                INSERT INTO known_clients (user_id, client_key, last_success_at)
                SELECT id, X'{ADDRESS_KEY_HEX}', {now - 2 * DAY} FROM users WHERE id >= {first}""")
            db.execute("COMMIT")
            db.execute("ANALYZE")
        finally:
            db.close()

    def bytes(self):
        rows = self.sql("SELECT page_count * page_size, freelist_count * page_size "
                        "FROM pragma_page_count(), pragma_page_size(), pragma_freelist_count()")
        return rows[0][0] - rows[0][1]

    def bytes_by_object(self):
        """Bytes in use per table and index (dbstat: pages less their unused bytes)."""
        return {name: int(used) for name, used in self.sql(
            "SELECT name, SUM(pgsize - unused) FROM dbstat GROUP BY name ORDER BY 2 DESC")}

    def plan(self, statement):
        return "\n".join(r[3] for r in self.sql("EXPLAIN QUERY PLAN " + statement))

    def drop(self):
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(self.path + suffix)
            except FileNotFoundError:
                pass


class Postgres(Backend):
    name = "postgres"

    def __init__(self, workdir, n):
        self.db = f"latchkey_scale_{n}_{os.getpid()}"
        self.admin = f"{PG}/postgres"
        self.url = f"{PG}/{self.db}"
        self.psql(self.admin, f"DROP DATABASE IF EXISTS {self.db}")
        self.psql(self.admin, f"CREATE DATABASE {self.db}")

    @staticmethod
    def psql(url, statement, *params):
        out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"psql failed: {out.stderr}")
        return out.stdout

    def sql(self, statement):
        return [line.split("|") for line in self.psql(self.url, statement).splitlines() if line]

    def fill(self, n, hash_, now):
        literal = "'" + hash_.replace("'", "''") + "'"
        prefix, suffix = (f"'{USER_AGENT_PREFIX}'", f"'{USER_AGENT_SUFFIX}'")
        def random_bits(bits, salt):
            return f"('x' || substr(md5(random()::text || r || '{salt}'), 1, {bits // 4}))::bit({bits})"
        # As the SQLite fill: two halves, the start left to the id.
        pg_id_hi = (f"{random_bits(64, 'h')}::bigint" if SESSION_IDS == "random" else
                    f"(ms << 16) | {random_bits(16, 'h')}::int::bigint")
        pg_id_lo = f"{random_bits(64, 'l')}::bigint"
        created = "ms / 1000" if SESSION_IDS == "random" else "NULL"
        self.psql(self.url, f"""
            BEGIN;
            INSERT INTO users (email, email_key, name, name_key, password_hash, is_active, date_joined,
                               email_verified)
            SELECT 'user' || i || '@example.com', 'user' || i || '@example.com', 'user' || i, 'user' || i,
                   {literal}, 1, {now - 30 * DAY}, i % 2 FROM generate_series(1, {n}) AS i {USERS_ORDER};
            INSERT INTO user_agents (value, last_seen_at)
            SELECT {prefix} || i || {suffix}, {now - 2 * DAY} FROM generate_series(0, {AGENTS - 1}) AS i
            ON CONFLICT (value) DO NOTHING;
            INSERT INTO sessions (id_hi, id_lo, user_id, created_at, last_used_at, expires_at, client_ip,
                                  user_agent_id, last_rotated_jti_prefix, current_jti, last_rotated_at)
            SELECT {pg_id_hi}, {pg_id_lo},
                   uid, {created}, ms / 1000, ms / 1000 + {LIFETIME},
                   '\\x{ADDRESS_HEX}'::bytea, (SELECT MIN(id) FROM user_agents) + r % {AGENTS},
                   decode(substr(md5(random()::text || r), 1, 16), 'hex'),
                   decode(md5(random()::text || r || 'c'), 'hex'),
                   ms / 1000
              FROM (SELECT uid, r, {start_ms(now)}::bigint + r * {SPAN_MS}::bigint / {3 * n} AS ms
                      FROM (SELECT u.id AS uid, row_number() OVER (ORDER BY random()) - 1 AS r
                              FROM users u, generate_series(0, 2) AS k WHERE u.name_key LIKE 'user%') AS arrivals
                   ) AS started
             ORDER BY r;
            INSERT INTO known_clients (user_id, client_key, last_success_at)
            SELECT id, '\\x{ADDRESS_KEY_HEX}'::bytea, {now - 2 * DAY} FROM users WHERE name_key LIKE 'user%';
            COMMIT;
            ANALYZE;""")

    def bytes(self):
        rows = self.sql("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                        "JOIN pg_namespace ns ON ns.oid = c.relnamespace "
                        "WHERE ns.nspname = 'public' AND c.relkind = 'r'")
        return int(rows[0][0])

    def bytes_by_object(self):
        """Bytes per table (heap and TOAST) and per index."""
        return {name: int(size) for name, size in self.sql(
            "SELECT c.relname, pg_table_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace ns ON ns.oid = c.relnamespace "
            "WHERE ns.nspname = 'public' AND c.relkind = 'r' "
            "UNION ALL SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace ns ON ns.oid = c.relnamespace "
            "WHERE ns.nspname = 'public' AND c.relkind = 'i' ORDER BY 2 DESC")}

    def plan(self, statement):
        return self.psql(self.url, "EXPLAIN " + statement).strip()

    def drop(self):
        self.psql(self.admin, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


def sequential(client, n_users):
    """Median latency (ms) of each standard row, one request at a time."""
    client.fetch_csrf()
    times = {}
    samples = []
    token = None
    for i in range(SEQUENTIAL["login"]):
        # Users spread over the whole table, not only its first pages.
        user = 1 + (i * 7919) % n_users
        status, body, t = client.call("POST", "/auth/login", {"email": f"user{user}@example.com",
                                                              "password": PASSWORD})
        assert status == 200, (status, body)
        samples.append(t)
        token = body["tokens"]
    times["login"] = statistics.median(samples)
    samples = []
    for _ in range(SEQUENTIAL["me"]):
        status, _, t = client.call("GET", "/auth/me", bearer=token["access"])
        assert status == 200, status
        samples.append(t)
    times["me"] = statistics.median(samples)
    samples = []
    refresh = token["refresh"]
    for _ in range(SEQUENTIAL["refresh"]):
        status, body, t = client.call("POST", "/auth/token/refresh/", {"refresh": refresh})
        assert status == 200, (status, body)
        refresh = body["refresh"]
        samples.append(t)
    times["refresh"] = statistics.median(samples)
    samples = []
    tag = f"{int(time.time() * 1000)}"
    for i in range(SEQUENTIAL["register"]):
        status, body, t = client.call("POST", "/auth/register", {"name": f"new{tag}x{i}",
                                                                 "email": f"new{tag}x{i}@example.com",
                                                                 "password": PASSWORD})
        assert status == 201, (status, body)
        samples.append(t)
    times["register"] = statistics.median(samples)
    return {k: v * 1000 for k, v in times.items()}, token["access"], refresh


def flush_during_load(backend, access, refresh):
    """Time `latchkey flush-expired` while one client reads /auth/me in a
    loop (served from the session cache after the first request, as in
    production) and another rotates a refresh token in a loop (a write,
    which contends with the flush's deletes for the database)."""
    stop = threading.Event()
    latencies = {"me": [], "refresh": []}

    def read():
        client = Client(PORT)
        while not stop.is_set():
            status, _, t = client.call("GET", "/auth/me", bearer=access)
            assert status == 200, status
            latencies["me"].append(t * 1000)

    def rotate():
        client = Client(PORT)
        client.fetch_csrf()
        token = refresh
        while not stop.is_set():
            status, body, t = client.call("POST", "/auth/token/refresh/", {"refresh": token})
            assert status == 200, (status, body)
            token = body["refresh"]
            latencies["refresh"].append(t * 1000)

    threads = [threading.Thread(target=read), threading.Thread(target=rotate)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    for samples in latencies.values():
        samples.clear()
    t0 = time.perf_counter()
    out = subprocess.run([LATCHKEY, "flush-expired", "--database-url", backend.url], capture_output=True,
                         text=True, env={**os.environ, **latchkey_env(backend.url)})
    seconds = time.perf_counter() - t0
    stop.set()
    for thread in threads:
        thread.join()
    if out.returncode != 0:
        sys.exit(f"flush-expired failed: {out.stderr}")

    def p99(samples):
        ordered = sorted(samples)
        return ordered[int(len(ordered) * 0.99)] if ordered else float("nan")

    return {"seconds": seconds, "me_p99_ms": p99(latencies["me"]), "me_requests": len(latencies["me"]),
            "refresh_p99_ms": p99(latencies["refresh"]), "refresh_requests": len(latencies["refresh"]),
            "output": out.stdout.strip()}


def hot_statements(now):
    """The statements behind the rows (copied from src/store; the plans
    show which index each one uses) with literal arguments. A session id
    is stored as two 64-bit halves, a token id as 16 bytes (a blob literal
    per backend)."""
    def blob(hex_):
        return {"sqlite": f"X'{hex_}'", "postgres": f"'\\x{hex_}'::bytea"}

    sid, jti = blob("0" * 32), blob("1" * 32)

    def per_backend(template):
        return {b: template(sid[b], jti[b]) for b in ("sqlite", "postgres")}

    return {
        "GET /auth/me (session_user)": per_backend(lambda sid, jti:
            "SELECT u.id, u.email, u.name, s.expires_at, u.email_verified FROM sessions s "
            "JOIN users u ON u.id = s.user_id "
            f"WHERE s.id_hi = 7 AND s.id_lo = 8 AND s.revoked_at IS NULL AND s.expires_at > {now} "
            "AND u.is_active = 1"),
        "POST /auth/login (user by email, its known address, its second factor)": per_backend(lambda sid, jti:
            "SELECT id, email, name, password_hash, is_active, "
            "(SELECT COUNT(*) FROM known_clients k WHERE k.user_id = users.id "
            f"AND k.client_key IN ({sid}, {jti}) AND k.last_success_at >= {now - 180 * DAY}), "
            "(SELECT COUNT(*) FROM mfa_totp t WHERE t.user_id = users.id AND t.confirmed_at IS NOT NULL) "
            "FROM users WHERE email_key = 'user7@example.com'"),
        "POST /auth/login (User-Agent, stored once)":
            f"INSERT INTO user_agents (value, last_seen_at) VALUES ('{USER_AGENT}', {now}) "
            f"ON CONFLICT (value) DO UPDATE SET last_seen_at = excluded.last_seen_at "
            f"WHERE user_agents.last_seen_at < {now - DAY}",
        "POST /auth/login (session insert: its User-Agent's id)":
            f"SELECT id FROM user_agents WHERE value = '{USER_AGENT}'",
        "refresh (rotate)": per_backend(lambda sid, jti:
            f"UPDATE sessions SET current_jti = {jti}, last_rotated_jti_prefix = {sid}, last_rotated_at = {now}, "
            f"last_used_at = {now}, expires_at = {now + DAY} WHERE id_hi = 7 AND id_lo = 8 AND current_jti = {jti} "
            f"AND revoked_at IS NULL AND expires_at > {now} "
            "AND EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND u.is_active = 1)"),
        "refresh (state, on refusal)": per_backend(lambda sid, jti:
            f"SELECT s.user_id, s.last_rotated_jti_prefix FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id_hi = 7 AND s.id_lo = 8"),
        "GET /auth/sessions":
            "SELECT s.id_hi, s.id_lo, s.created_at, s.last_used_at, s.expires_at, s.client_ip, "
            "s.client_addr_text, ua.value "
            "FROM sessions s LEFT JOIN user_agents ua ON ua.id = s.user_agent_id "
            f"WHERE s.user_id = 7 AND s.revoked_at IS NULL AND s.expires_at > {now}",
        "register (uniqueness)":
            "SELECT 1 FROM users WHERE email_key = 'x@example.com' OR name_key = 'x'",
        # src/store/maintenance.rs: a batch found by the condition's index,
        # deleted by physical row id.
        "flush-expired (sessions)": {
            "sqlite": "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions "
                      f"WHERE expires_at <= {now} LIMIT 1000)",
            "postgres": "DELETE FROM sessions WHERE ctid = ANY(ARRAY(SELECT ctid FROM sessions "
                        f"WHERE expires_at <= {now} LIMIT 1000))",
        },
        "flush-expired (known clients)": {
            "sqlite": "DELETE FROM known_clients WHERE rowid IN (SELECT rowid FROM known_clients "
                      f"WHERE last_success_at <= {now - 30 * DAY} LIMIT 1000)",
            "postgres": "DELETE FROM known_clients WHERE ctid = ANY(ARRAY(SELECT ctid FROM known_clients "
                        f"WHERE last_success_at <= {now - 30 * DAY} LIMIT 1000))",
        },
        # A batch of the User-Agent sweep: one range of the key, each row's
        # references looked up in sessions_user_agent_id.
        "flush-expired (User-Agents: the batch's end)":
            "SELECT MAX(id) FROM (SELECT id FROM user_agents WHERE id > 0 "
            "ORDER BY id LIMIT 1000) AS batch",
        "flush-expired (User-Agents: unused ones)":
            f"DELETE FROM user_agents WHERE id > 0 AND id <= 1000 "
            f"AND last_seen_at <= {now - 2 * DAY} "
            "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_agent_id = user_agents.id)",
    }


def one(backend_cls, n, workdir):
    backend = backend_cls(workdir, n)
    try:
        subprocess.run([LATCHKEY, "migrate", "--database-url", backend.url], check=True,
                       env={**os.environ, **latchkey_env(backend.url)}, capture_output=True)
        # One real registration gives a real Argon2id hash of PASSWORD for
        # every filled user (they differ only in salt, which costs nothing).
        server = start(backend.url)
        client = Client(PORT)
        client.fetch_csrf()
        status, body, _ = client.call("POST", "/auth/register", {"name": "seed", "email": "seed@example.com",
                                                                 "password": PASSWORD})
        assert status == 201, (status, body)
        server.stop()
        hash_ = backend.sql("SELECT password_hash FROM users WHERE email_key = 'seed@example.com'")[0][0]
        empty_bytes = backend.bytes()
        now = int(time.time())
        t0 = time.perf_counter()
        backend.fill(n, hash_, now)
        fill_seconds = time.perf_counter() - t0
        size = backend.bytes()
        by_object = backend.bytes_by_object()
        server = start(backend.url)
        try:
            client = Client(PORT)
            medians, access, refresh = sequential(client, n)
            flush = flush_during_load(backend, access, refresh)
        finally:
            server.stop()
        plans = {}
        if n == max(SIZES):
            for name, sql in hot_statements(now).items():
                plans[name] = backend.plan(sql[backend.name] if isinstance(sql, dict) else sql)
        result = {
            "backend": backend.name, "users": n, "fill_seconds": fill_seconds,
            "bytes": size, "bytes_per_user": (size - empty_bytes) / n, "medians_ms": medians,
            "flush": flush, "plans": plans, "bytes_by_object": by_object,
        }
        print(json.dumps({k: v for k, v in result.items() if k not in ("plans", "bytes_by_object")}), flush=True)
        return result
    finally:
        backend.drop()


def plot(results, path):
    venv = os.path.join(ROOT, "bench", ".venv-plot")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "matplotlib==3.9.2"], check=True)
    script = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
results = json.load(open(sys.argv[1]))
rows = ["login", "me", "refresh", "register"]
fig, axes = plt.subplots(1, 4, figsize=(16, 4))
for ax, row in zip(axes, rows):
    for backend, style in (("sqlite", "o-"), ("postgres", "s--")):
        # The smallest size runs twice, first and last (see main): its mean.
        by_size = {}
        for r in results:
            if r["backend"] == backend:
                by_size.setdefault(r["users"], []).append(r["medians_ms"][row])
        pts = sorted((n, sum(v) / len(v)) for n, v in by_size.items())
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=backend)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_title({"me": "GET /auth/me", "login": "POST /auth/login", "refresh": "POST /auth/token/refresh/",
                  "register": "POST /auth/register"}[row])
    ax.set_xlabel("users")
    ax.set_ylabel("median ms (sequential)")
    ax.legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
"""
    data = path + ".json"
    subprocess.run([python, "-c", script, data, path + ".png"], check=True)


def main():
    workdir = tempfile.mkdtemp(prefix="latchkey-scale-")
    classes = {"sqlite": Sqlite, "postgres": Postgres}
    results = []
    for name in BACKENDS:
        for n in SIZES:
            results.append(one(classes[name], n, workdir))
        # The smallest size once more, last: on this shared machine the
        # speed drifts over a run's minutes, and a ratio against one early
        # reading would measure the drift. The ratios use the mean of both.
        if len(SIZES) > 1:
            again = one(classes[name], min(SIZES), workdir)
            again["again"] = True
            results.append(again)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".json", "w") as f:
        json.dump(results, f, indent=1)
    plot(results, OUT)
    report(results)


def report(results):
    print()
    print("| backend | users | login ms | /auth/me ms | refresh ms | register ms | flush-expired s "
          "| during it: /auth/me p99 ms | refresh p99 ms | bytes per user | fill s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m = r["medians_ms"]
        again = " (again)" if r.get("again") else ""
        print(f"| {r['backend']} | {r['users']:,}{again} | {m['login']:.2f} | {m['me']:.3f} | {m['refresh']:.3f} | "
              f"{m['register']:.2f} | {r['flush']['seconds']:.1f} | {r['flush']['me_p99_ms']:.2f} | "
              f"{r['flush']['refresh_p99_ms']:.2f} | "
              f"{r['bytes_per_user']:.0f} | {r['fill_seconds']:.1f} |")
    for backend in {r["backend"] for r in results}:
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["users"])
        if len(rows) > 1:
            small = [r for r in rows if r["users"] == rows[0]["users"]]
            large = rows[-1]
            ratios = ", ".join(
                f"{k} {large['medians_ms'][k] / (sum(r['medians_ms'][k] for r in small) / len(small)):.2f}×"
                for k in large["medians_ms"])
            print(f"{backend}: {large['users']:,} users vs {rows[0]['users']:,} "
                  f"(the mean of its {len(small)} runs): {ratios}")
    for r in results:
        if r["users"] != max(SIZES):
            continue
        print(f"\n{r['backend']} {r['users']:,}: bytes per user by table and index "
              f"(filled, before the flush; the empty database's few pages included)")
        for name, used in r["bytes_by_object"].items():
            if used / r["users"] >= 1:
                print(f"  {name}: {used / r['users']:.0f}")
    for r in results:
        for name, plan in r["plans"].items():
            print(f"\n{r['backend']} {r['users']:,} — {name}:\n{plan}")


if __name__ == "__main__":
    main()
