// The client: latchkey's routes as functions, a `fetch` for the app's own
// API, and the refresh rules that keep many tabs on one session.
//
// The rules, in one place:
//   1. A request whose access token is due (a little before `exp`) refreshes
//      first; a timer refreshes at the same moment when no request comes.
//   2. A refresh runs under one exclusive lock for every tab of the origin
//      (see lock.ts). Inside it the tab re-reads the stored session: when the
//      refresh token is no longer the one it meant to spend, another tab has
//      already refreshed, and it takes that pair instead of refreshing again.
//      The stored pair may lag the lock: Chromium hands a localStorage write
//      to the other tabs asynchronously, unordered with the lock's hand-over.
//      So a tab that rotated a pair holds a second lock naming the spent one
//      (see `markRotated`) before it lets go; a tab that enters and still
//      reads the spent pair, but sees that sign, waits for the new pair.
//   3. A request answered 401 is sent once more, after a refresh (or with the
//      pair another tab got meanwhile). Never twice.
//   4. A refused refresh token ends the session in every tab; so does a
//      logout. A transient failure (no network, 5xx, 429) never does.
//
// The cookie mode (`storage: "cookie"`, for a latchkey with
// `LATCHKEY_REFRESH_COOKIE=true`) keeps the same rules with nothing readable
// in storage: the refresh token is in the browser's HttpOnly cookie, the
// access token in each tab's memory. A tab that refreshes (or signs in)
// posts the new session on the BroadcastChannel, numbered; a number in
// localStorage (no token) says which is newest, so a tab entering the lock
// with an older session waits for the newer one instead of refreshing
// again. A fresh tab asks the others for the session under the lock, and
// refreshes (the cookie) only when none answers.

import {
  errorFromResponse,
  LatchkeyError,
  networkError,
  signedOutError,
} from "./errors.js";
import { fingerprint, tokenTimes } from "./jwt.js";
import { hold, isHeld, localLocks, withLock, type Locks } from "./lock.js";
import { clockOffsetMs, delayUntilDue, isDue } from "./schedule.js";
import { passkeysApi, type PasskeyLoginOptions, type Passkeys, type WebAuthn } from "./passkeys.js";
import { routePath } from "./route.js";
import {
  COOKIE_STORAGE_KEY,
  localStorageStore,
  memoryStore,
  type Session,
  type SessionStore,
  type Tokens,
  type User,
} from "./storage.js";
import type {
  Route,
  RoutePath,
  EmailChangeRequest,
  EmailTokenRequest,
  LoginRequest,
  LogoutAllResponse,
  MeResponse,
  MfaCodeRequest,
  MfaLoginRequest,
  MfaPasswordRequest,
  MfaStatus,
  PasswordChangeRequest,
  PasswordRequest,
  PasswordResetRequest,
  Profile,
  RegisterRequest,
  RenameRequest,
  ResetConfirmRequest,
  SessionInfo,
  TokenPair,
  TotpEnrolment,
  UserWithTokens,
} from "./types.js";

