//! Login: credentials checked against the stored hash (or a decoy, for
//! an account that cannot log in), throttled per account and address,
//! with known clients counted apart so a user cannot be locked out.

use super::password::StoredHash;
use super::{
    decoy, device, throttle, view, Auth, AuthError, ClientInfo, Credentials, Identifier, LoggedIn,
};
use crate::metrics::LoginOutcome;
use crate::store::{LoginKey, Settle, UserRecord};

impl Auth {
    /// Check credentials and start a session. Unknown accounts, inactive
    /// accounts and wrong passwords fail alike, after the same hashing work.
    ///
    /// Runs to completion even if the client goes away: an attempt counted
    /// against the throttle must be settled by its outcome, not leaked by a
    /// dropped connection.
    pub async fn login(
        &self,
        form: Credentials,
        client: &ClientInfo,
    ) -> Result<LoggedIn, AuthError> {
        let (auth, client) = (self.clone(), client.clone());
        let attempt = async move {
            let result = auth.login_to_completion(form, &client).await;
            let outcome = match &result {
                Ok(_) => Some(LoginOutcome::Success),
                Err(AuthError::InvalidCredentials) => Some(LoginOutcome::InvalidCredentials),
                Err(AuthError::Throttled { .. }) => Some(LoginOutcome::Throttled),
                Err(AuthError::Overloaded) => Some(LoginOutcome::Overloaded),
                Err(AuthError::MfaRequired(_)) => Some(LoginOutcome::MfaRequired),
                Err(_) => None,
            };
            if let Some(outcome) = outcome {
                auth.metrics.login(outcome);
            }
            result
        };
        // The request id goes along, so its log lines keep it.
        tokio::spawn(crate::telemetry::in_current_request(attempt))
            .await
            .map_err(|e| AuthError::Internal(format!("login task failed: {e}")))?
    }

