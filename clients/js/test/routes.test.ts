// The two-step MFA login, the second-factor and account routes, and
// passkeys (with a fake `navigator.credentials`): what each call sends, what
// it answers, and the typed errors.
import { afterEach, describe, expect, it, vi } from "vitest";
import { createClient, type LatchkeyClient } from "../src/client.js";
import { isMfaRequired, LatchkeyError, MfaRequiredError } from "../src/errors.js";
import { localLocks } from "../src/lock.js";
import type { PasskeyCreationOptionsJSON, PasskeyCredentialJSON, WebAuthn } from "../src/passkeys.js";
import { Bus, FakeLatchkey, jwt, SharedStorage } from "./fakes.js";

const BASE = "http://api.test";
let clients: LatchkeyClient[] = [];
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
});

type Answer = { status: number; body?: unknown; headers?: Record<string, string> };
type Route = (body: Record<string, unknown>, request: Request) => Answer;

/** FakeLatchkey plus `routes` ("METHOD /path"), recording each body. */
function serverWith(routes: Record<string, Route>) {
  const base = new FakeLatchkey();
  const sent: Array<{ route: string; body: unknown; authorization: string | null }> = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const route = `${request.method} ${new URL(request.url).pathname}`;
    const handler = routes[route];
    if (!handler) return base.fetch(request);
    const text = request.method === "GET" ? "" : await request.text();
    const body = text ? JSON.parse(text) : {};
    sent.push({ route, body, authorization: request.headers.get("Authorization") });
    const answer = handler(body, request);
    return new Response(answer.status === 204 ? null : JSON.stringify(answer.body ?? {}), {
      status: answer.status,
      headers: { "Content-Type": "application/json", ...answer.headers },
    });
  };
  return { base, sent, fetch };
}

function tabs(n: number, fetch: typeof globalThis.fetch, webauthn?: WebAuthn) {
  const storage = new SharedStorage();
  const locks = localLocks();
  const bus = new Bus();
  const made = Array.from({ length: n }, () =>
    createClient({ baseUrl: BASE, storage: storage.tab(), locks, channel: bus.channel(), fetch, webauthn }),
  );
  clients.push(...made);
  return made;
}

const flush = () => new Promise((r) => setTimeout(r, 5));
const pair = () => {
  const iat = Math.floor(Date.now() / 1000);
  return {
    access: jwt({ token_type: "access", iat, exp: iat + 300, jti: `m${Math.random()}` }),
    refresh: jwt({ token_type: "refresh", iat, exp: iat + 86400, jti: `n${Math.random()}` }),
  };
};
const user = { id: 9, email: "grace@example.com", name: "grace" };

