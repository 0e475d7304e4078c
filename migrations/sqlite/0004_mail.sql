-- Mail: the outbox, the tokens it carries, and whether an address is verified.

-- 1: the user proved they read mail at `email` (a verification link, a
-- password reset, a confirmed email change, or an operator's say-so).
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

-- Single-use tokens mailed as links. Only the SHA-256 of a token is kept.
CREATE TABLE email_tokens (
    token_hash TEXT    PRIMARY KEY,      -- SHA-256 of the token, hex
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL,         -- 'password_reset', 'verify_email', 'change_email'
    email      TEXT    NOT NULL,         -- the address it was mailed to (for a change: the new one)
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX email_tokens_user_id ON email_tokens(user_id, purpose);
CREATE INDEX email_tokens_expires_at ON email_tokens(expires_at);

-- Messages to send, written in the transaction of the state they announce.
-- A delivered message's row is deleted; a finally failed one keeps its
-- envelope and error, never its body (which may hold a token).
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER REFERENCES users(id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,     -- which template
    recipient       TEXT    NOT NULL,
    subject         TEXT,                 -- NULL once delivered or failed
    body_text       TEXT,
    body_html       TEXT,
    state           TEXT    NOT NULL DEFAULT 'queued',  -- 'queued' or 'failed'
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,              -- a sender holds it until then
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox(state, next_attempt_at);
CREATE INDEX mail_outbox_user_id ON mail_outbox(user_id);
