// End-to-end test of the React client's cookie mode in headless Chromium:
// latchkey runs with LATCHKEY_REFRESH_COOKIE=true and the app is built with
// VITE_REFRESH_COOKIE=true.
//
//   npm run e2e:cookie
//
// It shows that no script of the page can reach the refresh token — not in
// `document.cookie`, not in `localStorage` — while the session survives a
// page reload and refreshes when the access token expires, and that logout
// clears the cookie. Screenshots: e2e/screenshots/cookie/.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { appRoot, freePort, startApp, startLatchkey, stopAll } from "./servers.mjs";
import { check, stepper } from "./steps.mjs";

const outDir = join(appRoot, "e2e", "screenshots", "cookie");
const ACCESS_SECONDS = 3;
const PASSWORD = "correct-Horse-battery-9-staple";
const run = Date.now().toString(36);
const user = { name: `ada-${run}`, email: `ada-${run}@example.com` };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let browser;

const step = stepper(outDir);

async function main() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const appPort = await freePort();
  const appOrigin = `http://127.0.0.1:${appPort}`;
  const apiUrl = await startLatchkey({
    appOrigins: [appOrigin],
    accessSeconds: ACCESS_SECONDS,
    loginFailures: 10,
    outDir,
    extraEnv: { LATCHKEY_REFRESH_COOKIE: "true" },
  });
  process.env.VITE_REFRESH_COOKIE = "true";
  await startApp({ apiUrl, port: appPort });
  console.log(`e2e (cookie mode): API ${apiUrl}, app ${appOrigin}`);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const calls = [];
  context.on("requestfinished", async (request) => {
    if (!request.url().startsWith(apiUrl)) return;
    const response = await request.response();
    calls.push({ method: request.method(), path: new URL(request.url()).pathname, body: request.postData(), status: response?.status() });
  });
  const refreshCalls = async () => {
    await sleep(250);
    return calls.filter((c) => c.method === "POST" && c.path.startsWith("/auth/token/refresh"));
  };
  // Path=/auth/: asked for a URL under it.
  const refreshCookie = async () => (await context.cookies(`${apiUrl}/auth/`)).find((c) => c.name === "latchkey_refresh");
  const page = await context.newPage();
  const signedIn = () => page.getByRole("heading", { name: `Signed in as ${user.name}` }).waitFor();
  /** What the page's own scripts can see: document.cookie and every localStorage value. */
  const visibleToScripts = () =>
    page.evaluate(() => ({
      cookie: document.cookie,
      storage: Object.fromEntries(Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)])),
    }));
  const assertHidden = async (token, when) => {
    const seen = await visibleToScripts();
    check(!seen.cookie.includes("latchkey_refresh") && !seen.cookie.includes(token), `${when}: document.cookie holds no refresh token`);
    const stored = JSON.stringify(seen.storage);
    check(!stored.includes(token) && !stored.includes('"refresh"'), `${when}: localStorage holds no refresh token (${stored})`);
  };

  await step("register: the refresh token arrives in an HttpOnly cookie", page, async () => {
    await page.goto(appOrigin);
    await page.getByText("You are logged out.").waitFor();
    const f = page.getByRole("form", { name: "Register" });
    await f.getByLabel("Name").fill(user.name);
    await f.getByLabel("Email").fill(user.email);
    await f.getByLabel("Password").fill(PASSWORD);
    await f.getByRole("button", { name: "Register" }).click();
    await signedIn();
    const cookie = await refreshCookie();
    check(Boolean(cookie?.value), "the browser holds the latchkey_refresh cookie");
    check(cookie.httpOnly && cookie.path === "/auth/" && cookie.sameSite === "Lax", "HttpOnly, Path=/auth/, SameSite=Lax");
    await assertHidden(cookie.value, "after registering");
  });

  await step("reload: the session survives through the cookie", page, async () => {
    const before = (await refreshCookie()).value;
    const refreshesBefore = (await refreshCalls()).length;
    await page.reload();
    await signedIn();
    const refreshes = (await refreshCalls()).slice(refreshesBefore);
    check(refreshes.length === 1 && refreshes[0].status === 200, "after the reload the app refreshed once, answered 200");
    check(refreshes[0].body === "{}", `the refresh request's body carries no token (${refreshes[0].body})`);
    const after = (await refreshCookie()).value;
    check(after !== before, "rotation replaced the cookie");
    await assertHidden(after, "after the reload");
  });

  await step("the access token expires; the app refreshes through the cookie", page, async () => {
    const refreshesBefore = (await refreshCalls()).length;
    await sleep((ACCESS_SECONDS + 1.5) * 1000);
    await page.getByRole("button", { name: "Reload profile" }).click();
    await sleep(500);
    await signedIn();
    const refreshes = (await refreshCalls()).slice(refreshesBefore);
    check(refreshes.length === 1 && refreshes[0].status === 200, "one refresh, answered 200; still signed in");
    await assertHidden((await refreshCookie()).value, "after the refresh");
  });

  await step("log out: the cookie is cleared", page, async () => {
    const token = (await refreshCookie()).value;
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You are logged out.").waitFor();
    check((await refreshCookie()) === undefined, "the browser no longer holds the refresh cookie");
    const status = await page.evaluate(
      async ({ url, token }) => {
        const csrf = (await (await fetch(`${url}/auth/csrf/`, { credentials: "include" })).json()).csrfToken;
        const r = await fetch(`${url}/auth/token/refresh/`, {
          method: "POST",
          credentials: "include",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ refresh: token }),
        });
        return r.status;
      },
      { url: apiUrl, token },
    );
    check(status === 401, `the logged-out refresh token is refused (${status})`);
    await page.reload();
    await page.getByText("You are logged out.").waitFor();
    check(true, "a reload stays logged out");
  });
  console.log(`\ne2e (cookie mode): all checks passed. Screenshots: ${outDir}`);
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`\ne2e (cookie mode) FAILED: ${error.stack ?? error}`);
  console.error(`Screenshots and server log: ${outDir}`);
} finally {
  await browser?.close().catch(() => {});
  await stopAll();
}
process.exit(failed ? 1 : 0);
