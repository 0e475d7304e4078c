//! The domain: accounts, passwords, tokens, sessions, CSRF and throttling.
//! No HTTP types here; the HTTP layer turns [`AuthError`] into responses.

pub mod account;
pub mod admin;
pub mod clock;
pub mod csrf;
pub mod decoy;
pub mod device;
pub mod ids;
pub mod keys;
pub mod legacy;
pub mod password;
pub mod throttle;
pub mod tokens;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use clock::Clock;
pub use keys::SecretKey;

use account::{Email, Name};
use csrf::{CsrfError, CsrfSigner};
use ids::RandomId;
use password::{HashError, Hasher, Password, PasswordPolicy};
use throttle::ThrottlePolicy;
use tokens::{Claims, TokenCodec, TokenError, TokenType};

use crate::metrics::{LoginOutcome, Metrics, RefreshOutcome, Revocation, Sampled};
use crate::store::{
    NewRefreshToken, NewSession, NewUser, SessionUser, Store, StoreError, UniqueField, UserRecord,
};

/// Field validation errors, DRF's `{"field": ["message", ...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Add `message` under `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// A single error.
    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(field, message);
        e
    }

    /// The value of a parsed field, or `None` with its message recorded.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|m| self.add(field, m)).ok()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a token was refused, as far as a client may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Malformed, forged, wrong type, or for an unknown session.
    Invalid,
    /// Past its `exp`.
    Expired,
    /// Its session was revoked (logout, reuse detection) or it was rotated.
    Revoked,
}

/// Everything a domain operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input failed validation: 400 with per-field messages.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// Wrong password, unknown or inactive account: indistinguishable.
    #[error("no active account found with the given credentials")]
    InvalidCredentials,
    /// Too many login attempts; retry after this many seconds.
    #[error("throttled")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// A presented token was refused.
    #[error("token refused: {0:?}")]
    Token(TokenRejection),
    /// A refresh token of another user was presented at logout.
    #[error("the token belongs to another user")]
    NotOwner,
    /// The thing asked for does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// A CSRF check failed.
    #[error("CSRF failed: {0}")]
    Csrf(CsrfError),
    /// The password hashing queue is full; retry shortly.
    #[error("overloaded")]
    Overloaded,
    /// The database is unreachable or busy; retry shortly.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an environment failure (RNG, corrupt data).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Duplicate(field) => Self::Invalid(duplicate(field)),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Overloaded => Self::Overloaded,
            HashError::Failed(m) => Self::Internal(m),
        }
    }
}

impl From<getrandom::Error> for AuthError {
    fn from(e: getrandom::Error) -> Self {
        Self::Internal(format!("random number generator failed: {e}"))
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        Self::Token(match e {
            TokenError::Expired => TokenRejection::Expired,
            _ => TokenRejection::Invalid,
        })
    }
}

fn duplicate(field: UniqueField) -> FieldErrors {
    match field {
        UniqueField::Email => FieldErrors::one("email", "user with this email already exists."),
        UniqueField::Name => FieldErrors::one("name", "user with this name already exists."),
    }
}

/// A JSON field as received: its string value, or the DRF message saying why
/// it is not one ("This field is required.", "Not a valid string.", ...).
pub type RawField = Result<String, String>;

/// The registration form.
#[derive(Debug)]
pub struct Registration {
    /// Display name.
    pub name: RawField,
    /// Email address.
    pub email: RawField,
    /// Password (never logged: see [`Password`]).
    pub password: Result<Password, String>,
}

/// The login form: `email` (or, without it, `name`) and `password`.
#[derive(Debug)]
pub struct Credentials {
    /// Email address, preferred when present.
    pub email: Option<RawField>,
    /// Name, used only when no email is given.
    pub name: Option<RawField>,
    /// Password.
    pub password: Result<Password, String>,
}

/// The password-change form.
#[derive(Debug)]
pub struct PasswordChange {
    /// The current password.
    pub old_password: Result<Password, String>,
    /// The new password.
    pub new_password: Result<Password, String>,
}

/// Django's message for a wrong current password.
pub const WRONG_OLD_PASSWORD: &str =
    "Your old password was entered incorrectly. Please enter it again.";

/// A live session as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Session id (the tokens' `sid`).
    pub id: String,
    /// Start (login or registration), Unix seconds.
    pub created_at: i64,
    /// Last time it issued tokens (start or refresh), Unix seconds.
    pub last_used_at: i64,
    /// When it ends unless refreshed, Unix seconds.
    pub expires_at: i64,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// `User-Agent` at login.
    pub user_agent: Option<String>,
    /// Whether the caller's access token belongs to it.
    pub current: bool,
}

