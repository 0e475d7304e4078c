// End-to-end test of latchkey-client's multi-tab guarantees, in Debian's
// Chromium, headless, against a real latchkey with 4-second access tokens.
//
//   npm run e2e:sdk          (LATCHKEY_BIN=... skips the cargo build)
//   npm run e2e:sdk:cookie   the same with the SDK's cookie mode against
//                            LATCHKEY_REFRESH_COOKIE=true: the refresh token
//                            only in the HttpOnly cookie, the access token in
//                            each tab's memory, shared over BroadcastChannel
//
// Three tabs of the SDK page (sdk.html) share one session. The proof is
// latchkey's own metrics beside what the browser sent:
//   - across several expiries, exactly one refresh per access token lifetime
//     (`latchkey_token_refreshes_total{outcome="rotated"}` moves once per
//     lifetime, `outcome="grace"` never: the server's forgiveness for two tabs
//     refreshing at once is not needed), and no request meets a 401;
//   - a tab frozen (CDP Page.setWebLifecycleState) while it holds the refresh
//     lock does not stall the others past the lock timeout;
//   - a logout in one tab reaches the others within a second.
// The cookie variant adds: a reloaded tab, alone, bootstraps with exactly one
// refresh; tabs opened beside it take its session with none; no script can
// read the refresh token (not in localStorage, not in document.cookie); the
// logout clears the cookie.
// Screenshots of each step: e2e/screenshots/sdk/ (sdk-cookie/).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { appRoot, freePort, latchkeyBinary, startApp, startLatchkey, stopAll } from "./servers.mjs";

const COOKIE = process.argv.includes("--mode=cookie");
const outDir = join(appRoot, "e2e", "screenshots", COOKIE ? "sdk-cookie" : "sdk");
const ACCESS_SECONDS = 4;
// The SDK refreshes a quarter of the lifetime before exp: every 3 s here.
const MARGIN_SECONDS = ACCESS_SECONDS / 4;
const LOCK_TIMEOUT_MS = 1500;
const PASSWORD = "correct-Horse-battery-9-staple";
const LOCK_NAME = COOKIE ? "latchkey.refresh:latchkey.cookie-session" : "latchkey.refresh:latchkey.session";
const run = Date.now().toString(36);
const user = { name: `tabs-${run}`, email: `tabs-${run}@example.com` };

let browser;
let stepNumber = 0;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function check(condition, what) {
  assert.ok(condition, what);
  console.log(`    ✓ ${what}`);
}

async function step(title, pages, body) {
  const number = String(++stepNumber).padStart(2, "0");
  const slug = `${number}-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/-$/, "")}`;
  console.log(`  ${number} ${title}`);
  try {
    await body();
  } finally {
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: join(outDir, `${slug}-tab${i + 1}.png`), fullPage: true, timeout: 3000 }).catch(() => {});
    }
  }
}

let chromiumProcess;