export interface ClientOptions {
  /** Where latchkey listens, e.g. `https://auth.example.com`. */
  baseUrl: string;
  /**
   * `"localStorage"` (default), `"memory"`, `"cookie"` (latchkey with
   * `LATCHKEY_REFRESH_COOKIE=true`: the refresh token stays in its HttpOnly
   * cookie), or a store of your own.
   */
  storage?: "localStorage" | "memory" | "cookie" | SessionStore;
  /**
   * Origins `client.fetch` may send the access token to. Default: latchkey's
   * own and the page's. A request anywhere else is refused (the token would leak).
   */
  apiOrigins?: string[];
  /** Refresh at most this many seconds before `exp` (default 60; a quarter of a shorter lifetime). */
  refreshMarginSeconds?: number;
  /** The longest a tab waits for another tab's refresh before taking the lock (default 5000). */
  lockTimeoutMs?: number;
  /** The longest a refresh request may take (default 10000). */
  refreshTimeoutMs?: number;
  /** The cookie mode: how long a fresh tab waits for another tab's answer before refreshing itself (default 250). */
  askTimeoutMs?: number;
  /** For tests: the platform's pieces. */
  fetch?: typeof globalThis.fetch;
  /** The cookie mode's "newest session" number (default: localStorage; null: none). */
  sequence?: SequenceStore | null;
  /** WebAuthn (default: `navigator.credentials` and `PublicKeyCredential`'s JSON parsers). */
  webauthn?: WebAuthn;
  locks?: Locks | null;
  channel?: ChannelLike | null;
  now?: () => number;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

/** The part of `BroadcastChannel` used here. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  removeEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  close(): void;
}

/** `loading` only in the cookie mode, until a fresh tab has learnt whether the cookie holds a session. */
export type Status = "signed_in" | "signed_out" | "loading";

/** Where the cookie mode keeps the number of the newest session (never a token). */
export interface SequenceStore {
  read(): number;
  write(value: number): void;
}

function localSequence(key: string): SequenceStore | null {
  const storage = (globalThis as { localStorage?: Storage }).localStorage;
  if (!storage) return null;
  return {
    read: () => {
      try {
        const value = Number(storage.getItem(key));
        return Number.isSafeInteger(value) && value > 0 ? value : 0;
      } catch {
        return 0;
      }
    },
    write: (value) => {
      try {
        storage.setItem(key, String(value));
      } catch {
        // Storage disabled: the tabs may refresh once too often, never wrongly (the cookie is shared).
      }
    },
  };
}

/** Why the last sign-out happened: `logout` (here or in another tab) or `session_ended` (the server refused the session). */
export type SignOutReason = "logout" | "session_ended";

export interface SessionState {
  status: Status;
  user: User | null;
  /** Set when the state became signed out while this client was running. */
  reason: SignOutReason | null;
}

/** A route of the served document (so a route the server dropped fails to compile); see `RoutePath`. */
type Path = RoutePath;

/** What the tabs tell each other; the cookie mode's carry the session itself (`seq` orders them). */
type Message =
  | { type: "session"; session?: Session; seq?: number }
  | { type: "signed_out"; reason: SignOutReason }
  | { type: "ask" };

/** How long a tab that rotated a pair says so (longer than any tab waits for the refresh lock). */
const ROTATED_MARK_MS = 30000;

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sameTokens(a: Tokens, b: Tokens): boolean {
  return a.access === b.access && a.refresh === b.refresh;
}

function isSessionLike(value: unknown): value is Session {
  if (!isObject(value) || !isObject(value.user) || !isObject(value.tokens)) return false;
  const { user, tokens } = value;
  return (
    typeof user.id === "number" &&
    typeof user.email === "string" &&
    typeof user.name === "string" &&
    typeof tokens.access === "string" &&
    typeof tokens.refresh === "string"
  );
}

function sameUser(a: User | null, b: User | null): boolean {
  return a === b || (a !== null && b !== null && a.id === b.id && a.email === b.email && a.name === b.name);
}

export class LatchkeyClient {
  readonly baseUrl: string;
  private readonly store: SessionStore;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly locks: Locks;
  private readonly channel: ChannelLike | null;
  private readonly now: () => number;
  private readonly setTimer: (callback: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly apiOrigins: Set<string>;
  private readonly marginSeconds: number;
  private readonly lockTimeoutMs: number;
  private readonly refreshTimeoutMs: number;
  /** The refresh token is in latchkey's HttpOnly cookie (`storage: "cookie"`). */
  readonly cookieMode: boolean;
  private readonly askTimeoutMs: number;
  private readonly sequence: SequenceStore | null;
  /** The cookie mode: the number of the session this tab holds. */
  private seq = 0;
  /** Woken when another tab's session arrives (a message, or a storage change). */
  private waiters = new Set<() => void>();
  /** Lets go of the signs this tab holds that it rotated a pair (see `markRotated`). */
  private readonly marks = new Set<() => void>();
  private booting: Promise<void> | null = null;

  /** `passkeys.register(name)`, `list()`, `remove(id)` (see passkeys.ts). */
  readonly passkeys: Passkeys;
  /** The second factor of the signed-in user: `status()`, `enrolTotp`, `confirmTotp`, `disableTotp`, `regenerateRecoveryCodes`. */
  readonly mfa: MfaApi;

  private state: SessionState;
  private lastTokens: Tokens | null;
  private readonly listeners = new Set<(state: SessionState) => void>();
  private readonly cleanups: Array<() => void> = [];
  private csrfToken: string | null = null;
  private csrfLoading: Promise<string> | null = null;
  private refreshing: Promise<Tokens> | null = null;
  private timer: unknown = null;
  private retryDelayMs = 0;
  /** Server clock minus ours (see schedule.ts). */
  private offsetMs = 0;
  private closed = false;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    const base = new URL(this.baseUrl);
    this.cookieMode = options.storage === "cookie";
    this.store =
      options.storage === "memory"
        ? memoryStore()
        : options.storage === "cookie"
          ? memoryStore(COOKIE_STORAGE_KEY, "shared")
          : options.storage === undefined || options.storage === "localStorage"
            ? localStorageStore()
            : options.storage;
    this.askTimeoutMs = options.askTimeoutMs ?? 250;
    this.sequence = this.cookieMode
      ? options.sequence === undefined
        ? localSequence(`${COOKIE_STORAGE_KEY}.seq`)
        : options.sequence
      : null;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    const platformLocks = (globalThis.navigator as Navigator | undefined)?.locks as Locks | undefined;
    // A tab-scoped store has no one to coordinate with.
    this.locks =
      (this.store.scope === "shared" ? (options.locks === undefined ? platformLocks : options.locks) : null) ??
      localLocks();
    this.channel =
      this.store.scope === "shared"
        ? options.channel === undefined
          ? typeof BroadcastChannel === "function"
            ? new BroadcastChannel(`latchkey:${this.store.key}`)
            : null
          : options.channel
        : null;
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimeout ?? ((cb, ms) => globalThis.setTimeout(cb, ms));
    this.clearTimer = options.clearTimeout ?? ((h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>));
    const pageOrigin = (globalThis as { location?: Location }).location?.origin;
    this.apiOrigins = new Set(options.apiOrigins ?? [base.origin, ...(pageOrigin ? [pageOrigin] : [])]);
    this.marginSeconds = options.refreshMarginSeconds ?? 60;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 5000;
    this.refreshTimeoutMs = options.refreshTimeoutMs ?? 10000;

    const session = this.store.read();
    this.lastTokens = session?.tokens ?? null;
    this.state = {
      status: session ? "signed_in" : this.cookieMode ? "loading" : "signed_out",
      user: session?.user ?? null,
      reason: null,
    };
    this.passkeys = passkeysApi(
      {
        call: (path, opts) => this.call(path, opts),
        signedIn: (body, receivedAt) => this.signedIn(body, receivedAt),
      },
      options.webauthn,
    );
    this.mfa = this.mfaApi();

    this.cleanups.push(this.store.watch(() => this.sync(null)));
    if (this.channel) {
      const channel = this.channel;
      const onMessage = (event: MessageEvent) => {
        const message = event.data as Message | undefined;
        if (message?.type === "signed_out") {
          if (this.cookieMode) this.store.write(null);
          this.sync(message.reason);
        } else if (message?.type === "session") {
          if (this.cookieMode) this.receive(message);
          else this.sync(null);
        } else if (message?.type === "ask" && this.cookieMode) {
          const held = this.store.read();
          if (held) this.broadcast({ type: "session", session: held, seq: this.seq });
        }
      };
      channel.addEventListener("message", onMessage);
      this.cleanups.push(() => {
        channel.removeEventListener("message", onMessage);
        channel.close();
      });
    }
    // A frozen or hidden tab's timers did not run: look again when it is back.
    const doc = (globalThis as { document?: Document }).document;
    if (doc) {
      const onBack = () => this.sync(null, true);
      doc.addEventListener("resume", onBack);
      doc.addEventListener("visibilitychange", onBack);
      this.cleanups.push(() => {
        doc.removeEventListener("resume", onBack);
        doc.removeEventListener("visibilitychange", onBack);
      });
    }
    this.schedule();
    if (this.cookieMode && !session) this.booting = this.bootstrap();
  }

