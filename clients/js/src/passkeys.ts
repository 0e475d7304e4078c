// Passkeys (WebAuthn), per CONTRACT.md "Passkeys": register one while
// signed in, list and remove them, and sign in with one.
//
// HAND-WRITTEN TYPES, UNTIL THE OPENAPI DOCUMENT CARRIES THEM. The server
// this was written against does not serve the passkey routes yet, so
// openapi.ts has no types for them; the ones below follow the contract's
// text. When latchkey's document carries the routes, replace every type in
// the "until the OpenAPI document carries them" block with its generated
// counterpart (as types.ts does for the other routes) and delete the block.
//
// The options travel in the WebAuthn JSON encoding: the browser's
// `PublicKeyCredential.parseCreationOptionsFromJSON` /
// `parseRequestOptionsFromJSON` turn them into what
// `navigator.credentials.create` / `get` take, and the credential goes back
// as `credential.toJSON()`.

import { LatchkeyError } from "./errors.js";
import type { User } from "./storage.js";

// --- until the OpenAPI document carries them ------------------------------

/** The passkey routes (not in `Route`, the served document's, yet). */
export type PasskeyRoute =
  | "/auth/passkeys/register/options"
  | "/auth/passkeys/register"
  | "/auth/passkeys"
  | `/auth/passkeys/${string}`
  | "/auth/passkeys/login/options"
  | "/auth/passkeys/login";

/** `POST /auth/passkeys/register/options` and `/auth/passkeys/login/options` → 200. */
export interface PasskeyOptionsBody<Options> {
  challenge_id: string;
  /** The WebAuthn JSON encoding of the options. */
  publicKey: Options;
}
/** `PublicKeyCredentialCreationOptionsJSON` (WebAuthn Level 3), as latchkey sends it. */
export type PasskeyCreationOptionsJSON = Record<string, unknown> & { challenge: string };
/** `PublicKeyCredentialRequestOptionsJSON` (WebAuthn Level 3), as latchkey sends it. */
export type PasskeyRequestOptionsJSON = Record<string, unknown> & { challenge: string };
/** `credential.toJSON()`: a `RegistrationResponseJSON` or an `AuthenticationResponseJSON`. */
export type PasskeyCredentialJSON = Record<string, unknown> & { id: string; type: string };
/** `POST /auth/passkeys/register`'s body. */
export interface PasskeyRegisterRequest {
  challenge_id: string;
  credential: PasskeyCredentialJSON;
  name: string;
}
/** `POST /auth/passkeys/login`'s body. */
export interface PasskeyLoginRequest {
  challenge_id: string;
  credential: PasskeyCredentialJSON;
}
/** `POST /auth/passkeys/register` → 201, and each item of `GET /auth/passkeys`. */
export interface Passkey {
  id: string;
  name: string;
  /** RFC 3339 UTC. */
  created_at: string;
}

// --- end of the hand-written block -----------------------------------------

/** The browser pieces used (so tests, and non-browser hosts, can pass their own). */
export interface WebAuthn {
  credentials: Pick<CredentialsContainer, "create" | "get">;
  parseCreationOptionsFromJSON(options: PasskeyCreationOptionsJSON): PublicKeyCredentialCreationOptions;
  parseRequestOptionsFromJSON(options: PasskeyRequestOptionsJSON): PublicKeyCredentialRequestOptions;
}

export interface PasskeyLoginOptions {
  /** `"conditional"` for autofill UI (the input needs `autocomplete="username webauthn"`); default: a modal prompt. */
  mediation?: CredentialMediationRequirement;
  /** Aborts a pending (e.g. conditional) request. */
  signal?: AbortSignal;
}

export interface Passkeys {
  /** Creates a passkey on this device for the signed-in user and registers it as `name`. */
  register(name: string): Promise<Passkey>;
  /** `GET /auth/passkeys`: the user's passkeys. */
  list(): Promise<Passkey[]>;
  /** `DELETE /auth/passkeys/{id}`. */
  remove(id: string): Promise<void>;
  /** Signs in with a passkey (no email asked: discoverable credentials); every tab. */
  login(options?: PasskeyLoginOptions): Promise<User>;
}

