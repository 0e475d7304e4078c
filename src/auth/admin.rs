//! Operator actions behind the `latchkey user ...` and `latchkey sessions
//! ...` commands: the same rules as the API (password policy, hashing on
//! the worker threads), without HTTP.

use super::identity::{Email, Name};
use super::password::{Hasher, Password, PasswordPolicy};
use super::{
    create_account, hash_new_password, now, view, AuthError, FieldErrors, Registration, UserView,
};
use crate::store::{Store, UserRecord, UserSummary};

/// How an operator names a user: an id, an email (has `@`), or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// `users.id`.
    Id(i64),
    /// An email, matched case-insensitively.
    Email(String),
    /// A name, matched case-insensitively.
    Name(String),
}

impl UserRef {
    /// Read an operator's argument: digits are an id (see [`Admin`]'s lookup
    /// for a name made of digits), anything with `@` an email, the rest a
    /// name.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if let Ok(id) = s.parse::<i64>() {
            return Self::Id(id);
        }
        if s.contains('@') {
            Self::Email(s.to_owned())
        } else {
            Self::Name(s.to_owned())
        }
    }
}

/// What an operator action did to a user.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The user, as they now are.
    pub user: UserView,
    /// Sessions ended by the action.
    pub sessions_ended: u64,
}

/// The operator's service.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    hasher: Hasher,
    passwords: PasswordPolicy,
}

impl Admin {
    /// Assemble from a migrated store and a hasher.
    pub fn new(store: Store, hasher: Hasher, passwords: PasswordPolicy) -> Self {
        Self {
            store,
            hasher,
            passwords,
        }
    }

    /// Create an active user, with the API's validation and password policy.
    pub async fn create_user(
        &self,
        name: &str,
        email: &str,
        password: Password,
    ) -> Result<UserView, AuthError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", Name::parse(name));
        let email = errors.check("email", Email::parse(email));
        let password = errors.check("password", password.non_blank());
        let (Some(name), Some(email), Some(password)) = (name, email, password) else {
            return Err(AuthError::Invalid(errors));
        };
        let form = Registration {
            name,
            email,
            password,
        };
        let user = create_account(&self.store, &self.hasher, &self.passwords, form, now()).await?;
        tracing::info!(target: "latchkey::security", event = "user_created", user_id = user.id);
        Ok(view(&user))
    }

    /// Every user, by id.
    pub async fn list_users(&self) -> Result<Vec<UserSummary>, AuthError> {
        Ok(self.store.list_users(now()).await?)
    }

    /// Let a user log in again.
    pub async fn activate(&self, who: &UserRef) -> Result<Changed, AuthError> {
        self.set_active(who, true).await
    }

    /// Stop a user from logging in or refreshing, and end their sessions.
    pub async fn deactivate(&self, who: &UserRef) -> Result<Changed, AuthError> {
        self.set_active(who, false).await
    }

    async fn set_active(&self, who: &UserRef, active: bool) -> Result<Changed, AuthError> {
        let user = self.find(who).await?;
        let ended = self
            .store
            .set_active(user.id, active, now())
            .await?
            .ok_or(AuthError::NotFound)?;
        let event = if active {
            "user_activated"
        } else {
            "user_deactivated"
        };
        tracing::info!(target: "latchkey::security", event, user_id = user.id, sessions_ended = ended);
        Ok(Changed {
            user: view(&user),
            sessions_ended: ended,
        })
    }

    /// Set a user's password (policy checked) and end all their sessions.
    pub async fn set_password(
        &self,
        who: &UserRef,
        password: Password,
    ) -> Result<Changed, AuthError> {
        let user = self.find(who).await?;
        let password = password
            .non_blank()
            .map_err(|m| AuthError::Invalid(FieldErrors::one("password", m)))?;
        let hash = hash_new_password(
            &self.hasher,
            &self.passwords,
            password,
            (&user.name, &user.email),
            "password",
        )
        .await?;
        let ended = self
            .store
            .set_password_hash(user.id, &hash, now(), None)
            .await?
            .ok_or(AuthError::NotFound)?;
        // A new password is a fresh start: the lockout it may answer ends too.
        self.store.clear_throttle_of(user.id).await?;
        tracing::info!(target: "latchkey::security", event = "password_set", user_id = user.id, sessions_ended = ended);
        Ok(Changed {
            user: view(&user),
            sessions_ended: ended,
        })
    }

    /// Clear every failed-login counter of a user (the account's and its
    /// known clients'), so their next login is judged afresh; how many
    /// counters there were.
    pub async fn unlock(&self, who: &UserRef) -> Result<(UserView, u64), AuthError> {
        let user = self.find(who).await?;
        let cleared = self.store.clear_throttle_of(user.id).await?;
        tracing::info!(target: "latchkey::security", event = "user_unlocked", user_id = user.id, counters_cleared = cleared);
        Ok((view(&user), cleared))
    }

    /// End every live session of a user.
    pub async fn revoke_sessions(&self, who: &UserRef) -> Result<Changed, AuthError> {
        let user = self.find(who).await?;
        let ended = self
            .store
            .revoke_sessions_of(user.id, now(), "revoked by operator")
            .await?;
        tracing::info!(target: "latchkey::security", event = "sessions_revoked", user_id = user.id, sessions_ended = ended);
        Ok(Changed {
            user: view(&user),
            sessions_ended: ended,
        })
    }

    /// Remove a user's second factor (TOTP secret, recovery codes, logins
    /// waiting for a code) for one who lost both device and codes, and end
    /// their sessions. A security event; whether there was a second factor.
    pub async fn mfa_reset(&self, who: &UserRef) -> Result<(Changed, bool), AuthError> {
        let user = self.find(who).await?;
        let (removed, ended) = self.store.remove_mfa(user.id, now(), None, None).await?;
        tracing::warn!(target: "latchkey::security", event = "mfa_reset", user_id = user.id, removed, sessions_ended = ended);
        Ok((
            Changed {
                user: view(&user),
                sessions_ended: ended,
            },
            removed,
        ))
    }

    async fn find(&self, who: &UserRef) -> Result<UserRecord, AuthError> {
        let user = match who {
            UserRef::Id(id) => {
                // Names may be all digits: "42" could be user 42 or the
                // user named "42". Act only when it names one user.
                let by_id = self.store.user_by_id(*id).await?;
                let named = match super::identity::Name::parse(&id.to_string()) {
                    Ok(name) => self.store.user_by_name(&name.lookup_key()).await?,
                    Err(_) => None,
                };
                match (by_id, named) {
                    (Some(a), Some(b)) if a.id != b.id => {
                        return Err(AuthError::Invalid(FieldErrors::one(
                            "user",
                            format!(
                                "\"{id}\" is the id of one user and the name of another; \
                                 name the user by email"
                            ),
                        )));
                    }
                    (by_id, named) => by_id.or(named),
                }
            }
            UserRef::Email(email) => {
                let key = super::identity::Email::parse(email)
                    .map_err(|_| AuthError::NotFound)?
                    .lookup_key();
                self.store.user_by_email(&key).await?
            }
            UserRef::Name(name) => {
                let key = super::identity::Name::parse(name)
                    .map_err(|_| AuthError::NotFound)?
                    .lookup_key();
                self.store.user_by_name(&key).await?
            }
        };
        user.ok_or(AuthError::NotFound)
    }
}

