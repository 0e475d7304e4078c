// Reading (never verifying: that is the server's job) the two claims the
// refresh scheduler needs from an access token. Tokens come from storage
// another script may have written, so anything malformed reads as null.

export interface TokenTimes {
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch. */
  exp: number;
}

function base64UrlDecode(segment: string): string | null {
  if (!/^[A-Za-z0-9_-]*$/.test(segment) || segment.length % 4 === 1) return null;
  const base64 = segment.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (segment.length % 4)) % 4);
  try {
    const binary = atob(base64);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** `iat` and `exp` of a JWT, or null when it is not a JWT carrying both as finite numbers. */
export function tokenTimes(token: unknown): TokenTimes | null {
  if (typeof token !== "string" || token.length > 16384) return null;
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) return null;
  const json = base64UrlDecode(parts[1]);
  if (json === null) return null;
  let claims: unknown;
  try {
    claims = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof claims !== "object" || claims === null) return null;
  const { iat, exp } = claims as Record<string, unknown>;
  if (typeof iat !== "number" || typeof exp !== "number" || !Number.isFinite(iat) || !Number.isFinite(exp)) {
    return null;
  }
  if (exp < iat) return null;
  return { iat, exp };
}

/**
 * A short name for a token that says nothing of it (two 32-bit FNV-1a
 * hashes): tabs compare tokens by it where other scripts of the origin can
 * read it, such as a lock's name.
 */
export function fingerprint(token: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ token.length;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x0100019d);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}
