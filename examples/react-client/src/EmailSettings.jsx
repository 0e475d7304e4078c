import { useState } from "react";
import * as api from "./api.js";
import { SessionEnded, withAccessToken } from "./session.js";

/**
 * The signed-in user's address: whether it is verified (from /auth/me),
 * "resend the verification email", and "change email" (the new address and
 * the password; the change happens when the link mailed to the new address
 * is opened and confirmed, on /confirm-email-change). Hidden when /auth/me
 * says nothing of verification (the Django reference has none of this).
 */
export default function EmailSettings({ user, session, onSession, onSessionEnded }) {
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [fieldErrors, setFieldErrors] = useState({});
  const [busy, setBusy] = useState(false);

  if (!("email_verified" in user)) return null;

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

  async function act(fn) {
    setBusy(true);
    setMessage(null);
    setError(null);
    setFieldErrors({});
    try {
      setMessage((await call(fn)).detail);
      return true;
    } catch (e) {
      if (e instanceof api.ApiError) {
        setFieldErrors(e.fieldErrors);
        if (!e.fieldErrors.email && !e.fieldErrors.password) setError(e.message);
      } else {
        setError(`Cannot reach the API at ${api.API_URL}.`);
      }
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function change(event) {
    event.preventDefault();
    if (await act((access) => api.changeEmail(access, { email, password }))) {
      setEmail("");
      setPassword("");
    }
  }

  const errorsOf = (field) =>
    fieldErrors[field] && (
      <ul className="errors" id={`change-${field}-errors`}>
        {fieldErrors[field].map((m) => (
          <li key={m}>{m}</li>
        ))}
      </ul>
    );

  return (
    <section aria-label="Email address">
      <h3>Email address</h3>
      <p data-field="email-verified">{user.email_verified ? "Verified" : "Not verified yet"}</p>
      {!user.email_verified && (
        <button disabled={busy} onClick={() => act(api.resendVerification)}>
          Resend the verification email
        </button>
      )}
      <form aria-label="Change email" onSubmit={change} noValidate>
        <div className="field">
          <label htmlFor="change-email">New email</label>
          <input
            id="change-email"
            type="email"
            autoComplete="email"
            value={email}
            aria-invalid={fieldErrors.email ? true : undefined}
            onChange={(e) => setEmail(e.target.value)}
          />
          {errorsOf("email")}
        </div>
        <div className="field">
          <label htmlFor="change-password">Password</label>
          <input
            id="change-password"
            type="password"
            autoComplete="current-password"
            value={password}
            aria-invalid={fieldErrors.password ? true : undefined}
            onChange={(e) => setPassword(e.target.value)}
          />
          {errorsOf("password")}
        </div>
        <button type="submit" disabled={busy}>
          Change email
        </button>
      </form>
      {message && (
        <p role="status" data-field="email-message">
          {message}
        </p>
      )}
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
