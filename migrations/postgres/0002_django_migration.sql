-- Moving from Django: `latchkey import django` and LATCHKEY_LEGACY_DJANGO_KEY.

-- Users imported from a Django database, with fingerprints (SHA-256, hex) of
-- their source row as last imported, so a re-run changes nothing unless
-- Django's row changed since. Never the Django hash itself: once a user's
-- hash is upgraded, no weaker hash of their password may linger.
CREATE TABLE django_imported_users (
    user_id         BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    profile_digest  TEXT   NOT NULL,  -- email, name, active flag, join date
    password_digest TEXT   NOT NULL,  -- the Django password hash string
    imported_at     BIGINT NOT NULL,
    -- When every session of the user was ended (logout everywhere, password
    -- change, deactivation): SimpleJWT tokens issued before it are refused.
    legacy_tokens_revoked_at BIGINT
);

-- SimpleJWT token ids (`jti`) latchkey has seen: refresh tokens Django
-- blacklisted (imported), and legacy refresh tokens already exchanged for a
-- latchkey session (each is accepted once).
CREATE TABLE legacy_tokens (
    jti         TEXT   PRIMARY KEY,
    state       TEXT   NOT NULL,  -- 'blacklisted' or 'redeemed'
    session_id  TEXT,             -- for 'redeemed': the session it started
    recorded_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL   -- the token's `exp`: the row is useless after it
);
CREATE INDEX legacy_tokens_expires_at ON legacy_tokens(expires_at);
