//! The second factor's tables: `mfa_totp` (sealed secrets and the last
//! accepted step), `mfa_recovery_codes` (hashes) and `mfa_challenges`
//! (logins waiting for their second factor). Every "once only" rule is a
//! conditional write, so two instances cannot both accept one code.

use sqlx::Row as _;

use super::{Store, StoreError};

/// A user's TOTP row.
#[derive(Clone)]
pub struct TotpRecord {
    /// The sealed secret.
    pub secret_sealed: String,
    /// Whether enrolment was confirmed (login needs a second factor).
    pub confirmed: bool,
}

/// What `GET /auth/mfa` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaState {
    /// A confirmed TOTP secret.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Registered passkeys.
    pub passkeys: i64,
}

/// A login waiting for its second factor.
#[derive(Debug, Clone)]
pub struct ChallengeRecord {
    /// The user who gave the right password.
    pub user_id: i64,
    /// Digest of the password hash the login proved.
    pub password_digest: String,
    /// The login's account throttle counter.
    pub account_key: String,
    /// The login's address throttle counter.
    pub address_key: String,
}

/// A new challenge.
pub struct NewChallenge<'a> {
    /// SHA-256 of the mfa_token.
    pub token_hash: &'a str,
    /// The user.
    pub user_id: i64,
    /// Digest of the password hash the login proved.
    pub password_digest: &'a str,
    /// The login's account throttle counter.
    pub account_key: &'a str,
    /// The login's address throttle counter.
    pub address_key: &'a str,
    /// When it dies.
    pub expires_at: i64,
}

/// The proof a second step presents, checked by a conditional write.
pub enum Proof<'a> {
    /// A TOTP code of this time step (accepted if newer than the last).
    TotpStep(i64),
    /// The hash of a recovery code (accepted if unused).
    RecoveryHash(&'a str),
}

/// How a second step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The challenge and the proof are consumed.
    Done,
    /// The challenge expired, died, or was used meanwhile.
    ChallengeGone,
    /// The step was already used, or the recovery code is not (or no longer) valid.
    ProofRefused,
}

/// Who orders itself against a TOTP confirmation (see
/// [`Store::lock_second_factor_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LockFor {
    /// A password login about to start a session if the user has no second
    /// factor.
    Login,
    /// The confirmation of a user's TOTP enrolment.
    Confirmation,
}

impl Store {
    /// Order a password login's session start and a TOTP confirmation of
    /// `user_id` one after the other, inside the caller's transaction
    /// (`tx`), so that the login either sees the confirmation (and starts
    /// no session) or commits its session before the confirmation ends the
    /// user's other sessions.
    ///
    /// On SQLite the one writer already runs them in turn. On PostgreSQL
    /// (read committed) neither would otherwise see the other's uncommitted
    /// rows, so both lock the user's row first, in a statement of its own:
    /// the login in `FOR KEY SHARE`, the confirmation `FOR UPDATE`, which
    /// conflict. Whichever waits takes its next statement's snapshot after
    /// the other committed.
    pub(super) async fn lock_second_factor_of(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        user_id: i64,
        by: LockFor,
    ) -> Result<(), StoreError> {
        if self.backend != super::Backend::Postgres {
            return Ok(());
        }
        let statement = match by {
            LockFor::Login => "SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE",
            LockFor::Confirmation => "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
        };
        sqlx::query(statement)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(())
    }

