import { useState } from "react";
import * as api from "./api.js";

// The pages that mailed links open (LATCHKEY_APP_URL + /reset-password,
// /verify-email, /confirm-email-change, each with ?token=T), and the
// "forgot password" form that asks for a reset link.
//
// Opening a link consumes nothing, on the server or here: each page shows a
// button, and only pressing it POSTs the token. A page that POSTed on load
// would be the app acting, which the contract allows, but link scanners in
// mail systems increasingly run a page's scripts; they would then verify an
// address or confirm an email change that nobody read. A press is a person.

/** `?token=` of the page's URL (the mailed link), or "". */
export function tokenFromUrl() {
  return new URLSearchParams(window.location.search).get("token") ?? "";
}

/** The API's error for `field` (e.g. `token`, `new_password`), else its message. */
function messageFor(error, field) {
  if (!(error instanceof api.ApiError)) return `Cannot reach the API at ${api.API_URL}.`;
  const errors = error.fieldErrors;
  return (errors[field] || errors.token || errors.email || [error.message]).join(" ");
}

function Back({ navigate, children = "Back to the app" }) {
  return (
    <p>
      <a
        href="/"
        onClick={(e) => {
          e.preventDefault();
          navigate("/");
        }}
      >
        {children}
      </a>
    </p>
  );
}

/** "Forgot password": the address, then the API's same answer for every address. */
export function ForgotPassword({ navigate }) {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setSent((await api.requestPasswordReset(email)).detail);
    } catch (e) {
      setError(messageFor(e, "email"));
    }
    setBusy(false);
  }

  return (
    <section aria-label="Forgot password">
      <h2>Forgot your password?</h2>
      {sent ? (
        <p role="status">{sent}</p>
      ) : (
        <form aria-label="Send a reset link" onSubmit={submit} noValidate>
          <div className="field">
            <label htmlFor="forgot-email">Email</label>
            <input
              id="forgot-email"
              type="email"
              autoComplete="email"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
          </div>
          {error && <p role="alert">{error}</p>}
          <button type="submit" disabled={busy}>
            Send me a reset link
          </button>
        </form>
      )}
      <Back navigate={navigate}>Back to log in</Back>
    </section>
  );
}

/**
 * "Reset password" (`/reset-password?token=T`): a new password. A password
 * the policy refuses is shown under the field and the token stays (the API
 * keeps it usable); on success every session has ended, so the user logs in.
 */
export function ResetPassword({ navigate }) {
  const [token] = useState(tokenFromUrl);
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(null);
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setFormError(null);
    try {
      setDone((await api.confirmPasswordReset({ token, newPassword: password })).detail);
    } catch (e) {
      if (e instanceof api.ApiError && e.fieldErrors.new_password) setErrors(e.fieldErrors);
      else setFormError(messageFor(e, "token"));
    }
    setBusy(false);
  }

  const fieldErrors = errors.new_password;
  return (
    <section aria-label="Reset password">
      <h2>Choose a new password</h2>
      {done ? (
        <>
          <p role="status">{done} Log in with your new password.</p>
          <Back navigate={navigate}>Log in</Back>
        </>
      ) : (
        <>
          <form aria-label="New password" onSubmit={submit} noValidate>
            <div className="field">
              <label htmlFor="reset-password">New password</label>
              <input
                id="reset-password"
                type="password"
                autoComplete="new-password"
                value={password}
                aria-invalid={fieldErrors ? true : undefined}
                aria-describedby={fieldErrors ? "reset-password-errors" : undefined}
                onChange={(e) => setPassword(e.target.value)}
              />
              {fieldErrors && (
                <ul className="errors" id="reset-password-errors">
                  {fieldErrors.map((message) => (
                    <li key={message}>{message}</li>
                  ))}
                </ul>
              )}
            </div>
            {formError && <p role="alert">{formError}</p>}
            <button type="submit" disabled={busy || !token}>
              Set the new password
            </button>
          </form>
          {!token && <p role="alert">This link has no token: open the link from the email again.</p>}
          <Back navigate={navigate} />
        </>
      )}
    </section>
  );
}

/**
 * A page with one button that spends the link's token: "verify email"
 * (`/verify-email?token=T`) and "confirm email change"
 * (`/confirm-email-change?token=T`).
 */
function TokenPage({ label, title, explain, button, send, navigate }) {
  const [token] = useState(tokenFromUrl);
  const [done, setDone] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setDone((await send(token)).detail);
    } catch (e) {
      setError(messageFor(e, "token"));
    }
    setBusy(false);
  }

  return (
    <section aria-label={label}>
      <h2>{title}</h2>
      {done ? (
        <p role="status">{done}</p>
      ) : (
        <form aria-label={label} onSubmit={submit}>
          <p>{explain}</p>
          <button type="submit" disabled={busy || !token}>
            {button}
          </button>
          {!token && <p role="alert">This link has no token: open the link from the email again.</p>}
          {error && <p role="alert">{error}</p>}
        </form>
      )}
      <Back navigate={navigate} />
    </section>
  );
}

export function VerifyEmail({ navigate }) {
  return (
    <TokenPage
      label="Verify email"
      title="Verify your email address"
      explain="Press the button to confirm that this address is yours."
      button="Verify my email"
      send={api.verifyEmail}
      navigate={navigate}
    />
  );
}

export function ConfirmEmailChange({ navigate }) {
  return (
    <TokenPage
      label="Confirm email change"
      title="Confirm your new email address"
      explain="Press the button to make this address your account's email."
      button="Confirm the new address"
      send={api.confirmEmailChange}
      navigate={navigate}
    />
  );
}
