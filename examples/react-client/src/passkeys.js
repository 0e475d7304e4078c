// The browser's side of a passkey ceremony, with nothing but the platform:
// `PublicKeyCredential.parseCreationOptionsFromJSON` /
// `parseRequestOptionsFromJSON` read the API's options, and
// `credential.toJSON()` writes the answer the API takes.

import * as api from "./api.js";

/** Whether this browser has WebAuthn with the JSON helpers (Chromium 129+, Firefox 119+, Safari 18.4+). */
export const passkeysSupported =
  typeof window !== "undefined" &&
  typeof window.PublicKeyCredential?.parseCreationOptionsFromJSON === "function" &&
  typeof window.PublicKeyCredential?.parseRequestOptionsFromJSON === "function";

/** Whether the browser offers passkeys in an input's autofill (conditional UI). */
export async function conditionalMediationAvailable() {
  if (!passkeysSupported) return false;
  try {
    return (await PublicKeyCredential.isConditionalMediationAvailable?.()) === true;
  } catch {
    return false;
  }
}

/** Creates a passkey on this device for the signed-in user and registers it under `name`. */
export async function addPasskey(accessToken, name) {
  const { challenge_id, publicKey } = await api.passkeyRegistrationOptions(accessToken);
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(publicKey),
  });
  return api.registerPasskey(accessToken, { challengeId: challenge_id, credential: credential.toJSON(), name });
}

/**
 * Signs in with a discoverable passkey: the browser's dialog, or with
 * `conditional` the passkeys offered in the username field's autofill
 * (pending until the user picks one, or `signal` aborts it).
 * `options`: login options fetched already (else fetched here).
 * Resolves to the login's answer (user + tokens).
 */
export async function signInWithPasskey({ conditional = false, signal, options } = {}) {
  const { challenge_id, publicKey } = options ?? (await api.passkeyLoginOptions());
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(publicKey),
    ...(conditional ? { mediation: "conditional" } : {}),
    signal,
  });
  return api.loginPasskey({ challengeId: challenge_id, credential: credential.toJSON() });
}

/** A browser refusal that is no error to show: the user closed the dialog, or we aborted it. */
export function isDismissal(error) {
  return error?.name === "NotAllowedError" || error?.name === "AbortError";
}
