// Starts a real latchkey (the release binary CI's e2e built) on a free port
// with a fresh SQLite file, for the tests that drive the client against it.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export function latchkeyBinary(): string | null {
  const binary =
    process.env.LATCHKEY_BIN || join(process.env.CARGO_TARGET_DIR || join(repoRoot, "target"), "release", "latchkey");
  return existsSync(binary) ? binary : null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Running {
  url: string;
  metric(name: string, labels?: string): Promise<number>;
  /** The token of the newest mailed link to `path` (e.g. `/reset-password`) sent to `to`; waits up to 10 s. */
  mailToken(to: string, path: string, after?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startLatchkey(binary: string, env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "latchkey-client-test-"));
  let output = "";
  const child: ChildProcess = spawn(binary, ["serve"], {
    env: {
      ...process.env,
      LATCHKEY_BIND: `127.0.0.1:${port}`,
      LATCHKEY_DATABASE_URL: `sqlite://${join(dir, "test.db")}`,
      LATCHKEY_CLOCK_LEEWAY_SECONDS: "0",
      LATCHKEY_REGISTRATIONS_PER_ADDRESS: "100000",
      LATCHKEY_SESSION_CACHE_MILLIS: "0",
      LATCHKEY_LOG: "warn",
      LATCHKEY_MAIL_DIR: join(dir, "mail"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`latchkey exited: ${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`latchkey did not start: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async metric(name, labels = "") {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
      return line ? Number(line.split(" ").at(-1)) : 0;
    },
    async mailToken(to, path, after = 0) {
      const mailDir = join(dir, "mail");
      const deadline = Date.now() + 10000;
      for (;;) {
        const files = existsSync(mailDir) ? readdirSync(mailDir).filter((f) => f.endsWith(".eml")).sort() : [];
        const tokens = files
          .map((f) => readFileSync(join(mailDir, f), "utf8"))
          .filter((raw) => raw.split(/\r?\n/).some((l) => l.startsWith("To: ") && l.includes(to)))
          // Quoted-printable: soft line breaks and `=3D` undone.
          .map((raw) => raw.replace(/=\r?\n/g, "").replace(/=3D/g, "="))
          .map((text) => text.match(new RegExp(`${path}\\?token=([A-Za-z0-9_-]{43})`))?.[1])
          .filter((t): t is string => t !== undefined);
        if (tokens.length > after) return tokens.at(-1)!;
        if (Date.now() > deadline) throw new Error(`no mail to ${to} with a ${path} link`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
