// The HTTP side of the app: one function per endpoint of the seed's API.
//
// Every call follows the seed's instructions:
//   - `credentials: "include"`, so the browser sends and stores the
//     `csrftoken` cookie even though the API lives on another origin;
//   - the CSRF token from GET /auth/csrf/ in the `X-CSRF-Token` header of
//     every request;
//   - `Authorization: Bearer <access>` on the endpoints that need a user.

/** Where the API listens, without a trailing slash. Set VITE_API_URL when building. */
export const API_URL = (import.meta.env.VITE_API_URL || "http://127.0.0.1:8000").replace(/\/+$/, "");

/**
 * The server runs with LATCHKEY_REFRESH_COOKIE=true (set VITE_REFRESH_COOKIE=true
 * when building): the refresh token lives in an HttpOnly cookie the browser
 * sends to /auth/ by itself, and never passes through this code.
 */
export const REFRESH_COOKIE = import.meta.env.VITE_REFRESH_COOKIE === "true";

/** The CSRF token, fetched once at start (`loadCsrfToken`) and kept in memory. */
let csrfToken = null;

/** A non-2xx answer from the API, with its JSON body (DRF's error shapes). */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(describeError(status, body, retryAfter));
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }

  /** `{field: ["message", ...]}` for a 400 field validation error, else `{}`. */
  get fieldErrors() {
    if (this.status !== 400 || !this.body || "detail" in this.body) return {};
    return this.body;
  }
}

/** A one-line message for the user, from DRF's `{"detail"}` or `{"non_field_errors"}` bodies. */
function describeError(status, body, retryAfter) {
  if (status === 429) {
    // Retry-After is readable cross-origin because the API lists it in
    // Access-Control-Expose-Headers; the detail says the same in words.
    const wait = retryAfter ? ` Try again in ${retryAfter} seconds.` : "";
    return `Too many attempts.${wait}`;
  }
  if (body?.detail) return body.detail;
  if (body?.non_field_errors) return body.non_field_errors.join(" ");
  if (status === 400) return "Please correct the errors below.";
  return `The server answered ${status}.`;
}

