// The cookie mode (`storage: "cookie"`): the refresh token only in the
// browser's HttpOnly cookie, the access token in each tab's memory, the tabs
// sharing sessions over the channel. Same guarantees as localStorage: one
// refresh per expiry, however many tabs, and logout everywhere.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createClient, type LatchkeyClient } from "../src/client.js";
import { localLocks, type Locks } from "../src/lock.js";
import { Bus, FakeLatchkey, SharedSequence } from "./fakes.js";

const BASE = "http://api.test";
let clients: LatchkeyClient[] = [];

/** One browser: one cookie jar (the fake server's), one lock manager, one channel space, one localStorage number. */
class Browser {
  readonly locks: Locks = localLocks();
  readonly bus: Bus;
  readonly sequence = new SharedSequence();
  constructor(
    readonly server: FakeLatchkey,
    busDelayMs = 0,
    private readonly sequenceLagMs = 0,
  ) {
    this.bus = new Bus(busDelayMs);
  }
  tab(): LatchkeyClient {
    const client = createClient({
      baseUrl: BASE,
      storage: "cookie",
      locks: this.locks,
      channel: this.bus.channel(),
      sequence: this.sequenceLagMs ? this.sequence.lagging(this.sequenceLagMs) : this.sequence,
      fetch: this.server.fetch,
    });
    clients.push(client);
    return client;
  }
  tabs(n: number): LatchkeyClient[] {
    return Array.from({ length: n }, () => this.tab());
  }
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-12-01T12:00:00Z"), toFake: ["setTimeout", "clearTimeout", "Date"] });
});

afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  vi.useRealTimers();
});

const refreshCalls = (server: FakeLatchkey) => server.calls.filter((c) => c.path === "/auth/token/refresh");
const access = (tab: LatchkeyClient) => (tab as unknown as { store: { read(): { tokens: { access: string; refresh: string } } | null } }).store.read()?.tokens;

/** A browser with one tab signed in, and `more` tabs opened after it (they take its session). */
async function signedIn(server: FakeLatchkey, more: number, busDelayMs = 0, sequenceLagMs = 0) {
  const browser = new Browser(server, busDelayMs, sequenceLagMs);
  const first = browser.tab();
  await vi.advanceTimersByTimeAsync(300); // the fresh tab finds no cookie
  expect(first.getState().status).toBe("signed_out");
  await first.login({ email: "ada@example.com", password: "right" });
  const others = browser.tabs(more);
  await vi.advanceTimersByTimeAsync(busDelayMs * 2 + 10);
  for (const tab of others) await tab.ready();
  return { browser, tabs: [first, ...others] };
}