  // --- state -------------------------------------------------------------

  /** The current state; the same object until something changes (for `useSyncExternalStore`). */
  getState = (): SessionState => this.state;

  /** Resolves once the state is known (at once, but in the cookie mode's first moments: see `status: "loading"`). */
  ready(): Promise<void> {
    return this.booting ?? Promise.resolve();
  }

  /** Calls `listener` on every change of state, in this tab or from another. */
  subscribe = (listener: (state: SessionState) => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Stops timers and listeners (for tests and hot reloads). */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.listeners.clear();
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    for (const release of [...this.marks]) release();
  }

  /** Re-reads the store; tells listeners and reschedules when something changed. */
  private sync(reason: SignOutReason | null, reschedule = false): void {
    if (this.closed) return;
    const session = this.store.read();
    const tokensChanged =
      session?.tokens.access !== this.lastTokens?.access || session?.tokens.refresh !== this.lastTokens?.refresh;
    this.lastTokens = session?.tokens ?? null;
    const status: Status = session ? "signed_in" : "signed_out";
    const user = session?.user ?? null;
    let nextReason = this.state.reason;
    if (status === "signed_in") nextReason = null;
    else if (this.state.status === "loading" && this.booting !== null && reason === null) {
      // Still finding out (the cookie mode's fresh tab): nothing to say yet.
      return;
    } else if (this.state.status === "signed_in") nextReason = reason ?? "logout";
    else if (reason !== null) nextReason = reason;
    if (status !== this.state.status || !sameUser(user, this.state.user) || nextReason !== this.state.reason) {
      this.state = { status, user, reason: nextReason };
      for (const listener of [...this.listeners]) listener(this.state);
    }
    if (tokensChanged) {
      this.retryDelayMs = 0;
      for (const wake of [...this.waiters]) wake();
    }
    if (tokensChanged || reschedule) this.schedule();
  }

  private broadcast(message: Message): void {
    try {
      this.channel?.postMessage(message);
    } catch {
      // A closed channel: the storage event still reaches the other tabs.
    }
  }

  /** Stores a session the server just issued, and tells the other tabs. */
  private adopt(session: Session, receivedAt: number | null): void {
    const times = tokenTimes(session.tokens.access);
    if (times && receivedAt !== null) this.offsetMs = clockOffsetMs(times.iat, receivedAt);
    this.store.write(session);
    if (this.cookieMode) {
      // Newer than any session another tab holds or announced (without
      // localStorage, the clock stands in for the shared number).
      this.seq = this.sequence
        ? Math.max(this.seq, this.sequence.read()) + 1
        : Math.max(this.seq + 1, Math.floor(this.now()));
      this.sequence?.write(this.seq);
      this.broadcast({ type: "session", session, seq: this.seq });
    } else {
      this.broadcast({ type: "session" });
    }
    this.sync(null);
  }

  /** The cookie mode: another tab's session, taken when it is newer than ours. */
  private receive(message: { session?: Session; seq?: number }): void {
    const { session, seq } = message;
    if (!isSessionLike(session) || typeof seq !== "number" || seq < this.seq) return;
    // Two sign-ins numbered alike (two tabs at once): every tab keeps the same one of them.
    const held = this.store.read();
    if (seq === this.seq && (held === null ? this.seq > 0 : session.tokens.access <= held.tokens.access)) return;
    this.seq = seq;
    this.store.write(session);
    this.sync(null);
    for (const wake of this.waiters) wake();
  }

