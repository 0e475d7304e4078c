// The cookie mode against a real latchkey with LATCHKEY_REFRESH_COOKIE=true:
// the refresh token only in the `latchkey_refresh` cookie (a jar stands in
// for the browser's), tabs sharing the access token over the channel, one
// rotation per expiry by latchkey's own metrics, a fresh tab's bootstrap,
// and a logout that clears the cookie. Needs LATCHKEY_BIN, as server.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type LatchkeyClient } from "../src/client.js";
import { localLocks, type Locks } from "../src/lock.js";
import { Bus, SharedSequence } from "../test/fakes.js";
import { latchkeyBinary, startLatchkey, type Running } from "./latchkey.js";

const binary = latchkeyBinary();
if (!binary && process.env.CI === "true") throw new Error("CI=true and no latchkey binary: set LATCHKEY_BIN (the release build).");

const PASSWORD = "correct-Horse-battery-9-staple";
const ACCESS_SECONDS = 2;
let server: Running;
let n = 0;
const clients: LatchkeyClient[] = [];

/** A browser's cookie jar for one host (enough for latchkey's two cookies), and fetch through it. */
class Jar {
  readonly cookies = new Map<string, { value: string; path: string }>();
  readonly bodies: string[] = [];
  /** When each refresh request was sent (ms). */
  readonly refreshes: number[] = [];
  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    const header = [...this.cookies]
      .filter(([, c]) => path.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join("; ");
    if (path.startsWith("/auth/token/refresh")) this.refreshes.push(Date.now());
    const headers = new Headers(request.headers);
    if (header) headers.set("Cookie", header);
    const response = await fetch(new Request(request, { headers }));
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";").map((s) => s.trim());
      const [name, ...rest] = pair!.split("=");
      const value = rest.join("=");
      const cookiePath = attributes.find((a) => a.toLowerCase().startsWith("path="))?.slice(5) ?? "/";
      if (/^max-age=0$/i.test(attributes.find((a) => /^max-age=/i.test(a)) ?? "") || value === "") this.cookies.delete(name!);
      else this.cookies.set(name!, { value, path: cookiePath });
    }
    this.bodies.push(await response.clone().text());
    return response;
  };
}

/** One browser profile: one jar, one lock manager, one channel space, one localStorage number. */
class Browser {
  readonly jar = new Jar();
  readonly locks: Locks = localLocks();
  readonly bus = new Bus();
  readonly sequence = new SharedSequence();
  tab(): LatchkeyClient {
    const client = createClient({
      baseUrl: server.url,
      storage: "cookie",
      fetch: this.jar.fetch,
      locks: this.locks,
      channel: this.bus.channel(),
      sequence: this.sequence,
    });
    clients.push(client);
    return client;
  }
}

const rotated = () => server.metric("latchkey_token_refreshes_total", 'outcome="rotated"');
const grace = () => server.metric("latchkey_token_refreshes_total", 'outcome="grace"');
const reuse = () => server.metric("latchkey_refresh_reuse_detections_total");
const accessOf = (tab: LatchkeyClient) =>
  (tab as unknown as { store: { read(): { tokens: { access: string; refresh: string } } | null } }).store.read()?.tokens;

function newUser() {
  const id = `${Date.now().toString(36)}-${++n}`;
  return { name: `cookie-${id}`, email: `cookie-${id}@example.com`, password: PASSWORD };
}

