// End-to-end test of the React client in Debian's Chromium, headless.
//
//   npm run e2e              against latchkey (LATCHKEY_BIN=... skips the cargo build)
//   npm run e2e:django       against the Django reference in tests/django
//
// The app is served on http://127.0.0.1:<port> and the API on another port:
// two origins, so the browser enforces CORS with credentials. They share a
// site (127.0.0.1), so the `csrftoken` cookie is stored and sent as well.
//
// Every check is either part of the seed's contract (it must pass against
// both servers) or a latchkey guarantee the Django reference lacks; against
// Django those are reported as differences instead of failing the run.
// Screenshots of each step: e2e/screenshots/<target>/.
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { appRoot, freePort, startApp, startDjango, startForeignPage, startLatchkey, stopAll } from "./servers.mjs";

const target = process.argv.includes("--target=django") || process.env.E2E_TARGET === "django" ? "django" : "latchkey";
const outDir = join(appRoot, "e2e", "screenshots", target);
const ACCESS_SECONDS = 3;
const LOGIN_FAILURES = 3;
const PASSWORD = "correct-Horse-battery-9-staple";
const run = Date.now().toString(36);
const user = { name: `ada-${run}`, email: `ada-${run}@example.com` };

const differences = [];
let stepNumber = 0;
let browser;

/** A check of the seed's contract: must hold against both servers. */
function seed(condition, what) {
  assert.ok(condition, what);
  console.log(`    ✓ ${what}`);
}

/** A latchkey guarantee: fails the latchkey run, recorded as a difference against Django. */
function latchkeyOnly(condition, what) {
  if (condition) return console.log(`    ✓ ${what}`);
  if (target === "django") {
    differences.push(what);
    return console.log(`    ≠ ${what} (not in the Django reference)`);
  }
  assert.fail(what);
}

