//! Housekeeping: removing rows that can never matter again. Runs beside a
//! serving instance, in small batches, so it never holds a long lock.

use super::{Store, StoreError};

/// What one flush removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Sessions past their expiry (their refresh tokens go with them).
    pub sessions: u64,
    /// Refresh tokens past their expiry in sessions that live on.
    pub refresh_tokens: u64,
    /// Throttle counters whose window has ended, and known login clients
    /// not seen for [`KNOWN_CLIENT_MAX_AGE_SECONDS`](super::KNOWN_CLIENT_MAX_AGE_SECONDS).
    pub throttle_counters: u64,
    /// Ids of SimpleJWT tokens (blacklisted or redeemed) past their expiry.
    pub legacy_tokens: u64,
    /// Passkey ceremonies past their expiry (answers to them are refused
    /// by their `expires_at` already).
    pub passkey_challenges: u64,
}

/// Rows deleted per statement.
const BATCH: i64 = 1_000;

impl Store {
    /// Delete expired sessions (with their refresh tokens), expired refresh
    /// tokens, and throttle counters older than `throttle_window` seconds.
    /// Expired tokens are refused by their `exp` claim before any lookup, so
    /// deleting their rows changes no answer.
    pub async fn flush_expired(
        &self,
        now: i64,
        throttle_window: i64,
    ) -> Result<Flushed, StoreError> {
        // Tokens first, so the session deletes cascade over fewer rows.
        let refresh_tokens = self
            .delete_in_batches(
                "DELETE FROM refresh_tokens WHERE jti IN \
                 (SELECT jti FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2)",
                now,
            )
            .await?;
        let sessions = self
            .delete_in_batches(
                "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2)",
                now,
            )
            .await?;
        let throttle_counters = self
            .delete_in_batches(
                "DELETE FROM login_throttle WHERE key IN \
                 (SELECT key FROM login_throttle WHERE window_start <= $1 LIMIT $2)",
                now - throttle_window,
            )
            .await?;
        // Known login clients are remembered as long as device cookies live.
        let known_clients = self
            .delete_in_batches(
                "DELETE FROM known_clients WHERE (user_id, client_key) IN \
                 (SELECT user_id, client_key FROM known_clients WHERE last_success_at <= $1 LIMIT $2)",
                now - super::KNOWN_CLIENT_MAX_AGE_SECONDS,
            )
            .await?;
        let legacy_tokens = self
            .delete_in_batches(
                "DELETE FROM legacy_tokens WHERE jti IN \
                 (SELECT jti FROM legacy_tokens WHERE expires_at <= $1 LIMIT $2)",
                now,
            )
            .await?;
        let passkey_challenges = self
            .delete_in_batches(
                "DELETE FROM passkey_challenges WHERE id IN \
                 (SELECT id FROM passkey_challenges WHERE expires_at <= $1 LIMIT $2)",
                now,
            )
            .await?;
        Ok(Flushed {
            sessions,
            refresh_tokens,
            throttle_counters: throttle_counters + known_clients,
            legacy_tokens,
            passkey_challenges,
        })
    }

    async fn delete_in_batches(
        &self,
        statement: &'static str,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(statement)
                .bind(cutoff)
                .bind(BATCH)
                .execute(&self.writer)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