async function request(path, { method = "GET", body, accessToken } = {}) {
  const headers = {};
  if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;

  const response = await fetch(`${API_URL}${path}`, {
    method,
    credentials: "include",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // Every answer is JSON, errors included; tolerate an empty body anyway.
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return data;
}

/**
 * GET /auth/csrf/: the seed's first request. The answer sets the `csrftoken`
 * cookie and carries the same token in its body; we keep the body's copy,
 * because a page cannot read another origin's cookies.
 */
export async function loadCsrfToken() {
  // No Content-Type: a GET has no body, and the header would only cost a preflight.
  const response = await fetch(`${API_URL}/auth/csrf/`, { method: "GET", credentials: "include" });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  csrfToken = (await response.json()).csrfToken;
  return csrfToken;
}

/** POST /auth/register → `{id, email, name, tokens: {refresh, access}}`. */
export function register({ name, email, password }) {
  return request("/auth/register", { method: "POST", body: { name, email, password } });
}

/** POST /auth/login → the same shape as register. */
export function login({ email, password }) {
  return request("/auth/login", { method: "POST", body: { email, password } });
}

/**
 * POST /auth/token/refresh/ → `{access, refresh}`: the old refresh token is
 * spent. In cookie mode the body is `{}` and the answer `{access}`: the
 * browser sends the cookie and stores its replacement.
 */
export function refreshTokens(refresh) {
  return request("/auth/token/refresh/", { method: "POST", body: REFRESH_COOKIE ? {} : { refresh } });
}

/** GET /auth/me → `{id, email, name}`. */
export function fetchMe(accessToken) {
  return request("/auth/me", { accessToken });
}

/**
 * POST /auth/logout, with the access token in the header and the refresh
 * token in the body (in cookie mode, in the cookie; the answer clears it).
 */
export function logout(accessToken, refresh) {
  return request("/auth/logout", { method: "POST", accessToken, body: REFRESH_COOKIE ? {} : { refresh } });
}

// ---- Second factor (latchkey only; the Django reference has none) --------

/** A login's `401 mfa_required`: the password was right, a code is needed. */
export function isMfaRequired(error) {
  return error instanceof ApiError && error.status === 401 && error.body?.code === "mfa_required";
}

/** POST /auth/login/mfa → user + tokens, like login. */
export function loginMfa({ mfaToken, code }) {
  return request("/auth/login/mfa", { method: "POST", body: { mfa_token: mfaToken, code } });
}

/** GET /auth/mfa → `{totp, recovery_codes_left, passkeys}`. */
export function fetchMfa(accessToken) {
  return request("/auth/mfa", { accessToken });
}

/** POST /auth/mfa/totp → `{secret, otpauth_uri}` (pending until confirmed). */
export function startTotp(accessToken, password) {
  return request("/auth/mfa/totp", { method: "POST", accessToken, body: { password } });
}

/** POST /auth/mfa/totp/confirm → `{recovery_codes}`. */
export function confirmTotp(accessToken, code) {
  return request("/auth/mfa/totp/confirm", { method: "POST", accessToken, body: { code } });
}

// ---- Account recovery and verification (latchkey only) ------------------
//
// The mailed links open this app (LATCHKEY_APP_URL): /reset-password,
// /verify-email and /confirm-email-change, each with `?token=T`. Opening a
// link consumes nothing; the page POSTs the token when the user asks.

/** POST /auth/password/reset → `{detail}`, the same for every address. */
export function requestPasswordReset(email) {
  return request("/auth/password/reset", { method: "POST", body: { email } });
}

/** POST /auth/password/reset/confirm → `{detail}`; a refused password keeps the token usable. */
export function confirmPasswordReset({ token, newPassword }) {
  return request("/auth/password/reset/confirm", { method: "POST", body: { token, new_password: newPassword } });
}

/** POST /auth/email/verify → `{detail}`. */
export function verifyEmail(token) {
  return request("/auth/email/verify", { method: "POST", body: { token } });
}

/** POST /auth/email/verify/resend → `{detail}` (or "already verified"). */
export function resendVerification(accessToken) {
  return request("/auth/email/verify/resend", { method: "POST", accessToken });
}

/** POST /auth/email/change → `{detail}`: a link goes to the new address, a notice to the old. */
export function changeEmail(accessToken, { email, password }) {
  return request("/auth/email/change", { method: "POST", accessToken, body: { email, password } });
}

/** POST /auth/email/change/confirm → `{detail}`. */
export function confirmEmailChange(token) {
  return request("/auth/email/change/confirm", { method: "POST", body: { token } });
}

// ---- Passkeys (latchkey only; the Django reference has none) -------------
// The options come in the browser's own JSON encoding, and `credential` goes
// back as `credential.toJSON()` gives it: see passkeys.js.

/** POST /auth/passkeys/register/options → `{challenge_id, publicKey}`. */
export function passkeyRegistrationOptions(accessToken) {
  return request("/auth/passkeys/register/options", { method: "POST", accessToken, body: {} });
}

/** POST /auth/passkeys/register → `{id, name, created_at, last_used_at}`. */
export function registerPasskey(accessToken, { challengeId, credential, name }) {
  return request("/auth/passkeys/register", {
    method: "POST",
    accessToken,
    body: { challenge_id: challengeId, credential, name },
  });
}

/** GET /auth/passkeys → `[{id, name, created_at, last_used_at}]`. */
export function fetchPasskeys(accessToken) {
  return request("/auth/passkeys", { accessToken });
}

/** DELETE /auth/passkeys/{id} → 204. */
export function deletePasskey(accessToken, id) {
  return request(`/auth/passkeys/${encodeURIComponent(id)}`, { method: "DELETE", accessToken });
}

/** POST /auth/passkeys/login/options → `{challenge_id, publicKey}` (no email asked). */
export function passkeyLoginOptions() {
  return request("/auth/passkeys/login/options", { method: "POST", body: {} });
}

/** POST /auth/passkeys/login → user + tokens, like login. */
export function loginPasskey({ challengeId, credential }) {
  return request("/auth/passkeys/login", { method: "POST", body: { challenge_id: challengeId, credential } });
}
