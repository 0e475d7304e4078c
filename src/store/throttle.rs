//! The `login_throttle` table: fixed-window attempt counters. Kept in the
//! database so that every instance sharing it enforces one limit.

use sqlx::Row as _;

use super::{Store, StoreError};

/// A counter after an attempt was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    /// Attempts counted in the current window, this one included.
    pub attempts: i64,
    /// When the current window began.
    pub window_start: i64,
}

impl Store {
    /// Count one attempt against `key` in a window of `window` seconds,
    /// starting a new window when the old one has passed. Atomic, so racing
    /// attempts are all counted.
    pub async fn throttle_hit(
        &self,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<ThrottleWindow, StoreError> {
        // Both engines evaluate every SET expression against the old row.
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, window_start, attempts) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               attempts = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.attempts + 1 END, \
               window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END \
             RETURNING attempts, window_start",
        )
        .bind(key)
        .bind(now)
        .bind(now - window)
        .fetch_one(&self.writer)
        .await?;
        Ok(ThrottleWindow {
            attempts: row.try_get(0)?,
            window_start: row.try_get(1)?,
        })
    }

    /// Take back one attempt counted against `key` (a login that succeeded).
    pub async fn throttle_forgive(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_throttle SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
        )
        .bind(key)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Forget every attempt counted against `key`.
    pub async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