    pub(super) async fn login_to_completion(
        &self,
        form: Credentials,
        client: &ClientInfo,
    ) -> Result<LoggedIn, AuthError> {
        let (kind, key) = match &form.identifier {
            Identifier::Email(email) => ("email", email.lookup_key()),
            Identifier::Name(name) => ("name", name.lookup_key()),
        };
        let password = form.password;

        // A login flood beyond the hash queue (and its short admission wait)
        // is answered before any database work.
        if !self.hasher.has_room().await {
            return Err(AuthError::Overloaded);
        }
        let now = self.clock.now();
        let address_key = throttle::address_key(client.addr);
        let lookup = match kind {
            "email" => LoginKey::Email(&key),
            _ => LoginKey::Name(&key),
        };
        let since = now - device::DEVICE_MAX_AGE_SECONDS;
        let (user, address_known, second_factor) = match self
            .store
            .user_for_login(lookup, &address_key, since)
            .await?
        {
            Some(found) => (Some(found.user), found.address_known, found.second_factor),
            None => (None, false, false),
        };
        // A client that logged in to this account before is charged on a
        // counter of its own, so guesses from elsewhere cannot lock it out.
        let known = user
            .as_ref()
            .and_then(|user| self.known_client(user, client, &address_key, address_known, now));
        let account_key = match (&user, &known) {
            (Some(user), Some(known)) => throttle::known_client_key(user.id, known),
            _ => throttle::account_key(user.as_ref().map(|u| u.id), kind, &key),
        };
        // Count the attempt before checking it, so parallel guesses cannot
        // slip past the limit; a success takes its count back below.
        let window = self.throttle.window_seconds;
        let [per_account, per_address] = self
            .store
            .throttle_hit([&account_key, &address_key], now, window)
            .await?;
        let verdict = self.throttle.verdict(
            now,
            &[
                (&per_account, self.throttle.per_account),
                (&per_address, self.throttle.per_address),
            ],
        );
        if let Some(retry_after) = verdict {
            tracing::warn!(target: "latchkey::security", event = "login_throttled", client = %client.addr, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }

        let within_limit = password.expose().chars().count() <= self.passwords.max_length;
        let stored_hash = match &user {
            Some(user) if user.is_active && within_limit => Some(user.password_hash.clone()),
            // An account that cannot log in (inactive, or a password over
            // the limit): the work its own hash would cost, on a decoy like
            // it, so the answer does not tell it from one that can.
            Some(user) => StoredHash::parse(&user.password_hash).decoy()?,
            // No account: the work an account would cost (see `decoy`);
            // whatever the verification says, it fails.
            None => {
                self.take_hash_census_if_stale(now);
                self.decoys.for_identifier(&format!("{kind}:{key}"))
            }
        };
        let verified = match self.hasher.verify_and_upgrade(password, stored_hash).await {
            Ok(verified) => verified,
            Err(e) => {
                // No password was checked (queue full): the attempt does not count.
                self.store
                    .throttle_settle(&[], &[&account_key, &address_key])
                    .await?;
                return Err(e.into());
            }
        };
        let user = match user {
            Some(user) if verified.matched => user,
            _ => {
                tracing::info!(target: "latchkey::security", event = "login_failed", client = %client.addr);
                return Err(AuthError::InvalidCredentials);
            }
        };

        // A right password for an address that must be verified first: the
        // attempt was no guess (settled), and still no tokens.
        if let Err(e) = self.check_verified_for_login(user.id).await {
            self.store
                .throttle_settle(&[&account_key], &[&address_key])
                .await?;
            return Err(e);
        }
        let mut current_hash = user.password_hash.clone();
        if let Some(upgraded) = verified.upgraded {
            if self.store_upgraded_hash(&user, &upgraded).await {
                current_hash = upgraded;
            }
        }
        // Every password login: an account with a second factor gets a
        // challenge, never tokens (see `mfa`), whether it had the factor
        // when it was looked up or it was confirmed since.
        let settle = Settle {
            clear: &[&account_key],
            forgive: &[&address_key],
        };
        let tokens = if second_factor {
            None
        } else {
            self.open_session(&user, client, &address_key, settle, true, now)
                .await?
        };
        let Some(tokens) = tokens else {
            let challenge = self
                .second_factor_challenge(&user, &current_hash, &account_key, &address_key, now)
                .await?;
            return Err(AuthError::MfaRequired(challenge));
        };
        Ok(LoggedIn {
            user: view(&user),
            tokens,
            device: self.devices.issue(user.id, &current_hash, now)?,
        })
    }

    /// Count the stored hash kinds and costs again (a sample) and derive the
    /// decoys unknown accounts are verified against (see [`decoy`]).
    pub async fn take_hash_census(&self) -> Result<(), AuthError> {
        const SAMPLE: i64 = 256;
        let (users, legacy, sample) = self.store.password_hash_census(SAMPLE).await?;
        let mut decoys = Vec::with_capacity(sample.len());
        for hash in &sample {
            decoys.push(StoredHash::parse(hash).decoy()?);
        }
        self.decoys.update(decoy::Census {
            users: users.unsigned_abs(),
            legacy: legacy.unsigned_abs(),
            decoys,
        });
        self.census_taken_at
            .store(self.clock.now(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Start a new census in the background when the last one is older than
    /// ten minutes (logins upgrade Django hashes, so the mix changes).
    pub(super) fn take_hash_census_if_stale(&self, now: i64) {
        use std::sync::atomic::Ordering;
        const EVERY_SECONDS: i64 = 600;
        let last = self.census_taken_at.load(Ordering::Relaxed);
        if now - last < EVERY_SECONDS
            || self
                .census_taken_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let auth = self.clone();
        tokio::spawn(async move {
            if let Err(e) = auth.take_hash_census().await {
                tracing::warn!(error = %e, "password hash census failed; decoys unchanged");
            }
        });
    }

    /// How `client` is known to account `user`: by a device token from an
    /// earlier login to it, or by an address that logged in to it within
    /// the time a device is remembered (`address_known`, looked up with the
    /// account).
    fn known_client(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
        address_key: &str,
        address_known: bool,
        now: i64,
    ) -> Option<throttle::KnownClient> {
        let device = client
            .device
            .as_deref()
            .and_then(|token| self.devices.verify(token, &user.password_hash, now))
            .filter(|d| d.user_id == user.id);
        if let Some(device) = device {
            return Some(throttle::KnownClient::Device(device.nonce));
        }
        address_known.then(|| throttle::KnownClient::Address(address_key.to_owned()))
    }

    /// Replace a user's hash after a login found it outdated (imported from
    /// Django, or below the configured cost). Best effort: the login succeeds
    /// either way, and the next one tries again. Whether it was replaced.
    pub(super) async fn store_upgraded_hash(&self, user: &UserRecord, upgraded: &str) -> bool {
        match self
            .store
            .replace_password_hash(user.id, &user.password_hash, upgraded)
            .await
        {
            Ok(true) => {
                tracing::info!(target: "latchkey::security", event = "password_rehashed", user_id = user.id);
                true
            }
            // The password changed meanwhile: the newer hash wins.
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(target: "latchkey::security", event = "password_rehash_failed", user_id = user.id, error = %e);
                false
            }
        }
    }
}