describe("cookie mode", () => {
  it("sign-in keeps the refresh token out of the client: only the access token, in memory", async () => {
    const server = new FakeLatchkey({ cookie: true });
    const { browser, tabs } = await signedIn(server, 0);
    expect(server.jar).not.toBeNull();
    expect(access(tabs[0]!)).toMatchObject({ refresh: "" });
    expect(JSON.stringify(browser.sequence)).not.toContain(server.jar!);
    // The refresh itself sends `{}`: the browser adds the cookie.
    const before = server.refreshes;
    await tabs[0]!.refresh();
    expect(server.refreshes - before).toBe(1);
    expect(refreshCalls(server).every((c) => JSON.stringify(c.body) === "{}")).toBe(true);
    expect(JSON.stringify(access(tabs[0]!))).not.toContain(server.jar!);
  });

  it("a fresh tab starts as loading, and with no cookie becomes signed out without a refresh that could end anything", async () => {
    const server = new FakeLatchkey({ cookie: true });
    const tab = new Browser(server).tab();
    expect(tab.getState().status).toBe("loading");
    await vi.advanceTimersByTimeAsync(300);
    await tab.ready();
    expect(tab.getState()).toMatchObject({ status: "signed_out", reason: null });
    expect(refreshCalls(server)).toHaveLength(1); // answered 400: no cookie
    expect(server.reuses).toBe(0);
  });

  it("tabs opened beside a signed-in one take its session from it: no refresh at all", async () => {
    const server = new FakeLatchkey({ cookie: true });
    const { tabs } = await signedIn(server, 2);
    for (const tab of tabs) expect(tab.getState()).toMatchObject({ status: "signed_in", user: { id: 7 } });
    expect(access(tabs[1]!)?.access).toBe(access(tabs[0]!)?.access);
    expect(refreshCalls(server)).toHaveLength(1); // only the first tab's start, before the login
  });

  it("a tab alone (a reload) bootstraps with exactly one refresh under the lock, even two opened at once", async () => {
    const server = new FakeLatchkey({ cookie: true });
    const { browser, tabs } = await signedIn(server, 0);
    tabs[0]!.close(); // the reload: the old page is gone, the cookie stays
    const before = server.refreshes;
    const [a, b] = browser.tabs(2);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all([a!.ready(), b!.ready()]);
    expect(server.refreshes - before).toBe(1);
    expect(server.reuses).toBe(0);
    for (const tab of [a!, b!]) expect(tab.getState()).toMatchObject({ status: "signed_in", user: { id: 7, name: "ada" } });
    expect(access(a!)?.access).toBe(access(b!)?.access);
  });

  it("three tabs due at once send exactly one refresh, and all use its access token", async () => {
    const server = new FakeLatchkey({ cookie: true, accessSeconds: 8 });
    const { tabs } = await signedIn(server, 2);
    const before = server.refreshes;
    vi.setSystemTime(Date.now() + 6500);
    const responses = await Promise.all(tabs.map((tab) => tab.fetch(`${BASE}/api/things`)));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(server.refreshes - before).toBe(1);
    expect(server.reuses).toBe(0);
    const sent = server.calls.filter((c) => c.path === "/api/things").map((c) => c.authorization);
    expect(new Set(sent).size).toBe(1);
  });

  it("the timers of three tabs cost one refresh per lifetime over several lifetimes", async () => {
    const server = new FakeLatchkey({ cookie: true, accessSeconds: 8 });
    const { tabs } = await signedIn(server, 2);
    const before = server.refreshes;
    await vi.advanceTimersByTimeAsync(4 * 6000 + 500);
    expect(server.refreshes - before).toBe(4);
    expect(server.reuses).toBe(0);
    const live = access(tabs[0]!)?.access;
    for (const tab of tabs) {
      expect(tab.getState().status).toBe("signed_in");
      expect(access(tab)?.access).toBe(live);
    }
  });

  // Messages 40 ms late: the lock reaches the second tab long before the
  // session does; with the shared number late too, only the sign the
  // refreshing tab holds under the lock tells it to wait.
  it.each([
    ["the new session's message", 0],
    ["both the message and the shared number", 60],
  ])("a tab that gets the lock before %s waits for it instead of refreshing again", async (_, sequenceLagMs) => {
    const server = new FakeLatchkey({ cookie: true, accessSeconds: 8 });
    const { tabs } = await signedIn(server, 1, 40, sequenceLagMs);
    const before = server.refreshes;
    vi.setSystemTime(Date.now() + 6500);
    const responses = tabs.map((tab) => tab.fetch(`${BASE}/api/things`));
    await vi.advanceTimersByTimeAsync(200);
    expect((await Promise.all(responses)).map((r) => r.status)).toEqual([200, 200]);
    expect(server.refreshes - before).toBe(1);
    expect(server.reuses).toBe(0);
    expect(access(tabs[1]!)?.access).toBe(access(tabs[0]!)?.access);
  });

  it("a 401 is retried once after one refresh, with the new access token", async () => {
    const server = new FakeLatchkey({ cookie: true });
    const { tabs } = await signedIn(server, 0);
    const old = access(tabs[0]!)!.access;
    server.revokedAccess.add(old);
    const response = await tabs[0]!.fetch(`${BASE}/api/things`);
    expect(response.status).toBe(200);
    const sent = server.calls.filter((c) => c.path === "/api/things").map((c) => c.authorization);
    expect(sent).toEqual([`Bearer ${old}`, `Bearer ${access(tabs[0]!)!.access}`]);
  });

  it("a logout in one tab signs out the others and the server clears the cookie", async () => {
    const server = new FakeLatchkey({ cookie: true });
    const { tabs } = await signedIn(server, 2);
    await tabs[1]!.logout();
    await vi.advanceTimersByTimeAsync(10);
    for (const tab of tabs) expect(tab.getState()).toMatchObject({ status: "signed_out", reason: "logout" });
    expect(server.jar).toBeNull();
    expect(server.calls.find((c) => c.path === "/auth/logout")?.body).toEqual({});
  });

  it("a refused cookie ends the session in every tab", async () => {
    const server = new FakeLatchkey({ cookie: true, accessSeconds: 8 });
    const { tabs } = await signedIn(server, 1);
    server.live.clear();
    await vi.advanceTimersByTimeAsync(6500);
    for (const tab of tabs) expect(tab.getState()).toMatchObject({ status: "signed_out", reason: "session_ended" });
  });

  it("a stale session message (an older number) is ignored", async () => {
    const server = new FakeLatchkey({ cookie: true, accessSeconds: 8 });
    const { browser, tabs } = await signedIn(server, 1);
    await tabs[0]!.refresh();
    await vi.advanceTimersByTimeAsync(10);
    const live = access(tabs[1]!)!.access;
    const stray = browser.bus.channel();
    stray.postMessage({ type: "session", seq: 1, session: { user: { id: 7, email: "e", name: "x" }, tokens: { access: "old", refresh: "" } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(access(tabs[1]!)!.access).toBe(live);
    expect(tabs[1]!.getState().user?.name).toBe("ada");
  });

  it("two sign-ins numbered alike (no shared number, the same millisecond) leave every tab on the same session", async () => {
    const server = new FakeLatchkey({ cookie: true });
    const locks = localLocks();
    const bus = new Bus();
    const [a, b] = [0, 1].map(() => {
      const c = createClient({ baseUrl: BASE, storage: "cookie", locks, channel: bus.channel(), sequence: null, fetch: server.fetch });
      clients.push(c);
      return c;
    });
    await vi.advanceTimersByTimeAsync(600);
    await Promise.all([a!.login({ email: "ada@example.com", password: "right" }), b!.login({ email: "ada@example.com", password: "right" })]);
    await vi.advanceTimersByTimeAsync(10);
    expect(access(a!)?.access).toBeDefined();
    expect(access(a!)?.access).toBe(access(b!)?.access);
  });
});
