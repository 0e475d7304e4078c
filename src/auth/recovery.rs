//! Password reset by email (OWASP's Forgot Password Cheat Sheet): the
//! request answers the same, in the same time, whether or not the address
//! has an account; the link's token is single use, expires, and is stored
//! only as a hash; a refused new password leaves it usable.

use super::identity::Email;
use super::mail::{EmailToken, Kind, Purpose};
use super::password::Password;
use super::{hash_new_password, throttle, Auth, AuthError, ClientInfo, FieldErrors};
use crate::metrics::Revocation;

/// The message for a token that is unknown, used up or expired.
pub const INVALID_TOKEN: &str = "Invalid or expired token.";

/// The error for a bad token field.
pub(super) fn invalid_token() -> AuthError {
    AuthError::Invalid(FieldErrors::one("token", INVALID_TOKEN))
}

impl Auth {
    /// `POST /auth/password/reset`: mail a reset link if `email` belongs to
    /// an active account. Every request, for any address, does the same
    /// work: one throttle write, one user lookup, one rendered message and
    /// one transaction (which writes the token and the message only for a
    /// real account). Beyond the limit per address the request is answered
    /// the same and nothing is sent; beyond the limit per client, 429 —
    /// counted alike for every address, so neither tells an account apart.
    pub async fn request_password_reset(
        &self,
        email: &Email,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let key = email.lookup_key();
        let email_key = format!("mail:email:{key}");
        let client_key = format!("mail:{}", throttle::address_key(client.addr));
        let [per_email, per_client] = self
            .store
            .throttle_hit([&email_key, &client_key], now, self.mail.window_seconds)
            .await?;
        if per_client.attempts > i64::from(self.mail.per_address) {
            let retry_after = per_client.window_start + self.mail.window_seconds - now;
            tracing::warn!(target: "latchkey::security", event = "password_reset_throttled", client = %client.addr, retry_after);
            return Err(AuthError::Throttled {
                retry_after: retry_after.max(1).unsigned_abs(),
            });
        }
        let user = self
            .store
            .user_by_email(&key)
            .await?
            .filter(|u| u.is_active);
        let name = user.as_ref().map_or("", |u| u.name.as_str());
        let recipient = user.as_ref().map_or(email.as_str(), |u| u.email.as_str());
        let mail = self.mail.token_mail(
            Purpose::PasswordReset,
            Kind::PasswordReset,
            recipient,
            &[("name", name), ("email", recipient)],
            now,
        )?;
        let within_limit = per_email.attempts <= i64::from(self.mail.per_email);
        match user {
            Some(user) if within_limit => {
                self.store
                    .queue_mail(
                        &[mail.token(user.id, now)],
                        &[mail.rendered.message(user.id, now)],
                    )
                    .await?;
                self.metrics.mail_queued(1);
                tracing::info!(target: "latchkey::security", event = "password_reset_requested", user_id = user.id);
            }
            Some(user) => {
                self.store.queue_nothing(&mail.token_hash).await?;
                tracing::warn!(target: "latchkey::security", event = "password_reset_suppressed", user_id = user.id);
            }
            None => self.store.queue_nothing(&mail.token_hash).await?,
        }
        Ok(())
    }

    /// `POST /auth/password/reset/confirm`: set a new password with a reset
    /// token. On success every reset token of the user is used up, every
    /// session ends, the address counts as verified, the login counters
    /// are cleared and a notice is mailed, all in one transaction.
    pub async fn confirm_password_reset(
        &self,
        token: &EmailToken,
        new_password: Password,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let hash = token.hash();
        let record = self
            .store
            .email_token(&hash, Purpose::PasswordReset.as_str(), now)
            .await?
            .ok_or_else(invalid_token)?;
        let user = self
            .store
            .user_by_id(record.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or_else(invalid_token)?;
        // A refused password returns here, the token unused.
        let password_hash = hash_new_password(
            &self.hasher,
            &self.passwords,
            new_password,
            (&user.name, &user.email),
            "new_password",
        )
        .await?;
        let notice = self.mail.render(
            Kind::PasswordChanged,
            &user.email,
            &[("name", &user.name), ("email", &user.email)],
        );
        let ended = self
            .store
            .reset_password(
                &hash,
                &password_hash,
                &record.email,
                now,
                &notice.message(user.id, now),
            )
            .await?
            .ok_or_else(invalid_token)?;
        self.metrics.mail_queued(1);
        self.metrics.revoked(Revocation::PasswordReset, ended);
        tracing::info!(target: "latchkey::security", event = "password_reset", user_id = user.id, sessions_ended = ended);
        Ok(())
    }
}
