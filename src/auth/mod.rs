//! The domain: accounts, passwords, tokens, sessions, CSRF and throttling.
//! No HTTP types here; the HTTP layer turns [`AuthError`] into responses.

mod accounts;
pub mod admin;
pub mod clock;
pub mod csrf;
pub mod decoy;
pub mod device;
mod error;
mod forms;
pub mod identity;
pub mod ids;
pub mod keys;
pub mod legacy;
mod login;
pub mod mail;
pub mod mfa;
pub mod passkeys;
pub mod password;
mod profile;
mod reauth;
mod recovery;
mod sessions;
pub mod signing;
pub mod throttle;
pub mod tokens;
mod verification;

use std::net::IpAddr;

pub use clock::Clock;
pub use error::{AuthError, FieldErrors, TokenRejection};
pub use forms::{Credentials, Identifier, PasswordChange, Registration, WRONG_OLD_PASSWORD};
pub use keys::SecretKey;
pub use profile::Profile;
pub use recovery::INVALID_TOKEN as INVALID_EMAIL_TOKEN;
pub use verification::Resent;

pub(crate) use accounts::{create_account, hash_new_password};
use sessions::Replay;

use csrf::{CsrfError, CsrfSigner};
use ids::RandomId;
use password::{Hasher, PasswordPolicy};
use signing::SigningKeys;
use throttle::ThrottlePolicy;
use tokens::{ClaimRules, TokenCodec};

use crate::metrics::{Metrics, Sampled};
use crate::store::{SessionUser, Store, UserRecord};

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
    /// Whether the user's address is verified (as of the session lookup,
    /// which the session cache may have answered).
    pub email_verified: bool,
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
    /// `iss`, added to every token and required of every token when set.
    pub issuer: Option<String>,
    /// `aud`, added to every token and required of every token when set.
    pub audience: Option<String>,
}

/// The authentication service: every use case of the API, over a [`Store`].
#[derive(Clone)]
pub struct Auth {
    store: Store,
    /// What tokens are signed and verified with (HS256's secret, or the
    /// stored key pairs).
    keys: SigningKeys,
    /// Leeway, issuer and audience every token is held to.
    claim_rules: std::sync::Arc<ClaimRules>,
    csrf: CsrfSigner,
    hasher: Hasher,
    passwords: PasswordPolicy,
    tokens: TokenPolicy,
    throttle: ThrottlePolicy,
    metrics: Metrics,
    /// SimpleJWT tokens accepted during a migration from Django (`legacy`).
    legacy: Option<legacy::tokens::SimpleJwtVerifier>,
    devices: device::DeviceSigner,
    /// Keys of the second factor (sealed TOTP secrets, recovery-code hashes).
    mfa: mfa::MfaKeys,
    /// The WebAuthn relying party (`None`: passkeys are off).
    passkeys: Option<std::sync::Arc<passkeys::RelyingParty>>,
    /// Stand-in hashes for unknown accounts, following the stored kinds.
    decoys: std::sync::Arc<decoy::Decoys>,
    /// When the hash census was last taken (0: never).
    census_taken_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Wall-clock time for every rule of the use cases.
    clock: Clock,
    /// Links, templates, lifetimes and limits of the mail the flows send.
    mail: std::sync::Arc<mail::MailSettings>,
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
        let mfa = mfa::MfaKeys::derive(&key);
        let csrf = CsrfSigner::new(key.derive("latchkey/csrf/v1"), policies.csrf_max_age)
            .with_leeway(leeway.unsigned_abs());
        let claim_rules = std::sync::Arc::new(ClaimRules {
            leeway,
            issuer: policies.tokens.issuer.clone(),
            audience: policies.tokens.audience.clone(),
        });
        Self {
            store,
            keys: SigningKeys::hs256(&key),
            claim_rules,
            csrf,
            hasher,
            passwords: policies.passwords,
            tokens: policies.tokens,
            throttle: policies.throttle,
            metrics,
            legacy: None,
            devices: device::DeviceSigner::new(key_for_devices).with_leeway(leeway),
            mfa,
            passkeys: None,
            decoys: std::sync::Arc::new(decoy::Decoys::new(key_for_decoys)),
            census_taken_at: std::sync::Arc::default(),
            clock: Clock::system(),
            mail: std::sync::Arc::default(),
        }
    }

    /// The same service sending mail as `settings` say.
    pub fn with_mail(mut self, settings: mail::MailSettings) -> Self {
        self.mail = std::sync::Arc::new(settings);
        self
    }

    /// The same service accepting passkeys of `relying_party`.
    pub fn with_passkeys(mut self, relying_party: passkeys::RelyingParty) -> Self {
        self.passkeys = Some(std::sync::Arc::new(relying_party));
        self
    }

    /// The same service reading time from `clock` (tests move it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same service signing with `keys` (the stored key pairs of an
    /// asymmetric algorithm) instead of the secret key.
    pub fn with_signing_keys(mut self, keys: SigningKeys) -> Self {
        self.keys = keys;
        self
    }

    /// A codec over the current key set (reloaded first when it is older
    /// than the reload interval).
    pub(crate) async fn codec(&self) -> TokenCodec {
        let keys = self.keys.current(self.clock.now()).await;
        TokenCodec::new(keys, self.claim_rules.clone())
    }

    /// The JWKS document: the public keys that may have signed a live
    /// token, and the next key (`{"keys": []}` with HS256).
    pub async fn jwks(&self) -> std::sync::Arc<[u8]> {
        self.keys.current(self.clock.now()).await.jwks()
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