/** What passkeys.ts needs of the client. */
export interface PasskeyHost {
  call(
    path: PasskeyRoute,
    options: { method?: string; body?: unknown; auth?: boolean },
  ): Promise<{ body: unknown; receivedAt: number }>;
  signedIn(body: unknown, receivedAt: number): User;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(path: string): LatchkeyError {
  return new LatchkeyError(0, "bad_response", `Unexpected answer from ${path}.`);
}

function optionsOf<O>(body: unknown, path: string): PasskeyOptionsBody<O & { challenge: string }> {
  if (
    isObject(body) &&
    typeof body.challenge_id === "string" &&
    isObject(body.publicKey) &&
    typeof body.publicKey.challenge === "string"
  ) {
    return body as unknown as PasskeyOptionsBody<O & { challenge: string }>;
  }
  throw bad(path);
}

function passkeyOf(value: unknown, path: string): Passkey {
  if (isObject(value) && typeof value.id === "string" && typeof value.name === "string" && typeof value.created_at === "string") {
    return { id: value.id, name: value.name, created_at: value.created_at };
  }
  throw bad(path);
}

/** `credential.toJSON()`, or the client's `passkey_cancelled` when the user closed the prompt (or nothing came back). */
function credentialJson(credential: Credential | null): PasskeyCredentialJSON {
  const json = (credential as (Credential & { toJSON?: () => unknown }) | null)?.toJSON?.();
  if (!isObject(json) || typeof json.id !== "string" || typeof json.type !== "string") {
    throw new LatchkeyError(0, "passkey_cancelled", "No passkey was chosen.");
  }
  return json as PasskeyCredentialJSON;
}

/** The browser's refusal (NotAllowedError: cancelled or timed out; others) as a typed error. */
function browserError(error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  const name = error instanceof Error ? error.name : "";
  const detail = error instanceof Error ? error.message : String(error);
  const code = name === "NotAllowedError" || name === "AbortError" ? "passkey_cancelled" : "passkey_failed";
  const wrapped = new LatchkeyError(0, code, detail || "The passkey request failed.");
  (wrapped as { cause?: unknown }).cause = error;
  return wrapped;
}

function platformWebAuthn(): WebAuthn | null {
  const credentials = (globalThis.navigator as Navigator | undefined)?.credentials;
  const pkc = (globalThis as unknown as { PublicKeyCredential?: Partial<WebAuthn> }).PublicKeyCredential;
  if (!credentials || !pkc?.parseCreationOptionsFromJSON || !pkc.parseRequestOptionsFromJSON) return null;
  return {
    credentials,
    parseCreationOptionsFromJSON: (o) => pkc.parseCreationOptionsFromJSON!(o),
    parseRequestOptionsFromJSON: (o) => pkc.parseRequestOptionsFromJSON!(o),
  };
}

export function passkeysApi(host: PasskeyHost, webauthn?: WebAuthn): Passkeys {
  const browser = (): WebAuthn => {
    const found = webauthn ?? platformWebAuthn();
    if (!found) throw new LatchkeyError(0, "passkey_unsupported", "This browser cannot use passkeys.");
    return found;
  };
  return {
    async register(name) {
      const web = browser();
      const options = optionsOf<PasskeyCreationOptionsJSON>(
        (await host.call("/auth/passkeys/register/options", { method: "POST", body: {}, auth: true })).body,
        "/auth/passkeys/register/options",
      );
      let credential: Credential | null;
      try {
        credential = await web.credentials.create({ publicKey: web.parseCreationOptionsFromJSON(options.publicKey) });
      } catch (error) {
        throw browserError(error);
      }
      const body: PasskeyRegisterRequest = { challenge_id: options.challenge_id, credential: credentialJson(credential), name };
      const answer = await host.call("/auth/passkeys/register", { method: "POST", body, auth: true });
      return passkeyOf(answer.body, "/auth/passkeys/register");
    },
    async list() {
      const { body } = await host.call("/auth/passkeys", { auth: true });
      if (!Array.isArray(body)) throw bad("/auth/passkeys");
      return body.map((p) => passkeyOf(p, "/auth/passkeys"));
    },
    async remove(id) {
      await host.call(`/auth/passkeys/${encodeURIComponent(id)}`, { method: "DELETE", auth: true });
    },
    async login({ mediation, signal } = {}) {
      const web = browser();
      const options = optionsOf<PasskeyRequestOptionsJSON>(
        (await host.call("/auth/passkeys/login/options", { method: "POST", body: {} })).body,
        "/auth/passkeys/login/options",
      );
      let credential: Credential | null;
      try {
        credential = await web.credentials.get({
          publicKey: web.parseRequestOptionsFromJSON(options.publicKey),
          ...(mediation ? { mediation } : {}),
          ...(signal ? { signal } : {}),
        });
      } catch (error) {
        throw browserError(error);
      }
      const body: PasskeyLoginRequest = { challenge_id: options.challenge_id, credential: credentialJson(credential) };
      const { body: answer, receivedAt } = await host.call("/auth/passkeys/login", { method: "POST", body });
      return host.signedIn(answer, receivedAt);
    },
  };
}
