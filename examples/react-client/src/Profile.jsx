import EmailSettings from "./EmailSettings.jsx";
import Mfa from "./Mfa.jsx";
import Passkeys from "./Passkeys.jsx";

/** The signed-in view: the user as /auth/me returned it. */
export default function Profile({ user, notice, onReload, onLogout, session, onSession, onSessionEnded }) {
  return (
    <section aria-label="Profile">
      <h2>Signed in as {user.name}</h2>
      <dl>
        <dt>Email</dt>
        <dd data-field="email">{user.email}</dd>
        <dt>User id</dt>
        <dd data-field="id">{user.id}</dd>
      </dl>
      {notice && <p role="alert">{notice}</p>}
      <button onClick={onReload}>Reload profile</button> <button onClick={onLogout}>Log out</button>
      {session && (
        <EmailSettings user={user} session={session} onSession={onSession} onSessionEnded={onSessionEnded} />
      )}
      {session && <Mfa session={session} onSession={onSession} onSessionEnded={onSessionEnded} />}
      {session && <Passkeys session={session} onSession={onSession} onSessionEnded={onSessionEnded} />}
    </section>
  );
}
