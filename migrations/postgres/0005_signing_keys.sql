-- Asymmetric token signing keys (LATCHKEY_JWT_ALGORITHM EdDSA, ES256, RS256).
-- Each key moves next -> current -> previous, or to revoked at any time.
-- The private half is PKCS#8 DER, kept like the HS256 secret in
-- server_settings: whoever reads this database can sign tokens.
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,       -- RFC 7638 JWK thumbprint of the public key
    algorithm   TEXT    NOT NULL,          -- EdDSA, ES256 or RS256
    private_key BYTEA   NOT NULL,          -- PKCS#8 DER
    state       TEXT    NOT NULL CHECK (state IN ('next', 'current', 'previous', 'revoked')),
    created_at  BIGINT  NOT NULL,
    activated_at BIGINT,                  -- became current
    retired_at  BIGINT,                   -- became previous
    revoked_at  BIGINT
);
-- At most one current and one next key per algorithm.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys(algorithm) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys(algorithm) WHERE state = 'next';
