// Where the session (the user and the token pair) lives between requests.
//
// - `localStorage` (the default): the seed's way, under the seed example's
//   key and shape, so every tab of the app shares one session and a reload
//   keeps it. Works with any latchkey.
// - `memory`: nothing is written anywhere; each tab is its own session and a
//   reload signs out. For apps that would rather not keep a refresh token
//   where scripts can read it after the tab closes.
// - `cookie` (latchkey with `LATCHKEY_REFRESH_COOKIE=true`): the refresh
//   token is in an HttpOnly cookie no script can read; the access token and
//   the user live in each tab's memory, and the tabs hand them to each other
//   over a BroadcastChannel (see client.ts). `tokens.refresh` is `""`.

export interface User {
  id: number;
  email: string;
  name: string;
}

export interface Tokens {
  access: string;
  /** `""` in the cookie mode: the browser holds it, out of every script's reach. */
  refresh: string;
}

export interface Session {
  user: User;
  tokens: Tokens;
}

export interface SessionStore {
  /** "shared": every tab sees the same session (cross-tab rules apply); "tab": this tab only. */
  readonly scope: "shared" | "tab";
  /** A name for this store's session, used for the refresh lock and the broadcast channel. */
  readonly key: string;
  read(): Session | null;
  write(session: Session | null): void;
  /** Calls `listener` when another tab changed the session; returns the unsubscribe function. */
  watch(listener: () => void): () => void;
}

function isSession(value: unknown): value is Session {
  if (typeof value !== "object" || value === null) return false;
  const { user, tokens } = value as Record<string, unknown>;
  if (typeof user !== "object" || user === null || typeof tokens !== "object" || tokens === null) return false;
  const u = user as Record<string, unknown>;
  const t = tokens as Record<string, unknown>;
  return (
    typeof u.id === "number" &&
    typeof u.email === "string" &&
    typeof u.name === "string" &&
    typeof t.access === "string" &&
    typeof t.refresh === "string"
  );
}

/** Parses a stored session; anything else (another app's data, a hand edit) reads as signed out. */
export function parseSession(text: string | null): Session | null {
  if (text === null) return null;
  try {
    const value: unknown = JSON.parse(text);
    if (!isSession(value)) return null;
    const { id, email, name } = value.user;
    return { user: { id, email, name }, tokens: { access: value.tokens.access, refresh: value.tokens.refresh } };
  } catch {
    return null;
  }
}

/** The seed example's key: the seed-style page and the SDK share one session. */
export const DEFAULT_STORAGE_KEY = "latchkey.session";

/** The session in `storage` (default `window.localStorage`) under `key`. */
export function localStorageStore(
  key: string = DEFAULT_STORAGE_KEY,
  storage: Storage = globalThis.localStorage,
  events: Pick<EventTarget, "addEventListener" | "removeEventListener"> | undefined = globalThis.window,
): SessionStore {
  return {
    scope: "shared",
    key,
    read: () => {
      try {
        return parseSession(storage.getItem(key));
      } catch {
        // Storage disabled (privacy settings): as signed out.
        return null;
      }
    },
    write: (session) => {
      if (session === null) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(session));
    },
    watch: (listener) => {
      if (!events) return () => {};
      // Fired in every other tab of the origin when the key changes (the
      // seed-style page's writes included, which never broadcast).
      const onStorage = (event: Event) => {
        const key_ = (event as StorageEvent).key;
        if (key_ === key || key_ === null) listener();
      };
      events.addEventListener("storage", onStorage);
      return () => events.removeEventListener("storage", onStorage);
    },
  };
}

/** The cookie mode's key (its lock and channel are its own: a localStorage-mode tab of the origin is another session). */
export const COOKIE_STORAGE_KEY = "latchkey.cookie-session";

/**
 * The session in this tab's memory only. `scope: "shared"` is the cookie
 * mode's: the memory is per tab but the session (the cookie) is the
 * browser's, so the tabs coordinate over the lock and the channel.
 */
export function memoryStore(key: string = DEFAULT_STORAGE_KEY, scope: "tab" | "shared" = "tab"): SessionStore {
  let session: Session | null = null;
  return {
    scope,
    key,
    read: () => session,
    write: (next) => {
      session = next;
    },
    watch: () => () => {},
  };
}
