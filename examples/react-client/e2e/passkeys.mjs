// End-to-end test of passkeys in the React client, in Debian's Chromium,
// headless, against latchkey, with a DevTools virtual authenticator (CTAP2,
// internal transport, resident keys, user verification):
//
//   npm run e2e:passkeys     (LATCHKEY_BIN=... skips the cargo build)
//
// Register with a password, add a passkey on the profile page, log out: the
// email field's autofill (conditional UI, which the virtual authenticator
// answers at once) signs in with it, no email typed. Then a fresh browser
// context (no cookies, no storage), its authenticator given the same
// credential after the page's autofill request found none: the "Sign in
// with a passkey" button signs in. Delete the passkey; it signs in no more. The
// page uses only PublicKeyCredential.parseCreationOptionsFromJSON /
// parseRequestOptionsFromJSON and credential.toJSON(). The app is served on
// `localhost` (an IP address cannot be a relying party id).
// Screenshots: e2e/screenshots/passkeys/.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { appRoot, freePort, startApp, startLatchkey, stopAll } from "./servers.mjs";
import { check, stepper } from "./steps.mjs";

const outDir = join(appRoot, "e2e", "screenshots", "passkeys");
const PASSWORD = "correct-Horse-battery-9-staple";
const run = Date.now().toString(36);
const user = { name: `ada-${run}`, email: `ada-${run}@example.com` };
let browser;

const step = stepper(outDir);

/** Every navigator.credentials call of the page, recorded before the app runs. */
function recordWebAuthnCalls() {
  window.__webauthn = [];
  const { create, get } = navigator.credentials;
  navigator.credentials.create = function (options) {
    window.__webauthn.push({ call: "create", mediation: options?.mediation ?? null });
    return create.call(this, options);
  };
  navigator.credentials.get = function (options) {
    const record = { call: "get", mediation: options?.mediation ?? null, outcome: "pending" };
    window.__webauthn.push(record);
    const answer = get.call(this, options);
    answer.then(
      () => (record.outcome = "resolved"),
      (e) => (record.outcome = e.name),
    );
    return answer;
  };
}

/** A page in a new context with a virtual platform authenticator; its CDP session and id. */
async function pageWithAuthenticator(appOrigin, apiUrl) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 1000 } });
  const external = [];
  context.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(appOrigin) && !url.startsWith(apiUrl) && !url.startsWith("data:")) external.push(url);
  });
  await context.addInitScript(recordWebAuthnCalls);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { context, page, cdp, authenticatorId, external };
}

