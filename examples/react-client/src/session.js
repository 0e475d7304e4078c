// The signed-in session: the user and the token pair, kept in localStorage
// (as the seed suggests) so a reload keeps the user signed in, and shared by
// every tab of the app.
//
// Cookie mode (api.REFRESH_COOKIE): no token is stored. localStorage keeps
// only the user (so a reload knows someone signed in), the access token
// lives in this tab's memory, and the refresh token in the server's
// HttpOnly cookie, which no script can read. After a reload the access
// token is gone: the first call gets 401, and the refresh (cookie) brings
// a new one.

import * as api from "./api.js";

const STORAGE_KEY = "latchkey.session";

/** Cookie mode: this tab's access token. */
let accessInMemory = null;

/** `{user: {id, email, name}, tokens: {access, refresh}}`, or null when signed out. */
export function loadSession() {
  let stored;
  try {
    stored = JSON.parse(localStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
  if (!stored || !api.REFRESH_COOKIE) return stored;
  return { user: stored.user, tokens: { access: accessInMemory, refresh: null } };
}

export function saveSession(session) {
  if (api.REFRESH_COOKIE) {
    accessInMemory = session.tokens.access;
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ user: session.user }));
    return;
  }
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession() {
  accessInMemory = null;
  localStorage.removeItem(STORAGE_KEY);
}

/** The session a register or login answer starts. */
export function sessionFrom({ id, email, name, tokens }) {
  return { user: { id, email, name }, tokens: { access: tokens.access, refresh: tokens.refresh } };
}

/** Raised when the server refuses both the access and the refresh token: sign in again. */
export class SessionEnded extends Error {
  constructor() {
    super("Your session has ended. Please log in again.");
  }
}

// One refresh at a time: two requests that both find the access token expired
// must not both spend the same refresh token.
let refreshInFlight = null;

function refreshOnce(refresh) {
  refreshInFlight ??= api.refreshTokens(refresh).finally(() => {
    refreshInFlight = null;
  });
  return refreshInFlight;
}

/**
 * Runs `call(accessToken)` for `session`. When the API answers 401 (the
 * access token expired, or was revoked), spends the refresh token for a new
 * pair, stores it and tries once more. Resolves to `{result, session}`, the
 * session possibly renewed; rejects with SessionEnded when the refresh token
 * is refused too.
 */
export async function withAccessToken(session, call) {
  // Another tab may have refreshed since this one read the session: its pair
  // is the live one (this tab's refresh token has been spent).
  const stored = loadSession();
  if (stored?.user.id === session.user.id) session = stored;

  try {
    return { result: await call(session.tokens.access), session };
  } catch (error) {
    if (!(error instanceof api.ApiError && error.status === 401)) throw error;
  }

  let tokens;
  try {
    tokens = await refreshOnce(session.tokens.refresh);
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401) {
      clearSession();
      throw new SessionEnded();
    }
    throw error;
  }
  // With rotation (SimpleJWT's ROTATE_REFRESH_TOKENS, always on in latchkey)
  // the answer carries a new refresh token; without it, the old one stays valid.
  session = { ...session, tokens: { access: tokens.access, refresh: tokens.refresh ?? session.tokens.refresh } };
  saveSession(session);
  return { result: await call(session.tokens.access), session };
}
