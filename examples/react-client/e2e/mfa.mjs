// End-to-end test of two-factor authentication in the React client, in
// Debian's Chromium, headless, against latchkey:
//
//   npm run e2e:mfa          (LATCHKEY_BIN=... skips the cargo build)
//
// Register, enable TOTP (the QR code is drawn in the page; the test reads the
// secret the page shows, as a user typing it into an app would), confirm
// with a code this test computes (RFC 6238, node:crypto), log out, log in:
// the password alone asks for a code; a wrong code is refused, a right one
// signs in. Then once more with a recovery code. Screenshots: e2e/screenshots/mfa/.
import { createHmac } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { appRoot, freePort, startApp, startLatchkey, stopAll } from "./servers.mjs";
import { check, stepper } from "./steps.mjs";

const outDir = join(appRoot, "e2e", "screenshots", "mfa");
const PASSWORD = "correct-Horse-battery-9-staple";
const run = Date.now().toString(36);
const user = { name: `grace-${run}`, email: `grace-${run}@example.com` };
let browser;

const step = stepper(outDir);

/** RFC 4648 base32 decoded. */
function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of `secret` at Unix time `t`. */
function totp(secret, t) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const d = createHmac("sha1", base32(secret)).update(counter).digest();
  const o = d[19] & 0xf;
  const n = ((d[o] & 0x7f) << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3];
  return String(n % 1_000_000).padStart(6, "0");
}
const now = () => Math.floor(Date.now() / 1000);

async function main() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const appPort = await freePort();
  const appOrigin = `http://127.0.0.1:${appPort}`;
  const apiUrl = await startLatchkey({ appOrigins: [appOrigin], accessSeconds: 300, loginFailures: 10, outDir });
  await startApp({ apiUrl, port: appPort });
  console.log(`e2e mfa: API ${apiUrl}, app ${appOrigin}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const external = [];
  context.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(appOrigin) && !url.startsWith(apiUrl) && !url.startsWith("data:")) external.push(url);
  });
  const page = await context.newPage();
  const form = (name) => page.getByRole("form", { name });
  const signedIn = () => page.getByRole("heading", { name: `Signed in as ${user.name}` });
  let secret;
  let recovery;

  await step("register", page, async () => {
    await page.goto(appOrigin);
    await page.getByText("You are logged out.").waitFor();
    const f = form("Register");
    await f.getByLabel("Name").fill(user.name);
    await f.getByLabel("Email").fill(user.email);
    await f.getByLabel("Password").fill(PASSWORD);
    await f.getByRole("button", { name: "Register" }).click();
    await signedIn().waitFor();
    await page.locator('[data-field="mfa-state"]').getByText("Off").waitFor();
    check(true, "signed in; two-factor authentication is off");
  });

  await step("enable: QR code and secret", page, async () => {
    const f = form("Enable two-factor authentication");
    await f.getByLabel("Password").fill("not-the-password");
    await f.getByRole("button", { name: "Enable two-factor authentication" }).click();
    await page.getByRole("alert").getByText("Incorrect password.").waitFor();
    check(true, "a wrong password is refused with the API's message");
    await f.getByLabel("Password").fill(PASSWORD);
    await f.getByRole("button", { name: "Enable two-factor authentication" }).click();
    const qr = page.getByRole("img", { name: "QR code of the authenticator secret" });
    await qr.waitFor();
    check((await qr.getAttribute("src")).startsWith("data:image/png;base64,"), "the QR code is drawn in the page");
    secret = (await page.locator('[data-field="totp-secret"]').textContent()).trim();
    check(/^[A-Z2-7]{32}$/.test(secret), "the page shows the base32 secret");
  });

  await step("confirm with a code", page, async () => {
    const f = form("Confirm two-factor authentication");
    await f.getByLabel("Code from the app").fill("000000" === totp(secret, now()) ? "111111" : "000000");
    await f.getByRole("button", { name: "Confirm" }).click();
    await page.getByRole("alert").getByText("Invalid code.").waitFor();
    check(true, "a wrong code is refused");
    await f.getByLabel("Code from the app").fill(totp(secret, now()));
    await f.getByRole("button", { name: "Confirm" }).click();
    await page.locator('[data-field="mfa-state"]').getByText("On (10 recovery codes left)").waitFor();
    recovery = await page.locator('[data-field="recovery-code"]').allTextContents();
    check(recovery.length === 10, "ten recovery codes are shown");
  });

  const logOutAndIn = async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You are logged out.").waitFor();
    const f = form("Log in");
    await f.getByLabel("Email").fill(user.email);
    await f.getByLabel("Password").fill(PASSWORD);
    await f.getByRole("button", { name: "Log in" }).click();
    await form("Two-factor code").waitFor();
  };

  await step("log out, log in: a code is asked for", page, async () => {
    await logOutAndIn();
    check(!(await signedIn().isVisible()), "the password alone does not sign in");
    const stored = await page.evaluate(() => localStorage.getItem("latchkey.session"));
    check(stored === null, "no tokens were stored after the password step");
  });

  await step("a wrong code, then the right one", page, async () => {
    const f = form("Two-factor code");
    const near = [-30, 0, 30].map((d) => totp(secret, now() + d));
    const wrong = ["000000", "111111", "222222", "333333"].find((c) => !near.includes(c));
    await f.getByLabel(/Code from your authenticator app/).fill(wrong);
    await f.getByRole("button", { name: "Verify" }).click();
    await page.locator("#login-code-errors").getByText("Invalid code.").waitFor();
    check(true, "a wrong code is refused");
    // The confirmation spent this step's code: the next step's is accepted (±1 step).
    await f.getByLabel(/Code from your authenticator app/).fill(totp(secret, now() + 30));
    await f.getByRole("button", { name: "Verify" }).click();
    await signedIn().waitFor();
    check(true, "signed in with a TOTP code");
  });

  await step("log out, log in with a recovery code", page, async () => {
    await logOutAndIn();
    const f = form("Two-factor code");
    await f.getByLabel(/Code from your authenticator app/).fill(recovery[0]);
    await f.getByRole("button", { name: "Verify" }).click();
    await signedIn().waitFor();
    await page.locator('[data-field="mfa-state"]').getByText("On (9 recovery codes left)").waitFor();
    check(true, "signed in with a recovery code; nine are left");
  });

  check(external.length === 0, `nothing was fetched from elsewhere (${external.join(", ")})`);
  console.log("\ne2e mfa: all checks passed.");
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`\ne2e mfa FAILED: ${error.stack ?? error}`);
  console.error(`Screenshots and server log: ${outDir}`);
} finally {
  await browser?.close().catch(() => {});
  await stopAll();
}
process.exit(failed ? 1 : 0);
