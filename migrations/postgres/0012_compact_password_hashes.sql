-- A password hash is stored as bytes (store/stored_hashes.rs): latchkey's
-- Argon2id hashes as their parameters, salt and hash, 55 bytes where the
-- PHC text is 97; any other hash as its text's bytes. Every hash stored
-- before is kept as its text's bytes, which read back as the same text;
-- each one written from now on (a registration, a new password, an
-- upgraded hash) takes the short form.
ALTER TABLE users ALTER COLUMN password_hash TYPE BYTEA USING convert_to(password_hash, 'UTF8');
