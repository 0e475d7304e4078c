import { useState } from "react";
import * as api from "./api.js";

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

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setFieldErrors({});
    setFormError(null);
    try {
      onSuccess(await form.send(values));
    } catch (error) {
      if (error instanceof api.ApiError) {
        setFieldErrors(error.fieldErrors);
        setFormError(error.message);
      } else {
        setFormError(`Cannot reach the API at ${api.API_URL}.`);
      }
      setBusy(false);
    }
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
              autoComplete={field === "password" ? (kind === "register" ? "new-password" : "current-password") : field}
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
    </form>
  );
}
