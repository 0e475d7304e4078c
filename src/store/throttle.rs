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
    /// Count one attempt against each of `keys` in a window of `window`
    /// seconds, starting a new window where the old one has passed. One
    /// atomic statement, so racing attempts are all counted. The windows come
    /// back in the order of `keys`.
    pub async fn throttle_hit<const N: usize>(
        &self,
        keys: [&str; N],
        now: i64,
        window: i64,
    ) -> Result<[ThrottleWindow; N], StoreError> {
        // ($3, $1, 1), ($4, $1, 1), ...: one row per key.
        let rows: Vec<String> = (0..N).map(|i| format!("(${}, $1, 1)", i + 3)).collect();
        // Both engines evaluate every SET expression against the old row.
        let statement = format!(
            "INSERT INTO login_throttle (key, window_start, attempts) VALUES {} \
             ON CONFLICT (key) DO UPDATE SET \
               attempts = CASE WHEN login_throttle.window_start <= $2 THEN 1 ELSE login_throttle.attempts + 1 END, \
               window_start = CASE WHEN login_throttle.window_start <= $2 THEN $1 ELSE login_throttle.window_start END \
             RETURNING key, attempts, window_start",
            rows.join(", ")
        );
        let mut query = sqlx::query(&statement).bind(now).bind(now - window);
        for key in keys {
            query = query.bind(key);
        }
        let returned = query.fetch_all(&self.writer).await?;
        let mut windows = [ThrottleWindow {
            attempts: 0,
            window_start: now,
        }; N];
        for row in returned {
            let key: String = row.try_get(0)?;
            if let Some(i) = keys.iter().position(|k| *k == key) {
                windows[i] = ThrottleWindow {
                    attempts: row.try_get(1)?,
                    window_start: row.try_get(2)?,
                };
            }
        }
        Ok(windows)
    }

    /// Settle attempts counted by [`Store::throttle_hit`]: `clear` keys start
    /// over at zero (an account after a successful login), `forgive` keys
    /// take one attempt back (an address whose attempt turned out fine).
    pub async fn throttle_settle(
        &self,
        clear: &[&str],
        forgive: &[&str],
    ) -> Result<(), StoreError> {
        let keys: Vec<&str> = clear.iter().chain(forgive).copied().collect();
        if keys.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 1)).collect();
        let clear_list = if clear.is_empty() {
            "NULL".to_owned()
        } else {
            placeholders[..clear.len()].join(", ")
        };
        let statement = format!(
            "UPDATE login_throttle SET attempts = CASE WHEN key IN ({clear_list}) THEN 0 ELSE attempts - 1 END \
             WHERE key IN ({}) AND attempts > 0",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&statement);
        for key in keys {
            query = query.bind(key);
        }
        query.execute(&self.writer).await?;
        Ok(())
    }
}
