//! Email verification: the link registration mails, its resend, and the
//! optional rule that an unverified address cannot log in.

use super::mail::{EmailToken, Kind, Purpose, TokenMail};
use super::recovery::invalid_token;
use super::{Auth, AuthError, Principal};

/// What `POST /auth/email/verify/resend` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// A new link is on its way.
    Sent,
    /// The address is verified already; nothing was sent.
    AlreadyVerified,
}

impl Auth {
    /// The verification mail for a new account's `email`.
    pub(super) fn verification_mail(
        &self,
        email: &str,
        name: &str,
        now: i64,
    ) -> Result<TokenMail, AuthError> {
        Ok(self.mail.token_mail(
            Purpose::VerifyEmail,
            Kind::VerifyEmail,
            email,
            &[("name", name), ("email", email)],
            now,
        )?)
    }

    /// Whether registration hands out tokens (not when verified addresses
    /// are required).
    pub(super) fn registration_logs_in(&self) -> bool {
        !self.mail.require_verified_email
    }

    /// Refuse a login (after the password matched) when verified addresses
    /// are required and `user_id`'s is not.
    pub(super) async fn check_verified_for_login(&self, user_id: i64) -> Result<(), AuthError> {
        if self.mail.require_verified_email
            && !self.store.email_verified(user_id).await?.unwrap_or(false)
        {
            tracing::info!(target: "latchkey::security", event = "login_unverified", user_id);
            return Err(AuthError::EmailNotVerified);
        }
        Ok(())
    }

    /// `POST /auth/email/verify`: use up a verification token and mark its
    /// address verified.
    pub async fn verify_email(&self, token: &EmailToken) -> Result<(), AuthError> {
        if !self
            .store
            .verify_email(&token.hash(), self.clock.now())
            .await?
        {
            return Err(invalid_token());
        }
        Ok(())
    }

    /// `POST /auth/email/verify/resend`: mail the caller a new verification
    /// link, at most `per_email` times per window (429 beyond).
    pub async fn resend_verification(&self, caller: &Principal) -> Result<Resent, AuthError> {
        let user = self.live_user(caller.user.id).await?;
        if self.store.email_verified(user.id).await? == Some(true) {
            return Ok(Resent::AlreadyVerified);
        }
        let now = self.clock.now();
        let key = format!("user:{}:mail", user.id);
        let [window] = self
            .store
            .throttle_hit([&key], now, self.mail.window_seconds)
            .await?;
        if window.attempts > i64::from(self.mail.per_email) {
            let retry_after = window.window_start + self.mail.window_seconds - now;
            return Err(AuthError::Throttled {
                retry_after: retry_after.max(1).unsigned_abs(),
            });
        }
        let mail = self.verification_mail(&user.email, &user.name, now)?;
        self.store
            .queue_mail(
                &[mail.token(user.id, now)],
                &[mail.rendered.message(user.id, now)],
            )
            .await?;
        self.metrics.mail_queued(1);
        Ok(Resent::Sent)
    }
}
