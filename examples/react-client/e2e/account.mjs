// End-to-end test of the account pages in the React client (verify email,
// forgot and reset password, change email), in Debian's Chromium, headless,
// against latchkey mailing through a real SMTP server this test runs
// (tests/smtp/server.py, aiosmtpd; see e2e/smtp.mjs):
//
//   npm run e2e:account      (LATCHKEY_BIN=... skips the cargo build)
//
// latchkey's LATCHKEY_APP_URL is the app's origin, so the mailed links open
// the app; the test reads each message from the SMTP server's inbox and opens
// its link in the browser, as the reader would. Screenshots:
// e2e/screenshots/account/.
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { appRoot, freePort, startApp, startLatchkey, stopAll } from "./servers.mjs";
import { check, stepper } from "./steps.mjs";
import { linkIn, startSmtp } from "./smtp.mjs";

const outDir = join(appRoot, "e2e", "screenshots", "account");
const PASSWORD = "correct-Horse-battery-9-staple";
const NEW_PASSWORD = "Quiet-Lantern-Cobalt-42";
const run = Date.now().toString(36);
const user = { name: `ada-${run}`, email: `ada-${run}@example.com` };
const newEmail = `ada-${run}@new.example.com`;
let browser;
let smtp;

const step = stepper(outDir);

