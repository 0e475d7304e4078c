-- Sessions take a third of the space they did (docs/benchmarks.md, "Cost
-- as the data grows"):
-- * a session id and the ids of its live and last-rotated refresh tokens
--   are stored as their 16 bytes, not as 32 hex characters (the tokens
--   still carry the hex text);
-- * a User-Agent is stored once, in user_agents, and a session refers to
--   it: most sessions share a handful of browsers' strings, each 100-250
--   bytes long.
-- SQLite cannot change a column's type, so the table is made anew.

CREATE TABLE user_agents (
    id           INTEGER PRIMARY KEY,
    value        TEXT    NOT NULL UNIQUE,
    -- Refreshed by a login at most once a day (see store/sessions.rs);
    -- flush-expired removes a User-Agent no session refers to only when it
    -- is two days stale, so never one a login is about to refer to.
    last_seen_at INTEGER NOT NULL
);

INSERT INTO user_agents (value, last_seen_at)
SELECT user_agent, MAX(last_used_at) FROM sessions
 WHERE user_agent IS NOT NULL GROUP BY user_agent;

CREATE TABLE sessions_compact (
    id               BLOB    NOT NULL PRIMARY KEY
                     CHECK (typeof(id) = 'blob' AND length(id) = 16),
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    revoked_reason   TEXT,
    client_addr      TEXT,
    -- No foreign key: see user_agents.last_seen_at. A reference whose row
    -- is gone reads as no User-Agent.
    user_agent_id    INTEGER,
    current_jti      BLOB
                     CHECK (current_jti IS NULL OR (typeof(current_jti) = 'blob' AND length(current_jti) = 16)),
    last_rotated_jti BLOB
                     CHECK (last_rotated_jti IS NULL OR (typeof(last_rotated_jti) = 'blob' AND length(last_rotated_jti) = 16)),
    last_rotated_at  INTEGER
);

-- Every id latchkey wrote is 32 hex characters; one that is not fails the
-- CHECKs (unhex gives NULL) and so the migration, loudly.
INSERT INTO sessions_compact (id, user_id, created_at, last_used_at, expires_at, revoked_at,
                              revoked_reason, client_addr, user_agent_id, current_jti,
                              last_rotated_jti, last_rotated_at)
SELECT unhex(s.id), s.user_id, s.created_at, s.last_used_at, s.expires_at, s.revoked_at,
       s.revoked_reason, s.client_addr,
       (SELECT ua.id FROM user_agents ua WHERE ua.value = s.user_agent),
       CASE WHEN s.current_jti IS NULL THEN NULL ELSE unhex(s.current_jti) END,
       CASE WHEN s.last_rotated_jti IS NULL THEN NULL ELSE unhex(s.last_rotated_jti) END,
       s.last_rotated_at
  FROM sessions s;

DROP TABLE sessions;
ALTER TABLE sessions_compact RENAME TO sessions;
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);
-- flush-expired asks whether any session still refers to a User-Agent.
CREATE INDEX sessions_user_agent_id ON sessions(user_agent_id);
