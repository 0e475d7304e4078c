-- Stored challenges are bounded by who they are for (store/passkeys.rs):
-- * an account keeps only its newest few registrations under way: each of
--   its challenges is numbered in the order it was issued (seconds would
--   tie), and they are found by their user, which deleting the account
--   (ON DELETE CASCADE) does too;
-- * a client address holds only so many unanswered login challenges at
--   once: a login challenge records the address's key, and its live ones
--   are counted by it.
ALTER TABLE passkey_challenges ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE passkey_challenges ADD COLUMN client_key TEXT;
CREATE INDEX passkey_challenges_user_id ON passkey_challenges(user_id, seq);
CREATE INDEX passkey_challenges_client_key ON passkey_challenges(client_key, expires_at);
