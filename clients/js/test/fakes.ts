// Test doubles: a latchkey that keeps a rotation chain in memory, a shared
// "localStorage" for several clients (tabs), and a broadcast bus between them.

import type { ChannelLike } from "../src/client.js";
import type { Session, SessionStore } from "../src/storage.js";
import { parseSession } from "../src/storage.js";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

export function jwt(claims: Record<string, unknown>): string {
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.c2ln`;
}

export interface FakeServerOptions {
  accessSeconds?: number;
  /** Status to answer refreshes with instead of rotating (e.g. 503), while set. */
  refreshFails?: number | null;
  /** `LATCHKEY_REFRESH_COOKIE=true`: the refresh token only in the (one browser's) cookie jar. */
  cookie?: boolean;
}

/** A latchkey in memory: one user, rotation with reuse detection (no grace window). */
export class FakeLatchkey {
  accessSeconds: number;
  refreshFails: number | null;
  live = new Set<string>();
  revokedAccess = new Set<string>();
  refreshes = 0;
  reuses = 0;
  calls: Array<{ method: string; path: string; authorization: string | null; csrf: string | null; body: unknown }> = [];
  /** The cookie mode: the browser's `latchkey_refresh` cookie (every tab sends the same jar). */
  cookieMode: boolean;
  jar: string | null = null;
  private counter = 0;

  constructor(options: FakeServerOptions = {}) {
    this.accessSeconds = options.accessSeconds ?? 60;
    this.refreshFails = options.refreshFails ?? null;
    this.cookieMode = options.cookie ?? false;
  }

  /** The sign-in answer's tokens: the pair, or (cookie mode) the access token, the refresh one going to the jar. */
  private issue() {
    const pair = this.pair();
    if (!this.cookieMode) return pair;
    this.jar = pair.refresh;
    return { access: pair.access };
  }

  pair() {
    const iat = Math.floor(Date.now() / 1000);
    const n = ++this.counter;
    const access = jwt({ token_type: "access", iat, exp: iat + this.accessSeconds, jti: `a${n}` });
    const refresh = jwt({ token_type: "refresh", iat, exp: iat + 86400, jti: `r${n}` });
    this.live.add(refresh);
    return { access, refresh };
  }

  accessValid(header: string | null): boolean {
    if (!header?.startsWith("Bearer ")) return false;
    const token = header.slice(7);
    if (this.revokedAccess.has(token)) return false;
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    return Date.now() / 1000 <= claims.exp;
  }

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname.replace(/\/$/, "");
    const authorization = request.headers.get("Authorization");
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
    const body = request.method === "GET" ? {} : await request.json().catch(() => ({}));
    this.calls.push({ method: request.method, path, authorization, csrf: request.headers.get("X-CSRF-Token"), body });
    switch (path) {
      case "/auth/csrf":
        return json(200, { csrfToken: "csrf-1" });
      case "/auth/login":
        if (body.password !== "right") {
          return json(401, { detail: "No active account found with the given credentials", code: "no_active_account" });
        }
        return json(200, { id: 7, email: "ada@example.com", name: "ada", tokens: this.issue() });
      case "/auth/token/refresh": {
        if (this.refreshFails !== null) {
          return json(this.refreshFails, { detail: "down", code: "service_unavailable" }, { "Retry-After": "1" });
        }
        const presented = body.refresh ?? (this.cookieMode ? this.jar : null);
        if (presented === null) return json(400, { refresh: ["This field is required."] });
        if (!this.live.delete(presented)) {
          this.reuses++;
          this.live.clear();
          if (this.cookieMode) this.jar = null;
          return json(401, { detail: "Token is blacklisted", code: "token_not_valid" });
        }
        this.refreshes++;
        return json(200, this.issue());
      }
      case "/auth/me":
      case "/api/things":
        if (!this.accessValid(authorization)) {
          return json(401, { detail: "Token is expired", code: "token_not_valid" }, { "WWW-Authenticate": "Bearer" });
        }
        return json(200, { id: 7, email: "ada@example.com", name: "ada" });
      case "/auth/logout":
        if (!this.accessValid(authorization)) return json(401, { detail: "Token is blacklisted", code: "token_not_valid" });
        this.live.clear();
        this.jar = null;
        this.revokedAccess.add(authorization!.slice(7));
        return json(200, { detail: "Successfully logged out." });
      default:
        return json(404, { detail: "Not found.", code: "not_found" });
    }
  };

  /** Ends every session (as an admin revocation would). */
  revokeAll(accessTokens: string[]) {
    this.live.clear();
    for (const t of accessTokens) this.revokedAccess.add(t);
  }
}

/**
 * One origin's localStorage, seen by several tabs: a write in one fires
 * `watch` in the others. With `lagMs`, the other tabs read the write only
 * that late, as in Chromium, which hands it to them asynchronously.
 */
export class SharedStorage {
  private value: string | null = null;
  private readonly views = new Map<number, string | null>();
  private readonly watchers = new Map<number, () => void>();
  private nextTab = 0;

  constructor(private readonly options: { lagMs?: number } = {}) {}

  tab(key = "latchkey.session"): SessionStore {
    const id = this.nextTab++;
    this.views.set(id, this.value);
    return {
      scope: "shared",
      key,
      read: () => parseSession(this.views.get(id) ?? null),
      write: (session: Session | null) => {
        const value = session === null ? null : JSON.stringify(session);
        this.value = value;
        this.views.set(id, value);
        // As the storage event: other tabs only, later.
        for (const other of this.views.keys()) {
          if (other === id) continue;
          const deliver = () => {
            this.views.set(other, value);
            this.watchers.get(other)?.();
          };
          if (this.options.lagMs) setTimeout(deliver, this.options.lagMs);
          else {
            this.views.set(other, value);
            const watcher = this.watchers.get(other);
            if (watcher) queueMicrotask(watcher);
          }
        }
      },
      watch: (listener) => {
        this.watchers.set(id, listener);
        return () => this.watchers.delete(id);
      },
    };
  }

  raw() {
    return this.value;
  }
}

/** A BroadcastChannel stand-in: a message goes to every other member, asynchronously. */
export class Bus {
  private readonly members = new Set<FakeChannel>();
  /** Delivers each message this many ms late (a message slower than the lock's hand-over). */
  constructor(private readonly delayMs = 0) {}
  channel(): ChannelLike {
    const member = new FakeChannel(this.members, this.delayMs);
    this.members.add(member);
    return member;
  }
}

class FakeChannel implements ChannelLike {
  private readonly listeners = new Set<(event: MessageEvent) => void>();
  constructor(
    private readonly members: Set<FakeChannel>,
    private readonly delayMs: number,
  ) {}
  postMessage(message: unknown) {
    // Structured clone, as the real channel: no tab shares an object with another.
    const copy = structuredClone(message);
    for (const member of this.members) {
      if (member === this) continue;
      for (const l of member.listeners) {
        const deliver = () => l({ data: structuredClone(copy) } as MessageEvent);
        if (this.delayMs > 0) setTimeout(deliver, this.delayMs);
        else queueMicrotask(deliver);
      }
    }
  }
  addEventListener(_type: "message", listener: (event: MessageEvent) => void) {
    this.listeners.add(listener);
  }
  removeEventListener(_type: "message", listener: (event: MessageEvent) => void) {
    this.listeners.delete(listener);
  }
  close() {
    this.members.delete(this);
  }
}

/** The cookie mode's shared number (localStorage in a browser). */
export class SharedSequence {
  value = 0;
  read = () => this.value;
  write = (value: number) => {
    this.value = value;
  };
  private readonly views = new Set<{ value: number }>();
  /** One tab's copy, reaching the other tabs `lagMs` late (as localStorage in Chromium). */
  lagging(lagMs: number) {
    const view = { value: this.value };
    this.views.add(view);
    return {
      read: () => view.value,
      write: (value: number) => {
        this.value = view.value = value;
        for (const other of this.views) if (other !== view) setTimeout(() => (other.value = Math.max(other.value, value)), lagMs);
      },
    };
  }
}
