// The client against a real latchkey: every route it wraps, the retry rule
// with a real 401, and a session ended by the server. Needs the release
// binary (LATCHKEY_BIN); under CI=true its absence fails the run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type LatchkeyClient } from "../src/client.js";
import { LatchkeyError } from "../src/errors.js";
import { localLocks } from "../src/lock.js";
import { Bus, SharedStorage } from "../test/fakes.js";
import { latchkeyBinary, startLatchkey, type Running } from "./latchkey.js";

const binary = latchkeyBinary();
if (!binary && process.env.CI === "true") throw new Error("CI=true and no latchkey binary: set LATCHKEY_BIN (the release build).");
if (!binary) console.warn("test-server: no latchkey binary (set LATCHKEY_BIN); skipped.");

const PASSWORD = "correct-Horse-battery-9-staple";
let server: Running;
let n = 0;
const clients: LatchkeyClient[] = [];

/** Tabs sharing one store, lock and channel (as one browser profile). */
function browser(tabs: number, options: { now?: () => number; refreshMarginSeconds?: number } = {}) {
  const storage = new SharedStorage();
  const locks = localLocks();
  const bus = new Bus();
  const made = Array.from({ length: tabs }, () =>
    createClient({ baseUrl: server.url, storage: storage.tab(), locks, channel: bus.channel(), ...options }),
  );
  clients.push(...made);
  return made;
}

function newUser() {
  const id = `${Date.now().toString(36)}-${++n}`;
  return { name: `ada-${id}`, email: `ada-${id}@example.com`, password: PASSWORD };
}