/** Runs one named step and saves a screenshot of `pages` afterwards (on failure too). */
async function step(title, pages, body) {
  const number = String(++stepNumber).padStart(2, "0");
  const slug = `${number}-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/-$/, "")}`;
  console.log(`  ${number} ${title}`);
  try {
    await body();
  } finally {
    for (const [i, page] of pages().entries()) {
      const suffix = pages().length > 1 ? `-tab${i + 1}` : "";
      await page.screenshot({ path: join(outDir, `${slug}${suffix}.png`), fullPage: true }).catch(() => {});
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const setupStarted = Date.now();
  const appPort = await freePort();
  const appOrigin = `http://127.0.0.1:${appPort}`;
  // The same app opened from another site, where the csrftoken cookie cannot follow.
  const appOtherSite = `http://localhost:${appPort}`;
  const appOrigins = [appOrigin, appOtherSite];
  const apiUrl =
    target === "django"
      ? await startDjango({ appOrigins, accessSeconds: ACCESS_SECONDS, outDir })
      : await startLatchkey({ appOrigins, accessSeconds: ACCESS_SECONDS, loginFailures: LOGIN_FAILURES, outDir });
  await startApp({ apiUrl, port: appPort });
  const foreignPort = await freePort();
  await startForeignPage(foreignPort);
  const setupSeconds = ((Date.now() - setupStarted) / 1000).toFixed(1);
  console.log(`e2e against ${target}: API ${apiUrl}, app ${appOrigin} (set up in ${setupSeconds}s)`);
  const started = Date.now();

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });

  // Every request the pages send to the API, with all their headers.
  // Recording is asynchronous, and "requestfinished" may come just after the
  // page has already shown the answer: `callsTo` lets both settle first.
  const apiCalls = [];
  const recording = new Set();
  context.on("requestfinished", (request) => {
    if (!request.url().startsWith(apiUrl)) return;
    const record = (async () => {
      const response = await request.response();
      apiCalls.push({
        method: request.method(),
        path: new URL(request.url()).pathname,
        headers: await request.allHeaders(),
        body: request.postData(),
        status: response?.status(),
      });
    })();
    recording.add(record);
    record.finally(() => recording.delete(record));
  });
  const callsTo = async (path, method = "POST") => {
    await sleep(250);
    await Promise.all([...recording]);
    return apiCalls.filter((c) => c.method === method && c.path.startsWith(path));
  };
  const cookieToken = async () => (await context.cookies(apiUrl)).find((c) => c.name === "csrftoken")?.value;
  const storedSession = (page) => page.evaluate(() => JSON.parse(localStorage.getItem("latchkey.session")));
  /** An API call made from `page` (so from the app's origin), answering its status. */
  const statusFrom = (page, path, { method = "GET", access, body } = {}) =>
    page.evaluate(
      async ({ url, path, method, access, body }) => {
        const csrf = (await (await fetch(`${url}/auth/csrf/`, { credentials: "include" })).json()).csrfToken;
        const headers = { "X-CSRF-Token": csrf, "Content-Type": "application/json" };
        if (access) headers.Authorization = `Bearer ${access}`;
        const init = { method, credentials: "include", headers, body: body && JSON.stringify(body) };
        return (await fetch(url + path, init)).status;
      },
      { url: apiUrl, method, access, body, path },
    );

  const tab1 = await context.newPage();
  const openTabs = [tab1];
  const tabs = () => openTabs;
  const signedIn = (page) => page.getByRole("heading", { name: `Signed in as ${user.name}` });
  const form = (page, name) => page.getByRole("form", { name });

  async function fill(page, formName, values) {
    const f = form(page, formName);
    for (const [label, value] of Object.entries(values)) await f.getByLabel(label).fill(value);
    await f.getByRole("button", { name: formName }).click();
  }

  await step("start: CSRF token fetched, logged out", tabs, async () => {
    await tab1.goto(appOrigin);
    await tab1.getByText("You are logged out.").waitFor();
    const csrf = await callsTo("/auth/csrf", "GET");
    seed(csrf.length === 1 && csrf[0].status === 200, "the app fetched /auth/csrf/ once, at start");
    seed(Boolean(await cookieToken()), "the browser stored the csrftoken cookie from the cross-origin answer");
  });

  await step("register: validation messages from the 400 body", tabs, async () => {
    const errors = form(tab1, "Register").locator(".errors");
    await fill(tab1, "Register", { Name: user.name, Email: "not-an-email", Password: PASSWORD });
    await errors.first().waitFor();
    seed(
      (await errors.allTextContents()).includes("Enter a valid email address."),
      "the email field shows the API's message",
    );
    // latchkey checks the password once name and email are valid.
    await fill(tab1, "Register", { Email: user.email, Password: "password" });
    await tab1.locator("#register-password-errors").waitFor();
    seed(
      (await errors.allTextContents()).some((t) => t.includes("This password is too common.")),
      "the password field shows the API's message",
    );
  });

  await step("register", tabs, async () => {
    await fill(tab1, "Register", { Password: PASSWORD });
    await signedIn(tab1).waitFor();
    seed((await tab1.locator('[data-field="email"]').textContent()) === user.email, "the user is shown");
    seed((await callsTo("/auth/me", "GET")).at(-1)?.status === 200, "the user shown is /auth/me's answer");
    const posts = await callsTo("/");
    const token = posts[0]?.headers["x-csrf-token"];
    seed(Boolean(token) && posts.every((c) => c.headers["x-csrf-token"] === token), "every POST carries X-CSRF-Token");
    seed(
      posts.every((c) => c.headers.cookie?.includes("csrftoken=")),
      "every POST carries the csrftoken cookie (credentials: include)",
    );
    latchkeyOnly(token === (await cookieToken()), "the header's token equals the cookie's");
    const withoutCsrf = await tab1.evaluate(
      async ({ url, body }) =>
        (
          await fetch(`${url}/auth/login`, {
            method: "POST",
            credentials: "include",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(body),
          })
        ).status,
      { url: apiUrl, body: { email: user.email, password: PASSWORD } },
    );
    latchkeyOnly(withoutCsrf === 403, `a login without X-CSRF-Token is refused with 403 (got ${withoutCsrf})`);
  });

  await step("reload keeps the session", tabs, async () => {
    await tab1.reload();
    await signedIn(tab1).waitFor();
    seed(true, "still signed in after a reload (tokens in localStorage, user from /auth/me)");
  });

  await step("log out", tabs, async () => {
    await tab1.getByRole("button", { name: "Log out" }).click();
    await tab1.getByText("You are logged out.").waitFor();
    const [logout] = (await callsTo("/auth/logout")).slice(-1);
    seed(logout?.status === 200, "POST /auth/logout answered 200");
    // The session may have been refreshed on the way (short access lifetime): compare with what was sent.
    const sentRefresh = JSON.parse(logout.body).refresh;
    seed(logout.headers.authorization?.startsWith("Bearer "), "the access token went in the Authorization header");
    seed(Boolean(sentRefresh), "the refresh token went in the body");
    seed((await storedSession(tab1)) === null, "the stored session is gone");
    const refreshAfter = await statusFrom(tab1, "/auth/token/refresh/", { method: "POST", body: { refresh: sentRefresh } });
    seed(refreshAfter === 401, `the logged-out refresh token is refused (${refreshAfter})`);
    const access = logout.headers.authorization.slice("Bearer ".length);
    const meAfter = await statusFrom(tab1, "/auth/me", { access });
    latchkeyOnly(meAfter === 401, `the logged-out access token is refused by /auth/me (got ${meAfter})`);
  });

  await step("log in: wrong password, then right", tabs, async () => {
    await fill(tab1, "Log in", { Email: user.email, Password: "wrong-Horse-battery-9-staple" });
    const alert = form(tab1, "Log in").getByRole("alert");
    await alert.waitFor();
    const message = await alert.textContent();
    seed(message.length > 0, `a wrong password shows the API's message: "${message}"`);
    latchkeyOnly(
      message === "No active account found with the given credentials",
      "a wrong password gets SimpleJWT's 401 message",
    );
    await fill(tab1, "Log in", { Password: PASSWORD });
    await signedIn(tab1).waitFor();
    seed(true, "signed in again");
  });

  await step("refresh: the access token expires, the app refreshes it", tabs, async () => {
    const before = await storedSession(tab1);
    const refreshesBefore = (await callsTo("/auth/token/refresh")).length;
    await sleep((ACCESS_SECONDS + 1.5) * 1000);
    await tab1.getByRole("button", { name: "Reload profile" }).click();
    await tab1.waitForFunction(
      (old) => JSON.parse(localStorage.getItem("latchkey.session"))?.tokens.access !== old,
      before.tokens.access,
    );
    await signedIn(tab1).waitFor();
    const me = (await callsTo("/auth/me", "GET")).slice(-2);
    const refresh = (await callsTo("/auth/token/refresh")).slice(refreshesBefore);
    seed(me[0]?.status === 401 && me[1]?.status === 200, "/auth/me: 401 with the expired token, 200 after");
    seed(refresh.length === 1 && refresh[0].status === 200, "one POST /auth/token/refresh/, answered 200");
    const after = await storedSession(tab1);
    seed(after.tokens.refresh !== before.tokens.refresh, "the refresh token was rotated and stored");
  });

  let tab2;
  await step("a second tab logs out; the first tab's session is over", tabs, async () => {
    tab2 = await context.newPage();
    openTabs.push(tab2);
    // The check below must see a revoked token, not an expired one: start from
    // an access token with at least two seconds to live.
    const access = (await storedSession(tab1)).tokens.access;
    const { exp } = JSON.parse(atob(access.split(".")[1]));
    if (exp * 1000 - Date.now() < 2000) {
      await sleep(Math.max(0, exp * 1000 - Date.now()) + 1100);
      await tab1.getByRole("button", { name: "Reload profile" }).click();
      await tab1.waitForFunction(
        (old) => JSON.parse(localStorage.getItem("latchkey.session")).tokens.access !== old,
        access,
      );
    }
    await tab2.goto(appOrigin);
    await signedIn(tab2).waitFor();
    seed(true, "the second tab shares the session (localStorage)");
    const tab1Access = (await storedSession(tab1)).tokens.access;
    await tab2.getByRole("button", { name: "Log out" }).click();
    await tab2.getByText("You are logged out.").waitFor();
    seed(true, "the second tab is logged out");

    // The first tab still holds the tokens in memory; the server must refuse them.
    const meStatus = await statusFrom(tab1, "/auth/me", { access: tab1Access });
    latchkeyOnly(meStatus === 401, `the first tab's access token is refused at once (got ${meStatus})`);
    await tab1.getByRole("button", { name: "Reload profile" }).click();
    const ended = tab1.getByText("Your session has ended. Please log in again.");
    const endedAtOnce = await ended.waitFor({ timeout: 2000 }).then(
      () => true,
      () => false,
    );
    latchkeyOnly(endedAtOnce, "the first tab shows the session ended at its next request");
    if (!endedAtOnce) {
      // Django: the access token lives on until it expires; then the refresh token, blacklisted by the logout, is refused.
      await sleep((ACCESS_SECONDS + 1.5) * 1000);
      await tab1.getByRole("button", { name: "Reload profile" }).click();
      await ended.waitFor();
    }
    seed(true, "the first tab shows the session ended once its access token is refused");
  });
  openTabs.pop();
  await tab2.close();

  await step("the app opened from another site works without the cookie", tabs, async () => {
    // From localhost the API (127.0.0.1) is another site: the browser does not
    // send it the SameSite=Lax cookie, and the header alone must do.
    const other = { name: `grace-${run}`, email: `grace-${run}@example.com` };
    const page = await context.newPage();
    openTabs.push(page);
    await page.goto(appOtherSite);
    await page.getByText("You are logged out.").waitFor();
    await fill(page, "Register", { Name: other.name, Email: other.email, Password: PASSWORD });
    await page.getByRole("heading", { name: `Signed in as ${other.name}` }).waitFor();
    const [registration] = (await callsTo("/auth/register")).slice(-1);
    seed(registration.status === 201, "registered from http://localhost:<port>");
    seed(!registration.headers.cookie, "the request carried no cookie, only the X-CSRF-Token header");
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You are logged out.").waitFor();
    seed(true, "logged out again");
    openTabs.pop();
    await page.close();
  });

  await step("throttling: the 429 message", tabs, async () => {
    let throttled = false;
    for (let attempt = 0; attempt < LOGIN_FAILURES + 2 && !throttled; attempt++) {
      await fill(tab1, "Log in", { Email: user.email, Password: `wrong-${attempt}-Horse-battery-staple` });
      const alert = form(tab1, "Log in").getByRole("alert");
      await tab1.waitForFunction(() => !document.querySelector("form button[disabled]"));
      throttled = /^Too many attempts\. Try again in \d+ seconds\.$/.test(await alert.textContent());
    }
    latchkeyOnly(throttled, `repeated failures get 429, shown as "Too many attempts. Try again in N seconds."`);
  });

  for (const [label, origin] of [
    ["another site", `http://localhost:${foreignPort}`],
    ["another port of the same site", `http://127.0.0.1:${foreignPort}`],
  ]) {
    let page;
    await step(`a page on ${label} cannot use the API`, () => [page], async () => {
      page = await context.newPage();
      const prefix = `mallory-${run}-${label.length}`;
      await page.goto(`${origin}/?api=${encodeURIComponent(apiUrl)}&email=${prefix}`);
      const results = await page.waitForFunction(() => window.e2eResults).then((h) => h.jsonValue());
      console.log(`      ${JSON.stringify(results)}`);
      if (label === "another site") {
        seed(results.cookieToken === null, "the page cannot read the csrftoken cookie");
      } else {
        // Cookies are not isolated by port: the token alone must not be enough.
        console.log("      (cookies are shared by every port of a host: this page can read the token)");
      }
      seed(results.csrfFetch.startsWith("blocked"), "the page cannot read /auth/csrf/ (CORS)");
      seed(results.jsonPost.startsWith("blocked"), "the app's kind of POST is blocked by the preflight");
      seed(results.simplePost === "response type: opaque", "a form-encoded POST's answer cannot be read");
      const json = await statusFrom(tab1, "/auth/login", {
        method: "POST",
        body: { email: `${prefix}-json@example.com`, password: PASSWORD },
      });
      seed(json !== 200, `no account was created by the JSON POST (${label}; login: ${json})`);
      const simple = await statusFrom(tab1, "/auth/login", {
        method: "POST",
        body: { email: `${prefix}-form@example.com`, password: PASSWORD },
      });
      latchkeyOnly(simple !== 200, `no account was created by the form-encoded POST (${label}; login: ${simple})`);
    });
    await page.close();
  }

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`\ne2e against ${target}: all seed checks passed in ${seconds}s. Screenshots: ${outDir}`);
  if (target === "django") {
    console.log(`Differences from latchkey (${differences.length}):`);
    for (const d of differences) console.log(`  - ${d}`);
  }
}

let failed = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await browser?.close().catch(() => {});
    await stopAll();
    process.exit(130);
  });
}
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`\ne2e against ${target} FAILED: ${error.stack ?? error}`);
  console.error(`Screenshots and server log: ${outDir}`);
} finally {
  await browser?.close().catch(() => {});
  await stopAll();
}
process.exit(failed ? 1 : 0);
