import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createClient, type LatchkeyClient } from "../src/client.js";
import { LatchkeyError } from "../src/errors.js";
import { localLocks } from "../src/lock.js";
import { Bus, FakeLatchkey, SharedStorage } from "./fakes.js";

const BASE = "http://api.test";

let clients: LatchkeyClient[] = [];

/** `n` tabs of one app: one storage, one lock manager, one broadcast bus, one server. */
function tabs(
  n: number,
  server: FakeLatchkey,
  { storageLagMs, ...options }: { refreshMarginSeconds?: number; storageLagMs?: number } = {},
) {
  const storage = new SharedStorage({ lagMs: storageLagMs });
  const locks = localLocks();
  const bus = new Bus();
  const made = Array.from({ length: n }, () =>
    createClient({
      baseUrl: BASE,
      storage: storage.tab(),
      locks,
      channel: bus.channel(),
      fetch: server.fetch,
      ...options,
    }),
  );
  clients.push(...made);
  return { tabs: made, storage };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-12-01T12:00:00Z"), toFake: ["setTimeout", "clearTimeout", "Date"] });
});

afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  vi.useRealTimers();
});

const refreshCalls = (server: FakeLatchkey) => server.calls.filter((c) => c.path === "/auth/token/refresh").length;

describe("refresh before exp", () => {
  it("a request whose token is due refreshes first and never meets a 401", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    // Due at exp - 2 s (a quarter of 8 s); the timer would fire now too, so
    // stop it to see the request's own check.
    vi.setSystemTime(Date.now() + 6500);
    const response = await tab!.fetch(`${BASE}/api/things`);
    expect(response.status).toBe(200);
    expect(refreshCalls(server)).toBe(1);
    expect(server.calls.filter((c) => c.path === "/api/things").map((c) => c.authorization)).toHaveLength(1);
  });

  it("the timer refreshes a quarter-lifetime before exp with no request at all", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(5900);
    expect(refreshCalls(server)).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(refreshCalls(server)).toBe(1);
    // And again for the new pair: one refresh per lifetime, not more.
    await vi.advanceTimersByTimeAsync(6000);
    expect(refreshCalls(server)).toBe(2);
  });

  it("a refresh the server cannot answer (503) keeps the session and is retried", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    server.refreshFails = 503;
    await vi.advanceTimersByTimeAsync(6100);
    expect(tab!.getState().status).toBe("signed_in");
    server.refreshFails = null;
    await vi.advanceTimersByTimeAsync(1100);
    expect(server.refreshes).toBe(1);
    expect(tab!.getState().status).toBe("signed_in");
  });
});

describe("refresh failures", () => {
  it("a due refresh that fails for now (503) still sends the request with the token that has time left", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    server.refreshFails = 503;
    vi.setSystemTime(Date.now() + 6500);
    const response = await tab!.fetch(`${BASE}/api/things`);
    expect(response.status).toBe(200);
    expect(tab!.getState().status).toBe("signed_in");
  });

  it("a due refresh that fails once the token has expired rejects with the server's error", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    server.refreshFails = 503;
    vi.setSystemTime(Date.now() + 9000);
    await expect(tab!.fetch(`${BASE}/api/things`)).rejects.toMatchObject({ status: 503, retryAfter: 1 });
    expect(server.calls.filter((c) => c.path === "/api/things")).toHaveLength(0);
    expect(tab!.getState().status).toBe("signed_in");
  });

  it("a due refresh the server refuses ends the session: the request rejects with signed_out", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    server.live.clear();
    vi.setSystemTime(Date.now() + 6500);
    await expect(tab!.fetch(`${BASE}/api/things`)).rejects.toMatchObject({ code: "signed_out" });
    expect(tab!.getState()).toMatchObject({ status: "signed_out", reason: "session_ended" });
  });
});

