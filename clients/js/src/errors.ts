// Every failure the client reports is a `LatchkeyError`: the HTTP status,
// the contract's machine `code`, a one-line `detail` for people, the field
// messages of a 400, and `Retry-After` of a 429 or 503.

/** The codes latchkey's contract names; any other string may come from a newer server. */
export type KnownErrorCode =
  | "invalid"
  | "parse_error"
  | "csrf_failed"
  | "not_authenticated"
  | "bad_authorization_header"
  | "token_not_valid"
  | "no_active_account"
  | "permission_denied"
  | "not_found"
  | "method_not_allowed"
  | "request_timeout"
  | "payload_too_large"
  | "unsupported_media_type"
  | "throttled"
  | "service_unavailable"
  | "error"
  | "mfa_required"
  | "email_not_verified"
  // The client's own: no answer at all, or an answer that is not latchkey's JSON.
  | "network_error"
  | "bad_response"
  | "signed_out"
  | "origin_not_allowed"
  | "passkey_cancelled"
  | "passkey_failed"
  | "passkey_unsupported";

export type ErrorCode = KnownErrorCode | (string & {});

/** `{"<field>": ["message", ...]}`: DRF's field validation shape. */
export type FieldErrors = Record<string, string[]>;

export class LatchkeyError extends Error {
  override readonly name = "LatchkeyError";

  constructor(
    /** The HTTP status; 0 when no answer arrived. */
    readonly status: number,
    /** The contract's `code` (`"invalid"` for field validation, as DRF's). */
    readonly code: ErrorCode,
    /** A one-line message fit to show a person. */
    readonly detail: string,
    /** Field messages of a 400 (`non_field_errors` included); `{}` otherwise. */
    readonly fields: FieldErrors = {},
    /** Seconds to wait before trying again (`Retry-After`), when the server said. */
    readonly retryAfter: number | null = null,
    /** The whole JSON body, for codes this version does not model (e.g. `mfa_required`). */
    readonly body: unknown = null,
  ) {
    super(detail);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `{"field": ["a", "b"]}` with only string-array values, or null. */
function fieldErrorsOf(body: Record<string, unknown>): FieldErrors | null {
  const fields: FieldErrors = {};
  let any = false;
  for (const [key, value] of Object.entries(body)) {
    if (!Array.isArray(value) || !value.every((m) => typeof m === "string")) return null;
    fields[key] = value as string[];
    any = true;
  }
  return any ? fields : null;
}

/** `Retry-After` as whole seconds (the delta form latchkey sends), else null. */
export function parseRetryAfter(header: string | null): number | null {
  if (header === null) return null;
  const trimmed = header.trim();
  if (!/^\d{1,9}$/.test(trimmed)) return null;
  return Number(trimmed);
}

/** A second factor the login's answer asks for (`"totp"`, `"recovery_code"`, later `"passkey"`). */
export type MfaMethod = "totp" | "recovery_code" | (string & {});

/**
 * `401 {"code": "mfa_required", "mfa_token", "methods"}`: the password was
 * right and the account has a second factor. Finish with
 * `client.loginMfa(error.mfaToken, code)`; `error.code === "mfa_required"`
 * (or `isMfaRequired(error)`) is the branch.
 */
export class MfaRequiredError extends LatchkeyError {
  constructor(
    /** The opaque token `POST /auth/login/mfa` takes (lives 5 minutes, dies after 5 wrong codes). */
    readonly mfaToken: string,
    /** The second factors the account has. */
    readonly methods: MfaMethod[],
    detail: string,
    body: unknown,
  ) {
    super(401, "mfa_required", detail, {}, null, body);
  }
}

/** True when `error` is the first step's answer of a login with a second factor. */
export function isMfaRequired(error: unknown): error is MfaRequiredError {
  return error instanceof MfaRequiredError;
}

/**
 * The error for a non-2xx answer: `status`, its parsed JSON `body` (null when
 * it was not JSON) and its `Retry-After` header.
 */
export function errorFromResponse(status: number, body: unknown, retryAfterHeader: string | null): LatchkeyError {
  const retryAfter = parseRetryAfter(retryAfterHeader);
  if (isObject(body)) {
    if (typeof body.detail === "string") {
      if (status === 401 && body.code === "mfa_required" && typeof body.mfa_token === "string") {
        const methods = Array.isArray(body.methods) ? body.methods.filter((m): m is string => typeof m === "string") : [];
        return new MfaRequiredError(body.mfa_token, methods, body.detail, body);
      }
      const code = typeof body.code === "string" ? body.code : codeForStatus(status);
      return new LatchkeyError(status, code, body.detail, {}, retryAfter, body);
    }
    const fields = status === 400 ? fieldErrorsOf(body) : null;
    if (fields) {
      const detail = fields.non_field_errors?.join(" ") || "Please correct the errors below.";
      return new LatchkeyError(status, "invalid", detail, fields, retryAfter, body);
    }
  }
  return new LatchkeyError(status, codeForStatus(status), `The server answered ${status}.`, {}, retryAfter, body);
}

/** The contract's code for a status whose body did not say. */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return "invalid";
    case 401:
      return "not_authenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 429:
      return "throttled";
    case 503:
      return "service_unavailable";
    default:
      return status >= 500 ? "error" : "bad_response";
  }
}

/** No answer: the network failed, the request was aborted or timed out. */
export function networkError(cause: unknown): LatchkeyError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const error = new LatchkeyError(0, "network_error", `The server could not be reached: ${reason}`);
  (error as { cause?: unknown }).cause = cause;
  return error;
}

/** The call needs a session and there is none (never signed in, logged out, or the session ended). */
export function signedOutError(): LatchkeyError {
  return new LatchkeyError(401, "signed_out", "You are not signed in.");
}
