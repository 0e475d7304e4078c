import { useEffect, useRef, useState } from "react";
import { useLatchkey, useSession } from "latchkey-client/react";
import { API_URL } from "../api.js";

// Signed out: the register and login forms. Signed in: the user, the
// logout buttons, and a request loop against the API (`client.fetch`),
// whose counters the end-to-end test reads.
export default function SdkApp() {
  const { status, user, reason, logout } = useSession();
  const client = useLatchkey();
  const [error, setError] = useState(null);

  useEffect(() => {
    // The CSRF token first, as the seed says; the SDK keeps it.
    client.csrf().catch((e) => setError(e.detail));
  }, [client]);

  if (status === "loading") {
    // The cookie mode's first moments: asking the other tabs, or the cookie, for the session.
    return (
      <main>
        <h1>latchkey (SDK)</h1>
        <p role="status">Loading…</p>
      </main>
    );
  }
  if (status === "signed_out") {
    return (
      <main>
        <h1>latchkey (SDK)</h1>
        <p role="status">{reason === "session_ended" ? "Your session has ended. Please log in again." : "You are logged out."}</p>
        {error && <p role="alert">{error}</p>}
        <SdkForm kind="Register" />
        <SdkForm kind="Log in" />
        <p>
          <a href="./">The seed-style page</a> (plain <code>fetch</code>) shares this session.
        </p>
      </main>
    );
  }
  return (
    <main>
      <h1>Signed in as {user.name}</h1>
      <p data-field="email">{user.email}</p>
      <button onClick={() => logout().catch((e) => setError(e.detail))}>Log out</button>{" "}
      <button onClick={() => client.logoutAll().catch((e) => setError(e.detail))}>Log out everywhere</button>
      {error && <p role="alert">{error}</p>}
      <Requests />
    </main>
  );
}

function SdkForm({ kind }) {
  const { register, login } = useSession();
  const [values, setValues] = useState({ name: "", email: "", password: "" });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  // The password was right and the account has a second factor: the SDK's MfaRequiredError.
  const [challenge, setChallenge] = useState(null);
  const fields = kind === "Register" ? ["name", "email", "password"] : ["email", "password"];
  const id = kind.toLowerCase().replace(/\s+/g, "-");

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const form = Object.fromEntries(fields.map((f) => [f, values[f]]));
      await (kind === "Register" ? register(form) : login(form));
    } catch (e) {
      if (e.code === "mfa_required") setChallenge({ mfaToken: e.mfaToken, methods: e.methods });
      else setError(e);
    } finally {
      setBusy(false);
    }
  }

  const message =
    error && (error.code === "throttled" && error.retryAfter ? `Too many attempts. Try again in ${error.retryAfter} seconds.` : error.detail);
  if (challenge) return <SdkMfaForm challenge={challenge} onCancel={() => setChallenge(null)} />;
  return (
    <form aria-label={`SDK ${kind}`} onSubmit={submit}>
      <h2>{kind}</h2>
      {fields.map((field) => (
        <label key={field}>
          {field[0].toUpperCase() + field.slice(1)}
          <input
            id={`sdk-${id}-${field}`}
            type={field === "password" ? "password" : field === "email" ? "email" : "text"}
            value={values[field]}
            onChange={(e) => setValues({ ...values, [field]: e.target.value })}
          />
          {error?.fields?.[field]?.map((m) => (
            <span className="errors" key={m}>
              {m}
            </span>
          ))}
        </label>
      ))}
      {message && <p role="alert">{message}</p>}
      <button disabled={busy}>{kind}</button>
    </form>
  );
}

/** The login's second step: `loginMfa(mfaToken, code)`, a TOTP code or a recovery code. */
function SdkMfaForm({ challenge, onCancel }) {
  const { loginMfa } = useSession();
  const [code, setCode] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await loginMfa(challenge.mfaToken, code.trim());
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form aria-label="SDK Second factor" onSubmit={submit}>
      <h2>Second factor</h2>
      <label>
        {challenge.methods.includes("recovery_code") ? "Code from your authenticator app, or a recovery code" : "Code from your authenticator app"}
        <input id="sdk-mfa-code" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} />
        {error?.fields?.code?.map((m) => (
          <span className="errors" key={m}>
            {m}
          </span>
        ))}
      </label>
      {error && !error.fields?.code && <p role="alert">{error.detail}</p>}
      <button disabled={busy}>Verify</button>{" "}
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}

/** GET /auth/me through client.fetch every `every` ms while running; the counters are data attributes. */
function Requests({ every = 250 }) {
  const client = useLatchkey();
  const [running, setRunning] = useState(false);
  const counts = useRef({ ok: 0, unauthorized: 0, failed: 0, slowestMs: 0 });
  const [, rerender] = useState(0);

  useEffect(() => {
    if (!running) return undefined;
    let stopped = false;
    async function loop() {
      while (!stopped) {
        const started = performance.now();
        try {
          const response = await client.fetch(`${API_URL}/auth/me`);
          if (response.ok) counts.current.ok++;
          else if (response.status === 401) counts.current.unauthorized++;
          else counts.current.failed++;
        } catch {
          counts.current.failed++;
        }
        counts.current.slowestMs = Math.max(counts.current.slowestMs, Math.round(performance.now() - started));
        rerender((n) => n + 1);
        await new Promise((r) => setTimeout(r, every));
      }
    }
    loop();
    return () => {
      stopped = true;
    };
  }, [running, client, every]);

  const { ok, unauthorized, failed, slowestMs } = counts.current;
  return (
    <section id="requests" data-ok={ok} data-unauthorized={unauthorized} data-failed={failed} data-slowest-ms={slowestMs}>
      <h2>Requests</h2>
      <button onClick={() => setRunning(!running)}>{running ? "Stop requests" : "Start requests"}</button>
      <p>
        {ok} answered, {unauthorized} refused (401), {failed} failed; slowest {slowestMs} ms.
      </p>
    </section>
  );
}
