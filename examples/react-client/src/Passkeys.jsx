import { useEffect, useState } from "react";
import * as api from "./api.js";
import { addPasskey, isDismissal, passkeysSupported } from "./passkeys.js";
import { SessionEnded, withAccessToken } from "./session.js";

/**
 * The signed-in user's passkeys: the list from GET /auth/passkeys, "Add a
 * passkey" (a name, then the browser's own dialog), and a delete button per
 * passkey. Hidden when the API has no passkeys (the Django reference) or the
 * browser cannot make them.
 */
export default function Passkeys({ session, onSession, onSessionEnded }) {
  const [passkeys, setPasskeys] = useState(null);
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);

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
    call(api.fetchPasskeys)
      .then(setPasskeys)
      .catch(() => setPasskeys(undefined));
    // Once per signed-in view.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  if (!passkeysSupported || passkeys === undefined) return null;
  if (passkeys === null) return <p role="status">Loading passkeys…</p>;

  const message = (e) =>
    e instanceof api.ApiError
      ? Object.values(e.fieldErrors).flat().join(" ") || e.message
      : isDismissal(e)
        ? "No passkey was created."
        : e.message;

  async function add(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const added = await call((access) => addPasskey(access, name || "Passkey"));
      setNotice(`Passkey "${added.name}" added.`);
      setName("");
      setPasskeys(await call(api.fetchPasskeys));
    } catch (e) {
      setError(message(e));
    }
    setBusy(false);
  }

  async function remove(passkey) {
    setError(null);
    setNotice(null);
    try {
      await call((access) => api.deletePasskey(access, passkey.id));
      setNotice(`Passkey "${passkey.name}" deleted.`);
      setPasskeys(await call(api.fetchPasskeys));
    } catch (e) {
      setError(message(e));
    }
  }

  return (
    <section aria-label="Passkeys">
      <h3>Passkeys</h3>
      {passkeys.length === 0 ? (
        <p data-field="passkeys-state">No passkeys yet.</p>
      ) : (
        <ul aria-label="Your passkeys">
          {passkeys.map((p) => (
            <li key={p.id} data-field="passkey">
              <span data-field="passkey-name">{p.name}</span>{" "}
              <small>
                added {new Date(p.created_at).toLocaleString()}
                {p.last_used_at ? `, last used ${new Date(p.last_used_at).toLocaleString()}` : ", never used"}
              </small>{" "}
              <button type="button" onClick={() => remove(p)} aria-label={`Delete passkey ${p.name}`}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
      <form aria-label="Add a passkey" onSubmit={add} noValidate>
        <label htmlFor="passkey-name">Name for the new passkey</label>
        <input
          id="passkey-name"
          value={name}
          maxLength={64}
          placeholder="e.g. Laptop"
          onChange={(e) => setName(e.target.value)}
        />
        <button type="submit" disabled={busy}>
          Add a passkey
        </button>
      </form>
      {notice && <p role="status">{notice}</p>}
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
