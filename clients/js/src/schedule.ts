// When to refresh: a little before the access token's `exp`, so requests
// never carry an expired token, measured on the server's clock.

import type { TokenTimes } from "./jwt.js";

/** The scheduler never fires sooner than this after it was set (no tight loops on odd tokens). */
export const MIN_DELAY_MS = 500;

/**
 * How long before `exp` to refresh: a quarter of the token's lifetime, at
 * most `maxMarginSeconds` (a one-day token is refreshed a minute early, a
 * four-second one a second early).
 */
export function marginMs(times: TokenTimes, maxMarginSeconds: number): number {
  const lifetimeMs = (times.exp - times.iat) * 1000;
  return Math.max(0, Math.min(maxMarginSeconds * 1000, lifetimeMs / 4));
}

/** The local time (ms) at which the token is due for refresh; `offsetMs` = server clock − local clock. */
export function dueAt(times: TokenTimes, maxMarginSeconds: number, offsetMs: number): number {
  return times.exp * 1000 - marginMs(times, maxMarginSeconds) - offsetMs;
}

/** True when a request sent now should refresh first. */
export function isDue(times: TokenTimes, nowMs: number, maxMarginSeconds: number, offsetMs: number): boolean {
  return nowMs >= dueAt(times, maxMarginSeconds, offsetMs);
}

/** Milliseconds from `nowMs` until the refresh timer should fire. */
export function delayUntilDue(times: TokenTimes, nowMs: number, maxMarginSeconds: number, offsetMs: number): number {
  return Math.max(MIN_DELAY_MS, dueAt(times, maxMarginSeconds, offsetMs) - nowMs);
}

/**
 * The server's clock minus ours, estimated from a token the server issued
 * just now (`iat`, whole seconds) and the local time its answer arrived.
 * Clocks within a few seconds of each other read as equal: `iat` is
 * truncated to the second and the answer took some time to arrive, so a
 * small difference is noise, and the margin covers it.
 */
export function clockOffsetMs(iatSeconds: number, receivedAtMs: number): number {
  const difference = iatSeconds * 1000 - receivedAtMs;
  // Same clocks: the difference is in (-1000 - latency, 0].
  if (difference > -3000 && difference < 2000) return 0;
  return difference + 500;
}
