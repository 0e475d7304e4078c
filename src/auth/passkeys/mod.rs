//! Passkeys: WebAuthn discoverable credentials, registered by a logged-in
//! user and logging in with no email typed. `webauthn-rs` verifies every
//! ceremony ([`relying_party`]); this module keeps the rules around it:
//! challenges single use, bound to their purpose (and a registration's to
//! its user), expiring by the injected clock and stored in the database so
//! any instance accepts them; user verification required both ways; a sign
//! counter that goes backwards refused; the last way to log in kept.
//!
//! A passkey login proves possession of the key and the user's
//! verification on the authenticator (PIN or biometric): two factors in
//! one, so it needs no second step even with TOTP enrolled.

pub mod relying_party;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid, WebauthnError,
};
use webauthn_rs_proto::{
    AuthenticatorSelectionCriteria, ResidentKeyRequirement, UserVerificationPolicy,
};

pub use relying_party::{RelyingParty, RelyingPartyError, CHALLENGE_LIFETIME_SECONDS};

use super::password::StoredHash;
use super::{throttle, view, Auth, AuthError, ClientInfo, FieldErrors, LoggedIn, Principal};
use crate::metrics::LoginOutcome;
use crate::store::{
    ChallengeOwner, ChallengePurpose, ChallengeStored, NewPasskey, NewPasskeyChallenge,
    PasskeyDeletion, PasskeySummary, Settle,
};

/// A challenge id that is unknown, expired, used, or of another purpose or user.
pub const INVALID_CHALLENGE: &str = "Invalid or expired challenge.";
/// A registration the relying party refused (origin, rp id, flags, format).
pub const CREDENTIAL_REFUSED: &str = "The passkey could not be verified.";
/// A credential registered before.
pub const ALREADY_REGISTERED: &str = "This passkey is already registered.";
/// Deleting the last passkey of an account without a password.
pub const LAST_LOGIN_METHOD: &str =
    "This passkey is the account's only way to log in; set a password before deleting it.";
/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A ceremony's options for the browser, and the id to answer it with.
pub struct CeremonyOptions<T> {
    /// Sent back with the credential.
    pub challenge_id: String,
    /// What `navigator.credentials.create`/`get` takes (after
    /// `parseCreationOptionsFromJSON`/`parseRequestOptionsFromJSON`).
    pub options: T,
}

impl<T> std::fmt::Debug for CeremonyOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CeremonyOptions(..)")
    }
}

/// A registration's options.
pub type RegistrationOptions = CeremonyOptions<CreationChallengeResponse>;
/// A login's options.
pub type LoginOptions = CeremonyOptions<RequestChallengeResponse>;

