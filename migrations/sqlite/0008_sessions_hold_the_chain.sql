-- A session holds its refresh-token chain itself: the one live token
-- (current_jti) and the one rotated last (last_rotated_jti, rotated at
-- last_rotated_at, for the grace window). Any other token of the session is
-- an older, rotated one: presenting it is reuse. Tokens are signed and name
-- their session, so no row per token is needed to tell them apart, and a
-- rotation is one UPDATE of one row. The refresh_tokens table (a row per
-- token ever issued, 10 rows for a session refreshed 10 times) goes.

ALTER TABLE sessions ADD COLUMN current_jti TEXT;
ALTER TABLE sessions ADD COLUMN last_rotated_at INTEGER;

UPDATE sessions SET current_jti = (
    SELECT r.jti FROM refresh_tokens r
     WHERE r.session_id = sessions.id AND r.rotated_at IS NULL
     ORDER BY r.issued_at DESC LIMIT 1
);
-- The live token's parent is the token rotated last (or, for a session a
-- SimpleJWT token was exchanged for, that token's id).
UPDATE sessions SET last_rotated_jti = (
    SELECT r.parent_jti FROM refresh_tokens r WHERE r.jti = sessions.current_jti
);
UPDATE sessions SET last_rotated_at = COALESCE(
    (SELECT r.rotated_at FROM refresh_tokens r WHERE r.jti = sessions.last_rotated_jti),
    last_used_at
) WHERE last_rotated_jti IS NOT NULL;

DROP TABLE refresh_tokens;

-- flush-expired finds stale throttle counters by their window's start.
CREATE INDEX login_throttle_window_start ON login_throttle(window_start);
