-- A session's id as two 64-bit halves, id_hi and id_lo (store/stored_ids.rs):
-- fixed-width columns, so an entry of the primary key is 28 bytes where a
-- 16-byte BYTEA's is 36 (its length byte takes the key to 17 bytes, which
-- the entry rounds up to the next 8). The halves are big-endian and signed;
-- a time-ordered id's high half still grows with time, so new sessions
-- still land at the index's right edge.
--
-- And a session's start is stored only when its id does not say it: every
-- id latchkey makes begins with its millisecond, so created_at is NULL for
-- each session started from now on (8 bytes less a row, which takes a
-- session's tuple from 128 to 120 bytes). A session started before keeps
-- its created_at.

CREATE TABLE sessions_0013 (
    id_hi            BIGINT NOT NULL,
    id_lo            BIGINT NOT NULL,
    user_id          BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- NULL: the second the id says (store/stored_ids.rs).
    created_at       BIGINT,
    last_used_at     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    last_rotated_at  BIGINT,
    revoked_at       BIGINT,
    -- No foreign key: see user_agents.last_seen_at (0009).
    user_agent_id    BIGINT,
    current_jti      BYTEA  CHECK (length(current_jti) = 16),
    last_rotated_jti_prefix BYTEA CHECK (length(last_rotated_jti_prefix) = 8),
    client_ip        BYTEA  CHECK (length(client_ip) IN (4, 16)),
    revoked_reason   TEXT,
    client_addr_text TEXT,
    PRIMARY KEY (id_hi, id_lo)
);

INSERT INTO sessions_0013 (id_hi, id_lo, user_id, created_at, last_used_at, expires_at, last_rotated_at,
                           revoked_at, user_agent_id, current_jti, last_rotated_jti_prefix, client_ip,
                           revoked_reason, client_addr_text)
SELECT ('x' || encode(substr(id, 1, 8), 'hex'))::bit(64)::bigint,
       ('x' || encode(substr(id, 9, 8), 'hex'))::bit(64)::bigint,
       user_id, created_at, last_used_at, expires_at, last_rotated_at,
       revoked_at, user_agent_id, current_jti, last_rotated_jti_prefix, client_ip,
       revoked_reason, client_addr_text
  FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_0013 RENAME TO sessions;
ALTER TABLE sessions RENAME CONSTRAINT sessions_0013_pkey TO sessions_pkey;
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);
CREATE INDEX sessions_user_agent_id ON sessions(user_agent_id);
