-- Passkeys (WebAuthn discoverable credentials). Times are Unix seconds.

-- The WebAuthn user handle of each user who registered a passkey: random
-- bytes (a UUID's 16), never the user id, so an authenticator holds
-- nothing that names the account.
CREATE TABLE passkey_users (
    user_id     BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    user_handle TEXT    NOT NULL UNIQUE
);

-- Registered credentials: the public key and its state as webauthn-rs
-- keeps it (JSON; no secret), the credential id (base64url) for the
-- lookup a login starts with, and the sign counter apart, so the
-- counter's advance is a conditional write.
CREATE TABLE passkeys (
    id            TEXT    PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    credential    TEXT    NOT NULL,
    sign_count    BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_user_id ON passkeys(user_id);

-- Ceremonies under way: the challenge's state (webauthn-rs's, JSON), its
-- purpose ('register' or 'login'), the user a registration is for, and
-- its expiry. A challenge is taken by one delete, so it is used once.
CREATE TABLE passkey_challenges (
    id         TEXT    PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    user_id    BIGINT  REFERENCES users(id) ON DELETE CASCADE,
    state      TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX passkey_challenges_expires_at ON passkey_challenges(expires_at);
