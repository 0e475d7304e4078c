//! The `email_tokens` table, and the account changes that are written in
//! one transaction with the mail announcing them (registration's
//! verification link, a password reset, an email change), each queued in
//! `mail_outbox` (whose sender side is `outbox.rs`).

use sqlx::Row as _;

use super::statements::{insert_session, revoke_all_of};
use super::users::{insert_user, user_from_row, NewUser, UserRecord};
use super::{NewRefreshToken, NewSession, Store, StoreError};

/// A mailed token about to be stored (its hash only).
#[derive(Clone, Copy)]
pub struct NewEmailToken<'a> {
    /// SHA-256 of the token, hex.
    pub token_hash: &'a str,
    /// Whose it is (0 when the user is being created in the same transaction).
    pub user_id: i64,
    /// What it is for (`password_reset`, `verify_email`, `change_email`).
    pub purpose: &'a str,
    /// The address it is mailed to.
    pub email: &'a str,
    /// Creation time.
    pub now: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// A message about to be queued.
#[derive(Clone, Copy)]
pub struct NewMessage<'a> {
    /// Whose mail it is (0 when the user is being created in the same
    /// transaction); deleting the user deletes it.
    pub user_id: i64,
    /// The template it was made from.
    pub kind: &'a str,
    /// The address.
    pub recipient: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// Plain-text body.
    pub text: &'a str,
    /// HTML body.
    pub html: &'a str,
    /// Queue time.
    pub now: i64,
}

/// A stored token that is neither used nor expired.
#[derive(Debug, Clone)]
pub struct EmailTokenRecord {
    /// Whose it is.
    pub user_id: i64,
    /// The address it was mailed to.
    pub email: String,
}

fn insert_token<'q>(
    t: &'q NewEmailToken<'q>,
    user_id: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.token_hash)
    .bind(user_id)
    .bind(t.purpose)
    .bind(t.email)
    .bind(t.now)
    .bind(t.expires_at)
}

/// The `INSERT` of a queued message (also run by the second factor's
/// transactions, for their notices).
pub(super) fn insert_message<'q>(
    m: &'q NewMessage<'q>,
    user_id: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(
        "INSERT INTO mail_outbox (user_id, kind, recipient, subject, body_text, body_html, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(user_id)
    .bind(m.kind)
    .bind(m.recipient)
    .bind(m.subject)
    .bind(m.text)
    .bind(m.html)
    .bind(m.now)
}

/// Mark token `hash` of `purpose` used, if it is live at `now`; its user.
async fn consume_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    hash: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "UPDATE email_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING user_id",
    )
    .bind(hash)
    .bind(purpose)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Use up every live token of `purpose` of `user_id`.
