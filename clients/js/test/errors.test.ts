import { describe, expect, it } from "vitest";
import { errorFromResponse, LatchkeyError, parseRetryAfter } from "../src/errors.js";
import { tokenTimes } from "../src/jwt.js";
import { parseSession } from "../src/storage.js";
import { jwt } from "./fakes.js";

describe("error mapping", () => {
  it("carries the contract's code and detail", () => {
    const e = errorFromResponse(401, { detail: "Token is expired", code: "token_not_valid" }, null);
    expect(e).toBeInstanceOf(LatchkeyError);
    expect(e).toMatchObject({ status: 401, code: "token_not_valid", detail: "Token is expired", fields: {}, retryAfter: null });
    expect(e.message).toBe("Token is expired");
  });

  it("turns DRF's field shape into field messages with code invalid", () => {
    const body = { email: ["Enter a valid email address."], password: ["This password is too common."] };
    const e = errorFromResponse(400, body, null);
    expect(e).toMatchObject({ code: "invalid", fields: body, detail: "Please correct the errors below." });
  });

  it("uses non_field_errors as the detail", () => {
    const e = errorFromResponse(400, { non_field_errors: ["Invalid data. Expected a dictionary, but got list."] }, null);
    expect(e.detail).toBe("Invalid data. Expected a dictionary, but got list.");
    expect(e.fields.non_field_errors).toHaveLength(1);
  });

  it("reads Retry-After on a 429", () => {
    const e = errorFromResponse(429, { detail: "Request was throttled. Expected available in 42 seconds.", code: "throttled" }, "42");
    expect(e).toMatchObject({ status: 429, code: "throttled", retryAfter: 42 });
  });

  it("keeps the whole body for codes this version does not model (mfa_required)", () => {
    const body = { detail: "Two-factor authentication required.", code: "mfa_required", mfa_token: "t", methods: ["totp"] };
    const e = errorFromResponse(401, body, null);
    expect(e.code).toBe("mfa_required");
    expect(e.body).toEqual(body);
  });

  it("maps a body that is not latchkey's by status", () => {
    expect(errorFromResponse(502, null, null)).toMatchObject({ code: "error", detail: "The server answered 502." });
    expect(errorFromResponse(503, "<html>", "1")).toMatchObject({ code: "service_unavailable", retryAfter: 1 });
    expect(errorFromResponse(400, { email: "not a list" }, null)).toMatchObject({ code: "invalid", fields: {} });
  });

  it("accepts only whole seconds in Retry-After", () => {
    expect(parseRetryAfter("7")).toBe(7);
    expect(parseRetryAfter(" 7 ")).toBe(7);
    for (const bad of [null, "", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "1e3", "9999999999"]) {
      expect(parseRetryAfter(bad)).toBeNull();
    }
  });
});

/** A small seeded generator, so a failure is reproducible. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

function randomString(random: () => number): string {
  const alphabet = "ab.-_=+/{}\":,0123456789eE \u0000\u00e9\ud83d";
  const length = Math.floor(random() * 60);
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
  return s;
}

describe("untrusted input never throws", () => {
  it("tokenTimes reads iat and exp of a JWT, null for anything else", () => {
    expect(tokenTimes(jwt({ iat: 10, exp: 14 }))).toEqual({ iat: 10, exp: 14 });
    for (const bad of [null, 3, "", "a.b", "a.b.c", jwt({ iat: 10 }), jwt({ iat: "10", exp: 14 }), jwt({ iat: 14, exp: 10 }), "x." + btoa("[1]") + ".y"]) {
      expect(tokenTimes(bad)).toBeNull();
    }
  });

  it("tokenTimes and parseSession take 2000 random strings without throwing", () => {
    const random = prng(20);
    for (let i = 0; i < 2000; i++) {
      const s = randomString(random);
      const three = `${randomString(random)}.${Buffer.from(s).toString("base64url")}.${randomString(random)}`;
      expect(() => tokenTimes(s)).not.toThrow();
      expect(() => tokenTimes(three)).not.toThrow();
      expect(() => parseSession(s)).not.toThrow();
      expect(() => parseSession(JSON.stringify({ user: { id: 1, email: s, name: s }, tokens: s }))).not.toThrow();
    }
  });

  it("errorFromResponse takes random JSON bodies without throwing", () => {
    const random = prng(7);
    for (let i = 0; i < 2000; i++) {
      const s = randomString(random);
      let body: unknown;
      try {
        body = JSON.parse(s);
      } catch {
        body = { [s]: random() < 0.5 ? [s] : s, detail: random() < 0.3 ? s : undefined };
      }
      const status = 400 + Math.floor(random() * 200);
      expect(() => errorFromResponse(status, body, random() < 0.5 ? s : null)).not.toThrow();
    }
  });

  it("parseSession keeps only the seed's fields and refuses other shapes", () => {
    const good = { user: { id: 1, email: "a@b.c", name: "a", extra: 1 }, tokens: { access: "x", refresh: "y" } };
    expect(parseSession(JSON.stringify(good))).toEqual({ user: { id: 1, email: "a@b.c", name: "a" }, tokens: { access: "x", refresh: "y" } });
    expect(parseSession(JSON.stringify({ ...good, user: { ...good.user, id: "1" } }))).toBeNull();
    expect(parseSession("null")).toBeNull();
  });
});
