// The processes and pages the end-to-end test runs against: the API
// (latchkey or the Django reference), the app (built and served by Vite, in
// this process) and a "foreign" page on an origin the API does not allow.
import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const appRoot = join(here, "..");
const repoRoot = join(appRoot, "..", "..");
export const djangoRoot = process.env.DJANGO_REFERENCE_DIR || join(repoRoot, "tests", "django");

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Everything started here, stopped in reverse order by `stopAll` (also on failure). */
const running = [];

export async function stopAll() {
  while (running.length) {
    try {
      await running.pop()();
    } catch {
      // Already gone.
    }
  }
}

/** Starts `command` in its own process group, output to `logFile`; `stopAll` kills the group. */
function startProcess(command, args, { env, cwd, logFile }) {
  const log = createWriteStream(logFile);
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, detached: true });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = false;
  const done = new Promise((resolve) => child.on("exit", () => resolve((exited = true))));
  running.push(async () => {
    if (exited) return;
    process.kill(-child.pid, "SIGTERM");
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000, "timeout"));
    if ((await Promise.race([done, timeout])) === "timeout") process.kill(-child.pid, "SIGKILL");
  });
  return { child, isRunning: () => !exited };
}

/** Polls `url` until it answers 200, or fails after `seconds` with the server's log. */
async function waitFor(url, { seconds, isRunning, logFile }) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (!isRunning()) break;
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const log = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-3000) : "";
  throw new Error(`${url} did not come up within ${seconds}s.\n${log}`);
}

/**
 * The latchkey binary: LATCHKEY_BIN, or a fresh `cargo build --release` at
 * the repository root (once per process: LATCHKEY_BIN is set after it).
 */
export function latchkeyBinary() {
  if (process.env.LATCHKEY_BIN) return process.env.LATCHKEY_BIN;
  console.log("e2e: cargo build --release --bin latchkey (set LATCHKEY_BIN to skip)");
  execFileSync("cargo", ["build", "--release", "--bin", "latchkey"], { cwd: repoRoot, stdio: "inherit" });
  const targetDir = process.env.CARGO_TARGET_DIR || join(repoRoot, "target");
  process.env.LATCHKEY_BIN = join(targetDir, "release", "latchkey");
  return process.env.LATCHKEY_BIN;
}

/**
 * Starts latchkey on a free port with a fresh SQLite file, allowing only
 * the `appOrigins`. Access tokens live `accessSeconds`, so the refresh path runs
 * for real; the per-account login limit is low so the 429 shows quickly.
 */
export async function startLatchkey({ appOrigins, accessSeconds, loginFailures, outDir, extraEnv = {} }) {
  const binary = latchkeyBinary();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "latchkey-e2e-"));
  const logFile = join(outDir, "latchkey.log");
  const { isRunning } = startProcess(binary, ["serve"], {
    logFile,
    env: {
      LATCHKEY_BIND: `127.0.0.1:${port}`,
      LATCHKEY_DATABASE_URL: `sqlite://${join(dataDir, "e2e.db")}`,
      LATCHKEY_ALLOWED_ORIGINS: appOrigins.join(","),
      LATCHKEY_ACCESS_TOKEN_LIFETIME_SECONDS: String(accessSeconds),
      // One instance, one clock: tokens expire at their `exp`, as the
      // refresh steps expect (the default leeway is for skewed instances).
      LATCHKEY_CLOCK_LEEWAY_SECONDS: "0",
      LATCHKEY_LOGIN_FAILURES_PER_ACCOUNT: String(loginFailures),
      // Every test user registers from 127.0.0.1.
      LATCHKEY_REGISTRATIONS_PER_ADDRESS: "100000",
      // Revocation seen by the very next request, not after the cache's half second.
      LATCHKEY_SESSION_CACHE_MILLIS: "0",
      // Mail (verification links) as .eml files beside the database, not in the working tree.
      LATCHKEY_MAIL_DIR: join(dataDir, "mail"),
      LATCHKEY_LOG: "warn",
      ...extraEnv,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/healthz`, { seconds: 30, isRunning, logFile });
  return url;
}

/**
 * Starts the Django reference with `serve.sh PORT`, on a fresh SQLite file.
 * `e2e/django/e2e_settings.py` imports the reference's settings unchanged and
 * overrides only what latchkey's run sets through its environment: the
 * database file, the access token lifetime and the app's origin in the CORS
 * list.
 */
export async function startDjango({ appOrigins, accessSeconds, outDir }) {
  const python = join(djangoRoot, ".venv", "bin", "python");
  if (!existsSync(python)) {
    console.log(`e2e: ${djangoRoot}/setup.sh`);
    execFileSync(join(djangoRoot, "setup.sh"), { stdio: "inherit" });
  }
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "django-e2e-"));
  const env = {
    DJANGO_SETTINGS_MODULE: "e2e_settings",
    PYTHONPATH: join(here, "django"),
    PYTHONDONTWRITEBYTECODE: "1",
    E2E_DJANGO_DB: join(dataDir, "e2e.sqlite3"),
    E2E_APP_ORIGINS: appOrigins.join(","),
    E2E_ACCESS_SECONDS: String(accessSeconds),
  };
  execFileSync(python, ["manage.py", "migrate", "-v0"], { cwd: djangoRoot, env: { ...process.env, ...env } });
  const logFile = join(outDir, "django.log");
  const { isRunning } = startProcess(join(djangoRoot, "serve.sh"), [String(port), "2"], { env, logFile });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/auth/csrf/`, { seconds: 30, isRunning, logFile });
  return url;
}

/** Builds the app with VITE_API_URL=apiUrl and serves it with `vite preview` on `port`. */
export async function startApp({ apiUrl, port }) {
  const { build, preview } = await import("vite");
  const outDir = mkdtempSync(join(tmpdir(), "react-client-e2e-"));
  process.env.VITE_API_URL = apiUrl;
  await build({ root: appRoot, logLevel: "warn", build: { outDir, emptyOutDir: true } });
  const server = await preview({
    root: appRoot,
    logLevel: "warn",
    build: { outDir },
    preview: { host: "127.0.0.1", port, strictPort: true },
  });
  running.push(() => server.close());
  return `http://127.0.0.1:${port}`;
}

/** Serves e2e/foreign.html on 127.0.0.1:port, reachable as localhost:port too. */
export async function startForeignPage(port) {
  const html = readFileSync(join(here, "foreign.html"));
  const server = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  running.push(() => new Promise((resolve) => server.close(resolve)));
}