describe("login with a second factor", () => {
  const mfaServer = () =>
    serverWith({
      "POST /auth/login": () => ({
        status: 401,
        body: { detail: "Two-factor authentication required.", code: "mfa_required", mfa_token: "mt-1", methods: ["totp", "recovery_code"] },
      }),
      "POST /auth/login/mfa": (body) =>
        body.code === "123456" && body.mfa_token === "mt-1"
          ? { status: 200, body: { ...user, tokens: pair() } }
          : { status: 400, body: { code: ["Invalid code."] } },
    });

  it("login rejects with MfaRequiredError carrying the mfa_token and methods, and signs nobody in", async () => {
    const server = mfaServer();
    const [tab] = tabs(1, server.fetch);
    const error = await tab!.login({ email: user.email, password: "right" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MfaRequiredError);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect(isMfaRequired(error)).toBe(true);
    expect(error).toMatchObject({ status: 401, code: "mfa_required", mfaToken: "mt-1", methods: ["totp", "recovery_code"] });
    expect(tab!.getState().status).toBe("signed_out");
  });

  it("loginMfa with a wrong code is a field error on `code`; with the right one every tab signs in", async () => {
    const server = mfaServer();
    const [tab, other] = tabs(2, server.fetch);
    const wrong = await tab!.loginMfa("mt-1", "000000").catch((e: unknown) => e);
    expect(wrong).toMatchObject({ status: 400, code: "invalid", fields: { code: ["Invalid code."] } });
    expect(isMfaRequired(wrong)).toBe(false);
    expect(await tab!.loginMfa("mt-1", "123456")).toEqual(user);
    expect(server.sent.at(-1)).toMatchObject({ route: "POST /auth/login/mfa", body: { mfa_token: "mt-1", code: "123456" } });
    await flush();
    expect(other!.getState()).toMatchObject({ status: "signed_in", user });
  });

  it("a 401 without an mfa_token is a plain LatchkeyError, not an MFA challenge", async () => {
    const server = serverWith({
      "POST /auth/login": () => ({ status: 401, body: { detail: "x", code: "mfa_required" } }),
    });
    const [tab] = tabs(1, server.fetch);
    const error = await tab!.login({ email: user.email, password: "p" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect(isMfaRequired(error)).toBe(false);
  });
});

describe("the second factor's management", () => {
  it("status, enrol, confirm, new codes and disable send the contract's bodies with the Bearer token", async () => {
    const codes = Array.from({ length: 10 }, (_, i) => `aaaa-bbbb-000${i}`);
    const server = serverWith({
      "GET /auth/mfa": () => ({ status: 200, body: { totp: true, recovery_codes_left: 10, passkeys: 0 } }),
      "POST /auth/mfa/totp": () => ({ status: 200, body: { secret: "JBSWY3DP", otpauth_uri: "otpauth://totp/x?secret=JBSWY3DP" } }),
      "POST /auth/mfa/totp/confirm": (b) =>
        b.code === "654321" ? { status: 200, body: { recovery_codes: codes } } : { status: 400, body: { code: ["Invalid code."] } },
      "POST /auth/mfa/recovery-codes": () => ({ status: 200, body: { recovery_codes: codes } }),
      "DELETE /auth/mfa/totp": (b) => (b.password === "pw" ? { status: 204 } : { status: 400, body: { password: ["Wrong password."] } }),
    });
    const [tab] = tabs(1, server.fetch);
    await tab!.login({ email: "ada@example.com", password: "right" });
    expect(await tab!.mfa.enrolTotp("pw")).toEqual({ secret: "JBSWY3DP", otpauth_uri: "otpauth://totp/x?secret=JBSWY3DP" });
    await expect(tab!.mfa.confirmTotp("111111")).rejects.toMatchObject({ fields: { code: ["Invalid code."] } });
    expect(await tab!.mfa.confirmTotp("654321")).toEqual(codes);
    expect(await tab!.mfa.status()).toEqual({ totp: true, recovery_codes_left: 10, passkeys: 0 });
    expect(await tab!.mfa.regenerateRecoveryCodes("pw")).toEqual(codes);
    await expect(tab!.mfa.disableTotp("nope")).rejects.toMatchObject({ fields: { password: ["Wrong password."] } });
    await tab!.mfa.disableTotp("pw");
    expect(server.sent.map((s) => [s.route, s.body])).toEqual([
      ["POST /auth/mfa/totp", { password: "pw" }],
      ["POST /auth/mfa/totp/confirm", { code: "111111" }],
      ["POST /auth/mfa/totp/confirm", { code: "654321" }],
      ["GET /auth/mfa", {}],
      ["POST /auth/mfa/recovery-codes", { password: "pw" }],
      ["DELETE /auth/mfa/totp", { password: "nope" }],
      ["DELETE /auth/mfa/totp", { password: "pw" }],
    ]);
    expect(server.sent.every((s) => s.authorization?.startsWith("Bearer "))).toBe(true);
  });
});

describe("account routes", () => {
  it("reset, verify and email change send the contract's bodies and answer the detail; bad tokens are field errors", async () => {
    const detail = (d: string): Route => () => ({ status: 200, body: { detail: d } });
    const server = serverWith({
      "POST /auth/password/reset": detail("If an account with this email exists, a password reset link has been sent."),
      "POST /auth/password/reset/confirm": (b) =>
        b.token === "good" ? { status: 200, body: { detail: "Password has been reset." } } : { status: 400, body: { token: ["Invalid or expired token."] } },
      "POST /auth/email/verify": detail("Email verified."),
      "POST /auth/email/verify/resend": () => ({ status: 429, body: { detail: "Request was throttled.", code: "throttled" }, headers: { "Retry-After": "42" } }),
      "POST /auth/email/change": detail("Confirmation sent."),
      "POST /auth/email/change/confirm": () => ({ status: 400, body: { email: ["user with this email already exists."] } }),
    });
    const [tab] = tabs(1, server.fetch);
    expect(await tab!.requestPasswordReset("ada@example.com")).toMatch(/If an account/);
    await expect(tab!.confirmPasswordReset("bad", "N3w-password-long")).rejects.toMatchObject({
      status: 400,
      fields: { token: ["Invalid or expired token."] },
    });
    expect(await tab!.confirmPasswordReset("good", "N3w-password-long")).toBe("Password has been reset.");
    expect(await tab!.verifyEmail("t1")).toBe("Email verified.");
    await expect(tab!.resendVerification()).rejects.toMatchObject({ code: "signed_out" });
    await tab!.login({ email: "ada@example.com", password: "right" });
    await expect(tab!.resendVerification()).rejects.toMatchObject({ status: 429, code: "throttled", retryAfter: 42 });
    expect(await tab!.changeEmail({ email: "new@example.com", password: "pw" })).toBe("Confirmation sent.");
    await expect(tab!.confirmEmailChange("t2")).rejects.toMatchObject({ fields: { email: ["user with this email already exists."] } });
    expect(server.sent.map((s) => [s.route, s.body])).toEqual([
      ["POST /auth/password/reset", { email: "ada@example.com" }],
      ["POST /auth/password/reset/confirm", { token: "bad", new_password: "N3w-password-long" }],
      ["POST /auth/password/reset/confirm", { token: "good", new_password: "N3w-password-long" }],
      ["POST /auth/email/verify", { token: "t1" }],
      ["POST /auth/email/verify/resend", {}],
      ["POST /auth/email/change", { email: "new@example.com", password: "pw" }],
      ["POST /auth/email/change/confirm", { token: "t2" }],
    ]);
  });

  it("updateProfile renames the user in every tab; deleteAccount signs every tab out; a wrong password is a field error", async () => {
    const server = serverWith({
      "PATCH /auth/me": (b) => ({ status: 200, body: { id: 7, email: "ada@example.com", name: b.name, email_verified: true } }),
      "DELETE /auth/me": (b) => (b.password === "pw" ? { status: 204 } : { status: 400, body: { password: ["Wrong password."] } }),
    });
    const [tab, other] = tabs(2, server.fetch);
    await tab!.login({ email: "ada@example.com", password: "right" });
    expect(await tab!.updateProfile({ name: "countess" })).toEqual({ id: 7, email: "ada@example.com", name: "countess", email_verified: true });
    await flush();
    expect(other!.getState().user?.name).toBe("countess");
    await expect(tab!.deleteAccount("nope")).rejects.toMatchObject({ fields: { password: ["Wrong password."] } });
    expect(tab!.getState().status).toBe("signed_in");
    await tab!.deleteAccount("pw");
    await flush();
    for (const t of [tab!, other!]) expect(t.getState()).toMatchObject({ status: "signed_out", reason: "logout" });
  });

  it("register on a server requiring verified addresses answers the user and signs nobody in", async () => {
    const server = serverWith({
      "POST /auth/register": () => ({ status: 201, body: { id: 3, email: "new@example.com", name: "new", email_verified: false } }),
      "POST /auth/login": () => ({ status: 403, body: { detail: "E-mail is not verified.", code: "email_not_verified" } }),
    });
    const [tab] = tabs(1, server.fetch);
    expect(await tab!.register({ name: "new", email: "new@example.com", password: "pw" })).toEqual({ id: 3, email: "new@example.com", name: "new" });
    expect(tab!.getState().status).toBe("signed_out");
    await expect(tab!.login({ email: "new@example.com", password: "pw" })).rejects.toMatchObject({ status: 403, code: "email_not_verified" });
  });
});

/** A fake WebAuthn: records what it was given, answers a credential whose toJSON is `json`. */
function fakeWebAuthn(json: unknown, fail?: Error) {
  const seen: { created?: unknown; got?: unknown; parsed: unknown[] } = { parsed: [] };
  const credential = { id: "cred-1", type: "public-key", toJSON: () => json } as unknown as Credential;
  const webauthn: WebAuthn = {
    credentials: {
      create: vi.fn(async (options?: CredentialCreationOptions) => {
        seen.created = options;
        if (fail) throw fail;
        return credential;
      }),
      get: vi.fn(async (options?: CredentialRequestOptions) => {
        seen.got = options;
        if (fail) throw fail;
        return credential;
      }),
    },
    parseCreationOptionsFromJSON: (o) => {
      seen.parsed.push(o);
      return { parsed: "creation", ...o } as unknown as PublicKeyCredentialCreationOptions;
    },
    parseRequestOptionsFromJSON: (o) => {
      seen.parsed.push(o);
      return { parsed: "request", ...o } as unknown as PublicKeyCredentialRequestOptions;
    },
  };
  return { webauthn, seen };
}

describe("passkeys (fake navigator.credentials)", () => {
  const credentialJson: PasskeyCredentialJSON = { id: "cred-1", rawId: "cred-1", type: "public-key", response: { clientDataJSON: "e30" } };
  // What latchkey sends (see test-server/passkeys.test.ts for the real one's login options).
  const creationOptions: PasskeyCreationOptionsJSON = {
    challenge: "Y2g",
    rp: { id: "localhost", name: "latchkey" },
    user: { id: "dXNlcg", name: "ada@example.com", displayName: "ada" },
    pubKeyCredParams: [{ type: "public-key", alg: -7 }],
    authenticatorSelection: { residentKey: "required", userVerification: "required" },
  };
  const passkeyServer = () =>
    serverWith({
      "POST /auth/passkeys/register/options": () => ({ status: 200, body: { challenge_id: "ch-r", publicKey: creationOptions } }),
      "POST /auth/passkeys/register": (b) => ({ status: 201, body: { id: "pk-1", name: b.name, created_at: "2026-12-01T12:00:00Z", last_used_at: null } }),
      "GET /auth/passkeys": () => ({
        status: 200,
        body: [
          { id: "pk-1", name: "laptop", created_at: "2026-12-01T12:00:00Z", last_used_at: "2026-12-01T13:00:00Z" },
          { id: "pk-2", name: "phone", created_at: "2026-12-01T12:30:00Z" },
        ],
      }),
      "DELETE /auth/passkeys/pk-1": () => ({ status: 204 }),
      "POST /auth/passkeys/login/options": () => ({ status: 200, body: { challenge_id: "ch-l", publicKey: { challenge: "bG9n" } } }),
      "POST /auth/passkeys/login": (b) =>
        b.challenge_id === "ch-l" ? { status: 200, body: { ...user, tokens: pair() } } : { status: 400, body: { non_field_errors: ["Bad."] } },
    });

  it("register asks for options, creates the credential from them and sends its toJSON with the name", async () => {
    const server = passkeyServer();
    const { webauthn, seen } = fakeWebAuthn(credentialJson);
    const [tab] = tabs(1, server.fetch, webauthn);
    await tab!.login({ email: "ada@example.com", password: "right" });
    expect(await tab!.passkeys.register("laptop")).toEqual({ id: "pk-1", name: "laptop", created_at: "2026-12-01T12:00:00Z", last_used_at: null });
    expect(seen.created).toEqual({ publicKey: { parsed: "creation", ...creationOptions } });
    expect(server.sent.find((s) => s.route === "POST /auth/passkeys/register")?.body).toEqual({
      challenge_id: "ch-r",
      credential: credentialJson,
      name: "laptop",
    });
    expect(await tab!.passkeys.list()).toEqual([
      { id: "pk-1", name: "laptop", created_at: "2026-12-01T12:00:00Z", last_used_at: "2026-12-01T13:00:00Z" },
      { id: "pk-2", name: "phone", created_at: "2026-12-01T12:30:00Z" },
    ]);
    await tab!.passkeys.remove("pk-1");
    expect(server.sent.filter((s) => s.route.includes("/auth/passkeys") && !s.route.includes("login")).every((s) => s.authorization?.startsWith("Bearer "))).toBe(true);
  });

  it("loginWithPasskey passes the mediation on and signs every tab in", async () => {
    const server = passkeyServer();
    const { webauthn, seen } = fakeWebAuthn(credentialJson);
    const [tab, other] = tabs(2, server.fetch, webauthn);
    expect(await tab!.loginWithPasskey({ mediation: "conditional" })).toEqual(user);
    expect(seen.got).toEqual({ publicKey: { parsed: "request", challenge: "bG9n" }, mediation: "conditional" });
    expect(server.sent.find((s) => s.route === "POST /auth/passkeys/login")?.body).toEqual({ challenge_id: "ch-l", credential: credentialJson });
    await flush();
    expect(other!.getState()).toMatchObject({ status: "signed_in", user });
  });

  it("a cancelled prompt is passkey_cancelled and sends nothing more; no WebAuthn is passkey_unsupported", async () => {
    const server = passkeyServer();
    const cancelled = new DOMException("The operation either timed out or was not allowed.", "NotAllowedError");
    const { webauthn } = fakeWebAuthn(credentialJson, cancelled);
    const [tab] = tabs(1, server.fetch, webauthn);
    await expect(tab!.loginWithPasskey()).rejects.toMatchObject({ code: "passkey_cancelled", status: 0 });
    expect(server.sent.map((s) => s.route)).toEqual(["POST /auth/passkeys/login/options"]);
    expect(tab!.getState().status).toBe("signed_out");
    const [bare] = tabs(1, server.fetch);
    await expect(bare!.loginWithPasskey()).rejects.toMatchObject({ code: "passkey_unsupported" });
  });
});