/// Who is calling, as far as sessions and throttling care.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Client address (after trusted proxies).
    pub addr: IpAddr,
    /// `User-Agent`, truncated.
    pub user_agent: Option<String>,
    /// The device token the client holds from an earlier login, if any
    /// (see [`device`]).
    pub device: Option<String>,
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The user.
    pub user: UserView,
    /// The session's first pair.
    pub tokens: TokenPair,
    /// A device token for the client to keep (see [`device`]).
    pub device: String,
}

/// A user as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    /// Integer id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
}

/// An access and a refresh token, freshly issued.
pub struct TokenPair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPair([redacted])")
    }
}

/// The caller behind a verified, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: UserView,
    /// The session the access token belongs to.
    pub session_id: RandomId,
}

/// Token lifetimes and rotation settings, in seconds.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// Access token lifetime.
    pub access_lifetime: i64,
    /// Refresh token (and session) lifetime, renewed on every rotation.
    pub refresh_lifetime: i64,
    /// How long the token just rotated stays usable once more.
    pub reuse_grace: i64,
    /// Clock skew tolerated between instances, for `exp`/`iat` checks of
    /// tokens and CSRF token ages.
    pub clock_leeway: i64,
}

/// The authentication service: every use case of the API, over a [`Store`].
#[derive(Clone)]
pub struct Auth {
    store: Store,
    codec: TokenCodec,
    csrf: CsrfSigner,
    hasher: Hasher,
    passwords: PasswordPolicy,
    tokens: TokenPolicy,
    throttle: ThrottlePolicy,
    metrics: Metrics,
    /// SimpleJWT tokens accepted during a migration from Django (`legacy`).
    legacy: Option<legacy::tokens::SimpleJwtVerifier>,
    devices: device::DeviceSigner,
    /// Stand-in hashes for unknown accounts, following the stored kinds.
    decoys: std::sync::Arc<decoy::Decoys>,
    /// When the hash census was last taken (0: never).
    census_taken_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Wall-clock time for every rule of the use cases.
    clock: Clock,
}

/// Seconds since the Unix epoch, by the system clock (operator commands;
/// the server's use cases read [`Auth`]'s injected [`Clock`]).
pub fn now() -> i64 {
    Clock::system().now()
}

/// The rules an [`Auth`] applies, as configured.
#[derive(Debug, Clone)]
pub struct Policies {
    /// Password length and strength.
    pub passwords: PasswordPolicy,
    /// Token lifetimes and rotation.
    pub tokens: TokenPolicy,
    /// Login attempt limits.
    pub throttle: ThrottlePolicy,
    /// Oldest CSRF token accepted, in seconds.
    pub csrf_max_age: u64,
}

impl Auth {
    /// Assemble the service from its parts.
    pub fn new(
        store: Store,
        key: SecretKey,
        hasher: Hasher,
        policies: Policies,
        metrics: Metrics,
    ) -> Self {
        let leeway = policies.tokens.clock_leeway.max(0);
        let key_for_devices = key.derive("latchkey/device/v1");
        let key_for_decoys = key.derive("latchkey/decoy/v1");
        let csrf = CsrfSigner::new(key.derive("latchkey/csrf/v1"), policies.csrf_max_age)
            .with_leeway(leeway.unsigned_abs());
        Self {
            store,
            codec: TokenCodec::new(key).with_leeway(leeway),
            csrf,
            hasher,
            passwords: policies.passwords,
            tokens: policies.tokens,
            throttle: policies.throttle,
            metrics,
            legacy: None,
            devices: device::DeviceSigner::new(key_for_devices).with_leeway(leeway),
            decoys: std::sync::Arc::new(decoy::Decoys::new(key_for_decoys)),
            census_taken_at: std::sync::Arc::default(),
            clock: Clock::system(),
        }
    }

    /// The same service reading time from `clock` (tests move it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The store (for readiness checks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics text, with current queue and pool gauges.
    pub fn render_metrics(&self) -> String {
        let pool = self.store.pool_stats();
        self.metrics.render(Sampled {
            hash_queue_depth: self.hasher.queue_depth(),
            pool_size: pool.size,
            pool_idle: pool.idle,
            pool_max: pool.max,
        })
    }

    // ---- CSRF -------------------------------------------------------------

    /// The CSRF token to hand out: the client's current one when it is still
    /// valid (so two calls give one token), else a new one.
    pub fn csrf_token(&self, current: Option<&str>) -> Result<String, AuthError> {
        let now = self.clock.now_u64();
        if let Some(current) = current.filter(|t| self.csrf.verify(t, now).is_ok()) {
            return Ok(current.to_owned());
        }
        Ok(self.csrf.issue(now)?)
    }

