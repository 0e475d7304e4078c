// The account routes and the second factor against a real latchkey: the
// two-step MFA login with a real TOTP code, the mailed links (reset, verify,
// email change) read from the server's mail folder, rename and deletion,
// with the contract's typed field errors. Needs LATCHKEY_BIN.
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type LatchkeyClient } from "../src/client.js";
import { isMfaRequired, MfaRequiredError } from "../src/errors.js";
import { localLocks } from "../src/lock.js";
import { Bus, SharedStorage } from "../test/fakes.js";
import { latchkeyBinary, startLatchkey, type Running } from "./latchkey.js";

const binary = latchkeyBinary();
if (!binary && process.env.CI === "true") throw new Error("CI=true and no latchkey binary: set LATCHKEY_BIN (the release build).");

const PASSWORD = "correct-Horse-battery-9-staple";
let server: Running;
let n = 0;
const clients: LatchkeyClient[] = [];

function tabs(count: number): LatchkeyClient[] {
  const storage = new SharedStorage();
  const locks = localLocks();
  const bus = new Bus();
  const made = Array.from({ length: count }, () =>
    createClient({ baseUrl: server.url, storage: storage.tab(), locks, channel: bus.channel() }),
  );
  clients.push(...made);
  return made;
}

function newUser() {
  const id = `${Date.now().toString(36)}-${++n}`;
  return { name: `acct-${id}`, email: `acct-${id}@example.com`, password: PASSWORD };
}

function base32(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) at Unix time `t`. */
function totp(secret: string, t = Date.now() / 1000): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const d = createHmac("sha1", base32(secret)).update(counter).digest();
  const o = d[19]! & 0xf;
  const v = ((d[o]! & 0x7f) << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!;
  return String(v % 1_000_000).padStart(6, "0");
}

describe.skipIf(!binary)("account routes and the second factor against a real latchkey", () => {
  beforeAll(async () => {
    server = await startLatchkey(binary!, { LATCHKEY_ACCESS_TOKEN_LIFETIME_SECONDS: "300" });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  it("enrolling TOTP makes login two-step: MfaRequiredError, a wrong code as a field error, a recovery code signs every tab in", async () => {
    const [tab, other] = tabs(2);
    const user = newUser();
    await tab!.register(user);
    const { secret, otpauth_uri } = await tab!.mfa.enrolTotp(PASSWORD);
    expect(otpauth_uri).toContain(`secret=${secret}`);
    await expect(tab!.mfa.confirmTotp(totp(secret) === "000000" ? "111111" : "000000")).rejects.toMatchObject({
      status: 400,
      fields: { code: ["Invalid code."] },
    });
    const codes = await tab!.mfa.confirmTotp(totp(secret));
    expect(codes).toHaveLength(10);
    expect(await tab!.mfa.status()).toMatchObject({ totp: true, recovery_codes_left: 10 });
    await tab!.logout();

    const challenge = await tab!.login({ email: user.email, password: PASSWORD }).catch((e: unknown) => e);
    expect(challenge).toBeInstanceOf(MfaRequiredError);
    expect(isMfaRequired(challenge)).toBe(true);
    const { mfaToken, methods } = challenge as MfaRequiredError;
    expect(methods).toContain("totp");
    expect(tab!.getState().status).toBe("signed_out");
    await expect(tab!.loginMfa(mfaToken, "zzzz-zzzz-zzzz")).rejects.toMatchObject({ status: 400, fields: { code: ["Invalid code."] } });
    const signedIn = await tab!.loginMfa(mfaToken, codes[0]!);
    expect(signedIn).toMatchObject({ email: user.email });
    await new Promise((r) => setTimeout(r, 20));
    expect(other!.getState()).toMatchObject({ status: "signed_in", user: signedIn });
    expect(await tab!.mfa.status()).toMatchObject({ recovery_codes_left: 9 });

    const fresh = await tab!.mfa.regenerateRecoveryCodes(PASSWORD);
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(codes[1]);
    await expect(tab!.mfa.disableTotp("wrong-Horse-battery-9")).rejects.toMatchObject({ status: 400, fields: { password: expect.any(Array) } });
    await tab!.mfa.disableTotp(PASSWORD);
    expect(await tab!.mfa.status()).toMatchObject({ totp: false });
    await tab!.logout();
    expect(await tab!.login({ email: user.email, password: PASSWORD })).toMatchObject({ email: user.email });
  });

  it("verify, rename, change email, reset the password and delete the account, through the mailed links", async () => {
    const [tab, other] = tabs(2);
    const user = newUser();
    await tab!.register(user);
    expect(await tab!.profile()).toMatchObject({ email_verified: false });
    await expect(tab!.verifyEmail("x".repeat(43))).rejects.toMatchObject({ status: 400, fields: { token: ["Invalid or expired token."] } });
    expect(await tab!.verifyEmail(await server.mailToken(user.email, "/verify-email"))).toBe("Email verified.");
    expect(await tab!.profile()).toMatchObject({ email_verified: true });

    const renamed = `${user.name}-2`;
    expect(await tab!.updateProfile({ name: renamed })).toMatchObject({ name: renamed });
    await new Promise((r) => setTimeout(r, 20));
    expect(other!.getState().user?.name).toBe(renamed);
    await expect(tab!.updateProfile({ name: "" })).rejects.toMatchObject({ status: 400, fields: { name: expect.any(Array) } });

    const newEmail = `new-${user.email}`;
    await expect(tab!.changeEmail({ email: newEmail, password: "wrong-Horse-battery-9" })).rejects.toMatchObject({
      status: 400,
      fields: { password: expect.any(Array) },
    });
    await tab!.changeEmail({ email: newEmail, password: PASSWORD });
    await tab!.confirmEmailChange(await server.mailToken(newEmail, "/confirm-email-change"));
    expect(tab!.getState().user?.email).toBe(newEmail);
    await tab!.logout();

    expect(await tab!.requestPasswordReset(newEmail)).toMatch(/If an account with this email exists/);
    const token = await server.mailToken(newEmail, "/reset-password");
    await expect(tab!.confirmPasswordReset(token, "1234")).rejects.toMatchObject({ status: 400, fields: { new_password: expect.any(Array) } });
    const newPassword = `${PASSWORD}-reset`;
    expect(await tab!.confirmPasswordReset(token, newPassword)).toBe("Password has been reset.");
    await expect(tab!.login({ email: newEmail, password: PASSWORD })).rejects.toMatchObject({ status: 401, code: "no_active_account" });
    await tab!.login({ email: newEmail, password: newPassword });

    await expect(tab!.deleteAccount(PASSWORD)).rejects.toMatchObject({ status: 400, fields: { password: expect.any(Array) } });
    expect(tab!.getState().status).toBe("signed_in");
    await tab!.deleteAccount(newPassword);
    await new Promise((r) => setTimeout(r, 20));
    for (const t of [tab!, other!]) expect(t.getState()).toMatchObject({ status: "signed_out", reason: "logout" });
    await expect(tab!.login({ email: newEmail, password: newPassword })).rejects.toMatchObject({ status: 401 });
  });
});