  /** The cookie mode: waits up to `ms` for a session numbered above `seq` from another tab. */
  private awaitNewer(seq: number, ms: number): Promise<boolean> {
    if (this.seq > seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: unknown = null;
      const wake = () => {
        if (this.seq <= seq && !this.closed) return;
        this.waiters.delete(wake);
        if (timer !== null) this.clearTimer(timer);
        resolve(this.seq > seq);
      };
      this.waiters.add(wake);
      timer = this.setTimer(() => {
        this.waiters.delete(wake);
        resolve(this.seq > seq);
      }, ms);
      this.broadcast({ type: "ask" });
    });
  }

  /**
   * The cookie mode's fresh tab: under the refresh lock, take the session
   * from another tab if one answers, or else refresh with the cookie (one
   * refresh, and only when no tab holds a session). No cookie: signed out.
   */
  private async bootstrap(): Promise<void> {
    try {
      await this.locked(async (isStolen) => {
        if (this.store.read()) return;
        if (await this.awaitNewer(this.seq, this.askTimeoutMs)) return;
        const response = await this.send("/auth/token/refresh", { method: "POST", body: {}, timeoutMs: this.refreshTimeoutMs });
        const receivedAt = this.now();
        const body = await readJson(response);
        if (!response.ok) {
          if (response.status === 400 || response.status === 401) return; // no cookie, or a dead one
          throw errorFromResponse(response.status, body, response.headers.get("Retry-After"));
        }
        const tokens = parseTokenPair(body, "");
        const me = await this.send("/auth/me", { access: tokens.access });
        const meBody = await readJson(me);
        if (!me.ok) throw errorFromResponse(me.status, meBody, me.headers.get("Retry-After"));
        if (isStolen() && this.store.read()) return;
        this.adopt({ user: parseMe(meBody), tokens }, receivedAt);
      });
    } catch {
      // No answer (network, 5xx): as signed out; `restore()` tries again.
    } finally {
      this.booting = null;
      if (this.state.status === "loading") {
        this.state = { status: "signed_out", user: null, reason: null };
        for (const listener of [...this.listeners]) listener(this.state);
      }
    }
  }

  /** The cookie mode: looks for the cookie's session again (after a failed start, e.g. offline). */
  restore(): Promise<void> {
    if (!this.cookieMode || this.store.read()) return this.ready();
    this.booting ??= this.bootstrap();
    return this.booting;
  }

  /** Forgets the session here and in every tab. */
  private end(reason: SignOutReason): void {
    this.store.write(null);
    this.broadcast({ type: "signed_out", reason });
    this.sync(reason);
  }

  // --- the refresh timer -------------------------------------------------

