-- Asymmetric token signing keys (LATCHKEY_JWT_ALGORITHM EdDSA, ES256, RS256).
-- Each key moves next -> current -> previous, or to revoked at any time.
-- The private half is PKCS#8 DER; the file is owner-only (0600), as for the
-- HS256 secret in server_settings.
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,       -- RFC 7638 JWK thumbprint of the public key
    algorithm   TEXT    NOT NULL,          -- EdDSA, ES256 or RS256
    private_key BLOB    NOT NULL,          -- PKCS#8 DER
    state       TEXT    NOT NULL CHECK (state IN ('next', 'current', 'previous', 'revoked')),
    created_at  INTEGER NOT NULL,
    activated_at INTEGER,                  -- became current
    retired_at  INTEGER,                   -- became previous
    revoked_at  INTEGER
);
-- At most one current and one next key per algorithm.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys(algorithm) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys(algorithm) WHERE state = 'next';