describe.skipIf(!binary)("the cookie mode against a real latchkey (LATCHKEY_REFRESH_COOKIE=true)", () => {
  beforeAll(async () => {
    server = await startLatchkey(binary!, {
      LATCHKEY_REFRESH_COOKIE: "true",
      LATCHKEY_ACCESS_TOKEN_LIFETIME_SECONDS: String(ACCESS_SECONDS),
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  it("the refresh token is only in the HttpOnly cookie; tabs share one session with one rotation per expiry; logout clears the cookie", async () => {
    const browser = new Browser();
    const tab1 = browser.tab();
    await tab1.ready();
    expect(tab1.getState().status).toBe("signed_out"); // no cookie yet
    const user = newUser();
    await tab1.register(user);
    const cookie = browser.jar.cookies.get("latchkey_refresh");
    expect(cookie).toMatchObject({ path: "/auth/" });
    expect(accessOf(tab1)).toMatchObject({ refresh: "" });
    // No answer the client read carried the refresh token.
    expect(browser.jar.bodies.some((b) => b.includes(cookie!.value))).toBe(false);

    // Two more tabs: the session comes from tab 1, not from a refresh.
    const before = { rotated: await rotated(), grace: await grace(), reuse: await reuse() };
    const tab2 = browser.tab();
    const tab3 = browser.tab();
    await Promise.all([tab2.ready(), tab3.ready()]);
    for (const tab of [tab2, tab3]) expect(tab.getState()).toMatchObject({ status: "signed_in", user: { name: user.name } });
    expect(await rotated()).toBe(before.rotated);

    // Requests from all three tabs across three expiries (a refresh every 1.5 s).
    const tabs = [tab1, tab2, tab3];
    const statuses: number[] = [];
    const sentBefore = browser.jar.refreshes.length;
    const from = Date.now();
    const until = from + 3 * (ACCESS_SECONDS * 0.75) * 1000 + 700;
    while (Date.now() < until) {
      const answers = await Promise.all(tabs.map((t) => t.fetch(`${server.url}/auth/me`)));
      statuses.push(...answers.map((a) => a.status));
      await new Promise((r) => setTimeout(r, 100));
    }
    const rotations = (await rotated()) - before.rotated;
    const sent = browser.jar.refreshes.slice(sentBefore);
    const gaps = sent.slice(1).map((t, i) => t - sent[i]!);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(rotations).toBeGreaterThanOrEqual(3);
    // One refresh request per rotation, a token's life apart: the lifetime less
    // the margin (1.5 s) less up to a second lost to `iat`'s truncation to
    // whole seconds (so about 1 s here); two refreshes for one expiry would
    // be milliseconds apart.
    expect(sent).toHaveLength(rotations);
    expect(gaps.every((g) => g >= (ACCESS_SECONDS * 0.75 - 1) * 1000 - 100), `gaps ${gaps.join(", ")} ms over ${Date.now() - from} ms`).toBe(true);
    expect(await grace()).toBe(before.grace);
    expect(await reuse()).toBe(before.reuse);
    expect(new Set(tabs.map((t) => accessOf(t)?.access)).size).toBe(1);

    // Three explicit refreshes at once: one rotation.
    const r0 = await rotated();
    await Promise.all(tabs.map((t) => t.refresh()));
    expect((await rotated()) - r0).toBe(1);

    await tab2.logout();
    await new Promise((r) => setTimeout(r, 50));
    for (const tab of tabs) expect(tab.getState()).toMatchObject({ status: "signed_out", reason: "logout" });
    expect(browser.jar.cookies.has("latchkey_refresh")).toBe(false);
    expect(await grace()).toBe(before.grace);
  });

  it("a reloaded tab (alone, or two at once) bootstraps from the cookie with exactly one refresh", async () => {
    const browser = new Browser();
    const first = browser.tab();
    await first.ready();
    const user = newUser();
    await first.register(user);
    first.close(); // the reload: the page is gone, the cookie stays
    const before = await rotated();
    const [a, b] = [browser.tab(), browser.tab()];
    expect(a.getState().status).toBe("loading");
    await Promise.all([a.ready(), b.ready()]);
    expect((await rotated()) - before).toBe(1);
    for (const tab of [a, b]) expect(tab.getState()).toMatchObject({ status: "signed_in", user: { email: user.email } });
    expect((await a.fetch(`${server.url}/auth/me`)).status).toBe(200);
    expect(await reuse()).toBe(0);

    // Another browser (no cookie) stays signed out.
    const stranger = new Browser().tab();
    await stranger.ready();
    expect(stranger.getState()).toMatchObject({ status: "signed_out" });
  });
});
