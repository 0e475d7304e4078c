// Passkeys against a real latchkey, as far as they go without an
// authenticator: the list of a new user, the real login options handed to
// `navigator.credentials.get` (a fake one that refuses, as a closed prompt
// or a failing authenticator does), and removing an unknown passkey. The
// ceremonies themselves are covered by examples/react-client's Chromium e2e
// (a virtual authenticator). Needs LATCHKEY_BIN.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createClient, type LatchkeyClient } from "../src/client.js";
import { LatchkeyError } from "../src/errors.js";
import { localLocks } from "../src/lock.js";
import type { PasskeyRequestOptionsJSON, WebAuthn } from "../src/passkeys.js";
import type { PasskeyOptionsBody } from "../src/types.js";
import { Bus, SharedStorage } from "../test/fakes.js";
import { latchkeyBinary, startLatchkey, type Running } from "./latchkey.js";

const binary = latchkeyBinary();
if (!binary && process.env.CI === "true") throw new Error("CI=true and no latchkey binary: set LATCHKEY_BIN (the release build).");

const PASSWORD = "correct-Horse-battery-9-staple";
let server: Running;
let n = 0;
const clients: LatchkeyClient[] = [];

/** A WebAuthn whose `get` (and `create`) reject with `error`, recording the options it was given. */
function refusingWebAuthn(error: Error) {
  const seen: { requestOptions: PasskeyRequestOptionsJSON[]; got: CredentialRequestOptions[] } = { requestOptions: [], got: [] };
  const webauthn: WebAuthn = {
    credentials: {
      create: vi.fn(async () => {
        throw error;
      }),
      get: vi.fn(async (options?: CredentialRequestOptions) => {
        if (options) seen.got.push(options);
        throw error;
      }),
    },
    parseCreationOptionsFromJSON: (o) => o as unknown as PublicKeyCredentialCreationOptions,
    parseRequestOptionsFromJSON: (o) => {
      seen.requestOptions.push(o);
      return o as unknown as PublicKeyCredentialRequestOptions;
    },
  };
  return { webauthn, seen };
}

/** Every answer of `POST /auth/passkeys/login/options` the client received, as sent. */
const loginOptions: PasskeyOptionsBody[] = [];

/** The client's fetch, recording the login options' answers on the way. */
const recordingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  if (new URL(new Request(input, init).url).pathname === "/auth/passkeys/login/options" && response.ok) {
    loginOptions.push((await response.clone().json()) as PasskeyOptionsBody);
  }
  return response;
};

function tab(webauthn?: WebAuthn): LatchkeyClient {
  const client = createClient({
    baseUrl: server.url,
    storage: new SharedStorage().tab(),
    locks: localLocks(),
    channel: new Bus().channel(),
    fetch: recordingFetch,
    webauthn,
  });
  clients.push(client);
  return client;
}

function newUser() {
  const id = `${Date.now().toString(36)}-${++n}`;
  return { name: `pk-${id}`, email: `pk-${id}@example.com`, password: PASSWORD };
}

describe.skipIf(!binary)("passkeys against a real latchkey (no authenticator)", () => {
  beforeAll(async () => {
    server = await startLatchkey(binary!, {
      LATCHKEY_ACCESS_TOKEN_LIFETIME_SECONDS: "300",
      LATCHKEY_WEBAUTHN_RP_ID: "localhost",
      LATCHKEY_WEBAUTHN_ORIGINS: "http://localhost:5173",
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  it("a new user has no passkeys; mfa.status counts none", async () => {
    const client = tab();
    await client.register(newUser());
    expect(await client.passkeys.list()).toEqual([]);
    expect(await client.mfa.status()).toMatchObject({ passkeys: 0 });
  });

  it("loginWithPasskey hands the server's login options to navigator.credentials.get; a closed prompt is passkey_cancelled", async () => {
    const { webauthn, seen } = refusingWebAuthn(new DOMException("The operation either timed out or was not allowed.", "NotAllowedError"));
    const client = tab(webauthn);
    const error = await client.loginWithPasskey().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect(error).toMatchObject({ status: 0, code: "passkey_cancelled" });
    expect(client.getState().status).toBe("signed_out");

    // The server's answer: a challenge_id, and options in the WebAuthn JSON encoding.
    expect(loginOptions).toHaveLength(1);
    const answer = loginOptions[0]!;
    expect(answer.challenge_id).toMatch(/^\S+$/);
    const publicKey = answer.publicKey as PasskeyRequestOptionsJSON;
    expect(publicKey.challenge).toMatch(/^[A-Za-z0-9_-]{16,}$/); // base64url, no padding
    expect(publicKey.userVerification).toBe("required");
    // What the client handed the browser: those options, parsed, and nothing else.
    expect(seen.requestOptions).toEqual([publicKey]);
    expect(seen.got).toEqual([{ publicKey }]);

    // Another try: a fresh challenge.
    await expect(client.loginWithPasskey()).rejects.toMatchObject({ code: "passkey_cancelled" });
    expect(loginOptions).toHaveLength(2);
    expect(loginOptions[1]!.challenge_id).not.toBe(answer.challenge_id);
    expect((loginOptions[1]!.publicKey as PasskeyRequestOptionsJSON).challenge).not.toBe(publicKey.challenge);
  });

  it("an authenticator's other failure is passkey_failed", async () => {
    const { webauthn, seen } = refusingWebAuthn(new DOMException("An attempt was made to use an object that is not, or is no longer, usable.", "InvalidStateError"));
    const client = tab(webauthn);
    await expect(client.loginWithPasskey({ mediation: "optional" })).rejects.toMatchObject({ status: 0, code: "passkey_failed" });
    expect(seen.got).toHaveLength(1);
    expect(seen.got[0]).toMatchObject({ mediation: "optional" });
    expect(loginOptions).toHaveLength(3);
  });

  it("removing an unknown passkey is a typed 404", async () => {
    const client = tab();
    await client.register(newUser());
    const error = await client.passkeys.remove("no-such-passkey").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect(error).toMatchObject({ status: 404, code: "not_found", message: "Not found." });
    expect(await client.passkeys.list()).toEqual([]);
  });
});