    /// Check an unsafe request's CSRF header token (and, when the request
    /// carries the cookie too, that both are the same token).
    pub fn check_csrf(&self, header: Option<&str>, cookie: Option<&str>) -> Result<(), AuthError> {
        let header = header.ok_or(AuthError::Csrf(CsrfError::Missing))?;
        self.csrf
            .verify(header, self.clock.now_u64())
            .map_err(AuthError::Csrf)?;
        if let Some(cookie) = cookie {
            if !csrf::tokens_match(header, cookie) {
                return Err(AuthError::Csrf(CsrfError::CookieMismatch));
            }
        }
        Ok(())
    }

    // ---- Registration and login -----------------------------------------

    /// Create an account and its first session.
    pub async fn register(
        &self,
        form: Registration,
        client: &ClientInfo,
    ) -> Result<(UserView, TokenPair), AuthError> {
        let now = self.clock.now();
        self.throttle_registration(client, now).await?;
        let account = check_account(&self.store, &self.hasher, &self.passwords, form).await?;
        // The account and its first session in one transaction: an answer
        // other than 201 leaves no account behind for the retry to trip on.
        // The session's user id is the store's to fill in.
        let start = self.new_session(0, Some(client), now)?;
        let user = self
            .store
            .create_user_with_session(
                &account.new_user(now),
                &start.session(),
                &start.first_token(),
            )
            .await?;
        self.metrics.registration();
        let tokens = self.sign_pair(user.id, &start.session_id, start.refresh_jti, now)?;
        Ok((view(&user), tokens))
    }