describe.skipIf(!binary)("against a real latchkey", () => {
  beforeAll(async () => {
    server = await startLatchkey(binary!, {
      LATCHKEY_ACCESS_TOKEN_LIFETIME_SECONDS: "2",
      LATCHKEY_LOGIN_FAILURES_PER_ACCOUNT: "3",
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  it("register signs in, me answers the user, logout ends the session on the server", async () => {
    const [tab] = browser(1);
    const user = newUser();
    const registered = await tab!.register(user);
    expect(registered).toMatchObject({ name: user.name, email: user.email });
    expect(tab!.getState()).toMatchObject({ status: "signed_in", user: registered });
    expect(await tab!.me()).toEqual(registered);
    const { refresh } = (tab as unknown as { store: { read(): { tokens: { refresh: string } } } }).store.read().tokens;
    await tab!.logout();
    expect(tab!.getState()).toMatchObject({ status: "signed_out", reason: "logout" });
    const after = await fetch(`${server.url}/auth/token/verify/`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": await tab!.csrf() },
      body: JSON.stringify({ token: refresh }),
    });
    expect(after.status).toBe(401);
  });

  it("field errors, a wrong password and the throttle arrive as typed errors", async () => {
    const [tab] = browser(1);
    const user = newUser();
    const invalid = await tab!.register({ ...user, email: "not-an-email" }).catch((e) => e);
    expect(invalid).toBeInstanceOf(LatchkeyError);
    expect(invalid).toMatchObject({ status: 400, code: "invalid", fields: { email: ["Enter a valid email address."] } });
    await tab!.register(user);
    await tab!.logout();
    const wrong = await tab!.login({ email: user.email, password: "wrong-Horse-battery-9" }).catch((e) => e);
    expect(wrong).toMatchObject({ status: 401, code: "no_active_account", detail: "No active account found with the given credentials" });
    let throttled: LatchkeyError | null = null;
    for (let i = 0; i < 5 && !throttled; i++) {
      const e = await tab!.login({ email: user.email, password: `wrong-${i}-Horse-battery` }).catch((e) => e);
      if (e instanceof LatchkeyError && e.status === 429) throttled = e;
    }
    expect(throttled).toMatchObject({ code: "throttled" });
    expect(throttled!.retryAfter).toBeGreaterThan(0);
  });

  it("a request that meets a real 401 (expired token, client clock behind) is retried once after one refresh", async () => {
    const rotatedBefore = await server.metric("latchkey_token_refreshes_total", 'outcome="rotated"');
    // The client's clock runs 1.9 s behind the server's (too little to read
    // as skew from `iat`), and it refreshes only at `exp` by its clock: it
    // sends the token after the server's exp, meets 401, refreshes, retries.
    const storage = new SharedStorage();
    const store = storage.tab();
    const meUrl = `${server.url}/auth/me`;
    const seen: number[] = [];
    const tab = createClient({
      baseUrl: server.url,
      storage: store,
      locks: localLocks(),
      channel: null,
      now: () => Date.now() - 1900,
      refreshMarginSeconds: 0,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (new Request(input, init).url === meUrl) seen.push(response.status);
        return response;
      },
    });
    clients.push(tab);
    await tab.register(newUser());
    const { iat } = JSON.parse(atob(store.read()!.tokens.access.split(".")[1]!));
    // A full second past exp on the server's clock, still before exp by the client's.
    await new Promise((r) => setTimeout(r, (iat + 3) * 1000 + 50 - Date.now()));
    const response = await tab.fetch(meUrl);
    expect(response.status).toBe(200);
    expect(seen).toEqual([401, 200]);
    expect(await server.metric("latchkey_token_refreshes_total", 'outcome="rotated"')).toBe(rotatedBefore + 1);
  });

  it("three tabs refreshing at once cost one rotation and no grace forgiveness", async () => {
    const tabs = browser(3);
    await tabs[0]!.register(newUser());
    const rotated = await server.metric("latchkey_token_refreshes_total", 'outcome="rotated"');
    const grace = await server.metric("latchkey_token_refreshes_total", 'outcome="grace"');
    await Promise.all(tabs.map((t) => t.refresh()));
    // All three meant to spend the same pair; the two that waited for the lock found it spent.
    const rotations = (await server.metric("latchkey_token_refreshes_total", 'outcome="rotated"')) - rotated;
    expect(rotations).toBe(1);
    expect(await server.metric("latchkey_token_refreshes_total", 'outcome="grace"')).toBe(grace);
    expect(await server.metric("latchkey_refresh_reuse_detections_total")).toBe(0);
    for (const t of tabs) expect((await t.fetch(`${server.url}/auth/me`)).status).toBe(200);
  });

  it("sessions, endSession, changePassword and logoutAll", async () => {
    const user = newUser();
    const [phone] = browser(1);
    const [laptop] = browser(1);
    await phone!.register(user);
    await laptop!.login({ email: user.email, password: PASSWORD });
    const sessions = await laptop!.sessions();
    expect(sessions).toHaveLength(2);
    expect(sessions.filter((s) => s.current)).toHaveLength(1);

    // The laptop changes the password: the phone's session ends (server-side), the laptop's stays.
    await laptop!.changePassword({ old_password: PASSWORD, new_password: `${PASSWORD}-2` });
    const refused = await phone!.fetch(`${server.url}/auth/me`);
    expect(refused.status).toBe(401);
    expect(phone!.getState()).toMatchObject({ status: "signed_out", reason: "session_ended" });
    expect((await laptop!.me()).email).toBe(user.email);

    // A second laptop session, ended from the first by id.
    const [tablet] = browser(1);
    await tablet!.login({ email: user.email, password: `${PASSWORD}-2` });
    const other = (await laptop!.sessions()).find((s) => !s.current)!;
    await laptop!.endSession(other.id);
    expect((await tablet!.fetch(`${server.url}/auth/me`)).status).toBe(401);
    expect(laptop!.getState().status).toBe("signed_in");

    const { sessionsEnded } = await laptop!.logoutAll();
    expect(sessionsEnded).toBe(1);
    expect(laptop!.getState()).toMatchObject({ status: "signed_out", reason: "logout" });
  });
});
