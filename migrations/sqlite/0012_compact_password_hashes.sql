-- A password hash is stored as bytes (store/stored_hashes.rs): latchkey's
-- Argon2id hashes as their parameters, salt and hash, 55 bytes where the
-- PHC text is 97; any other hash as its text's bytes. Every hash stored
-- before is kept as its text's bytes, which read back as the same text;
-- each one written from now on takes the short form. (The column keeps
-- its declared type: SQLite cannot change one in place, and a TEXT column
-- stores a BLOB as it is.)
UPDATE users SET password_hash = CAST(password_hash AS BLOB);