    /// Count a registration attempt of `client`'s address, valid or not (so
    /// the form cannot be used to probe for taken emails at speed either),
    /// and refuse it beyond the limit. Counted in the database, so every
    /// instance enforces one limit.
    async fn throttle_registration(&self, client: &ClientInfo, now: i64) -> Result<(), AuthError> {
        let key = throttle::registration_key(client.addr);
        let [window] = self
            .store
            .throttle_hit([&key], now, self.throttle.window_seconds)
            .await?;
        if window.attempts > i64::from(self.throttle.registrations_per_address) {
            let retry_after = self.throttle.retry_after(window.window_start, now);
            tracing::warn!(target: "latchkey::security", event = "registration_throttled", client = %client.addr, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }
        Ok(())
    }

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

    async fn login_to_completion(
        &self,
        form: Credentials,
        client: &ClientInfo,
    ) -> Result<LoggedIn, AuthError> {
        let mut errors = FieldErrors::default();
        let identifier = match (form.email, form.name) {
            (Some(email), _) => errors.check(
                "email",
                email
                    .and_then(|e| Email::parse(&e))
                    .map(|e| ("email", e.lookup_key())),
            ),
            (None, Some(name)) => errors.check(
                "name",
                name.and_then(|n| Name::parse(&n))
                    .map(|n| ("name", n.lookup_key())),
            ),
            (None, None) => {
                errors.add("email", "This field is required.");
                None
            }
        };
        let password = errors.check("password", form.password.and_then(Password::non_blank));
        let (Some((kind, key)), Some(password)) = (identifier, password) else {
            return Err(AuthError::Invalid(errors));
        };

        // A login flood beyond the hash queue is answered before any database work.
        if self.hasher.is_saturated() {
            return Err(AuthError::Overloaded);
        }
        let user = match kind {
            "email" => self.store.user_by_email(&key).await?,
            _ => self.store.user_by_name(&key).await?,
        };
        let now = self.clock.now();
        let address_key = throttle::address_key(client.addr);
        // A client that logged in to this account before is charged on a
        // counter of its own, so guesses from elsewhere cannot lock it out.
        let known = match &user {
            Some(user) => self.known_client(user, client, &address_key, now).await?,
            None => None,
        };
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
        let mut retry_after = 0;
        if per_account.attempts > i64::from(self.throttle.per_account) {
            retry_after = self.throttle.retry_after(per_account.window_start, now);
        }
        if per_address.attempts > i64::from(self.throttle.per_address) {
            retry_after = retry_after.max(self.throttle.retry_after(per_address.window_start, now));
        }
        if retry_after > 0 {
            tracing::warn!(target: "latchkey::security", event = "login_throttled", client = %client.addr, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }

        let within_limit = password.expose().chars().count() <= self.passwords.max_length;
        let stored_hash = match &user {
            Some(user) if user.is_active && within_limit => Some(user.password_hash.clone()),
            // An account that cannot log in (inactive, or a password over
            // the limit): the work its own hash would cost, on a decoy like
            // it, so the answer does not tell it from one that can.
            Some(user) => legacy::hashes::decoy_like(&user.password_hash)?,
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

        self.store
            .throttle_settle(&[&account_key], &[&address_key])
            .await?;
        let mut current_hash = user.password_hash.clone();
        if let Some(upgraded) = verified.upgraded {
            if self.store_upgraded_hash(&user, &upgraded).await {
                current_hash = upgraded;
            }
        }
        self.store
            .remember_client(user.id, &address_key, now)
            .await?;
        let tokens = self.start_session(&user, client, now).await?;
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
            decoys.push(legacy::hashes::decoy_like(hash)?);
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
    fn take_hash_census_if_stale(&self, now: i64) {
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

    /// How `client` is known to account `user_id`: by a device token from
    /// an earlier login to it, or by an address that logged in to it within
    /// the time a device is remembered.
    async fn known_client(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
        address_key: &str,
        now: i64,
    ) -> Result<Option<throttle::KnownClient>, AuthError> {
        let user_id = user.id;
        let device = client
            .device
            .as_deref()
            .and_then(|token| self.devices.verify(token, &user.password_hash, now))
            .filter(|d| d.user_id == user_id);
        if let Some(device) = device {
            return Ok(Some(throttle::KnownClient::Device(device.nonce)));
        }
        let since = now - device::DEVICE_MAX_AGE_SECONDS;
        if self
            .store
            .is_known_client(user_id, address_key, since)
            .await?
        {
            return Ok(Some(throttle::KnownClient::Address(address_key.to_owned())));
        }
        Ok(None)
    }

    /// Replace a user's hash after a login found it outdated (imported from
    /// Django, or below the configured cost). Best effort: the login succeeds
    /// either way, and the next one tries again. Whether it was replaced.
    async fn store_upgraded_hash(&self, user: &UserRecord, upgraded: &str) -> bool {
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

    async fn start_session(
        &self,
        user: &UserRecord,
        client: &ClientInfo,
        now: i64,
    ) -> Result<TokenPair, AuthError> {
        let start = self.new_session(user.id, Some(client), now)?;
        self.store
            .start_session(&start.session(), &start.first_token())
            .await?;
        self.sign_pair(user.id, &start.session_id, start.refresh_jti, now)
    }

    /// Fresh ids for a session of `user_id` starting at `now`, and its first
    /// refresh token.
    fn new_session(
        &self,
        user_id: i64,
        client: Option<&ClientInfo>,
        now: i64,
    ) -> Result<SessionStart, AuthError> {
        Ok(SessionStart {
            session_id: RandomId::generate()?,
            refresh_jti: RandomId::generate()?,
            user_id,
            now,
            expires_at: now + self.tokens.refresh_lifetime,
            client_addr: client.map(|c| c.addr.to_string()),
            user_agent: client.and_then(|c| c.user_agent.clone()),
        })
    }

    fn sign_pair(
        &self,
        user_id: i64,
        session_id: &RandomId,
        refresh_jti: RandomId,
        now: i64,
    ) -> Result<TokenPair, AuthError> {
        let access = self.sign_access(user_id, session_id, now)?;
        let refresh = self.codec.encode(&Claims {
            token_type: TokenType::Refresh,
            exp: now + self.tokens.refresh_lifetime,
            iat: now,
            jti: refresh_jti,
            user_id,
            sid: session_id.clone(),
        });
        Ok(TokenPair { access, refresh })
    }

    fn sign_access(
        &self,
        user_id: i64,
        session_id: &RandomId,
        now: i64,
    ) -> Result<String, AuthError> {
        Ok(self.codec.encode(&Claims {
            token_type: TokenType::Access,
            exp: now + self.tokens.access_lifetime,
            iat: now,
            jti: RandomId::generate()?,
            user_id,
            sid: session_id.clone(),
        }))
    }

    // ---- Tokens ------------------------------------------------------------

    /// The caller behind an access token: valid signature, unexpired, of type
    /// access, and its session still live. Checked against the database on
    /// every call, so a logout on any instance takes effect at once.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        let now = self.clock.now();
        let claims = match self.codec.decode(access_token, TokenType::Access, now) {
            Ok(claims) => claims,
            Err(own) => return self.legacy_principal(access_token, own, now).await,
        };
        self.principal(claims, now).await
    }

    /// The caller behind verified access-token claims, if the session is live.
    async fn principal(&self, claims: Claims, now: i64) -> Result<Principal, AuthError> {
        let user = self
            .store
            .session_user(claims.sid.as_str(), now)
            .await?
            .filter(|u| u.user_id == claims.user_id)
            .ok_or(AuthError::Token(TokenRejection::Revoked))?;
        Ok(Principal {
            user: user.into(),
            session_id: claims.sid,
        })
    }

    /// `/auth/token/verify/`: whether a token of either type is valid now.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let claims = match self.codec.decode_any(token, now) {
            Ok(claims) => claims,
            Err(own) => return self.legacy_verify(token, own, now).await,
        };
        match claims.token_type {
            TokenType::Access => self.principal(claims, now).await.map(|_| ()),
            TokenType::Refresh => {
                let state = self
                    .store
                    .refresh_token_state(claims.jti.as_str(), now)
                    .await?;
                match state {
                    Some(s)
                        if s.session_live
                            && s.rotated_at.is_none()
                            && s.user_id == claims.user_id =>
                    {
                        Ok(())
                    }
                    Some(_) => Err(AuthError::Token(TokenRejection::Revoked)),
                    None => Err(AuthError::Token(TokenRejection::Invalid)),
                }
            }
        }
    }

    /// Rotate a refresh token: a new pair, the old token retired. Presenting a
    /// retired token again revokes the whole session, except for the token
    /// rotated last, within the grace window (two tabs refreshing at once).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let result = self.rotate(refresh_token).await;
        match &result {
            Ok((_, outcome)) => self.metrics.refresh(*outcome),
            Err(_) => self.metrics.refresh(RefreshOutcome::Refused),
        }
        result.map(|(pair, _)| pair)
    }

    async fn rotate(&self, refresh_token: &str) -> Result<(TokenPair, RefreshOutcome), AuthError> {
        let now = self.clock.now();
        let claims = match self.codec.decode(refresh_token, TokenType::Refresh, now) {
            Ok(claims) => claims,
            Err(own) => return self.legacy_refresh(refresh_token, own, now).await,
        };
        let jti = claims.jti.as_str();
        let next_jti = RandomId::generate()?;
        let next = NewRefreshToken {
            jti: next_jti.as_str(),
            session_id: claims.sid.as_str(),
            parent_jti: Some(jti),
            issued_at: now,
            expires_at: now + self.tokens.refresh_lifetime,
        };

        // The common case in one transaction: an unrotated token of a live
        // session. Anything else is sorted out from the stored state below.
        if self.store.rotate_refresh(jti, &next).await? {
            let pair = self.sign_pair(claims.user_id, &claims.sid, next_jti, now)?;
            return Ok((pair, RefreshOutcome::Rotated));
        }
        let state = self.known_refresh(&claims, now).await?;
        let Some(rotated_at) = state.rotated_at else {
            // Live session, unrotated token, yet no rotation: it ended meanwhile.
            return Err(AuthError::Token(TokenRejection::Revoked));
        };
        self.replay_or_revoke(Replay {
            user_id: claims.user_id,
            session: &claims.sid,
            presented: jti,
            rotated_at,
            db_now: state.db_now,
            rotated_last: state.last_rotated_jti.as_deref() == Some(jti),
            legacy: false,
        })
        .await
    }

    /// A refresh token presented again after its rotation (or a legacy one
    /// after its redemption). Inside the grace window, and only for the
    /// token rotated last, the caller gets the token that rotation issued —
    /// the same one, signed again — so a session never has more than one
    /// live chain, however often the token is replayed; a fresh access
    /// token comes with it. Anything else is reuse, and the session is
    /// revoked.
    async fn replay_or_revoke(
        &self,
        replay: Replay<'_>,
    ) -> Result<(TokenPair, RefreshOutcome), AuthError> {
        let now = self.clock.now();
        if within_reuse_grace(&replay, self.tokens.reuse_grace) {
            let head = self
                .store
                .live_successor(replay.session.as_str(), replay.presented, now)
                .await?;
            if let Some(head) = head {
                let jti = RandomId::parse(&head.jti)
                    .ok_or_else(|| AuthError::Internal("stored token id is malformed".into()))?;
                let refresh = self.codec.encode(&Claims {
                    token_type: TokenType::Refresh,
                    exp: head.expires_at,
                    iat: head.issued_at,
                    jti,
                    user_id: replay.user_id,
                    sid: replay.session.clone(),
                });
                let access = self.sign_access(replay.user_id, replay.session, now)?;
                return Ok((TokenPair { access, refresh }, RefreshOutcome::Grace));
            }
            // The chain moved on meanwhile (its head was rotated too), or the
            // session ended: the presented token is now an older one.
        }
        self.store
            .revoke_session(replay.session.as_str(), now, "refresh token reuse")
            .await?;
        self.metrics.reuse_detected();
        self.metrics.revoked(Revocation::Reuse, 1);
        tracing::warn!(target: "latchkey::security", event = "refresh_reuse_detected", user_id = replay.user_id, legacy = replay.legacy);
        Err(AuthError::Token(TokenRejection::Revoked))
    }

    /// The stored state of a refresh token whose session is still live.
    async fn known_refresh(
        &self,
        claims: &Claims,
        now: i64,
    ) -> Result<crate::store::RefreshTokenState, AuthError> {
        match self
            .store
            .refresh_token_state(claims.jti.as_str(), now)
            .await?
        {
            Some(s) if s.session_id == claims.sid.as_str() && s.user_id == claims.user_id => {
                if s.session_live {
                    Ok(s)
                } else {
                    Err(AuthError::Token(TokenRejection::Revoked))
                }
            }
            _ => Err(AuthError::Token(TokenRejection::Invalid)),
        }
    }

    /// End the session of `refresh_token`, which must belong to `caller`,
    /// and the session of the caller's access token with it.
    pub async fn logout(&self, caller: &Principal, refresh_token: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let claims = match self.codec.decode(refresh_token, TokenType::Refresh, now) {
            Ok(claims) => claims,
            Err(own) => return self.legacy_logout(caller, refresh_token, own, now).await,
        };
        let state = self
            .store
            .refresh_token_state(claims.jti.as_str(), now)
            .await?;
        let state = match state {
            Some(s) if s.session_id == claims.sid.as_str() => s,
            _ => return Err(AuthError::Token(TokenRejection::Invalid)),
        };
        if state.user_id != caller.user.id || claims.user_id != caller.user.id {
            tracing::warn!(target: "latchkey::security", event = "logout_foreign_token", user_id = caller.user.id);
            return Err(AuthError::NotOwner);
        }
        if !state.session_live {
            return Err(AuthError::Token(TokenRejection::Revoked));
        }
        self.store
            .revoke_session(&state.session_id, now, "logout")
            .await?;
        let mut ended = 1;
        if caller.session_id.as_str() != state.session_id {
            self.store
                .revoke_session(caller.session_id.as_str(), now, "logout")
                .await?;
            ended += 1;
        }
        self.metrics.revoked(Revocation::Logout, ended);
        tracing::info!(target: "latchkey::security", event = "logout", user_id = caller.user.id);
        Ok(())
    }

    // ---- Account -------------------------------------------------------------

    /// End every session of the caller, the current one included; how many ended.
    pub async fn logout_all(&self, caller: &Principal) -> Result<u64, AuthError> {
        let ended = self
            .store
            .revoke_sessions_of(caller.user.id, self.clock.now(), "logout all")
            .await?;
        self.metrics.revoked(Revocation::LogoutAll, ended);
        tracing::info!(target: "latchkey::security", event = "logout_all", user_id = caller.user.id, sessions = ended);
        Ok(ended)
    }

    /// The caller's live sessions, most recently used first.
    pub async fn sessions(&self, caller: &Principal) -> Result<Vec<SessionView>, AuthError> {
        let sessions = self
            .store
            .sessions_of(caller.user.id, self.clock.now())
            .await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == caller.session_id.as_str(),
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                client_addr: s.client_addr,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// End one of the caller's live sessions. [`AuthError::NotFound`] for
    /// anything else, another user's session included: ids are not disclosed.
    pub async fn end_session(&self, caller: &Principal, session_id: &str) -> Result<(), AuthError> {
        let ended = self
            .store
            .revoke_session_of(
                caller.user.id,
                session_id,
                self.clock.now(),
                "ended by user",
            )
            .await?;
        if !ended {
            return Err(AuthError::NotFound);
        }
        self.metrics.revoked(Revocation::SessionEnded, 1);
        tracing::info!(target: "latchkey::security", event = "session_ended", user_id = caller.user.id);
        Ok(())
    }

    /// Change the caller's password: the current one must be right (wrong
    /// guesses count against the account's login throttle), the new one must
    /// pass the policy. Every other session of the user ends; this one stays.
    pub async fn change_password(
        &self,
        caller: &Principal,
        form: PasswordChange,
    ) -> Result<(), AuthError> {
        let mut errors = FieldErrors::default();
        let old = errors.check(
            "old_password",
            form.old_password.and_then(Password::non_blank),
        );
        let new = errors.check(
            "new_password",
            form.new_password.and_then(Password::non_blank),
        );
        let (Some(old), Some(new)) = (old, new) else {
            return Err(AuthError::Invalid(errors));
        };
        if self.hasher.is_saturated() {
            return Err(AuthError::Overloaded);
        }
        let user = self
            .store
            .user_by_id(caller.user.id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(AuthError::Token(TokenRejection::Revoked))?;

        let now = self.clock.now();
        // Guesses at the current password count on this session's own
        // counter, which decides, and on the account's shared one, so a
        // stolen session's guesses throttle logins from unknown clients
        // too — while failures elsewhere cannot stop the user, logged in
        // here, from changing a password under attack.
        let account_key = throttle::account_key(Some(user.id), "id", "");
        let session_key = throttle::session_key(user.id, caller.session_id.as_str());
        let [attempts, _] = self
            .store
            .throttle_hit(
                [&session_key, &account_key],
                now,
                self.throttle.window_seconds,
            )
            .await?;
        if attempts.attempts > i64::from(self.throttle.per_account) {
            let retry_after = self.throttle.retry_after(attempts.window_start, now);
            tracing::warn!(target: "latchkey::security", event = "password_change_throttled", user_id = user.id, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }
        let within_limit = old.expose().chars().count() <= self.passwords.max_length;
        let stored = within_limit.then(|| user.password_hash.clone());
        let verified = match self.hasher.verify(old, stored).await {
            Ok(verified) => verified,
            Err(e) => {
                self.store
                    .throttle_settle(&[], &[&session_key, &account_key])
                    .await?;
                return Err(e.into());
            }
        };
        if !verified {
            tracing::info!(target: "latchkey::security", event = "password_change_failed", user_id = user.id);
            return Err(AuthError::Invalid(FieldErrors::one(
                "old_password",
                WRONG_OLD_PASSWORD,
            )));
        }
        self.store
            .throttle_settle(&[&session_key, &account_key], &[])
            .await?;

        let hash = hash_new_password(
            &self.hasher,
            &self.passwords,
            new,
            (&user.name, &user.email),
            "new_password",
        )
        .await?;
        let ended = self
            .store
            .set_password_hash(user.id, &hash, now, Some(caller.session_id.as_str()))
            .await?
            .ok_or(AuthError::Token(TokenRejection::Revoked))?;
        self.metrics.revoked(Revocation::PasswordChanged, ended);
        tracing::info!(target: "latchkey::security", event = "password_changed", user_id = user.id, sessions_ended = ended);
        Ok(())
    }
}

/// Check `password` against the policy for the user `name` / `email` and
/// hash it; the policy's messages under `field` when it fails.
pub(crate) async fn hash_new_password(
    hasher: &Hasher,
    policy: &PasswordPolicy,
    password: Password,
    (name, email): (&str, &str),
    field: &str,
) -> Result<String, AuthError> {
    hasher
        .check_and_hash(policy.clone(), password, name.to_owned(), email.to_owned())
        .await?
        .map_err(|violations| {
            let mut errors = FieldErrors::default();
            for v in violations {
                errors.add(field, v);
            }
            AuthError::Invalid(errors)
        })
}

/// Validate a registration form, check the password policy, hash, and
/// insert the user. Shared by `POST /auth/register` and `latchkey user create`.
pub(crate) async fn create_account(
    store: &Store,
    hasher: &Hasher,
    passwords: &PasswordPolicy,
    form: Registration,
    now: i64,
) -> Result<UserRecord, AuthError> {
    let account = check_account(store, hasher, passwords, form).await?;
    Ok(store.create_user(&account.new_user(now)).await?)
}

/// A registration that passed every check, with its password hashed.
struct CheckedAccount {
    name: Name,
    email: Email,
    name_key: String,
    email_key: String,
    password_hash: String,
}

impl CheckedAccount {
    fn new_user(&self, now: i64) -> NewUser<'_> {
        NewUser {
            email: self.email.as_str(),
            email_key: &self.email_key,
            name: self.name.as_str(),
            name_key: &self.name_key,
            password_hash: &self.password_hash,
            now,
        }
    }
}

/// Validate a registration form, check the password policy and hash.
async fn check_account(
    store: &Store,
    hasher: &Hasher,
    passwords: &PasswordPolicy,
    form: Registration,
) -> Result<CheckedAccount, AuthError> {
    let mut errors = FieldErrors::default();
    let name = errors.check("name", form.name.and_then(|n| Name::parse(&n)));
    let email = errors.check("email", form.email.and_then(|e| Email::parse(&e)));
    let password = errors.check("password", form.password.and_then(Password::non_blank));

    // The password policy needs a valid name and email to compare with, so
    // it runs only once those parse.
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return Err(AuthError::Invalid(errors));
    };

    let (email_taken, name_taken) = store.taken(&email.lookup_key(), &name.lookup_key()).await?;
    if email_taken {
        errors.0.extend(duplicate(UniqueField::Email).0);
    }
    if name_taken {
        errors.0.extend(duplicate(UniqueField::Name).0);
    }

    let identity = (name.as_str(), email.as_str());
    let hash = match hash_new_password(hasher, passwords, password, identity, "password").await {
        Ok(hash) => hash,
        Err(AuthError::Invalid(policy)) => {
            errors.0.extend(policy.0);
            String::new()
        }
        Err(e) => return Err(e),
    };
    if !errors.is_empty() {
        return Err(AuthError::Invalid(errors));
    }

    Ok(CheckedAccount {
        name_key: name.lookup_key(),
        email_key: email.lookup_key(),
        name,
        email,
        password_hash: hash,
    })
}

/// A refresh token presented again after it was exchanged.
struct Replay<'a> {
    user_id: i64,
    session: &'a RandomId,
    /// The presented token's `jti` (for a legacy token, SimpleJWT's).
    presented: &'a str,
    /// When it was exchanged, by the clock `db_now` reads.
    rotated_at: i64,
    /// Now, by the clock that wrote `rotated_at`.
    db_now: i64,
    /// Whether it is the token its session exchanged most recently.
    rotated_last: bool,
    /// A SimpleJWT token (for the log).
    legacy: bool,
}

/// Whether a replay is forgiven: only of the token exchanged most recently
/// in its session, only within `grace` seconds of the exchange (both times
/// on one clock), and never when the window is 0. Anything else is reuse.
fn within_reuse_grace(replay: &Replay<'_>, grace: i64) -> bool {
    let elapsed = replay.db_now - replay.rotated_at;
    grace > 0 && replay.rotated_last && (0..=grace).contains(&elapsed.max(0))
}

/// A session about to start: its ids and the rows that record it.
struct SessionStart {
    session_id: RandomId,
    refresh_jti: RandomId,
    user_id: i64,
    now: i64,
    expires_at: i64,
    client_addr: Option<String>,
    user_agent: Option<String>,
}

impl SessionStart {
    fn session(&self) -> NewSession<'_> {
        NewSession {
            id: self.session_id.as_str(),
            user_id: self.user_id,
            now: self.now,
            expires_at: self.expires_at,
            client_addr: self.client_addr.as_deref(),
            user_agent: self.user_agent.as_deref(),
        }
    }

    fn first_token(&self) -> NewRefreshToken<'_> {
        NewRefreshToken {
            jti: self.refresh_jti.as_str(),
            session_id: self.session_id.as_str(),
            parent_jti: None,
            issued_at: self.now,
            expires_at: self.expires_at,
        }
    }
}