    /// The TOTP row of `user_id`, if any.
    pub async fn totp_of(&self, user_id: i64) -> Result<Option<TotpRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT secret_sealed, CASE WHEN confirmed_at IS NULL THEN 0 ELSE 1 END \
             FROM mfa_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TotpRecord {
                secret_sealed: row.try_get(0)?,
                confirmed: row.try_get::<i64, _>(1)? == 1,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// The second factors of `user_id`.
    pub async fn mfa_state(&self, user_id: i64) -> Result<MfaState, StoreError> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL), \
               (SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1), \
               (SELECT COUNT(*) FROM passkeys WHERE user_id = $1)",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(MfaState {
            totp: row.try_get::<i64, _>(0)? > 0,
            recovery_codes_left: row.try_get(1)?,
            passkeys: row.try_get(2)?,
        })
    }

    /// Store a pending secret for `user_id`, replacing a pending one; false
    /// (nothing written) when a confirmed secret exists.
    pub async fn start_totp_enrolment(
        &self,
        user_id: i64,
        secret_sealed: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let written = sqlx::query(
            "INSERT INTO mfa_totp (user_id, secret_sealed, created_at, confirmed_at, last_step) \
             VALUES ($1, $2, $3, NULL, -1) \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = $2, created_at = $3, last_step = -1 \
             WHERE mfa_totp.confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(secret_sealed)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(written == 1)
    }

    /// Confirm `user_id`'s pending secret with a code of `step`, store the
    /// first recovery codes (replacing any), end every other session of the
    /// user but `keep` and queue `notice`, in one transaction. The sessions
    /// ended, or `None` when nothing was pending.
    pub async fn confirm_totp(
        &self,
        user_id: i64,
        step: i64,
        code_hashes: &[String],
        now: i64,
        keep: &str,
        notice: &super::NewMessage<'_>,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        self.lock_second_factor_of(&mut tx, user_id, LockFor::Confirmation)
            .await?;
        let confirmed = sqlx::query(
            "UPDATE mfa_totp SET confirmed_at = $1, last_step = $2 \
             WHERE user_id = $3 AND confirmed_at IS NULL",
        )
        .bind(now)
        .bind(step)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if confirmed != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        replace_codes(&mut tx, user_id, code_hashes).await?;
        let revoked =
            super::statements::revoke_all_of(&mut tx, user_id, now, "mfa enabled", Some(keep))
                .await?;
        super::mail::insert_message(notice, user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.outbox_wake.notify_one();
        self.forget_cached_sessions(revoked);
        Ok(Some(revoked))
    }

    /// Remove every second factor of `user_id` (secret, recovery codes,
    /// waiting logins), end every session but `keep` and queue `notice` if
    /// there was a secret, in one transaction. Whether there was a secret,
    /// and the sessions ended.
    pub async fn remove_mfa(
        &self,
        user_id: i64,
        now: i64,
        keep: Option<&str>,
        notice: Option<&super::NewMessage<'_>>,
    ) -> Result<(bool, u64), StoreError> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for statement in [
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
            "DELETE FROM mfa_challenges WHERE user_id = $1",
        ] {
            sqlx::query(statement)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        let revoked =
            super::statements::revoke_all_of(&mut tx, user_id, now, "mfa disabled", keep).await?;
        let notice = notice.filter(|_| removed > 0);
        if let Some(notice) = notice {
            super::mail::insert_message(notice, user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if notice.is_some() {
            self.outbox_wake.notify_one();
        }
        self.forget_cached_sessions(revoked);
        Ok((removed > 0, revoked))
    }

    /// Replace `user_id`'s recovery codes, if a confirmed secret exists
    /// (false otherwise, nothing written).
    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        code_hashes: &[String],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let enabled =
            sqlx::query("SELECT 1 FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if !enabled {
            tx.rollback().await?;
            return Ok(false);
        }
        replace_codes(&mut tx, user_id, code_hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Record a login waiting for its second factor (and forget every
    /// expired one).
    pub async fn create_mfa_challenge(
        &self,
        challenge: &NewChallenge<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO mfa_challenges (token_hash, user_id, password_digest, account_key, address_key, expires_at, failures) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(challenge.token_hash)
        .bind(challenge.user_id)
        .bind(challenge.password_digest)
        .bind(challenge.account_key)
        .bind(challenge.address_key)
        .bind(challenge.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live challenge of `token_hash`: unexpired at `now`, with fewer
    /// than `max_failures` wrong codes.
    pub async fn mfa_challenge(
        &self,
        token_hash: &str,
        now: i64,
        max_failures: i64,
    ) -> Result<Option<ChallengeRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, password_digest, account_key, address_key FROM mfa_challenges \
             WHERE token_hash = $1 AND expires_at > $2 AND failures < $3",
        )
        .bind(token_hash)
        .bind(now)
        .bind(max_failures)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|row| {
            Ok(ChallengeRecord {
                user_id: row.try_get(0)?,
                password_digest: row.try_get(1)?,
                account_key: row.try_get(2)?,
                address_key: row.try_get(3)?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Count a wrong code against a challenge; at `max_failures` it dies.
    pub async fn mfa_challenge_failed(
        &self,
        token_hash: &str,
        max_failures: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE mfa_challenges SET failures = failures + 1 WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mfa_challenges WHERE token_hash = $1 AND failures >= $2")
            .bind(token_hash)
            .bind(max_failures)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Consume the proof and the challenge together, or neither.
    pub async fn finish_mfa_challenge(
        &self,
        token_hash: &str,
        user_id: i64,
        proof: Proof<'_>,
        now: i64,
        max_failures: i64,
    ) -> Result<Finish, StoreError> {
        let mut tx = self.begin_write().await?;
        let accepted = match proof {
            Proof::TotpStep(step) => sqlx::query(
                "UPDATE mfa_totp SET last_step = $1 \
                 WHERE user_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1",
            )
            .bind(step)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            Proof::RecoveryHash(hash) => {
                sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2")
                    .bind(user_id)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
        };
        if accepted != 1 {
            tx.rollback().await?;
            return Ok(Finish::ProofRefused);
        }
        let consumed = sqlx::query(
            "DELETE FROM mfa_challenges \
             WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3 AND failures < $4",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(max_failures)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if consumed != 1 {
            tx.rollback().await?;
            return Ok(Finish::ChallengeGone);
        }
        tx.commit().await?;
        Ok(Finish::Done)
    }
}

async fn replace_codes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    code_hashes: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for hash in code_hashes {
        sqlx::query("INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(hash)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
