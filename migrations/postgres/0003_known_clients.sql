-- Clients that logged in to an account before: an address (the throttle's
-- address key) or a device (the nonce of its signed device cookie). Failed
-- logins from them are counted apart from the account's shared counter, so
-- an attacker hammering the account from elsewhere cannot lock its user
-- out (OWASP's device-cookie scheme, extended to known addresses).
CREATE TABLE known_clients (
    user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_key      TEXT    NOT NULL,
    last_success_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_key)
);
CREATE INDEX known_clients_last_success_at ON known_clients(last_success_at);