/// A passkey's name: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// The name, or why it cannot be one.
    pub fn parse(given: &str) -> Result<Self, String> {
        let name = given.trim();
        if name.is_empty() {
            return Err("This field may not be blank.".into());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "Ensure this field has no more than {MAX_NAME_CHARS} characters."
            ));
        }
        if name.chars().any(char::is_control) {
            return Err("The name may not contain control characters.".into());
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The answer to a registration's options.
#[derive(Debug)]
pub struct PasskeyRegistrationForm {
    /// The options' `challenge_id`.
    pub challenge_id: String,
    /// `credential.toJSON()` of the created credential.
    pub credential: RegisterPublicKeyCredential,
    /// What the user calls it.
    pub name: PasskeyName,
}

/// The answer to a login's options.
#[derive(Debug)]
pub struct PasskeyLoginForm {
    /// The options' `challenge_id`.
    pub challenge_id: String,
    /// `credential.toJSON()` of the assertion.
    pub credential: PublicKeyCredential,
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    /// Public id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Last login with it, Unix seconds.
    pub last_used_at: Option<i64>,
}

impl From<PasskeySummary> for PasskeyView {
    fn from(p: PasskeySummary) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// Registrations one account may have under way at once (tabs, retries):
/// a newer one supersedes the oldest, so a signed-in client cannot pile up
/// stored challenges either.
const REGISTRATIONS_UNDER_WAY_PER_USER: u32 = 3;

fn invalid_challenge() -> AuthError {
    AuthError::Invalid(FieldErrors::one("challenge_id", INVALID_CHALLENGE))
}

fn refused_credential() -> AuthError {
    AuthError::Invalid(FieldErrors::one("credential", CREDENTIAL_REFUSED))
}

/// A fresh challenge id: 256 random bits, 64 hex characters.
fn new_challenge_id() -> Result<String, getrandom::Error> {
    Ok(super::ids::hex(&super::ids::random::<32>()?))
}

/// Whether `id` has the shape [`new_challenge_id`] makes (nothing else
/// reaches the database).
fn is_challenge_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn internal(what: &str) -> impl Fn(serde_json::Error) -> AuthError + '_ {
    move |e| AuthError::Internal(format!("{what}: {e}"))
}

/// The sign counter a credential's stored state holds (webauthn-rs keeps it
/// inside; the column beside it is what conditional updates compare).
fn stored_counter(passkey: &Passkey) -> i64 {
    serde_json::to_value(passkey)
        .ok()
        .and_then(|v| {
            v.pointer("/cred/counter")
                .and_then(serde_json::Value::as_i64)
        })
        .unwrap_or(0)
}

impl Auth {
    /// The relying party, or `NotFound` when passkeys are off (no origin
    /// fits the rp id).
    fn relying_party(&self) -> Result<&RelyingParty, AuthError> {
        self.passkeys.as_deref().ok_or(AuthError::NotFound)
    }

    /// Start registering a passkey for the caller: options requiring a
    /// discoverable credential and user verification, excluding the
    /// caller's registered credentials, with `none` attestation.
    pub async fn passkey_registration_options(
        &self,
        caller: &Principal,
    ) -> Result<RegistrationOptions, AuthError> {
        let rp = self.relying_party()?;
        let user_id = caller.user.id;
        let candidate = Uuid::from_bytes(super::ids::random::<16>()?);
        let handle = self
            .store
            .passkey_user_handle(user_id, &candidate.hyphenated().to_string())
            .await?;
        let handle = Uuid::parse_str(&handle)
            .map_err(|e| AuthError::Internal(format!("stored user handle: {e}")))?;
        let exclude = self
            .store
            .passkeys_of(user_id)
            .await?
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .map(CredentialID::from)
            .collect();
        let (mut options, state) = rp
            .webauthn
            .start_passkey_registration(
                handle,
                &caller.user.email,
                &caller.user.name,
                Some(exclude),
            )
            .map_err(|e| AuthError::Internal(format!("registration options: {e}")))?;
        // webauthn-rs asks for a resident key only as a preference; a
        // passkey that logs in with no email typed must be discoverable.
        let public_key = &mut options.public_key;
        public_key.authenticator_selection = Some(AuthenticatorSelectionCriteria {
            authenticator_attachment: public_key
                .authenticator_selection
                .take()
                .and_then(|s| s.authenticator_attachment),
            resident_key: Some(ResidentKeyRequirement::Required),
            require_resident_key: true,
            user_verification: UserVerificationPolicy::Required,
        });
        let state = serde_json::to_string(&state).map_err(internal("registration state"))?;
        let owner = ChallengeOwner::User {
            user_id,
            keep: REGISTRATIONS_UNDER_WAY_PER_USER,
        };
        let challenge_id = self
            .remember_ceremony(ChallengePurpose::Register, owner, &state)
            .await?;
        Ok(CeremonyOptions {
            challenge_id,
            options,
        })
    }

    /// Finish a registration: the credential verified against its
    /// challenge (taken, so used once), then stored under its name.
    pub async fn register_passkey(
        &self,
        caller: &Principal,
        form: PasskeyRegistrationForm,
    ) -> Result<PasskeyView, AuthError> {
        let rp = self.relying_party()?;
        let user_id = caller.user.id;
        let now = self.clock.now();
        let state = self
            .take_ceremony(
                &form.challenge_id,
                ChallengePurpose::Register,
                Some(user_id),
                now,
            )
            .await?;
        let state: PasskeyRegistration =
            serde_json::from_str(&state).map_err(internal("registration state"))?;
        let passkey = rp
            .webauthn
            .finish_passkey_registration(&form.credential, &state)
            .map_err(|e| {
                tracing::info!(target: "latchkey::security", event = "passkey_registration_refused", user_id, reason = %e);
                refused_credential()
            })?;
        let id = super::ids::RandomId::generate()?;
        let credential = serde_json::to_string(&passkey).map_err(internal("passkey"))?;
        // A credential id registered before (to anyone) is a `credential`
        // field error (`UniqueField::PasskeyCredential`).
        self.store
            .add_passkey(&NewPasskey {
                id: id.as_str(),
                user_id,
                credential_id: &URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref()),
                name: form.name.as_str(),
                credential: &credential,
                sign_count: stored_counter(&passkey),
                created_at: now,
            })
            .await?;
        tracing::info!(target: "latchkey::security", event = "passkey_registered", user_id, passkey = id.as_str());
        Ok(PasskeyView {
            id: id.as_str().to_owned(),
            name: form.name.as_str().to_owned(),
            created_at: now,
            last_used_at: None,
        })
    }

    /// The caller's passkeys, oldest first.
    pub async fn passkeys(&self, caller: &Principal) -> Result<Vec<PasskeyView>, AuthError> {
        let found = self.store.passkeys_of(caller.user.id).await?;
        Ok(found.into_iter().map(PasskeyView::from).collect())
    }

    /// Delete one of the caller's passkeys; its last one only while the
    /// account has a password to log in with.
    pub async fn delete_passkey(&self, caller: &Principal, id: &str) -> Result<(), AuthError> {
        let user = self
            .store
            .user_by_id(caller.user.id)
            .await?
            .ok_or(AuthError::NotFound)?;
        let has_password = !matches!(StoredHash::parse(&user.password_hash), StoredHash::Unusable);
        match self
            .store
            .delete_passkey(user.id, id, !has_password)
            .await?
        {
            PasskeyDeletion::Deleted => {
                tracing::info!(target: "latchkey::security", event = "passkey_deleted", user_id = user.id, passkey = id);
                Ok(())
            }
            PasskeyDeletion::NotFound => Err(AuthError::NotFound),
            PasskeyDeletion::LastOne => Err(AuthError::Invalid(FieldErrors::one(
                "non_field_errors",
                LAST_LOGIN_METHOD,
            ))),
        }
    }

    /// Start a passkey login: a challenge for any discoverable credential
    /// of this rp id (no account named), user verification required. Anyone
    /// may ask, and each challenge is a stored row until it is answered or
    /// expires, so a client address holds only so many at once.
    pub async fn passkey_login_options(
        &self,
        client: &ClientInfo,
    ) -> Result<LoginOptions, AuthError> {
        let rp = self.relying_party()?;
        let (options, state) = rp
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| AuthError::Internal(format!("login options: {e}")))?;
        let state = serde_json::to_string(&state).map_err(internal("login state"))?;
        let key = throttle::address_key(client.addr);
        let owner = ChallengeOwner::Client {
            key: &key,
            limit: self.throttle.passkey_challenges_per_address,
        };
        let challenge_id = self
            .remember_ceremony(ChallengePurpose::Login, owner, &state)
            .await
            .inspect_err(|e| {
                if let AuthError::Throttled { retry_after } = e {
                    tracing::warn!(target: "latchkey::security", event = "passkey_challenges_throttled", client = %client.addr, retry_after);
                }
            })?;
        Ok(CeremonyOptions {
            challenge_id,
            options,
        })
    }

    /// Log in with a passkey's assertion. Throttled per address like the
    /// other logins; runs to completion even if the client goes away.
    pub async fn login_passkey(
        &self,
        form: PasskeyLoginForm,
        client: &ClientInfo,
    ) -> Result<LoggedIn, AuthError> {
        let (auth, client) = (self.clone(), client.clone());
        let attempt = async move {
            let result = auth.login_passkey_to_completion(form, &client).await;
            let outcome = match &result {
                Ok(_) => Some(LoginOutcome::Success),
                Err(AuthError::InvalidCredentials) => Some(LoginOutcome::InvalidCredentials),
                Err(AuthError::Throttled { .. }) => Some(LoginOutcome::Throttled),
                Err(_) => None,
            };
            if let Some(outcome) = outcome {
                auth.metrics.login(outcome);
            }
            result
        };
        tokio::spawn(crate::telemetry::in_current_request(attempt))
            .await
            .map_err(|e| AuthError::Internal(format!("login task failed: {e}")))?
    }

    async fn login_passkey_to_completion(
        &self,
        form: PasskeyLoginForm,
        client: &ClientInfo,
    ) -> Result<LoggedIn, AuthError> {
        let rp = self.relying_party()?;
        let now = self.clock.now();
        let address_key = throttle::address_key(client.addr);
        let [per_address] = self
            .store
            .throttle_hit([&address_key], now, self.throttle.window_seconds)
            .await?;
        let verdict = self
            .throttle
            .verdict(now, &[(&per_address, self.throttle.per_address)]);
        if let Some(retry_after) = verdict {
            tracing::warn!(target: "latchkey::security", event = "passkey_login_throttled", client = %client.addr, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }
        let state = self
            .take_ceremony(&form.challenge_id, ChallengePurpose::Login, None, now)
            .await?;
        let state: DiscoverableAuthentication =
            serde_json::from_str(&state).map_err(internal("login state"))?;
        let refused = |reason: &str| {
            tracing::info!(target: "latchkey::security", event = "passkey_login_failed", client = %client.addr, reason);
            AuthError::InvalidCredentials
        };

        let (handle, credential_id) = rp
            .webauthn
            .identify_discoverable_authentication(&form.credential)
            .map_err(|_| refused("no user handle"))?;
        let credential_id = URL_SAFE_NO_PAD.encode(credential_id);
        let Some(record) = self.store.passkey_by_credential_id(&credential_id).await? else {
            return Err(refused("unknown credential"));
        };
        if Uuid::parse_str(&record.user_handle).ok() != Some(handle) {
            return Err(refused("user handle of another account"));
        }
        let mut passkey: Passkey =
            serde_json::from_str(&record.credential).map_err(internal("stored passkey"))?;
        let result = rp.webauthn.finish_discoverable_authentication(
            &form.credential,
            state,
            &[DiscoverableKey::from(&passkey)],
        );
        let result = match result {
            Ok(result) if result.user_verified() => result,
            Ok(_) => return Err(refused("no user verification")),
            Err(WebauthnError::CredentialPossibleCompromise) => {
                // Only the key's holder can sign, so a counter at or below
                // the stored one means two copies of the key are in use.
                tracing::warn!(target: "latchkey::security", event = "passkey_counter_regressed",
                    user_id = record.user_id, passkey = record.id.as_str(), client = %client.addr,
                    "a passkey's sign counter went backwards (a cloned authenticator?); login refused");
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => return Err(refused(&e.to_string())),
        };
        passkey.update_credential(&result);
        let credential = serde_json::to_string(&passkey).map_err(internal("passkey"))?;
        if !self
            .store
            .record_passkey_use(
                &record.id,
                record.sign_count,
                i64::from(result.counter()),
                &credential,
                now,
            )
            .await?
        {
            return Err(refused("passkey deleted or used meanwhile"));
        }
        let user = match self.store.user_by_id(record.user_id).await? {
            Some(user) if user.is_active => user,
            _ => return Err(refused("inactive account")),
        };
        self.check_verified_for_login(user.id).await?;
        tracing::info!(target: "latchkey::security", event = "passkey_login", user_id = user.id, passkey = record.id.as_str(), client = %client.addr);
        let settle = Settle {
            clear: &[],
            forgive: &[&address_key],
        };
        let tokens = self
            .start_session(&user, client, &address_key, settle, now)
            .await?;
        Ok(LoggedIn {
            user: view(&user),
            tokens,
            device: self.devices.issue(user.id, &user.password_hash, now)?,
        })
    }

    /// Store a ceremony's state under a fresh challenge id, within its
    /// owner's bound: `Throttled` (until its oldest live challenge expires)
    /// for a client holding its limit.
    async fn remember_ceremony(
        &self,
        purpose: ChallengePurpose,
        owner: ChallengeOwner<'_>,
        state: &str,
    ) -> Result<String, AuthError> {
        let now = self.clock.now();
        let id = new_challenge_id()?;
        let stored = self
            .store
            .create_passkey_challenge(
                &NewPasskeyChallenge {
                    id: &id,
                    purpose,
                    owner,
                    state,
                    expires_at: now + CHALLENGE_LIFETIME_SECONDS,
                },
                now,
            )
            .await?;
        match stored {
            ChallengeStored::Stored => Ok(id),
            ChallengeStored::ClientFull { oldest_expires_at } => Err(AuthError::Throttled {
                retry_after: u64::try_from(oldest_expires_at - now).unwrap_or(0).max(1),
            }),
        }
    }

    async fn take_ceremony(
        &self,
        id: &str,
        purpose: ChallengePurpose,
        user_id: Option<i64>,
        now: i64,
    ) -> Result<String, AuthError> {
        if !is_challenge_id(id) {
            return Err(invalid_challenge());
        }
        self.store
            .take_passkey_challenge(id, purpose, user_id, now)
            .await?
            .ok_or_else(invalid_challenge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PasskeyName::parse("  Laptop ").unwrap().as_str(), "Laptop");
        assert!(PasskeyName::parse("   ").is_err());
        assert!(PasskeyName::parse(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(PasskeyName::parse(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(PasskeyName::parse("a\nb").is_err());
    }

    #[test]
    fn only_generated_challenge_ids_are_looked_up() {
        let id = new_challenge_id().unwrap();
        assert!(is_challenge_id(&id));
        assert!(!is_challenge_id(&id.to_uppercase()));
        assert!(!is_challenge_id(&id[1..]));
        assert!(!is_challenge_id("' OR 1=1 --"));
    }
}
