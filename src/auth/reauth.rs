//! Re-authentication: a signed-in caller proving with the current password
//! that a sensitive change is theirs (a new password, a second factor, a
//! new email address, deleting the account). One rule for all of them.

use super::password::Password;
use super::{throttle, Auth, AuthError, FieldErrors, Principal, TokenRejection};
use crate::store::UserRecord;

/// How a change names a wrong current password: the form field and message
/// it answers with, and the security log's events.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reauth {
    /// The field the error is under.
    pub field: &'static str,
    /// Its message.
    pub message: &'static str,
    /// The event logged for a wrong password (INFO).
    pub failed_event: &'static str,
    /// The event logged when the guesses are over the limit (WARN).
    pub throttled_event: &'static str,
}

/// The message of a wrong current password (a password change answers
/// with Django's own, [`super::WRONG_OLD_PASSWORD`]).
pub(super) const WRONG_PASSWORD: &str = "Incorrect password.";

impl Auth {
    /// Account `user_id` while it is active; a deleted or deactivated one
    /// ends the caller's session (`Revoked`), as its tokens are refused.
    pub(super) async fn live_user(&self, user_id: i64) -> Result<UserRecord, AuthError> {
        self.store
            .user_by_id(user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(AuthError::Token(TokenRejection::Revoked))
    }

    /// The caller's live account, if `password` is its password.
    ///
    /// Guesses count on this session's own counter, which decides, and on
    /// the account's shared one, so a stolen session's guesses throttle
    /// logins from unknown clients too, while failures elsewhere cannot
    /// stop the user, signed in here, from changing a password under
    /// attack. A right password clears the session's counter and takes its
    /// own guess back from the account's (the failures of others stay).
    pub(super) async fn reauthenticate(
        &self,
        caller: &Principal,
        password: Password,
        how: Reauth,
    ) -> Result<UserRecord, AuthError> {
        if !self.hasher.has_room().await {
            return Err(AuthError::Overloaded);
        }
        let user = self.live_user(caller.user.id).await?;
        let now = self.clock.now();
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
        let verdict = self
            .throttle
            .verdict(now, &[(&attempts, self.throttle.per_account)]);
        if let Some(retry_after) = verdict {
            tracing::warn!(target: "latchkey::security", event = how.throttled_event, user_id = user.id, retry_after);
            return Err(AuthError::Throttled { retry_after });
        }
        let within_limit = password.expose().chars().count() <= self.passwords.max_length;
        let stored = within_limit.then(|| user.password_hash.clone());
        let verified = match self.hasher.verify(password, stored).await {
            Ok(verified) => verified,
            Err(e) => {
                self.store
                    .throttle_settle(&[], &[&session_key, &account_key])
                    .await?;
                return Err(e.into());
            }
        };
        if !verified {
            tracing::info!(target: "latchkey::security", event = how.failed_event, user_id = user.id);
            return Err(AuthError::Invalid(FieldErrors::one(how.field, how.message)));
        }
        self.store
            .throttle_settle(&[&session_key], &[&account_key])
            .await?;
        Ok(user)
    }
}
