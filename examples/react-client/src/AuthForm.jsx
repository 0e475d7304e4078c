import { useEffect, useRef, useState } from "react";
import * as api from "./api.js";
import { conditionalMediationAvailable, isDismissal, passkeysSupported, signInWithPasskey } from "./passkeys.js";

const FORMS = {
  register: { title: "Register", submit: "Register", fields: ["name", "email", "password"], send: api.register },
  login: { title: "Log in", submit: "Log in", fields: ["email", "password"], send: api.login },
};

const LABELS = { name: "Name", email: "Email", password: "Password" };

/**
 * The register or the login form. The browser's own validation is off
 * (`noValidate`): the API's 400 answers are the source of truth, shown under
 * each field, and DRF's `detail` / `non_field_errors` (wrong password, 429
 * throttling) above the button.
 */
export default function AuthForm({ kind, onSuccess }) {
  const form = FORMS[kind];
  const [values, setValues] = useState(() => Object.fromEntries(form.fields.map((f) => [f, ""])));
  const [fieldErrors, setFieldErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);
  // After a login's `401 mfa_required`: the token, and the code being typed.
  const [mfaToken, setMfaToken] = useState(null);
  const [code, setCode] = useState("");
  // The login form's pending conditional passkey request (autofill), if any.
  const conditional = useRef(null);
  // Whether the API has passkeys (the login options answered).
  const [passkeys, setPasskeys] = useState(false);

  /** Starts the conditional request: the browser offers passkeys in the email field's autofill. */
  function offerPasskeysInAutofill(options) {
    const controller = new AbortController();
    conditional.current = controller;
    signInWithPasskey({ conditional: true, signal: controller.signal, options })
      .then(onSuccess)
      .catch((error) => {
        // In the background only the API's answers are worth showing; the
        // browser's refusals (none picked, a page off the rp id) are not.
        if (controller.signal.aborted || !(error instanceof api.ApiError)) return;
        showError(error);
      });
  }

  useEffect(() => {
    if (kind !== "login" || !passkeysSupported) return undefined;
    let stopped = false;
    // The options route answers 404 where there are no passkeys (or no such route).
    api
      .passkeyLoginOptions()
      .then(async (options) => {
        if (stopped) return;
        setPasskeys(true);
        if ((await conditionalMediationAvailable()) && !stopped) offerPasskeysInAutofill(options);
      })
      .catch(() => {});
    return () => {
      stopped = true;
      conditional.current?.abort();
    };
    // Once per login form.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [kind]);

  function showError(error) {
    if (error instanceof api.ApiError) {
      setFieldErrors(error.fieldErrors);
      setFormError(error.message);
    } else {
      setFormError(`Cannot reach the API at ${api.API_URL}.`);
    }
  }

  /** "Sign in with a passkey": the browser's dialog (the autofill request is set aside). */
  async function passkeyButton() {
    conditional.current?.abort();
    setBusy(true);
    setFieldErrors({});
    setFormError(null);
    try {
      onSuccess(await signInWithPasskey());
    } catch (error) {
      if (isDismissal(error)) setFormError("No passkey was used.");
      else if (error instanceof DOMException) setFormError(`The browser refused the passkey: ${error.message}`);
      else showError(error);
      setBusy(false);
    }
  }

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setFieldErrors({});
    setFormError(null);
    try {
      onSuccess(mfaToken ? await api.loginMfa({ mfaToken, code }) : await form.send(values));
    } catch (error) {
      if (api.isMfaRequired(error)) {
        setMfaToken(error.body.mfa_token);
        setBusy(false);
        return;
      }
      if (mfaToken && error instanceof api.ApiError && error.status === 401) {
        // The mfa_token died (5 minutes, 5 wrong codes): start over.
        setMfaToken(null);
        setCode("");
      }
      if (error instanceof api.ApiError) {
        setFieldErrors(error.fieldErrors);
        setFormError(error.message);
      } else {
        setFormError(`Cannot reach the API at ${api.API_URL}.`);
      }
      setBusy(false);
    }
  }

  if (mfaToken) {
    const errors = fieldErrors.code;
    return (
      <form aria-label="Two-factor code" onSubmit={submit} noValidate>
        <h2>{form.title}: two-factor code</h2>
        <div className="field">
          <label htmlFor="login-code">Code from your authenticator app, or a recovery code</label>
          <input
            id="login-code"
            name="code"
            inputMode="text"
            autoComplete="one-time-code"
            value={code}
            aria-invalid={errors ? true : undefined}
            aria-describedby={errors ? "login-code-errors" : undefined}
            onChange={(e) => setCode(e.target.value)}
          />
          {errors && (
            <ul className="errors" id="login-code-errors">
              {errors.map((message) => (
                <li key={message}>{message}</li>
              ))}
            </ul>
          )}
        </div>
        {formError && !errors && <p role="alert">{formError}</p>}
        <button type="submit" disabled={busy}>
          Verify
        </button>
      </form>
    );
  }

  return (
    <form aria-label={form.title} onSubmit={submit} noValidate>
      <h2>{form.title}</h2>
      {form.fields.map((field) => {
        const id = `${kind}-${field}`;
        const errors = fieldErrors[field];
        return (
          <div className="field" key={field}>
            <label htmlFor={id}>{LABELS[field]}</label>
            <input
              id={id}
              name={field}
              type={field === "password" ? "password" : field === "email" ? "email" : "text"}
              autoComplete={
                field === "password"
                  ? kind === "register"
                    ? "new-password"
                    : "current-password"
                  : kind === "login" && field === "email"
                    ? "username webauthn"
                    : field
              }
              value={values[field]}
              aria-invalid={errors ? true : undefined}
              aria-describedby={errors ? `${id}-errors` : undefined}
              onChange={(e) => setValues({ ...values, [field]: e.target.value })}
            />
            {errors && (
              <ul className="errors" id={`${id}-errors`}>
                {errors.map((message) => (
                  <li key={message}>{message}</li>
                ))}
              </ul>
            )}
          </div>
        );
      })}
      {formError && <p role="alert">{formError}</p>}
      <button type="submit" disabled={busy}>
        {form.submit}
      </button>
      {passkeys && (
        <>
          {" "}
          <button type="button" onClick={passkeyButton} disabled={busy}>
            Sign in with a passkey
          </button>
        </>
      )}
    </form>
  );
}