async function main() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  smtp = await startSmtp();
  const appPort = await freePort();
  const appOrigin = `http://127.0.0.1:${appPort}`;
  const apiUrl = await startLatchkey({
    appOrigins: [appOrigin],
    accessSeconds: 300,
    loginFailures: 10,
    outDir,
    extraEnv: {
      LATCHKEY_SMTP_URL: smtp.url,
      LATCHKEY_APP_URL: appOrigin,
      LATCHKEY_MAIL_FROM: "Acme <no-reply@acme.example>",
      LATCHKEY_APP_NAME: "Acme",
    },
  });
  await startApp({ apiUrl, port: appPort });
  console.log(`e2e account: API ${apiUrl}, app ${appOrigin}, SMTP ${smtp.url} (inbox ${smtp.inbox})`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1000, height: 1100 } });
  const external = [];
  const apiCalls = [];
  context.on("request", (r) => {
    const url = r.url();
    if (url.startsWith(apiUrl)) apiCalls.push(`${r.method()} ${new URL(url).pathname}`);
    else if (!url.startsWith(appOrigin) && !url.startsWith("data:")) external.push(url);
  });
  const page = await context.newPage();
  const form = (name) => page.getByRole("form", { name });
  const signedIn = async (email) => {
    await page.getByRole("heading", { name: `Signed in as ${user.name}` }).waitFor();
    await page.locator('[data-field="email"]').getByText(email, { exact: true }).waitFor();
  };
  /** /auth/me with the access token the app stored, straight from here. */
  const me = async () => {
    const session = JSON.parse(await page.evaluate(() => localStorage.getItem("latchkey.session")));
    const r = await fetch(`${apiUrl}/auth/me`, { headers: { Authorization: `Bearer ${session.tokens.access}` } });
    assert.equal(r.status, 200);
    return r.json();
  };
  const login = async (password) => {
    const f = form("Log in");
    await f.getByLabel("Email").fill(user.email);
    await f.getByLabel("Password").fill(password);
    await f.getByRole("button", { name: "Log in" }).click();
  };

  await step("register: the verification mail arrives", page, async () => {
    await page.goto(appOrigin);
    await page.getByText("You are logged out.").waitFor();
    const f = form("Register");
    await f.getByLabel("Name").fill(user.name);
    await f.getByLabel("Email").fill(user.email);
    await f.getByLabel("Password").fill(PASSWORD);
    await f.getByRole("button", { name: "Register" }).click();
    await signedIn(user.email);
    await page.locator('[data-field="email-verified"]').getByText("Not verified yet").waitFor();
    check(true, "signed in; the profile says the address is not verified yet");
    const mail = await smtp.waitFor({ to: user.email, subject: "confirm your email address" });
    check(mail.mail_from === "no-reply@acme.example", `the mail came from LATCHKEY_MAIL_FROM (${mail.mail_from})`);
    check(mail.subject === "Acme: confirm your email address", `subject "${mail.subject}"`);
    user.verifyLink = linkIn(mail, appOrigin, "/verify-email");
    check(true, "the message links to the app's /verify-email page");
  });

  await step("resend the verification email", page, async () => {
    await page.getByRole("button", { name: "Resend the verification email" }).click();
    await page.locator('[data-field="email-message"]').getByText("Verification email sent.").waitFor();
    const mails = () => smtp.received().filter((m) => m.rcpt_tos.includes(user.email) && m.subject.includes("confirm"));
    const deadline = Date.now() + 15_000;
    while (mails().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    check(mails().length === 2, "a second verification mail arrived");
  });

  await step("open the verification link", page, async () => {
    const before = apiCalls.length;
    await page.goto(user.verifyLink);
    await form("Verify email").getByRole("button", { name: "Verify my email" }).waitFor();
    check(
      !apiCalls.slice(before).some((c) => c.includes("/auth/email/verify")),
      "opening the link POSTs nothing: the page waits for the button",
    );
    await form("Verify email").getByRole("button", { name: "Verify my email" }).click();
    await page.getByRole("status").getByText("Email verified.").waitFor();
    check(true, "the page says the email is verified");
    await page.getByRole("link", { name: "Back to the app" }).click();
    await signedIn(user.email);
    await page.locator('[data-field="email-verified"]').getByText("Verified", { exact: true }).waitFor();
    check((await me()).email_verified === true, "/auth/me says email_verified: true");
  });

  await step("forgot password: the reset mail arrives", page, async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You are logged out.").waitFor();
    await page.getByRole("link", { name: "Forgot your password?" }).click();
    const f = form("Send a reset link");
    await f.getByLabel("Email").fill(user.email);
    await f.getByRole("button", { name: "Send me a reset link" }).click();
    await page.getByRole("status").getByText("If an account with this email exists").waitFor();
    check(true, "the page shows the API's same-for-everyone answer");
    const mail = await smtp.waitFor({ to: user.email, subject: "reset your password" });
    user.resetLink = linkIn(mail, appOrigin, "/reset-password");
    check(true, "the message links to the app's /reset-password page");
  });

  await step("reset password: a weak password is refused, the token kept", page, async () => {
    await page.goto(user.resetLink);
    const f = form("New password");
    await f.getByLabel("New password").fill("password");
    await f.getByRole("button", { name: "Set the new password" }).click();
    const errors = page.locator("#reset-password-errors");
    await errors.waitFor();
    check((await errors.textContent()).length > 0, `the refusal is shown under the field: "${await errors.textContent()}"`);
    check(page.url() === user.resetLink, "the page keeps the token");
  });

  await step("reset password: the new password", page, async () => {
    const f = form("New password");
    await f.getByLabel("New password").fill(NEW_PASSWORD);
    await f.getByRole("button", { name: "Set the new password" }).click();
    await page.getByRole("status").getByText("Password has been reset.").waitFor();
    check(true, "the same token set the new password");
    const notice = await smtp.waitFor({ to: user.email, subject: "your password was changed" });
    check(!/token=/.test(notice.text), "the \"password changed\" notice arrived, with no link token in it");
  });

  await step("log in: the old password is refused, the new one works", page, async () => {
    await page.getByRole("link", { name: "Log in" }).click();
    await form("Log in").waitFor();
    await login(PASSWORD);
    await form("Log in").getByRole("alert").waitFor();
    check(true, `the old password is refused ("${await form("Log in").getByRole("alert").textContent()}")`);
    await login(NEW_PASSWORD);
    await signedIn(user.email);
    check(true, "signed in with the new password");
  });

  await step("change email: confirmation to the new address, notice to the old", page, async () => {
    const f = form("Change email");
    await f.getByLabel("New email").fill(newEmail);
    await f.getByLabel("Password").fill("not-the-password");
    await f.getByRole("button", { name: "Change email" }).click();
    await page.locator("#change-password-errors").getByText("Incorrect password.").waitFor();
    check(true, "a wrong password is refused under its field");
    await f.getByLabel("Password").fill(NEW_PASSWORD);
    await f.getByRole("button", { name: "Change email" }).click();
    await page.locator('[data-field="email-message"]').getByText("A confirmation link has been sent").waitFor();
    const confirm = await smtp.waitFor({ to: newEmail, subject: "confirm your new email address" });
    user.changeLink = linkIn(confirm, appOrigin, "/confirm-email-change");
    check(true, "the confirmation link went to the new address");
    const notice = await smtp.waitFor({ to: user.email, subject: "your email address is being changed" });
    check(notice.text.includes(newEmail) && !/token=/.test(notice.text), "the old address got a notice naming the new one");
    check((await me()).email === user.email, "nothing changed before the confirmation");
  });

  await step("confirm the email change", page, async () => {
    const before = apiCalls.length;
    await page.goto(user.changeLink);
    const f = form("Confirm email change");
    await f.getByRole("button", { name: "Confirm the new address" }).waitFor();
    check(!apiCalls.slice(before).some((c) => c.includes("/auth/email/change")), "opening the link POSTs nothing");
    await f.getByRole("button", { name: "Confirm the new address" }).click();
    await page.getByRole("status").getByText("Email changed.").waitFor();
    await page.getByRole("link", { name: "Back to the app" }).click();
    await signedIn(newEmail);
    check(true, `the profile shows the new address (${newEmail})`);
    const now = await me();
    check(now.email === newEmail && now.email_verified === true, "/auth/me: the new address, verified");
  });

  await step("a used link is refused", page, async () => {
    await page.goto(user.changeLink);
    const f = form("Confirm email change");
    await f.getByRole("button", { name: "Confirm the new address" }).click();
    await f.getByRole("alert").getByText("Invalid or expired token.").waitFor();
    check(true, "the page shows the API's token error");
  });

  check(external.length === 0, `nothing was fetched from elsewhere (${external.join(", ")})`);
  console.log(`\ne2e account: all checks passed; ${smtp.received().length} messages went through ${smtp.url}.`);
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`\ne2e account FAILED: ${error.stack ?? error}`);
  console.error(`Screenshots and server log: ${outDir}`);
} finally {
  await browser?.close().catch(() => {});
  await stopAll();
  await smtp?.stop().catch(() => {});
}
process.exit(failed ? 1 : 0);
