import { describe, expect, it } from "vitest";
import { clockOffsetMs, delayUntilDue, dueAt, isDue, marginMs, MIN_DELAY_MS } from "../src/schedule.js";

const token = (iat: number, lifetime: number) => ({ iat, exp: iat + lifetime });

describe("the refresh scheduler", () => {
  it("refreshes a quarter of a short lifetime early", () => {
    expect(marginMs(token(1000, 4), 60)).toBe(1000);
    expect(marginMs(token(1000, 300), 60)).toBe(60000);
  });

  it("refreshes a long-lived token the configured margin early, never more", () => {
    expect(marginMs(token(1000, 86400), 60)).toBe(60000);
    expect(marginMs(token(1000, 86400), 5)).toBe(5000);
    expect(dueAt(token(1000, 86400), 60, 0)).toBe((1000 + 86400) * 1000 - 60000);
  });

  it("is due from the due time on, not before", () => {
    const t = token(1000, 8);
    expect(isDue(t, 1005999, 60, 0)).toBe(false);
    expect(isDue(t, 1006000, 60, 0)).toBe(true);
    expect(isDue(t, 1010000, 60, 0)).toBe(true);
  });

  it("measures on the server's clock", () => {
    const t = token(1000, 8);
    // Our clock is 30 s behind the server's: due 30 s earlier by ours.
    expect(isDue(t, 976000, 60, 30000)).toBe(true);
    expect(isDue(t, 975999, 60, 30000)).toBe(false);
  });

  it("never schedules sooner than the minimum delay, even for an expired token", () => {
    expect(delayUntilDue(token(1000, 8), 2_000_000, 60, 0)).toBe(MIN_DELAY_MS);
    expect(delayUntilDue(token(1000, 8), 1_000_000, 60, 0)).toBe(6000);
  });

  it("reads clocks within a few seconds as equal, and a real skew as a skew", () => {
    expect(clockOffsetMs(1000, 1000_400)).toBe(0);
    expect(clockOffsetMs(1000, 1001_900)).toBe(0);
    expect(clockOffsetMs(1000, 940_000)).toBe(60_500);
    expect(clockOffsetMs(1000, 1060_000)).toBe(-59_500);
  });
});
