//! Accounts: registration (throttled per address), password change, and
//! the account creation the operator's `user create` shares.

use super::error::duplicate;
use super::identity::{Email, Name};
use super::password::{Hasher, Password, PasswordPolicy};
use super::reauth::Reauth;
use super::{
    throttle, view, Auth, AuthError, ClientInfo, FieldErrors, PasswordChange, Principal,
    Registration, TokenPair, TokenRejection, UserView, WRONG_OLD_PASSWORD,
};
use crate::metrics::Revocation;
use crate::store::{NewUser, Store, UniqueField, UserRecord};

/// How a password change names a wrong `old_password` (Django's message).
const OLD_PASSWORD: Reauth = Reauth {
    field: "old_password",
    message: WRONG_OLD_PASSWORD,
    failed_event: "password_change_failed",
    throttled_event: "password_change_throttled",
};

impl Auth {
    // ---- Registration and login -----------------------------------------

    /// Create an account from `form` (or refuse the problems found in
    /// it, after counting the attempt) and mail its verification link; its
    /// first session too, unless verified addresses are required (then no
    /// tokens: the user logs in once the address is verified). The
    /// account, the session, the token and the message are one transaction.
    pub async fn register(
        &self,
        form: Result<Registration, FieldErrors>,
        client: &ClientInfo,
    ) -> Result<(UserView, Option<TokenPair>), AuthError> {
        let now = self.clock.now();
        // Counted before the form is judged: an invalid form is an attempt too.
        self.throttle_registration(client, now).await?;
        let form = form.map_err(AuthError::Invalid)?;
        let account = check_account(&self.store, &self.hasher, &self.passwords, form).await?;
        let mail = self.verification_mail(account.email.as_str(), account.name.as_str(), now)?;
        // The session's and the mail's user id is the store's to fill in.
        let start = self
            .registration_logs_in()
            .then(|| self.new_session(0, Some(client), now))
            .transpose()?;
        let (session, first) = match &start {
            Some(start) => (Some(start.session()), Some(start.first_token())),
            None => (None, None),
        };
        let user = self
            .store
            .create_user_with_mail(
                &account.new_user(now),
                session.as_ref().zip(first.as_ref()),
                &mail.token(0, now),
                &mail.rendered.message(0, now),
            )
            .await?;
        self.metrics.registration();
        self.metrics.mail_queued(1);
        let tokens = match start {
            Some(start) => Some(
                self.sign_pair(user.id, &start.session_id, start.refresh_jti, now)
                    .await?,
            ),
            None => None,
        };
        Ok((view(&user), tokens))
    }

    /// Count a registration attempt of `client`'s address, valid or not (so
    /// the form cannot be used to probe for taken emails at speed either),
    /// and refuse it beyond the limit. Counted in the database, so every
    /// instance enforces one limit.
    pub(super) async fn throttle_registration(
        &self,
        client: &ClientInfo,
        now: i64,
    ) -> Result<(), AuthError> {
        let key = throttle::registration_key(client.addr);
        let [window] = self
            .store
            .throttle_hit([&key], now, self.throttle.window_seconds)
            .await?;
        let limit = self.throttle.registrations_per_address;
        if let Some(retry_after) = self.throttle.verdict(now, &[(&window, limit)]) {
            tracing::warn!(target: "latchkey::security", event = "registration_throttled", client = %client.addr, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }
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
        let PasswordChange {
            old_password: old,
            new_password: new,
        } = form;
        let user = self.reauthenticate(caller, old, OLD_PASSWORD).await?;
        let now = self.clock.now();
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
pub(super) struct CheckedAccount {
    name: Name,
    email: Email,
    name_key: String,
    email_key: String,
    password_hash: String,
}

impl CheckedAccount {
    pub(super) fn new_user(&self, now: i64) -> NewUser<'_> {
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
pub(super) async fn check_account(
    store: &Store,
    hasher: &Hasher,
    passwords: &PasswordPolicy,
    form: Registration,
) -> Result<CheckedAccount, AuthError> {
    let Registration {
        name,
        email,
        password,
    } = form;
    let mut errors = FieldErrors::default();
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
