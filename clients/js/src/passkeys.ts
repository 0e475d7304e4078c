// Passkeys (WebAuthn), per CONTRACT.md "Passkeys": register one while
// signed in, list and remove them, and sign in with one.
//
// The request and response bodies are openapi.ts's (named in types.ts), and
// every request names a route of the served document (`RoutePath`), so a
// passkey route or field the server drops fails to compile.
//
// The options travel in the WebAuthn JSON encoding: the browser's
// `PublicKeyCredential.parseCreationOptionsFromJSON` /
// `parseRequestOptionsFromJSON` turn them into what
// `navigator.credentials.create` / `get` take, and the credential goes back
// as `credential.toJSON()`.

import { LatchkeyError } from "./errors.js";
import { routePath } from "./route.js";
import type { User } from "./storage.js";
import type { Passkey, PasskeyLoginRequest, PasskeyOptionsBody, PasskeyRegisterRequest, RoutePath } from "./types.js";

// --- refinements of the document's "any JSON" fields -----------------------
//
// The document gives `PasskeyOptionsBody.publicKey` and the requests'
// `credential` no schema (they are WebAuthn's JSON encoding, which the
// server takes from webauthn-rs). The types below narrow just those fields
// to WebAuthn Level 3's JSON types; everything else stays the generated type.

/** `PublicKeyCredentialCreationOptionsJSON` (WebAuthn Level 3; TypeScript's DOM lib): `publicKey` of the registration options. */
export type PasskeyCreationOptionsJSON = PublicKeyCredentialCreationOptionsJSON;
/** `PublicKeyCredentialRequestOptionsJSON` (WebAuthn Level 3; TypeScript's DOM lib): `publicKey` of the login options. */
export type PasskeyRequestOptionsJSON = PublicKeyCredentialRequestOptionsJSON;
/** A ceremony's options (`PasskeyOptionsBody`) with `publicKey` narrowed to `Options`. */
export type PasskeyOptions<Options> = Omit<PasskeyOptionsBody, "publicKey"> & { publicKey: Options };

/**
 * `credential.toJSON()` (WebAuthn Level 3 `RegistrationResponseJSON` /
 * `AuthenticationResponseJSON`; TypeScript's DOM lib types it `any`): the
 * `credential` of `PasskeyRegisterRequest` and `PasskeyLoginRequest`.
 */
export interface PasskeyCredentialJSON {
  /** The credential id, base64url. */
  id: string;
  /** The same id, base64url. */
  rawId: string;
  type: "public-key";
  /** `clientDataJSON` and, base64url: `attestationObject` (registration) or `authenticatorData`, `signature`, `userHandle` (login). */
  response: { clientDataJSON: string } & Record<string, unknown>;
  authenticatorAttachment?: string | null;
  clientExtensionResults?: Record<string, unknown>;
}

// --- end of the refinements -------------------------------------------------

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
    path: RoutePath,
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

/** The options, checked as far as the client reads them; the browser's parser checks the rest of `publicKey`. */
function optionsOf<O extends { challenge: string }>(body: unknown, path: RoutePath): PasskeyOptions<O> {
  if (
    isObject(body) &&
    typeof body.challenge_id === "string" &&
    isObject(body.publicKey) &&
    typeof body.publicKey.challenge === "string"
  ) {
    return { challenge_id: body.challenge_id, publicKey: body.publicKey as unknown as O };
  }
  throw bad(path);
}

function passkeyOf(value: unknown, path: RoutePath): Passkey {
  if (
    isObject(value) &&
    typeof value.id === "string" &&
    typeof value.name === "string" &&
    typeof value.created_at === "string" &&
    (value.last_used_at === undefined || value.last_used_at === null || typeof value.last_used_at === "string")
  ) {
    const passkey: Passkey = { id: value.id, name: value.name, created_at: value.created_at };
    if (value.last_used_at !== undefined) passkey.last_used_at = value.last_used_at;
    return passkey;
  }
  throw bad(path);
}

/** `credential.toJSON()`, or the client's `passkey_cancelled` when the user closed the prompt (or nothing came back). */
function credentialJson(credential: Credential | null): PasskeyCredentialJSON {
  const json = (credential as (Credential & { toJSON?: () => unknown }) | null)?.toJSON?.();
  if (
    !isObject(json) ||
    typeof json.id !== "string" ||
    typeof json.rawId !== "string" ||
    json.type !== "public-key" ||
    !isObject(json.response) ||
    typeof json.response.clientDataJSON !== "string"
  ) {
    throw new LatchkeyError(0, "passkey_cancelled", "No passkey was chosen.");
  }
  return json as unknown as PasskeyCredentialJSON;
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
      const body: PasskeyRegisterRequest & { credential: PasskeyCredentialJSON } = { challenge_id: options.challenge_id, credential: credentialJson(credential), name };
      const answer = await host.call("/auth/passkeys/register", { method: "POST", body, auth: true });
      return passkeyOf(answer.body, "/auth/passkeys/register");
    },
    async list() {
      const { body } = await host.call("/auth/passkeys", { auth: true });
      if (!Array.isArray(body)) throw bad("/auth/passkeys");
      return body.map((p) => passkeyOf(p, "/auth/passkeys"));
    },
    async remove(id) {
      await host.call(routePath("/auth/passkeys/{id}", { id }), { method: "DELETE", auth: true });
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
      const body: PasskeyLoginRequest & { credential: PasskeyCredentialJSON } = { challenge_id: options.challenge_id, credential: credentialJson(credential) };
      const { body: answer, receivedAt } = await host.call("/auth/passkeys/login", { method: "POST", body });
      return host.signedIn(answer, receivedAt);
    },
  };
}
