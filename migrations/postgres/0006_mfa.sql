-- Second factor (TOTP and recovery codes). Times are Unix seconds.

-- One TOTP secret per user, sealed (ChaCha20-Poly1305 under a key derived
-- from the server key, the user id as associated data). Pending until
-- confirmed_at is set. last_step: the newest time step accepted, so no
-- code is accepted twice.
CREATE TABLE mfa_totp (
    user_id       BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT  NOT NULL DEFAULT -1
);

-- Unused recovery codes, as keyed hashes only; a used code's row is deleted.
CREATE TABLE mfa_recovery_codes (
    user_id   BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT    NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- Logins waiting for their second factor: the mfa_token's SHA-256, the
-- user, a digest of the password hash the login proved (a password change
-- meanwhile ends the challenge), the login's throttle counters, its expiry
-- and its wrong codes.
CREATE TABLE mfa_challenges (
    token_hash  TEXT    PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_digest TEXT NOT NULL,
    account_key TEXT    NOT NULL,
    address_key TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    failures    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges(expires_at);
CREATE INDEX mfa_challenges_user_id ON mfa_challenges(user_id);
