import { useCallback, useEffect, useState } from "react";
import * as api from "./api.js";
import { SessionEnded, clearSession, loadSession, saveSession, sessionFrom, withAccessToken } from "./session.js";
import AuthForm from "./AuthForm.jsx";
import Profile from "./Profile.jsx";
import { ConfirmEmailChange, ForgotPassword, ResetPassword, VerifyEmail } from "./Account.jsx";

// The pages of account recovery and verification, by path: the mailed links
// open the last three (LATCHKEY_APP_URL + path + ?token=T). Any other path
// is the app itself.
const PAGES = {
  "/forgot-password": ForgotPassword,
  "/reset-password": ResetPassword,
  "/verify-email": VerifyEmail,
  "/confirm-email-change": ConfirmEmailChange,
};

// The app is in one of four states:
//   starting    fetching the CSRF token, then checking a stored session
//   unreachable the CSRF request failed (API down, or this origin not allowed)
//   signedOut   register and login forms
//   signedIn    the current user from /auth/me, and the logout button
// Once connected, a path of PAGES shows that page instead of the last two.
export default function App() {
  const [state, setState] = useState("starting");
  const [path, setPath] = useState(window.location.pathname);
  const [session, setSession] = useState(null);
  const [notice, setNotice] = useState(null);
  const [startError, setStartError] = useState(null);

  const signOut = useCallback((message) => {
    clearSession();
    setSession(null);
    setNotice(message);
    setState("signedOut");
  }, []);

  /** Asks /auth/me who we are (refreshing the access token if needed) and shows it. */
  const loadProfile = useCallback(
    async (current) => {
      try {
        const { result: user, session: renewed } = await withAccessToken(current, api.fetchMe);
        const next = { ...renewed, user };
        saveSession(next);
        setSession(next);
        setNotice(null);
        setState("signedIn");
      } catch (error) {
        if (error instanceof SessionEnded) return signOut(error.message);
        // Anything else (network down, 5xx): keep the user we know, say what failed.
        setSession(current);
        setNotice(error.message);
        setState("signedIn");
      }
    },
    [signOut],
  );

  const start = useCallback(async () => {
    setState("starting");
    setStartError(null);
    try {
      // The seed's first request: everything after it carries this token.
      await api.loadCsrfToken();
    } catch (error) {
      // A fetch blocked by CORS or a refused connection is a TypeError.
      setStartError(error instanceof api.ApiError ? error.message : `Cannot reach the API at ${api.API_URL}.`);
      setState("unreachable");
      return;
    }
    const stored = loadSession();
    if (stored) await loadProfile(stored);
    else signOut("You are logged out.");
  }, [loadProfile, signOut]);

  useEffect(() => {
    start();
  }, [start]);

  useEffect(() => {
    const back = () => setPath(window.location.pathname);
    window.addEventListener("popstate", back);
    return () => window.removeEventListener("popstate", back);
  }, []);

  /** Go to another page of the app; back at "/", ask /auth/me again (a reset ends sessions, a change renames). */
  function navigate(to) {
    window.history.pushState(null, "", to);
    setPath(to);
    if (!PAGES[to]) start();
  }

  const Page = state === "signedOut" || state === "signedIn" ? PAGES[path] : undefined;

  /** After register or login: keep the new session, and show the user as /auth/me sees it. */
  async function signedIn(answer) {
    const next = sessionFrom(answer);
    saveSession(next);
    setNotice(null);
    await loadProfile(next);
  }

  async function logOut() {
    try {
      await withAccessToken(session, (access) => api.logout(access, session.tokens.refresh));
      signOut("You are logged out.");
    } catch (error) {
      // Already ended on the server (another tab logged out): signed out all the same.
      if (error instanceof SessionEnded) signOut("You are logged out.");
      else setNotice(error.message);
    }
  }

  return (
    <main>
      <h1>latchkey React client</h1>
      <p className="api">
        API: <code>{api.API_URL}</code>
      </p>

      {state === "starting" && <p role="status">Connecting…</p>}

      {state === "unreachable" && (
        <section>
          <p role="alert">{startError}</p>
          <button onClick={start}>Try again</button>
        </section>
      )}

      {Page && <Page navigate={navigate} />}

      {!Page && state === "signedOut" && (
        <>
          {notice && <p role="status">{notice}</p>}
          <div className="forms">
            <AuthForm kind="register" onSuccess={signedIn} />
            <AuthForm kind="login" onSuccess={signedIn} />
          </div>
          <p>
            <a
              href="/forgot-password"
              onClick={(e) => {
                e.preventDefault();
                navigate("/forgot-password");
              }}
            >
              Forgot your password?
            </a>
          </p>
        </>
      )}

      {!Page && state === "signedIn" && (
        <Profile
          user={session.user}
          notice={notice}
          onReload={() => loadProfile(session)}
          onLogout={logOut}
          session={session}
          onSession={(renewed) => {
            const next = { ...renewed, user: session.user };
            saveSession(next);
            setSession(next);
          }}
          onSessionEnded={signOut}
        />
      )}
    </main>
  );
}
