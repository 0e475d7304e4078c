//! The sender's side of `mail_outbox`: claiming due messages under a lease
//! (on every instance at once), their delivery, retry or failure, and the
//! operator's listing. Messages are queued by the transactions in
//! `mail.rs`, with the change they announce.

use sqlx::Row as _;

use super::{Backend, Store, StoreError};

/// A message claimed for delivery.
pub struct ClaimedMessage {
    /// Outbox id.
    pub id: i64,
    /// The address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// Delivery attempts, this one included.
    pub attempts: i64,
    /// Queue time.
    pub created_at: i64,
}

impl std::fmt::Debug for ClaimedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body holds a token.
        f.debug_struct("ClaimedMessage")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// An outbox row as the operator's listing shows it (never a body).
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    /// Outbox id.
    pub id: i64,
    /// Template.
    pub kind: String,
    /// The address.
    pub recipient: String,
    /// `queued` or `failed`.
    pub state: String,
    /// Queue time.
    pub created_at: i64,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Next attempt (queued messages).
    pub next_attempt_at: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
}

const CLAIM_POSTGRES: &str = "UPDATE mail_outbox SET claimed_until = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM mail_outbox \
                  WHERE state = 'queued' AND next_attempt_at <= $1 \
                    AND (claimed_until IS NULL OR claimed_until <= $1) \
                  ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
     RETURNING id, recipient, subject, body_text, body_html, attempts, created_at";

// SQLite has one writer, so the statement is atomic as it stands.
const CLAIM_SQLITE: &str = "UPDATE mail_outbox SET claimed_until = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM mail_outbox \
                  WHERE state = 'queued' AND next_attempt_at <= $1 \
                    AND (claimed_until IS NULL OR claimed_until <= $1) \
                  ORDER BY next_attempt_at, id LIMIT $3) \
     RETURNING id, recipient, subject, body_text, body_html, attempts, created_at";

impl Store {
    /// The notification this store gives when it queues mail (the local
    /// sender waits on it between polls).
    pub fn outbox_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    /// Claim up to `limit` due messages until `lease_until`: no other
    /// sender (on any instance) takes them before then.
    pub async fn claim_mail(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let statement = match self.backend {
            Backend::Postgres => CLAIM_POSTGRES,
            Backend::Sqlite => CLAIM_SQLITE,
        };
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(statement)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedMessage {
                    id: r.try_get(0)?,
                    recipient: r.try_get(1)?,
                    subject: r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                    text: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
                    html: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
                    attempts: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Message `id` was delivered: its row (and body) goes.
    pub async fn mail_delivered(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Message `id` failed for now: try again at `next_attempt_at`.
    pub async fn mail_retry_at(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $2, claimed_until = NULL, last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Message `id` failed for good: its body goes, the envelope and the
    /// error stay for the operator.
    pub async fn mail_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mail_outbox SET state = 'failed', subject = NULL, body_text = NULL, body_html = NULL, \
               claimed_until = NULL, last_error = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// When the oldest queued message was queued, if any is.
    pub async fn oldest_queued_mail(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MIN(created_at) FROM mail_outbox WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    /// Every outbox row, oldest first (no bodies).
    pub async fn list_mail(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, recipient, state, created_at, attempts, next_attempt_at, last_error \
             FROM mail_outbox ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    recipient: r.try_get(2)?,
                    state: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    next_attempt_at: r.try_get(6)?,
                    last_error: r.try_get(7)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Make queued message `id` due now; false when no queued message has it.
    pub async fn retry_mail_now(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $2, claimed_until = NULL WHERE id = $1 AND state = 'queued'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Delete message `id`; false when there is none.
    pub async fn drop_mail(&self, id: i64) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }
}
