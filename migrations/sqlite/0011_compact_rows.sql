-- Rows a little smaller again (the PostgreSQL migration of the same number
-- says why each):
-- * a session's client address is stored as its 4 or 16 bytes
--   (client_ip), not as text; a session started before this migration
--   keeps its address as text (client_addr_text) until it ends;
-- * of the refresh token rotated last a session keeps the first 8 bytes of
--   its id;
-- * a known client's key is stored as the bytes of its address rather than
--   "addr:..." text; a row written before keeps the text's bytes, which a
--   login also looks for until the row ages out (store/throttle.rs).
-- (SQLite stores small integers in a byte already: the users' flags stay.)

CREATE TABLE sessions_0011 (
    id               BLOB    NOT NULL PRIMARY KEY
                     CHECK (typeof(id) = 'blob' AND length(id) = 16),
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    revoked_reason   TEXT,
    client_ip        BLOB
                     CHECK (client_ip IS NULL OR (typeof(client_ip) = 'blob' AND length(client_ip) IN (4, 16))),
    client_addr_text TEXT,
    -- No foreign key: see user_agents.last_seen_at (0009).
    user_agent_id    INTEGER,
    current_jti      BLOB
                     CHECK (current_jti IS NULL OR (typeof(current_jti) = 'blob' AND length(current_jti) = 16)),
    last_rotated_jti_prefix BLOB
                     CHECK (last_rotated_jti_prefix IS NULL
                            OR (typeof(last_rotated_jti_prefix) = 'blob' AND length(last_rotated_jti_prefix) = 8)),
    last_rotated_at  INTEGER
);

INSERT INTO sessions_0011 (id, user_id, created_at, last_used_at, expires_at, revoked_at,
                           revoked_reason, client_addr_text, user_agent_id, current_jti,
                           last_rotated_jti_prefix, last_rotated_at)
SELECT id, user_id, created_at, last_used_at, expires_at, revoked_at,
       revoked_reason, client_addr, user_agent_id, current_jti,
       CASE WHEN last_rotated_jti IS NULL THEN NULL ELSE substr(last_rotated_jti, 1, 8) END,
       last_rotated_at
  FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_0011 RENAME TO sessions;
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);
CREATE INDEX sessions_user_agent_id ON sessions(user_agent_id);

CREATE TABLE known_clients_0011 (
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_key      BLOB    NOT NULL CHECK (typeof(client_key) = 'blob'),
    last_success_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_key)
);
INSERT INTO known_clients_0011 (user_id, client_key, last_success_at)
SELECT user_id, CAST(client_key AS BLOB), last_success_at FROM known_clients;
DROP TABLE known_clients;
ALTER TABLE known_clients_0011 RENAME TO known_clients;
CREATE INDEX known_clients_last_success_at ON known_clients(last_success_at);