impl From<SessionUser> for UserView {
    fn from(user: SessionUser) -> Self {
        Self {
            id: user.user_id,
            email: user.email,
            name: user.name,
        }
    }
}

fn view(user: &UserRecord) -> UserView {
    UserView {
        id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(rotated_at: i64, db_now: i64, rotated_last: bool) -> bool {
        let sid = RandomId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let replay = Replay {
            user_id: 1,
            session: &sid,
            presented: "x",
            rotated_at,
            db_now,
            rotated_last,
            legacy: false,
        };
        within_reuse_grace(&replay, 10)
    }

    #[test]
    fn the_token_rotated_last_is_forgiven_within_the_window_only() {
        assert!(replay(100, 100, true));
        assert!(replay(100, 110, true));
        assert!(!replay(100, 111, true));
    }

    #[test]
    fn an_older_token_of_the_chain_is_never_forgiven() {
        assert!(!replay(100, 101, false));
    }

    #[test]
    fn a_zero_window_forgives_nothing() {
        let sid = RandomId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let replay = Replay {
            user_id: 1,
            session: &sid,
            presented: "x",
            rotated_at: 100,
            db_now: 100,
            rotated_last: true,
            legacy: false,
        };
        assert!(!within_reuse_grace(&replay, 0));
    }

    #[test]
    fn field_errors_collect_messages_per_field() {
        let mut e = FieldErrors::default();
        e.add("password", "a");
        e.add("password", "b");
        e.add("email", "c");
        assert_eq!(e.0["password"], ["a", "b"]);
        assert_eq!(e.0.len(), 2);
    }
}