async function main() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const appPort = await freePort();
  const appOrigin = `http://localhost:${appPort}`;
  const apiUrl = (
    await startLatchkey({
      appOrigins: [appOrigin],
      accessSeconds: 300,
      loginFailures: 10,
      outDir,
      extraEnv: { LATCHKEY_WEBAUTHN_RP_ID: "localhost", LATCHKEY_LOG: "info" },
    })
  ).replace("127.0.0.1", "localhost");
  await startApp({ apiUrl, port: appPort });
  console.log(`e2e passkeys: API ${apiUrl}, app ${appOrigin}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });

  const first = await pageWithAuthenticator(appOrigin, apiUrl);
  let page = first.page;
  const form = (name) => page.getByRole("form", { name });
  const signedIn = () => page.getByRole("heading", { name: `Signed in as ${user.name}` });
  const webauthnCalls = () => page.evaluate(() => window.__webauthn);

  await step("register with a password", page, async () => {
    await page.goto(appOrigin);
    await page.getByText("You are logged out.").waitFor();
    const f = form("Register");
    await f.getByLabel("Name").fill(user.name);
    await f.getByLabel("Email").fill(user.email);
    await f.getByLabel("Password").fill(PASSWORD);
    await f.getByRole("button", { name: "Register" }).click();
    await signedIn().waitFor();
    await page.locator('[data-field="passkeys-state"]').getByText("No passkeys yet.").waitFor();
    check(true, "signed in; no passkeys yet");
  });

  await step("add a passkey", page, async () => {
    const f = form("Add a passkey");
    await f.getByLabel("Name for the new passkey").fill("Laptop");
    await f.getByRole("button", { name: "Add a passkey" }).click();
    await page.getByRole("status").getByText('Passkey "Laptop" added.').waitFor();
    await page.locator('[data-field="passkey-name"]').first().waitFor();
    const names = await page.locator('[data-field="passkey-name"]').allTextContents();
    check(names.length === 1 && names[0] === "Laptop", "the profile lists the passkey by its name");
    const { credentials } = await first.cdp.send("WebAuthn.getCredentials", { authenticatorId: first.authenticatorId });
    check(credentials.length === 1 && credentials[0].isResidentCredential, "the authenticator holds one discoverable credential");
    check(credentials[0].rpId === "localhost", "bound to the rp id localhost");
    const mfa = await page.evaluate(async (api) => {
      const stored = JSON.parse(localStorage.getItem("latchkey.session"));
      const r = await fetch(`${api}/auth/mfa`, { headers: { Authorization: `Bearer ${stored.tokens.access}` } });
      return r.json();
    }, apiUrl);
    check(mfa.passkeys === 1, "GET /auth/mfa counts it");
  });

  await step("log out: the email field's autofill signs in with the passkey", page, async () => {
    // The virtual authenticator answers a conditional request at once, as a
    // user picking the passkey from the email field's autofill would.
    await page.getByRole("button", { name: "Log out" }).click();
    await signedIn().waitFor();
    const calls = await webauthnCalls();
    check(calls.some((c) => c.call === "get" && c.mediation === "conditional"), 'signed in by the conditional request (mediation: "conditional")');
    check(!calls.some((c) => c.call === "get" && c.mediation === null), "no dialog, no email typed");
  });

  // The credential, private key included, as the virtual authenticator holds it.
  const { credentials } = await first.cdp.send("WebAuthn.getCredentials", { authenticatorId: first.authenticatorId });
  await first.context.close();

  const fresh = await pageWithAuthenticator(appOrigin, apiUrl);
  page = fresh.page;
  await step("a fresh browser context: passkeys offered in autofill and by a button", page, async () => {
    // The authenticator is empty while the page loads, so the autofill's
    // conditional request finds nothing; then it gets the first context's credential.
    await page.goto(appOrigin);
    await page.getByText("You are logged out.").waitFor();
    check((await page.evaluate(() => localStorage.length)) === 0, "no session of the first context is here");
    const email = form("Log in").getByLabel("Email");
    check((await email.getAttribute("autocomplete")) === "username webauthn", 'the email field has autocomplete="username webauthn"');
    await form("Log in").getByRole("button", { name: "Sign in with a passkey" }).waitFor();
    await page.waitForFunction(() => window.__webauthn.some((c) => c.call === "get" && c.mediation === "conditional"));
    await fresh.cdp.send("WebAuthn.addCredential", { authenticatorId: fresh.authenticatorId, credential: credentials[0] });
    const calls = await webauthnCalls();
    // The virtual authenticator answers a conditional request at once: with
    // no credential, NotAllowedError (a real browser's autofill would wait).
    check(
      calls.length === 1 && calls[0].mediation === "conditional" && calls[0].outcome !== "resolved",
      `the page asked for the autofill's passkeys (conditional), which found none (${calls[0]?.outcome})`,
    );
  });

  await step("sign in with the passkey button, no email typed", page, async () => {
    await form("Log in").getByRole("button", { name: "Sign in with a passkey" }).click();
    await signedIn().waitFor();
    const calls = await webauthnCalls();
    check(
      calls.some((c) => c.mediation === null && c.outcome === "resolved") &&
        calls.every((c) => c.mediation !== "conditional" || c.outcome !== "resolved"),
      "the button's request (the browser's dialog) signed in",
    );
    await page.locator('[data-field="passkey-name"]').first().waitFor();
    const names = await page.locator('[data-field="passkey-name"]').allTextContents();
    check(names.length === 1 && names[0] === "Laptop", "signed in as the same user, who has the one passkey");
    const used = await page.locator('[data-field="passkey"]').textContent();
    check(used.includes("last used"), "the passkey shows when it was last used");
  });

  await step("delete the passkey", page, async () => {
    await page.getByRole("button", { name: "Delete passkey Laptop" }).click();
    await page.getByRole("status").getByText('Passkey "Laptop" deleted.').waitFor();
    await page.locator('[data-field="passkeys-state"]').getByText("No passkeys yet.").waitFor();
    check(true, "the list is empty");
  });

  await step("a deleted passkey signs in no more", page, async () => {
    // The authenticator still holds the credential: the autofill's request
    // is answered at once, and the API refuses it; so does the button.
    await page.getByRole("button", { name: "Log out" }).click();
    const refused = form("Log in").getByRole("alert").getByText("No active account found with the given credentials");
    await refused.waitFor();
    check(!(await signedIn().isVisible()), "the autofill's assertion is refused with the API's message");
    await form("Log in").getByRole("button", { name: "Sign in with a passkey" }).click();
    await refused.waitFor();
    check(!(await signedIn().isVisible()), "so is the button's");
  });

  const external = [...first.external, ...fresh.external];
  check(external.length === 0, `nothing was fetched from elsewhere (${external.join(", ")})`);
  console.log("\ne2e passkeys: all checks passed.");
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`\ne2e passkeys FAILED: ${error.stack ?? error}`);
  console.error(`Screenshots and server log: ${outDir}`);
} finally {
  await browser?.close().catch(() => {});
  await stopAll();
}
process.exit(failed ? 1 : 0);