  private schedule(): void {
    if (this.closed) return;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    const session = this.store.read();
    const times = session && tokenTimes(session.tokens.access);
    if (!session || !times) return;
    const delay = Math.max(this.retryDelayMs, delayUntilDue(times, this.now(), this.marginSeconds, this.offsetMs));
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.onTimer();
    }, delay);
  }

  private async onTimer(): Promise<void> {
    const session = this.store.read();
    const times = session && tokenTimes(session.tokens.access);
    if (!session || !times) return;
    if (!isDue(times, this.now(), this.marginSeconds, this.offsetMs)) return this.schedule();
    try {
      await this.refreshFrom(session.tokens);
      this.retryDelayMs = 0;
    } catch (error) {
      if (error instanceof LatchkeyError && (error.code === "signed_out" || this.state.status === "signed_out")) return;
      // Transient: try again later, sooner if the server said when.
      const retryAfterMs = error instanceof LatchkeyError && error.retryAfter !== null ? error.retryAfter * 1000 : 0;
      this.retryDelayMs = Math.max(retryAfterMs, Math.min(30000, Math.max(1000, this.retryDelayMs * 2)));
    }
    this.schedule();
  }

  // --- refresh -----------------------------------------------------------

  /**
   * Refreshes now (rule 2 above): resolves to the live pair, which another
   * tab may have fetched. Rejects with `signed_out` when there is no session.
   */
  async refresh(): Promise<void> {
    await this.booting;
    const session = this.store.read();
    if (!session) throw signedOutError();
    await this.refreshFrom(session.tokens);
  }

  /** The pair that replaces `spent`: fetched here, or taken from the tab that got it first. */
  private refreshFrom(spent: Tokens): Promise<Tokens> {
    this.refreshing ??= this.locked((isStolen) => this.refreshLocked(spent, isStolen)).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private locked<T>(critical: (isStolen: () => boolean) => Promise<T>): Promise<T> {
    return withLock(this.locks, `latchkey.refresh:${this.store.key}`, this.lockTimeoutMs, critical);
  }

  private async refreshLocked(spent: Tokens, isStolen: () => boolean): Promise<Tokens> {
    const current = this.store.read();
    if (!current) {
      this.sync(null);
      throw signedOutError();
    }
    if (!sameTokens(current.tokens, spent)) {
      // Another tab refreshed (or logged in again) while this one waited.
      this.sync(null);
      return current.tokens;
    }
    // Another tab rotated `spent` and its pair is on its way (the lock and the
    // sign are ordered, the storage event and the message not): wait for it
    // rather than rotate again. The cookie mode's number says the same.
    const announced = this.cookieMode && (this.sequence?.read() ?? 0) > this.seq;
    if (announced || (await isHeld(this.locks, this.rotatedMark(spent)))) {
      const taken = await this.awaitOther(spent, Math.max(this.askTimeoutMs, 1000));
      if (taken) return taken.tokens;
    }
    const response = await this.send("/auth/token/refresh", {
      method: "POST",
      // The cookie mode: `{}`, and the browser sends the cookie.
      body: this.cookieMode ? {} : { refresh: current.tokens.refresh },
      timeoutMs: this.refreshTimeoutMs,
    });
    const receivedAt = this.now();
    const body = await readJson(response);
    // Another tab took the lock while this answer was on its way, and moved on: its pair wins.
    const moved = () => {
      const now = this.store.read();
      return now !== null && !sameTokens(now.tokens, current.tokens) ? now : null;
    };
    if (response.ok) {
      const pair = parseTokenPair(body, current.tokens.refresh);
      const winner = isStolen() ? moved() : null;
      if (winner) {
        this.sync(null);
        return winner.tokens;
      }
      this.adopt({ user: current.user, tokens: pair }, receivedAt);
      await this.markRotated(current.tokens);
      return pair;
    }
    const error = errorFromResponse(response.status, body, response.headers.get("Retry-After"));
    if (response.status === 401) {
      const winner = moved();
      if (winner) {
        this.sync(null);
        return winner.tokens;
      }
      this.end("session_ended");
    }
    throw error;
  }

  private rotatedMark(spent: Tokens): string {
    return `latchkey.rotated:${this.store.key}:${fingerprint(spent.access)}`;
  }

  /** Before letting go of the refresh lock: a sign, for `ROTATED_MARK_MS`, that `spent` was rotated. */
  private markRotated(spent: Tokens): Promise<void> {
    if (this.closed) return Promise.resolve();
    const until = new Promise<void>((resolve) => {
      const timer = this.setTimer(() => release(), ROTATED_MARK_MS);
      const release = () => {
        this.clearTimer(timer);
        this.marks.delete(release);
        resolve();
      };
      this.marks.add(release);
    });
    return hold(this.locks, this.rotatedMark(spent), until);
  }

  /** Waits up to `ms` for a session other than `spent` from another tab (asking, in the cookie mode). */
  private awaitOther(spent: Tokens, ms: number): Promise<Session | null> {
    const other = () => {
      const held = this.store.read();
      return held !== null && !sameTokens(held.tokens, spent) ? held : null;
    };
    const now = other();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(wake);
        this.clearTimer(timer);
        resolve(other());
      };
      const wake = () => {
        if (other() || this.closed) done();
      };
      const timer = this.setTimer(done, ms);
      this.waiters.add(wake);
      if (this.cookieMode) this.broadcast({ type: "ask" });
    });
  }

  // --- requests ----------------------------------------------------------

  /** Sends one request to latchkey (no token, no retry); only network failures throw. */
  private async send(
    path: Path,
    { method = "GET", body, access, timeoutMs }: { method?: string; body?: unknown; access?: string; timeoutMs?: number },
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (UNSAFE.has(method)) headers["X-CSRF-Token"] = await this.csrf();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (access !== undefined) headers.Authorization = `Bearer ${access}`;
    try {
      return await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        credentials: "include",
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw networkError(error);
    }
  }

  /**
   * Runs `attempt(access)` with a fresh access token (rule 1), and once more
   * after a refresh when it is answered 401 (rule 3).
   */
  private async authorized(attempt: (access: string) => Promise<Response>): Promise<Response> {
    await this.booting;
    let session = this.store.read();
    if (!session) throw signedOutError();
    const times = tokenTimes(session.tokens.access);
    if (times && isDue(times, this.now(), this.marginSeconds, this.offsetMs)) {
      try {
        await this.refreshFrom(session.tokens);
      } catch (error) {
        // The session ended on the way: this request has no one to speak for.
        if (error instanceof LatchkeyError && error.status === 401) throw signedOutError();
        // Refresh failed for now (network, 5xx, 429): the token may still have
        // its margin to live, so send it; the 401 rule covers the rest.
        if (this.now() + this.offsetMs >= times.exp * 1000) throw error;
      }
      session = this.store.read();
      if (!session) throw signedOutError();
    }
    const first = await attempt(session.tokens.access);
    if (first.status !== 401) return first;
    let tokens: Tokens;
    try {
      tokens = await this.refreshFrom(session.tokens);
    } catch (error) {
      // The refresh token was refused too: the session is over, and this 401 stands.
      if (error instanceof LatchkeyError && error.status === 401) return first;
      throw error;
    }
    return attempt(tokens.access);
  }

  /** A latchkey route answering JSON; non-2xx answers throw `LatchkeyError`. */
  private async call(
    path: Path,
    options: { method?: string; body?: unknown; auth?: boolean } = {},
  ): Promise<{ body: unknown; receivedAt: number }> {
    const { auth = false, ...rest } = options;
    const response = auth
      ? await this.authorized((access) => this.send(path, { ...rest, access }))
      : await this.send(path, rest);
    const receivedAt = this.now();
    const body = await readJson(response);
    if (!response.ok) throw errorFromResponse(response.status, body, response.headers.get("Retry-After"));
    return { body, receivedAt };
  }

  /**
   * `fetch` for the app's own API: the access token in `Authorization` (kept
   * fresh), the CSRF token on unsafe methods, one retry after a 401. Only to
   * `apiOrigins`; anything else is refused before a byte is sent. Answers
   * the `Response` as `fetch` does (a 401 that survived the retry included).
   */
  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const base = new Request(input, init);
    const origin = new URL(base.url).origin;
    if (!this.apiOrigins.has(origin)) {
      throw new LatchkeyError(0, "origin_not_allowed", `Refusing to send the access token to ${origin}: not in apiOrigins.`);
    }
    const csrf = UNSAFE.has(base.method) ? await this.csrf() : null;
    return this.authorized(async (access) => {
      const headers = new Headers(base.headers);
      headers.set("Authorization", `Bearer ${access}`);
      if (csrf !== null) headers.set("X-CSRF-Token", csrf);
      const request = new Request(base.clone(), { headers });
      try {
        return await this.fetchImpl(request);
      } catch (error) {
        throw networkError(error);
      }
    });
  };

  // --- latchkey's routes -------------------------------------------------

  /** `GET /auth/csrf/`, once per client: the token every unsafe request carries. */
  csrf(): Promise<string> {
    if (this.csrfToken !== null) return Promise.resolve(this.csrfToken);
    this.csrfLoading ??= (async () => {
      let response: Response;
      try {
        response = await this.fetchImpl(`${this.baseUrl}${"/auth/csrf" satisfies Route}`, { credentials: "include" });
      } catch (error) {
        throw networkError(error);
      }
      const body = await readJson(response);
      if (!response.ok) throw errorFromResponse(response.status, body, response.headers.get("Retry-After"));
      if (!isObject(body) || typeof body.csrfToken !== "string") throw badResponse("/auth/csrf");
      this.csrfToken = body.csrfToken;
      return body.csrfToken;
    })().finally(() => {
      this.csrfLoading = null;
    });
    return this.csrfLoading;
  }

  /**
   * `POST /auth/register`: creates the account and signs in (every tab).
   * With `LATCHKEY_REQUIRE_VERIFIED_EMAIL=true` the answer has no tokens:
   * the account exists, nobody is signed in, and the user follows the mailed link.
   */
  async register(form: RegisterRequest): Promise<User> {
    const { body, receivedAt } = await this.call("/auth/register", { method: "POST", body: form });
    if (isObject(body) && body.tokens === undefined) return parseMe(body);
    return this.signedIn(body, receivedAt);
  }

  /**
   * `POST /auth/login` by email (or by name without one): signs in (every
   * tab). An account with a second factor rejects with `MfaRequiredError`
   * (`code: "mfa_required"`, `mfaToken`, `methods`): finish with `loginMfa`.
   */
  async login(form: LoginRequest): Promise<User> {
    const { body, receivedAt } = await this.call("/auth/login", { method: "POST", body: form });
    return this.signedIn(body, receivedAt);
  }

  /** `POST /auth/login/mfa`: the second step (a TOTP code, or a recovery code). A wrong code: `fields.code`. */
  async loginMfa(mfaToken: string, code: string): Promise<User> {
    const { body, receivedAt } = await this.call("/auth/login/mfa", {
      method: "POST",
      body: { mfa_token: mfaToken, code } satisfies MfaLoginRequest,
    });
    return this.signedIn(body, receivedAt);
  }

  /** Signs in with a passkey (`navigator.credentials.get`); see passkeys.ts. */
  loginWithPasskey(options: PasskeyLoginOptions = {}): Promise<User> {
    return this.passkeys.login(options);
  }

  private signedIn(body: unknown, receivedAt: number): User {
    const answer = parseUserWithTokens(body);
    const user = { id: answer.id, email: answer.email, name: answer.name };
    this.adopt({ user, tokens: { access: answer.tokens.access, refresh: answer.tokens.refresh ?? "" } }, receivedAt);
    return user;
  }

  /**
   * `POST /auth/logout`: ends this session on the server, then in every tab.
   * A session the server had already ended counts as logged out; a failure
   * to reach the server keeps the session (so the logout can be retried).
   */
  async logout(): Promise<void> {
    if (!this.store.read()) return this.sync(null);
    let response: Response;
    try {
      response = await this.authorized((access) => {
        // The pair may have been refreshed on the way: send the refresh token live now.
        const refresh = this.store.read()?.tokens.refresh ?? "";
        // The cookie mode: `{}`, and latchkey reads (and clears) the cookie.
        return this.send("/auth/logout", { method: "POST", access, body: this.cookieMode ? {} : { refresh } });
      });
    } catch (error) {
      // The refresh token was refused: the server had already ended the session.
      if (error instanceof LatchkeyError && error.status === 401 && error.code !== "signed_out") {
        return this.end("logout");
      }
      if (error instanceof LatchkeyError && error.code === "signed_out") return this.sync(null);
      throw error;
    }
    const body = await readJson(response);
    if (response.ok || response.status === 401) return this.end("logout");
    throw errorFromResponse(response.status, body, response.headers.get("Retry-After"));
  }

  /** `POST /auth/logout/all`: ends every session of the user, this one included. */
  async logoutAll(): Promise<{ sessionsEnded: number }> {
    try {
      const { body } = await this.call("/auth/logout/all", { method: "POST", auth: true });
      const ended = isObject(body) && typeof body.sessions_ended === "number" ? body.sessions_ended : 0;
      this.end("logout");
      return { sessionsEnded: ended };
    } catch (error) {
      if (error instanceof LatchkeyError && error.status === 401) this.end("logout");
      throw error;
    }
  }

  /** `GET /auth/me`: the user, also stored (a name changed elsewhere shows in every tab). */
  async me(): Promise<User> {
    const { body } = await this.call("/auth/me", { auth: true });
    const me = parseMe(body);
    this.storeUser(me);
    return me;
  }

  /** `GET /auth/me` whole: the user and `email_verified`. */
  async profile(): Promise<Profile> {
    const { body } = await this.call("/auth/me", { auth: true });
    const profile = parseProfile(body, "/auth/me");
    this.storeUser(profile);
    return profile;
  }

  /** `PATCH /auth/me` `{name}` (register's rules: a taken or bad name is `fields.name`); every tab shows it. */
  async updateProfile(form: RenameRequest): Promise<Profile> {
    const { body } = await this.call("/auth/me", { method: "PATCH", body: form, auth: true });
    const profile = parseProfile(body, "/auth/me");
    this.storeUser(profile);
    return profile;
  }

  /** `DELETE /auth/me` `{password}`: deletes the account; every session ends, in every tab. A wrong password: `fields.password`. */
  async deleteAccount(password: string): Promise<void> {
    await this.call("/auth/me", { method: "DELETE", body: { password } satisfies PasswordRequest, auth: true });
    this.end("logout");
  }

  private storeUser(fresh: User): void {
    const me = { id: fresh.id, email: fresh.email, name: fresh.name };
    const session = this.store.read();
    if (session && session.user.id === me.id && !sameUser(session.user, me)) {
      // The cookie mode numbers it as a new session, so the other tabs take it.
      if (this.cookieMode) return this.adopt({ ...session, user: me }, null);
      this.store.write({ ...session, user: me });
      this.broadcast({ type: "session" });
      this.sync(null);
    }
  }

  /** `POST /auth/password/reset` `{email}`: always the same `detail`, account or not. */
  async requestPasswordReset(email: string): Promise<string> {
    const { body } = await this.call("/auth/password/reset", { method: "POST", body: { email } satisfies PasswordResetRequest });
    return detailOf(body, "/auth/password/reset");
  }

  /** `POST /auth/password/reset/confirm`: every session of the user ends; log in afterwards. Bad token: `fields.token`; refused password: `fields.new_password`. */
  async confirmPasswordReset(token: string, newPassword: string): Promise<string> {
    const { body } = await this.call("/auth/password/reset/confirm", {
      method: "POST",
      body: { token, new_password: newPassword } satisfies ResetConfirmRequest,
    });
    return detailOf(body, "/auth/password/reset/confirm");
  }

  /** `POST /auth/email/verify` `{token}` (the mailed link's). Bad token: `fields.token`. */
  async verifyEmail(token: string): Promise<string> {
    const { body } = await this.call("/auth/email/verify", { method: "POST", body: { token } satisfies EmailTokenRequest });
    return detailOf(body, "/auth/email/verify");
  }

  /** `POST /auth/email/verify/resend` (signed in; throttled: `retryAfter`). */
  async resendVerification(): Promise<string> {
    const { body } = await this.call("/auth/email/verify/resend", { method: "POST", auth: true });
    return detailOf(body, "/auth/email/verify/resend");
  }

  /** `POST /auth/email/change` `{email, password}`: mails a link to the new address; nothing changes until it is confirmed. */
  async changeEmail(form: EmailChangeRequest): Promise<string> {
    const { body } = await this.call("/auth/email/change", { method: "POST", body: form, auth: true });
    return detailOf(body, "/auth/email/change");
  }

  /** `POST /auth/email/change/confirm` `{token}`: the address changes (a signed-in tab sees it at its next `me()`). Taken meanwhile: `fields.email`. */
  async confirmEmailChange(token: string): Promise<string> {
    const { body } = await this.call("/auth/email/change/confirm", {
      method: "POST",
      body: { token } satisfies EmailTokenRequest,
    });
    if (this.store.read()) await this.me().catch(() => undefined);
    return detailOf(body, "/auth/email/change/confirm");
  }

  /** `POST /auth/password/change`: every other session of the user ends; this one stays. */
  async changePassword(form: PasswordChangeRequest): Promise<void> {
    await this.call("/auth/password/change", { method: "POST", body: form, auth: true });
  }

  /** `GET /auth/sessions`: the user's live sessions, most recently used first. */
  async sessions(): Promise<SessionInfo[]> {
    const { body } = await this.call("/auth/sessions", { auth: true });
    if (!Array.isArray(body)) throw badResponse("/auth/sessions");
    return body as SessionInfo[];
  }

  /** `DELETE /auth/sessions/{id}`: ends one of the user's sessions (this one: a logout). */
  async endSession(id: string): Promise<void> {
    const current = (await this.sessions()).find((s) => s.id === id)?.current === true;
    await this.call(routePath("/auth/sessions/{id}", { id }), { method: "DELETE", auth: true });
    if (current) this.end("logout");
  }

  private mfaApi(): MfaApi {
    return {
      status: async () => {
        const { body } = await this.call("/auth/mfa", { auth: true });
        if (!isObject(body) || typeof body.totp !== "boolean" || typeof body.recovery_codes_left !== "number") {
          throw badResponse("/auth/mfa");
        }
        return body as unknown as MfaStatus;
      },
      enrolTotp: async (password) => {
        const { body } = await this.call("/auth/mfa/totp", {
          method: "POST",
          body: { password } satisfies MfaPasswordRequest,
          auth: true,
        });
        if (!isObject(body) || typeof body.secret !== "string" || typeof body.otpauth_uri !== "string") {
          throw badResponse("/auth/mfa/totp");
        }
        return { secret: body.secret, otpauth_uri: body.otpauth_uri };
      },
      confirmTotp: async (code) => {
        const { body } = await this.call("/auth/mfa/totp/confirm", {
          method: "POST",
          body: { code } satisfies MfaCodeRequest,
          auth: true,
        });
        return recoveryCodesOf(body, "/auth/mfa/totp/confirm");
      },
      disableTotp: async (password) => {
        await this.call("/auth/mfa/totp", { method: "DELETE", body: { password } satisfies MfaPasswordRequest, auth: true });
      },
      regenerateRecoveryCodes: async (password) => {
        const { body } = await this.call("/auth/mfa/recovery-codes", {
          method: "POST",
          body: { password } satisfies MfaPasswordRequest,
          auth: true,
        });
        return recoveryCodesOf(body, "/auth/mfa/recovery-codes");
      },
    };
  }
}

