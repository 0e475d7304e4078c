//! The caller's own account: the profile `/auth/me` shows, renaming,
//! changing the email address (confirmed by the new address, announced to
//! the old one), and deleting the account.

use super::identity::{Email, Name};
use super::mail::{EmailToken, Kind, Purpose};
use super::password::Password;
use super::reauth::{Reauth, WRONG_PASSWORD};
use super::recovery::invalid_token;
use super::{view, Auth, AuthError, FieldErrors, Principal, TokenRejection, UserView};
use crate::metrics::Revocation;
use crate::store::UserRecord;

/// The caller as `/auth/me` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Id, email, name.
    pub user: UserView,
    /// Whether the address is verified.
    pub email_verified: bool,
}

/// How the email change and the account deletion name a wrong password.
const CURRENT_PASSWORD: Reauth = Reauth {
    field: "password",
    message: WRONG_PASSWORD,
    failed_event: "password_check_failed",
    throttled_event: "password_check_throttled",
};

impl Auth {
    /// The caller's profile.
    /// `GET /auth/me`: the caller as the session lookup found them (one
    /// indexed query, or none from the session cache: this is the hottest
    /// route), so no further query.
    pub fn profile(&self, caller: &Principal) -> Profile {
        Profile {
            user: caller.user.clone(),
            email_verified: caller.email_verified,
        }
    }

    async fn profile_of(&self, user: &UserRecord) -> Result<Profile, AuthError> {
        let email_verified = self
            .store
            .email_verified(user.id)
            .await?
            .ok_or(AuthError::Token(TokenRejection::Revoked))?;
        Ok(Profile {
            user: view(user),
            email_verified,
        })
    }

    /// `PATCH /auth/me`: rename the caller, with registration's rules.
    pub async fn rename(&self, caller: &Principal, name: &Name) -> Result<Profile, AuthError> {
        if !self
            .store
            .rename_user(caller.user.id, name.as_str(), &name.lookup_key())
            .await?
        {
            return Err(AuthError::Token(TokenRejection::Revoked));
        }
        let user = self.live_user(caller.user.id).await?;
        self.profile_of(&user).await
    }

    /// `POST /auth/email/change`: after the current password, mail a
    /// confirmation link to the new address and a notice to the current
    /// one (one transaction). The address changes only on confirmation.
    pub async fn request_email_change(
        &self,
        caller: &Principal,
        email: &Email,
        password: Password,
    ) -> Result<(), AuthError> {
        let user = self
            .reauthenticate(caller, password, CURRENT_PASSWORD)
            .await?;
        let key = email.lookup_key();
        if key
            == Email::parse(&user.email)
                .map(|e| e.lookup_key())
                .unwrap_or_default()
        {
            return Err(AuthError::Invalid(FieldErrors::one(
                "email",
                "This is already your email address.",
            )));
        }
        if self.store.user_by_email(&key).await?.is_some() {
            return Err(AuthError::Invalid(FieldErrors::one(
                "email",
                "user with this email already exists.",
            )));
        }
        let now = self.clock.now();
        let vars = [
            ("name", user.name.as_str()),
            ("email", user.email.as_str()),
            ("new_email", email.as_str()),
        ];
        let confirm = self.mail.token_mail(
            Purpose::ChangeEmail,
            Kind::ChangeEmail,
            email.as_str(),
            &vars,
            now,
        )?;
        let notice = self
            .mail
            .render(Kind::EmailChangeNotice, &user.email, &vars);
        self.store
            .queue_mail(
                &[confirm.token(user.id, now)],
                &[
                    confirm.rendered.message(user.id, now),
                    notice.message(user.id, now),
                ],
            )
            .await?;
        self.metrics.mail_queued(2);
        tracing::info!(target: "latchkey::security", event = "email_change_requested", user_id = user.id);
        Ok(())
    }

    /// `POST /auth/email/change/confirm`: give the user the address the
    /// token was mailed to (verified). A taken address → the duplicate
    /// email error, and nothing changes.
    pub async fn confirm_email_change(&self, token: &EmailToken) -> Result<(), AuthError> {
        let now = self.clock.now();
        let hash = token.hash();
        let record = self
            .store
            .email_token(&hash, Purpose::ChangeEmail.as_str(), now)
            .await?
            .ok_or_else(invalid_token)?;
        let email = Email::parse(&record.email).map_err(|_| invalid_token())?;
        if !self
            .store
            .change_email(
                &hash,
                record.user_id,
                (email.as_str(), &email.lookup_key()),
                now,
            )
            .await?
        {
            return Err(invalid_token());
        }
        tracing::info!(target: "latchkey::security", event = "email_changed", user_id = record.user_id);
        Ok(())
    }

    /// `DELETE /auth/me`: after the current password, delete the caller's
    /// account and everything of it; every session ends.
    pub async fn delete_account(
        &self,
        caller: &Principal,
        password: Password,
    ) -> Result<(), AuthError> {
        let user = self
            .reauthenticate(caller, password, CURRENT_PASSWORD)
            .await?;
        let ended = self
            .store
            .delete_user(user.id, self.clock.now())
            .await?
            .ok_or(AuthError::Token(TokenRejection::Revoked))?;
        self.metrics.revoked(Revocation::AccountDeleted, ended);
        tracing::info!(target: "latchkey::security", event = "account_deleted", user_id = user.id, sessions_ended = ended);
        Ok(())
    }
}
