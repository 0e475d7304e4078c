-- latchkey schema, SQLite. Times are seconds since the Unix epoch.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,  -- lowercased email: case-insensitive uniqueness
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL UNIQUE,  -- lowercased name
    password_hash TEXT    NOT NULL,         -- PHC string
    is_active     INTEGER NOT NULL DEFAULT 1,
    date_joined   INTEGER NOT NULL
);

-- One row per login (or registration): the unit logout and reuse detection revoke.
CREATE TABLE sessions (
    id               TEXT    PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    revoked_reason   TEXT,
    client_addr      TEXT,
    user_agent       TEXT,
    last_rotated_jti TEXT                   -- the refresh token rotated most recently (grace window)
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);

-- Every refresh token issued; rotated ones stay to detect reuse.
CREATE TABLE refresh_tokens (
    jti        TEXT    PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    parent_jti TEXT,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens(session_id);

-- Fixed-window counters of login attempts, per account and per client address.
CREATE TABLE login_throttle (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    attempts     INTEGER NOT NULL
);

-- Server-wide values, such as the generated signing key.
CREATE TABLE server_settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
