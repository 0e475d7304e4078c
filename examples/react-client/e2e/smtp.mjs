// The SMTP server the account e2e mails through: the repository's one SMTP
// test harness, tests/smtp/server.py (aiosmtpd, pinned in
// tests/smtp/requirements.txt), which the Rust tests run too. Its Python:
// LATCHKEY_TEST_SMTP_PYTHON, else tests/smtp/.venv, else the venv the Rust
// tests made under the target directory (tmp/smtp-venv), else
// tests/smtp/.venv made here by tests/smtp/setup.sh (PyPI the first time).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { appRoot } from "./servers.mjs";

const smtpRoot = join(appRoot, "..", "..", "tests", "smtp");

function python() {
  if (process.env.LATCHKEY_TEST_SMTP_PYTHON) return process.env.LATCHKEY_TEST_SMTP_PYTHON;
  const venvPython = join(smtpRoot, ".venv", "bin", "python");
  const targetDir = process.env.CARGO_TARGET_DIR || join(smtpRoot, "..", "..", "target");
  const cargoVenvPython = join(targetDir, "tmp", "smtp-venv", "bin", "python");
  if (!existsSync(venvPython) && existsSync(cargoVenvPython)) return cargoVenvPython;
  if (!existsSync(venvPython)) {
    console.log(`e2e: ${smtpRoot}/setup.sh (aiosmtpd from PyPI)`);
    execFileSync("bash", [join(smtpRoot, "setup.sh")], { stdio: "inherit" });
  }
  return venvPython;
}

/** Undo quoted-printable soft breaks and `=3D`, so links can be read. */
export function decoded(raw) {
  return raw.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
}

/**
 * Starts the SMTP server on a free port of 127.0.0.1; `stop()` ends it (and
 * it ends by itself when this process goes: its stdin closes).
 */
export async function startSmtp() {
  const inbox = mkdtempSync(join(tmpdir(), "latchkey-e2e-smtp-"));
  const child = spawn(python(), [join(smtpRoot, "server.py"), "--dir", inbox], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const line = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`tests/smtp/server.py exited (${code}) before listening`)));
  });
  const { port } = JSON.parse(line);

  /** Every message so far, oldest first: `{mail_from, rcpt_tos, data, subject, text}`. */
  function received() {
    return readdirSync(inbox)
      .filter((name) => name.endsWith(".json"))
      .sort()
      .map((name) => {
        const m = JSON.parse(readFileSync(join(inbox, name), "utf8"));
        const subject = /^Subject: (.*)$/m.exec(m.data)?.[1]?.trim() ?? "";
        return { ...m, subject, text: decoded(m.data) };
      });
  }

  /** Waits (up to `seconds`) for a message to `to` whose subject contains `subject`. */
  async function waitFor({ to, subject, seconds = 15 }) {
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      const found = received().find((m) => m.rcpt_tos.includes(to) && m.subject.includes(subject));
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seen = received().map((m) => `${m.rcpt_tos.join(",")}: ${m.subject}`);
    throw new Error(`no message "${subject}" to ${to} within ${seconds}s; received: ${JSON.stringify(seen)}`);
  }

  async function stop() {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }

  return { url: `smtp://127.0.0.1:${port}`, port, inbox, received, waitFor, stop };
}

/** The link to `path` (e.g. `/verify-email`) in a message, as the reader would click it. */
export function linkIn(message, origin, path) {
  const escaped = `${origin}${path}`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = new RegExp(`${escaped}\\?token=[A-Za-z0-9_-]{43}`).exec(message.text);
  if (!match) throw new Error(`no ${origin}${path} link in "${message.subject}":\n${message.text}`);
  return match[0];
}
