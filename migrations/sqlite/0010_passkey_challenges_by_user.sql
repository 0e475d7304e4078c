-- An account keeps only its newest few registrations under way
-- (store/passkeys.rs): each of its challenges is numbered in the order it
-- was issued (seconds would tie), and they are found by their user, which
-- deleting the account (ON DELETE CASCADE) does too.
ALTER TABLE passkey_challenges ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX passkey_challenges_user_id ON passkey_challenges(user_id, seq);