async fn use_up_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    purpose: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE email_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Store `tokens` and queue `messages` in one transaction, then wake
    /// this instance's sender.
    pub async fn queue_mail(
        &self,
        tokens: &[NewEmailToken<'_>],
        messages: &[NewMessage<'_>],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for token in tokens {
            insert_token(token, token.user_id).execute(&mut *tx).await?;
        }
        for message in messages {
            insert_message(message, message.user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// A transaction of the same shape as [`Store::queue_mail`] that writes
    /// nothing: what a password reset for an unknown address costs, so it
    /// takes as long as one for a real account.
    pub async fn queue_nothing(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM email_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mail_outbox WHERE id = -1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Insert a user with their verification token and its message, and,
    /// when `session` is given, their first session, all in one
    /// transaction. [`StoreError::Duplicate`] as [`Store::create_user`].
    pub async fn create_user_with_mail(
        &self,
        user: &NewUser<'_>,
        session: Option<(&NewSession<'_>, &NewRefreshToken<'_>)>,
        token: &NewEmailToken<'_>,
        message: &NewMessage<'_>,
    ) -> Result<UserRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let created = user_from_row(&insert_user(user).fetch_one(&mut *tx).await?)?;
        if let Some((session, first)) = session {
            let session = NewSession {
                user_id: created.id,
                ..*session
            };
            insert_session(&mut tx, &session, first, &self.fresh_user_agents, false).await?;
        }
        insert_token(token, created.id).execute(&mut *tx).await?;
        insert_message(message, created.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.outbox_wake.notify_one();
        Ok(created)
    }

    /// The live (unused, unexpired) token `hash` of `purpose`.
    pub async fn email_token(
        &self,
        hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, email FROM email_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| {
                Ok::<_, sqlx::Error>(EmailTokenRecord {
                    user_id: r.try_get(0)?,
                    email: r.try_get(1)?,
                })
            })
            .transpose()?)
    }

    /// Complete a password reset in one transaction: use up token `hash`
    /// (and every other reset token of the user), set the new hash, count
    /// `email` as verified if it is still the user's, end every session,
    /// clear the account's login counters and queue `notice`. The number of
    /// sessions ended, or `None` when the token was used meanwhile.
    pub async fn reset_password(
        &self,
        hash: &str,
        password_hash: &str,
        email: &str,
        now: i64,
        notice: &NewMessage<'_>,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(user_id) = consume_token(&mut tx, hash, "password_reset", now).await? else {
            return Ok(None);
        };
        use_up_tokens(&mut tx, user_id, "password_reset", now).await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, \
               email_verified = CASE WHEN email = $2 THEN 1 ELSE email_verified END \
             WHERE id = $3",
        )
        .bind(super::stored_hashes::encode(password_hash))
        .bind(email)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        let revoked = revoke_all_of(&mut tx, user_id, now, "password reset", None).await?;
        delete_throttle_of(&mut tx, user_id).await?;
        insert_message(notice, user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        self.forget_cached_sessions(revoked);
        self.outbox_wake.notify_one();
        Ok(Some(revoked))
    }

    /// Use up verification token `hash` and mark its address verified, if
    /// the address is still its user's; false for an unknown, used or
    /// expired token (or an address changed since).
    pub async fn verify_email(&self, hash: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE email_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND purpose = 'verify_email' AND used_at IS NULL AND expires_at > $2 \
             RETURNING user_id, email",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let (user_id, email): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        let updated =
            sqlx::query("UPDATE users SET email_verified = 1 WHERE id = $1 AND email = $2")
                .bind(user_id)
                .bind(&email)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if updated != 1 {
            return Ok(false);
        }
        use_up_tokens(&mut tx, user_id, "verify_email", now).await?;
        tx.commit().await?;
        // Cached sessions carry `email_verified`.
        self.sessions.invalidate();
        Ok(true)
    }

    /// Use up email-change token `hash` of `user_id` and give the user the
    /// new address (verified). False when the token was used meanwhile;
    /// [`StoreError::Duplicate`] when the address is taken (nothing changes).
    pub async fn change_email(
        &self,
        hash: &str,
        user_id: i64,
        (email, email_key): (&str, &str),
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if consume_token(&mut tx, hash, "change_email", now).await? != Some(user_id) {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE users SET email = $1, email_key = $2, email_verified = 1 WHERE id = $3",
        )
        .bind(email)
        .bind(email_key)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        use_up_tokens(&mut tx, user_id, "change_email", now).await?;
        use_up_tokens(&mut tx, user_id, "verify_email", now).await?;
        tx.commit().await?;
        // Cached sessions carry the email.
        self.sessions.invalidate();
        Ok(true)
    }

    /// Whether user `id`'s address is verified (`None`: no such user).
    pub async fn email_verified(&self, id: i64) -> Result<Option<bool>, StoreError> {
        let row = sqlx::query("SELECT email_verified FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .map(|v| v != 0))
    }

    /// Mark user `id`'s address verified (the operator's say-so).
    pub async fn mark_email_verified(&self, id: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE users SET email_verified = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(updated == 1)
    }

    /// Rename user `id`; [`StoreError::Duplicate`] when the name is taken.
    pub async fn rename_user(
        &self,
        id: i64,
        name: &str,
        name_key: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET name = $1, name_key = $2 WHERE id = $3")
            .bind(name)
            .bind(name_key)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        // Cached sessions carry the name.
        self.sessions.invalidate();
        Ok(updated == 1)
    }

    /// Delete user `id` and everything of theirs (sessions and refresh
    /// tokens, mailed tokens, queued mail, known clients, login counters)
    /// in one transaction, freeing the email and name. The number of live
    /// sessions ended, or `None` for an unknown id.
    pub async fn delete_user(&self, id: i64, now: i64) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        delete_throttle_of(&mut tx, id).await?;
        // Everything else refers to the user with ON DELETE CASCADE.
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        // Every instance refuses the tokens: the sessions are gone, and the
        // cache here forgets them now (elsewhere within its TTL).
        self.sessions.invalidate();
        Ok((deleted == 1).then_some(live.unsigned_abs()))
    }
}

/// Delete every login counter of account `user_id`.
async fn delete_throttle_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1 OR key LIKE $2")
        .bind(format!("user:{user_id}"))
        .bind(format!("user:{user_id}:%"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
