-- A session's id as two 64-bit halves, id_hi and id_lo (store/stored_ids.rs):
-- fixed-width, so the primary key's entries are smaller on PostgreSQL (the
-- PostgreSQL migration of the same number says how much); here the table
-- matches it. And a session's start is stored only when its id does not
-- say it: every id latchkey makes begins with its millisecond, so
-- created_at is NULL for each session started from now on. A session
-- started before keeps its created_at.
--
-- The halves are computed from the id's hex digits (SQLite has no function
-- that reads an integer from a blob): the first digit of each half carries
-- its sign, so no partial sum leaves the 64-bit range.

CREATE TABLE sessions_0013 (
    id_hi            INTEGER NOT NULL,
    id_lo            INTEGER NOT NULL,
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- NULL: the second the id says (store/stored_ids.rs).
    created_at       INTEGER,
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
    last_rotated_at  INTEGER,
    PRIMARY KEY (id_hi, id_lo)
);

INSERT INTO sessions_0013 (id_hi, id_lo, user_id, created_at, last_used_at, expires_at, revoked_at,
                           revoked_reason, client_ip, client_addr_text, user_agent_id, current_jti,
                           last_rotated_jti_prefix, last_rotated_at)
SELECT ((instr('0123456789ABCDEF', substr(hex(id), 1, 1)) - 1) - 16 * ((instr('0123456789ABCDEF', substr(hex(id), 1, 1)) - 1) >= 8)) * 1152921504606846976
         + (instr('0123456789ABCDEF', substr(hex(id), 2, 1)) - 1) * 72057594037927936
         + (instr('0123456789ABCDEF', substr(hex(id), 3, 1)) - 1) * 4503599627370496
         + (instr('0123456789ABCDEF', substr(hex(id), 4, 1)) - 1) * 281474976710656
         + (instr('0123456789ABCDEF', substr(hex(id), 5, 1)) - 1) * 17592186044416
         + (instr('0123456789ABCDEF', substr(hex(id), 6, 1)) - 1) * 1099511627776
         + (instr('0123456789ABCDEF', substr(hex(id), 7, 1)) - 1) * 68719476736
         + (instr('0123456789ABCDEF', substr(hex(id), 8, 1)) - 1) * 4294967296
         + (instr('0123456789ABCDEF', substr(hex(id), 9, 1)) - 1) * 268435456
         + (instr('0123456789ABCDEF', substr(hex(id), 10, 1)) - 1) * 16777216
         + (instr('0123456789ABCDEF', substr(hex(id), 11, 1)) - 1) * 1048576
         + (instr('0123456789ABCDEF', substr(hex(id), 12, 1)) - 1) * 65536
         + (instr('0123456789ABCDEF', substr(hex(id), 13, 1)) - 1) * 4096
         + (instr('0123456789ABCDEF', substr(hex(id), 14, 1)) - 1) * 256
         + (instr('0123456789ABCDEF', substr(hex(id), 15, 1)) - 1) * 16
         + (instr('0123456789ABCDEF', substr(hex(id), 16, 1)) - 1) * 1,
       ((instr('0123456789ABCDEF', substr(hex(id), 17, 1)) - 1) - 16 * ((instr('0123456789ABCDEF', substr(hex(id), 17, 1)) - 1) >= 8)) * 1152921504606846976
         + (instr('0123456789ABCDEF', substr(hex(id), 18, 1)) - 1) * 72057594037927936
         + (instr('0123456789ABCDEF', substr(hex(id), 19, 1)) - 1) * 4503599627370496
         + (instr('0123456789ABCDEF', substr(hex(id), 20, 1)) - 1) * 281474976710656
         + (instr('0123456789ABCDEF', substr(hex(id), 21, 1)) - 1) * 17592186044416
         + (instr('0123456789ABCDEF', substr(hex(id), 22, 1)) - 1) * 1099511627776
         + (instr('0123456789ABCDEF', substr(hex(id), 23, 1)) - 1) * 68719476736
         + (instr('0123456789ABCDEF', substr(hex(id), 24, 1)) - 1) * 4294967296
         + (instr('0123456789ABCDEF', substr(hex(id), 25, 1)) - 1) * 268435456
         + (instr('0123456789ABCDEF', substr(hex(id), 26, 1)) - 1) * 16777216
         + (instr('0123456789ABCDEF', substr(hex(id), 27, 1)) - 1) * 1048576
         + (instr('0123456789ABCDEF', substr(hex(id), 28, 1)) - 1) * 65536
         + (instr('0123456789ABCDEF', substr(hex(id), 29, 1)) - 1) * 4096
         + (instr('0123456789ABCDEF', substr(hex(id), 30, 1)) - 1) * 256
         + (instr('0123456789ABCDEF', substr(hex(id), 31, 1)) - 1) * 16
         + (instr('0123456789ABCDEF', substr(hex(id), 32, 1)) - 1) * 1,
       user_id, created_at, last_used_at, expires_at, revoked_at,
       revoked_reason, client_ip, client_addr_text, user_agent_id, current_jti,
       last_rotated_jti_prefix, last_rotated_at
  FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_0013 RENAME TO sessions;
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);
CREATE INDEX sessions_user_agent_id ON sessions(user_agent_id);