/** The signed-in user's second factor (TOTP and recovery codes). */
export interface MfaApi {
  /** `GET /auth/mfa`: `{totp, recovery_codes_left, passkeys}`. */
  status(): Promise<MfaStatus>;
  /** `POST /auth/mfa/totp` `{password}`: a pending secret and its `otpauth://` URI (show it as a QR code). */
  enrolTotp(password: string): Promise<TotpEnrolment>;
  /** `POST /auth/mfa/totp/confirm` `{code}`: login now needs a second factor; the ten recovery codes, shown once. Wrong code: `fields.code`. */
  confirmTotp(code: string): Promise<string[]>;
  /** `DELETE /auth/mfa/totp` `{password}`: TOTP and the recovery codes go. */
  disableTotp(password: string): Promise<void>;
  /** `POST /auth/mfa/recovery-codes` `{password}`: ten new codes; the old ones die. */
  regenerateRecoveryCodes(password: string): Promise<string[]>;
}

function recoveryCodesOf(body: unknown, path: string): string[] {
  if (isObject(body) && Array.isArray(body.recovery_codes) && body.recovery_codes.every((c) => typeof c === "string")) {
    return body.recovery_codes as string[];
  }
  throw badResponse(path);
}

function detailOf(body: unknown, path: string): string {
  if (isObject(body) && typeof body.detail === "string") return body.detail;
  throw badResponse(path);
}

