import { useEffect, useState } from "react";
import QRCode from "qrcode";
import * as api from "./api.js";
import { SessionEnded, withAccessToken } from "./session.js";

/**
 * Two-factor authentication for the signed-in user: the state from
 * GET /auth/mfa, and enrolment — the password, then the otpauth URI as a QR
 * code (drawn here, in the browser, by the `qrcode` package: nothing is
 * fetched) with the secret beside it for typing, then a code from the app to
 * confirm, then the recovery codes, shown once. Hidden when the API has no
 * second factor (the Django reference).
 */
export default function Mfa({ session, onSession, onSessionEnded }) {
  const [state, setState] = useState(null);
  const [password, setPassword] = useState("");
  const [enrolment, setEnrolment] = useState(null);
  const [qr, setQr] = useState(null);
  const [code, setCode] = useState("");
  const [recoveryCodes, setRecoveryCodes] = useState(null);
  const [error, setError] = useState(null);

  async function call(fn) {
    try {
      const { result, session: renewed } = await withAccessToken(session, fn);
      if (renewed !== session) onSession(renewed);
      return result;
    } catch (e) {
      if (e instanceof SessionEnded) onSessionEnded(e.message);
      throw e;
    }
  }

  useEffect(() => {
    call(api.fetchMfa)
      .then(setState)
      .catch(() => setState(undefined));
    // Once per signed-in view.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    if (!enrolment) return setQr(null);
    QRCode.toDataURL(enrolment.otpauth_uri, { margin: 1, width: 192 }).then(setQr, () => setQr(null));
  }, [enrolment]);

  if (state === undefined) return null; // no second factor on this API
  if (state === null) return <p role="status">Loading two-factor settings…</p>;

  const fieldError = (e, field) => (e instanceof api.ApiError ? (e.fieldErrors[field] || [e.message]).join(" ") : e.message);

  async function start(event) {
    event.preventDefault();
    setError(null);
    try {
      setEnrolment(await call((access) => api.startTotp(access, password)));
      setPassword("");
    } catch (e) {
      setError(fieldError(e, "password"));
    }
  }

  async function confirm(event) {
    event.preventDefault();
    setError(null);
    try {
      const { recovery_codes } = await call((access) => api.confirmTotp(access, code));
      setRecoveryCodes(recovery_codes);
      setEnrolment(null);
      setState(await call(api.fetchMfa));
    } catch (e) {
      setError(fieldError(e, "code"));
    }
  }

  return (
    <section aria-label="Two-factor authentication">
      <h3>Two-factor authentication</h3>
      <p data-field="mfa-state">{state.totp ? `On (${state.recovery_codes_left} recovery codes left)` : "Off"}</p>
      {recoveryCodes && (
        <div aria-label="Recovery codes">
          <p>Keep these recovery codes somewhere safe; each works once, in place of a code:</p>
          <ul>
            {recoveryCodes.map((c) => (
              <li key={c} data-field="recovery-code">
                <code>{c}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      {!state.totp && !enrolment && (
        <form aria-label="Enable two-factor authentication" onSubmit={start} noValidate>
          <label htmlFor="mfa-password">Password</label>
          <input
            id="mfa-password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <button type="submit">Enable two-factor authentication</button>
        </form>
      )}
      {enrolment && (
        <form aria-label="Confirm two-factor authentication" onSubmit={confirm} noValidate>
          <p>Scan this with an authenticator app, or type the secret:</p>
          {qr && <img src={qr} alt="QR code of the authenticator secret" width="192" height="192" />}
          <p>
            Secret: <code data-field="totp-secret">{enrolment.secret}</code>
          </p>
          <label htmlFor="mfa-code">Code from the app</label>
          <input
            id="mfa-code"
            inputMode="numeric"
            autoComplete="one-time-code"
            value={code}
            onChange={(e) => setCode(e.target.value)}
          />
          <button type="submit">Confirm</button>
        </form>
      )}
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