/// Once per database: recompute the name keys of users stored before
/// names were normalised to NFKC, so a look-alike of an earlier name is
/// that name. A user whose new key another user already holds keeps the old
/// one and is named in the log, for the operator to rename. How many keys
/// changed, and the ids left as they were.
pub async fn normalise_name_keys(store: &Store) -> Result<(u64, Vec<i64>), AuthError> {
    if store.name_keys_normalised().await? {
        return Ok((0, Vec::new()));
    }
    let (mut changed, mut kept) = (0, Vec::new());
    for (id, name, key) in store.users_with_non_ascii_names().await? {
        let Ok(parsed) = super::identity::Name::parse(&name) else {
            kept.push(id);
            continue;
        };
        let normalised = parsed.lookup_key();
        if normalised == key {
            continue;
        }
        if store.set_name_key(id, &normalised).await? {
            changed += 1;
        } else {
            tracing::warn!(
                user_id = id,
                "this user's name is a look-alike of another user's (in NFKC); rename one of them with care"
            );
            kept.push(id);
        }
    }
    store.mark_name_keys_normalised().await?;
    Ok((changed, kept))
}

/// The operator's view of the mail outbox, and their say-so on addresses.
impl Admin {
    /// Count user `id`'s address as verified (`user create --verified`).
    pub async fn mark_email_verified(&self, id: i64) -> Result<(), AuthError> {
        if !self.store.mark_email_verified(id).await? {
            return Err(AuthError::NotFound);
        }
        tracing::info!(target: "latchkey::security", event = "email_marked_verified", user_id = id);
        Ok(())
    }

    /// Every queued and failed message (never a body).
    pub async fn outbox(&self) -> Result<Vec<crate::store::OutboxEntry>, AuthError> {
        Ok(self.store.list_mail().await?)
    }

    /// Make queued message `id` due now; false when there is no such
    /// queued message.
    pub async fn retry_mail(&self, id: i64) -> Result<bool, AuthError> {
        Ok(self.store.retry_mail_now(id, now()).await?)
    }

    /// Delete message `id`; false when there is none.
    pub async fn drop_mail(&self, id: i64) -> Result<bool, AuthError> {
        Ok(self.store.drop_mail(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_name_an_id_an_at_sign_an_email_anything_else_a_name() {
        assert_eq!(UserRef::parse("42"), UserRef::Id(42));
        assert_eq!(
            UserRef::parse("Ada@Example.com"),
            UserRef::Email("Ada@Example.com".into())
        );
        assert_eq!(UserRef::parse("ada"), UserRef::Name("ada".into()));
    }
}