function parseProfile(body: unknown, path: string): Profile {
  if (
    isObject(body) &&
    typeof body.id === "number" &&
    typeof body.email === "string" &&
    typeof body.name === "string" &&
    typeof body.email_verified === "boolean"
  ) {
    return { id: body.id, email: body.email, name: body.name, email_verified: body.email_verified };
  }
  throw badResponse(path);
}

async function readJson(response: Response): Promise<unknown> {
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function badResponse(path: string): LatchkeyError {
  return new LatchkeyError(0, "bad_response", `Unexpected answer from ${path}.`);
}

function parseTokenPair(body: unknown, previousRefresh: string): Tokens {
  if (!isObject(body) || typeof body.access !== "string") throw badResponse("/auth/token/refresh");
  const pair = body as Partial<TokenPair>;
  // Without rotation (a SimpleJWT server) the old refresh token stays valid.
  return { access: body.access, refresh: typeof pair.refresh === "string" ? pair.refresh : previousRefresh };
}

/** A sign-in answer; `tokens.refresh` is absent in the cookie mode (it is in the HttpOnly cookie). */
type SignInAnswer = UserWithTokens & { tokens: { access: string; refresh?: string | null } };

function parseUserWithTokens(body: unknown): SignInAnswer {
  if (
    isObject(body) &&
    typeof body.id === "number" &&
    typeof body.email === "string" &&
    typeof body.name === "string" &&
    isObject(body.tokens) &&
    typeof body.tokens.access === "string" &&
    (typeof body.tokens.refresh === "string" || body.tokens.refresh === undefined || body.tokens.refresh === null)
  ) {
    return body as unknown as SignInAnswer;
  }
  throw badResponse("/auth/login");
}

/** `GET /auth/me`'s user; fields a newer latchkey adds (`email_verified`)
 * are left out, so the user a tab stores is the same whatever the server. */
type Me = Pick<MeResponse, "id" | "email" | "name">;

function parseMe(body: unknown): Me {
  if (isObject(body) && typeof body.id === "number" && typeof body.email === "string" && typeof body.name === "string") {
    return { id: body.id, email: body.email, name: body.name };
  }
  throw badResponse("/auth/me");
}

export type { LogoutAllResponse };

/** A client for the latchkey at `baseUrl`. One per app (per tab). */
export function createClient(options: ClientOptions): LatchkeyClient {
  return new LatchkeyClient(options);
}