describe("many tabs, one refresh", () => {
  it("three tabs due at once send exactly one refresh, and all use its pair", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const { tabs: [a, b, c] } = tabs(3, server);
    await a!.login({ email: "ada@example.com", password: "right" });
    vi.setSystemTime(Date.now() + 7000);
    const answers = await Promise.all([a, b, c].flatMap((t) => [t!.fetch(`${BASE}/api/things`), t!.fetch(`${BASE}/api/things`)]));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(refreshCalls(server)).toBe(1);
    expect(server.reuses).toBe(0);
    const used = new Set(server.calls.filter((c) => c.path === "/api/things").map((c) => c.authorization));
    expect(used.size).toBe(1);
  });

  it("timers of three tabs firing together cost one refresh per lifetime", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const { tabs: [a] } = tabs(3, server);
    await a!.login({ email: "ada@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(6000 * 3 + 100);
    expect(server.refreshes).toBe(3);
    expect(server.reuses).toBe(0);
  });

  it("explicit refreshes in two tabs rotate the live pair each time, never a spent one", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const { tabs: [a, b] } = tabs(2, server);
    await a!.login({ email: "ada@example.com", password: "right" });
    await a!.refresh();
    // b has not heard of the new pair yet (its storage event is queued): it must spend the live one, not its old copy.
    await b!.refresh();
    expect(server.refreshes).toBe(2);
    expect(server.reuses).toBe(0);
  });

  it("a tab granted the lock before the new pair reached its storage takes that pair instead of rotating again", async () => {
    // Chromium hands a localStorage write to the other tabs asynchronously,
    // unordered with the lock: b enters the lock while it still reads the spent pair.
    const server = new FakeLatchkey({ accessSeconds: 60 });
    const { tabs: [a, b] } = tabs(2, server, { storageLagMs: 40 });
    await a!.login({ email: "ada@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(100);
    const both = Promise.all([a!.refresh(), b!.refresh()]);
    await vi.advanceTimersByTimeAsync(1000);
    await both;
    expect(server.refreshes).toBe(1);
    expect(server.reuses).toBe(0);
    expect(b!.getState().status).toBe("signed_in");
    const stored = [a, b].map((t) => t!.getState().status);
    expect(stored).toEqual(["signed_in", "signed_in"]);
    const response = await b!.fetch(`${BASE}/api/things`);
    expect(response.status).toBe(200);
  });

  it("timers of three tabs with lagging storage still cost one refresh per lifetime", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    tabs(3, server, { storageLagMs: 40 });
    const [a] = clients;
    await a!.login({ email: "ada@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(6000 * 3 + 500);
    expect(server.refreshes).toBe(3);
    expect(server.reuses).toBe(0);
    expect(clients.map((t) => t.getState().status)).toEqual(["signed_in", "signed_in", "signed_in"]);
  });

  it("a logout in one tab signs out the others", async () => {
    const server = new FakeLatchkey();
    const { tabs: [a, b, c] } = tabs(3, server);
    await a!.login({ email: "ada@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(0);
    expect(b!.getState().status).toBe("signed_in");
    const seen = vi.fn();
    c!.subscribe(seen);
    await b!.logout();
    await vi.advanceTimersByTimeAsync(0);
    for (const t of [a, b, c]) expect(t!.getState()).toMatchObject({ status: "signed_out", user: null, reason: "logout" });
    expect(seen).toHaveBeenCalledTimes(1);
  });

  it("a login in one tab signs the others in, with the same user object until it changes", async () => {
    const server = new FakeLatchkey();
    const { tabs: [a, b] } = tabs(2, server);
    await a!.login({ email: "ada@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(0);
    const first = b!.getState();
    expect(first).toMatchObject({ status: "signed_in", user: { id: 7, name: "ada" } });
    await a!.refresh();
    await vi.advanceTimersByTimeAsync(0);
    expect(b!.getState()).toBe(first);
  });
});

describe("the retry rule", () => {
  it("a 401 is retried once, after a refresh, with the new token", async () => {
    const server = new FakeLatchkey({ accessSeconds: 600 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    const revoked = JSON.parse(localStorageless(tab!)).tokens.access;
    server.revokedAccess.add(revoked);
    const response = await tab!.fetch(`${BASE}/api/things`, { method: "POST", body: JSON.stringify({ a: 1 }) });
    expect(response.status).toBe(200);
    const things = server.calls.filter((c) => c.path === "/api/things");
    expect(things).toHaveLength(2);
    expect(things[0]!.authorization).toBe(`Bearer ${revoked}`);
    expect(things[1]!.authorization).not.toBe(`Bearer ${revoked}`);
    expect(things.every((c) => c.csrf === "csrf-1")).toBe(true);
    expect(refreshCalls(server)).toBe(1);
  });

  it("a second 401 is answered as it is: never a third attempt", async () => {
    const server = new FakeLatchkey({ accessSeconds: 600 });
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    // Every access token is refused, new ones included.
    server.accessValid = () => false;
    const response = await tab!.fetch(`${BASE}/api/things`);
    expect(response.status).toBe(401);
    expect(server.calls.filter((c) => c.path === "/api/things")).toHaveLength(2);
    expect(tab!.getState().status).toBe("signed_in");
  });

  it("a 401 whose refresh is refused too ends the session in every tab", async () => {
    const server = new FakeLatchkey({ accessSeconds: 600 });
    const { tabs: [a, b] } = tabs(2, server);
    await a!.login({ email: "ada@example.com", password: "right" });
    server.revokeAll([JSON.parse(localStorageless(a!)).tokens.access]);
    const response = await a!.fetch(`${BASE}/api/things`);
    expect(response.status).toBe(401);
    await vi.advanceTimersByTimeAsync(0);
    expect(a!.getState()).toMatchObject({ status: "signed_out", reason: "session_ended" });
    expect(b!.getState()).toMatchObject({ status: "signed_out", reason: "session_ended" });
    await expect(a!.me()).rejects.toMatchObject({ code: "signed_out" });
  });

  it("client.fetch refuses to send the token to an origin not in apiOrigins", async () => {
    const server = new FakeLatchkey();
    const [tab] = tabs(1, server).tabs;
    await tab!.login({ email: "ada@example.com", password: "right" });
    const before = server.calls.length;
    await expect(tab!.fetch("https://elsewhere.example/steal")).rejects.toMatchObject({ code: "origin_not_allowed" });
    expect(server.calls.length).toBe(before);
  });
});

describe("memory storage", () => {
  it("keeps the session in this tab only: two tabs are two sessions, each refreshing its own", async () => {
    const server = new FakeLatchkey({ accessSeconds: 8 });
    const make = () => createClient({ baseUrl: BASE, storage: "memory", fetch: server.fetch });
    const a = make();
    const b = make();
    clients.push(a, b);
    await a.login({ email: "ada@example.com", password: "right" });
    expect(a.getState().status).toBe("signed_in");
    expect(b.getState().status).toBe("signed_out");
    await b.login({ email: "ada@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(6100);
    // One rotation per session, and neither spent the other's token.
    expect(server.refreshes).toBe(2);
    expect(server.reuses).toBe(0);
    await a.logout();
    expect(a.getState().status).toBe("signed_out");
    expect(b.getState().status).toBe("signed_in");
  });
});

describe("errors", () => {
  it("a wrong password rejects with the contract's code and detail, and no session", async () => {
    const server = new FakeLatchkey();
    const [tab] = tabs(1, server).tabs;
    const error = await tab!.login({ email: "ada@example.com", password: "wrong" }).catch((e) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect(error).toMatchObject({ status: 401, code: "no_active_account" });
    expect(tab!.getState().status).toBe("signed_out");
  });

  it("an unreachable server is a network_error", async () => {
    const tab = createClient({
      baseUrl: BASE,
      storage: "memory",
      fetch: async () => {
        throw new TypeError("Failed to fetch");
      },
    });
    clients.push(tab);
    await expect(tab.login({ email: "a@b.c", password: "x" })).rejects.toMatchObject({ status: 0, code: "network_error" });
  });
});

/** The session a tab's store holds, as stored. */
function localStorageless(tab: LatchkeyClient): string {
  // The store is private; its state is observable through a fresh read of the shared storage.
  return JSON.stringify((tab as unknown as { store: { read(): unknown } }).store.read());
}