/** Debian's Chromium, headless, on a fresh profile, driven over CDP. */
async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), "sdk-e2e-chromium-"));
  chromiumProcess = spawn(
    process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const endpoint = await new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`Chromium did not start:\n${output}`)), 20000);
    chromiumProcess.stderr.on("data", (data) => {
      output += data;
      const found = output.match(/DevTools listening on (ws:\S+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    chromiumProcess.on("exit", () => reject(new Error(`Chromium exited:\n${output}`)));
  });
  return chromium.connectOverCDP(endpoint, { noDefaults: true, isLocal: true });
}

async function closeChromium() {
  await browser?.close().catch(() => {});
  chromiumProcess?.kill("SIGTERM");
}

/** The value of one series of latchkey's /metrics (0 when absent). */
async function metric(apiUrl, series) {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

const ROTATED = 'latchkey_token_refreshes_total{outcome="rotated"}';
const GRACE = 'latchkey_token_refreshes_total{outcome="grace"}';
const REFUSED = 'latchkey_token_refreshes_total{outcome="refused"}';
const REUSE = "latchkey_refresh_reuse_detections_total";

async function refreshMetrics(apiUrl) {
  return {
    rotated: await metric(apiUrl, ROTATED),
    grace: await metric(apiUrl, GRACE),
    refused: await metric(apiUrl, REFUSED),
    reuse: await metric(apiUrl, REUSE),
  };
}

/** The request loop's counters on `page` (see src/sdk/SdkApp.jsx). */
async function counters(page) {
  return page.locator("#requests").evaluate((el) => ({
    ok: Number(el.dataset.ok),
    unauthorized: Number(el.dataset.unauthorized),
    failed: Number(el.dataset.failed),
    slowestMs: Number(el.dataset.slowestMs),
  }));
}

async function setRequests(page, on) {
  // Background tabs are hidden and render no frames, so no "stable" element
  // for Playwright's click: dispatch the click event itself.
  await page.getByRole("button", { name: on ? "Start requests" : "Stop requests" }).dispatchEvent("click");
}

async function main() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const setupStarted = Date.now();
  const appPort = await freePort();
  const appOrigin = `http://127.0.0.1:${appPort}`;
  const apiUrl = await startLatchkey({
    appOrigins: [appOrigin],
    accessSeconds: ACCESS_SECONDS,
    loginFailures: 10,
    outDir,
    extraEnv: COOKIE ? { LATCHKEY_REFRESH_COOKIE: "true" } : {},
  });
  await startApp({ apiUrl, port: appPort });
  console.log(`e2e (SDK${COOKIE ? ", cookie mode" : ""}): API ${apiUrl}, app ${appOrigin} (set up in ${((Date.now() - setupStarted) / 1000).toFixed(1)}s)`);
  const started = Date.now();

  // Chromium is started here and attached to over CDP with `noDefaults`:
  // a page Playwright launches gets focus emulation, which keeps it visible,
  // and Chromium never freezes a visible page (Page.setWebLifecycleState
  // then does nothing). The default context is one fresh profile: one
  // localStorage, one lock manager, one BroadcastChannel space for the tabs.
  browser = await launchChromium();
  const context = browser.contexts()[0];

  // What the tabs sent: every refresh (with the tab it came from) and every /auth/me answer.
  const pages = [];
  const refreshes = [];
  const meStatuses = [];
  let lastBearer = null;
  let registered = Promise.resolve(null);
  context.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    const authorization = request.headers().authorization;
    if (request.url().startsWith(apiUrl) && authorization?.startsWith("Bearer ")) lastBearer = authorization.slice(7);
    if (request.url().startsWith(apiUrl) && request.method() === "POST" && path.startsWith("/auth/token/refresh")) {
      refreshes.push({ at: Date.now(), tab: pages.indexOf(request.frame().page()) + 1 });
    }
  });
  context.on("response", (response) => {
    const url = new URL(response.url());
    if (response.url().startsWith(apiUrl) && url.pathname === "/auth/me") meStatuses.push(response.status());
    if (response.url().startsWith(apiUrl) && url.pathname.startsWith("/auth/register") && response.request().method() === "POST") {
      registered = response.json().catch(() => null);
    }
  });

  const sdkPage = `${appOrigin}/sdk.html?lockTimeoutMs=${LOCK_TIMEOUT_MS}${COOKIE ? "&storage=cookie" : ""}`;
  const signedIn = (page) => page.getByRole("heading", { name: `Signed in as ${user.name}` });
  const loggedOut = (page) => page.getByText("You are logged out.");

  await step("the served OpenAPI document is the one the client's types came from", [], async () => {
    const served = await (await fetch(`${apiUrl}/openapi.json`)).json();
    const printed = JSON.parse(execFileSync(latchkeyBinary(), ["openapi"], { encoding: "utf8" }));
    check(JSON.stringify(served) === JSON.stringify(printed), "GET /openapi.json equals `latchkey openapi` (what clients/js/src/openapi.ts is checked against)");
  });

  await step("register in one tab; two more tabs share the session", pages, async () => {
    const tab1 = await context.newPage();
    pages.push(tab1);
    await tab1.goto(sdkPage);
    await loggedOut(tab1).waitFor();
    const form = tab1.getByRole("form", { name: "SDK Register" });
    await form.getByLabel("Name").fill(user.name);
    await form.getByLabel("Email").fill(user.email);
    await form.getByLabel("Password").fill(PASSWORD);
    await form.getByRole("button", { name: "Register" }).click();
    await signedIn(tab1).waitFor();
    if (COOKIE) {
      const cookies = await context.cookies(`${apiUrl}/auth/`);
      const refreshCookie = cookies.find((c) => c.name === "latchkey_refresh");
      check(refreshCookie?.httpOnly === true && refreshCookie.path === "/auth/", "the refresh token is in an HttpOnly cookie on /auth/");
      const answer = await registered;
      check(typeof answer?.tokens?.access === "string" && !("refresh" in answer.tokens), "the register answer carries the access token only");
      const readable = await tab1.evaluate(() => JSON.stringify({ ...localStorage }) + document.cookie);
      check(!readable.includes(refreshCookie.value), "no script of the page can read it: not in localStorage, not in document.cookie");
      check(!readable.includes(answer.tokens.access), "the access token is not in localStorage either (memory only)");
      // A reload: the tab alone starts from the cookie, with one refresh under the lock.
      const before = await refreshMetrics(apiUrl);
      await tab1.reload();
      await signedIn(tab1).waitFor();
      const after = await refreshMetrics(apiUrl);
      check(after.rotated - before.rotated === 1, `the reloaded tab, alone, signed in again with exactly one refresh (${after.rotated - before.rotated})`);
    }
    const sentBefore = refreshes.length;
    for (let i = 0; i < 2; i++) {
      const tab = await context.newPage();
      pages.push(tab);
      await tab.goto(sdkPage);
      await signedIn(tab).waitFor();
    }
    if (COOKIE) {
      // (Tab 1's own timer may refresh meanwhile: 4-second tokens.)
      const fromNew = refreshes.slice(sentBefore).filter((r) => r.tab !== 1).length;
      check(fromNew === 0, `three tabs signed in; the two new ones took tab 1's session over BroadcastChannel (${fromNew} refreshes from them)`);
    } else {
      check(true, "three tabs signed in as the registered user (the session from localStorage)");
      // The seed-style page (plain fetch) reads the same stored session.
      const seedPage = await context.newPage();
      await seedPage.goto(appOrigin);
      await signedIn(seedPage).waitFor();
      check(true, "the seed-style page, opened beside them, is signed in with the SDK's session");
      await seedPage.close();
    }
  });

  const [tab1, tab2, tab3] = pages;

  await step("three tabs make requests across three expiries: one refresh per expiry", pages, async () => {
    const before = await refreshMetrics(apiUrl);
    const refreshesBefore = refreshes.length;
    const meBefore = meStatuses.length;
    const runMs = 3 * (ACCESS_SECONDS - MARGIN_SECONDS) * 1000 + 1500;
    const from = Date.now();
    for (const tab of pages) await setRequests(tab, true);
    await sleep(runMs);
    for (const tab of pages) await setRequests(tab, false);
    await sleep(400);
    const after = await refreshMetrics(apiUrl);
    const sent = refreshes.slice(refreshesBefore);
    const rotated = after.rotated - before.rotated;
    const seconds = (Date.now() - from) / 1000;
    console.log(
      `      ${seconds.toFixed(1)}s, ${meStatuses.length - meBefore} requests; refreshes at ` +
        sent.map((r) => `+${((r.at - from) / 1000).toFixed(1)}s (tab ${r.tab})`).join(", "),
    );
    for (const [i, tab] of pages.entries()) {
      const c = await counters(tab);
      check(c.ok > 5 && c.unauthorized === 0 && c.failed === 0, `tab ${i + 1}: ${c.ok} requests answered 200, none refused or failed`);
    }
    check(meStatuses.slice(meBefore).every((s) => s === 200), "no /auth/me request met a 401: refreshed before exp, not after");
    check(rotated >= 3, `latchkey rotated ${rotated} times in ${seconds.toFixed(1)}s of ${ACCESS_SECONDS}s tokens (three expiries or more)`);
    check(rotated === sent.length, `each rotation is one refresh request the tabs sent (${sent.length}), no tab refreshed twice`);
    const gaps = sent.slice(1).map((r, i) => r.at - sent[i].at);
    check(
      gaps.every((g) => g >= (ACCESS_SECONDS - MARGIN_SECONDS - 1) * 1000),
      `refreshes a lifetime apart, never two for one expiry (gaps ${gaps.map((g) => (g / 1000).toFixed(1)).join(", ")} s)`,
    );
    check(after.grace === before.grace, `latchkey's grace-window forgiveness was never used (${GRACE} unchanged)`);
    check(after.refused === before.refused && after.reuse === before.reuse, "no refresh refused, no reuse detected");
    for (const tab of pages) await signedIn(tab).waitFor({ timeout: 1000 });
    check(true, "no tab was logged out");
  });

  await step("a tab frozen while holding the refresh lock does not stall the others", pages, async () => {
    // Tab 3 takes the SDK's refresh lock and never lets go, then is frozen.
    await tab3.evaluate((name) => {
      navigator.locks.request(name, () => new Promise(() => {}));
      window.e2eTicks = 0;
      setInterval(() => window.e2eTicks++, 50);
    }, LOCK_NAME);
    const held = await tab1.evaluate(async (name) => (await navigator.locks.query()).held.filter((l) => l.name === name).length, LOCK_NAME);
    check(held === 1, "tab 3 holds the refresh lock");
    const cdp = await context.newCDPSession(tab3);
    await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
    // DevTools may still evaluate in a frozen page, but its own tasks (timers) stop.
    const ticks = () => tab3.evaluate(() => window.e2eTicks);
    const t0 = await ticks();
    await sleep(600);
    check((await ticks()) === t0, "tab 3 is frozen (its timers do not run)");

    const before = await refreshMetrics(apiUrl);
    const refreshesBefore = refreshes.length;
    const c1 = await counters(tab1);
    const c2 = await counters(tab2);
    const from = Date.now();
    for (const tab of [tab1, tab2]) await setRequests(tab, true);
    await sleep(2 * (ACCESS_SECONDS - MARGIN_SECONDS) * 1000 + 1500);
    for (const tab of [tab1, tab2]) await setRequests(tab, false);
    await sleep(400);
    const after = await refreshMetrics(apiUrl);
    const sent = refreshes.slice(refreshesBefore);
    console.log(`      refreshes at ${sent.map((r) => `+${((r.at - from) / 1000).toFixed(1)}s (tab ${r.tab})`).join(", ")}`);
    for (const [i, [tab, was]] of [
      [tab1, c1],
      [tab2, c2],
    ].entries()) {
      const c = await counters(tab);
      check(
        c.ok - was.ok > 3 && c.unauthorized === 0 && c.failed === 0,
        `tab ${i + 1}: ${c.ok - was.ok} more requests answered 200, none refused or failed`,
      );
      check(
        // The lock timeout (a fifth of it as jitter) plus a refresh and a request,
        // with room for a loaded machine; a stall would last the whole run.
        c.slowestMs < LOCK_TIMEOUT_MS * 1.2 + 2500,
        `tab ${i + 1}: the slowest request took ${c.slowestMs} ms (the ${LOCK_TIMEOUT_MS} ms lock timeout, not forever)`,
      );
    }
    check(after.rotated - before.rotated >= 2, `the session was refreshed ${after.rotated - before.rotated} times meanwhile`);
    check(after.rotated - before.rotated === sent.length, "one refresh request per rotation");
    check(after.grace === before.grace && after.reuse === before.reuse, "no grace forgiveness, no reuse");

    await cdp.send("Page.setWebLifecycleState", { state: "active" });
    await signedIn(tab3).waitFor({ timeout: 2000 });
    const c3 = await counters(tab3);
    await setRequests(tab3, true);
    // Thawed but hidden: its timers run at most once a second.
    await tab3.waitForFunction((ok) => Number(document.querySelector("#requests").dataset.ok) > ok + 2, c3.ok, { timeout: 10000, polling: 200 });
    await setRequests(tab3, false);
    const c3after = await counters(tab3);
    check(c3after.unauthorized === 0 && c3after.failed === 0, "tab 3, thawed, is still signed in and its requests succeed");
  });

  await step("a logout in one tab reaches the others within a second", pages, async () => {
    // The access token the tabs were last sending (the cookie mode has it only in memory).
    const access = COOKIE ? lastBearer : await tab1.evaluate(() => JSON.parse(localStorage.getItem("latchkey.session")).tokens.access);
    const clicked = Date.now();
    await tab1.getByRole("button", { name: "Log out", exact: true }).dispatchEvent("click");
    await loggedOut(tab1).waitFor();
    const tab1Out = Date.now();
    await Promise.all([tab2, tab3].map((tab) => loggedOut(tab).waitFor({ timeout: 1000 })));
    const othersOut = Date.now();
    check(true, `tab 1 logged out ${tab1Out - clicked} ms after the click; tabs 2 and 3 ${othersOut - tab1Out} ms after it (limit 1000)`);
    const me = await fetch(`${apiUrl}/auth/me`, { headers: { Authorization: `Bearer ${access}` } });
    check(me.status === 401, "the server refuses the logged-out access token");
    if (COOKIE) {
      const cookies = await context.cookies(`${apiUrl}/auth/`);
      check(!cookies.some((c) => c.name === "latchkey_refresh"), "the logout cleared the refresh cookie");
      // A fresh tab now finds no session (the cookie is gone).
      const fresh = await context.newPage();
      await fresh.goto(sdkPage);
      await loggedOut(fresh).waitFor();
      check(true, "a tab opened after the logout starts signed out");
      await fresh.close();
    }
  });

  console.log(`\ne2e (SDK${COOKIE ? ", cookie mode" : ""}): all checks passed in ${((Date.now() - started) / 1000).toFixed(1)}s. Screenshots: ${outDir}`);
}

let failed = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await closeChromium();
    await stopAll();
    process.exit(130);
  });
}
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`\ne2e (SDK) FAILED: ${error.stack ?? error}`);
  console.error(`Screenshots and server log: ${outDir}`);
} finally {
  await closeChromium();
  await stopAll();
}
process.exit(failed ? 1 : 0);
