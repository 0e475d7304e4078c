//! The `login_throttle` table: fixed-window attempt counters. Kept in the
//! database so that every instance sharing it enforces one limit.

use sqlx::Row as _;

use super::{Store, StoreError};

/// How long a client that logged in to an account stays known without
/// logging in again (180 days); `flush-expired` forgets it after that.
pub const KNOWN_CLIENT_MAX_AGE_SECONDS: i64 = 180 * 86_400;

/// A counter after an attempt was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    /// Attempts counted in the current window, this one included.
    pub attempts: i64,
    /// When the current window began.
    pub window_start: i64,
}

/// How a settled attempt's counters change: `clear` keys start over at zero
/// (an account after a successful login), `forgive` keys take one attempt
/// back (an address whose attempt turned out fine).
#[derive(Debug, Clone, Copy, Default)]
pub struct Settle<'a> {
    /// Counters that start over.
    pub clear: &'a [&'a str],
    /// Counters that take one attempt back.
    pub forgive: &'a [&'a str],
}

/// Apply `how` on `conn` (the writer, or inside the caller's transaction).
pub(super) async fn settle<'c, E>(how: &Settle<'_>, conn: E) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let keys: Vec<&str> = how.clear.iter().chain(how.forgive).copied().collect();
    if keys.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 1)).collect();
    let clear_list = if how.clear.is_empty() {
        "NULL".to_owned()
    } else {
        placeholders[..how.clear.len()].join(", ")
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
    query.execute(conn).await?;
    Ok(())
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

    /// Settle attempts counted by [`Store::throttle_hit`] (see [`Settle`]).
    pub async fn throttle_settle(
        &self,
        clear: &[&str],
        forgive: &[&str],
    ) -> Result<(), StoreError> {
        settle(&Settle { clear, forgive }, &self.writer).await
    }

    /// Delete every login counter of account `user_id` (its shared counter
    /// and those of its known clients and devices); how many there were.
    pub async fn clear_throttle_of(&self, user_id: i64) -> Result<u64, StoreError> {
        let shared = format!("user:{user_id}");
        let per_client = format!("user:{user_id}:%");
        let cleared = sqlx::query("DELETE FROM login_throttle WHERE key = $1 OR key LIKE $2")
            .bind(shared)
            .bind(per_client)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(cleared)
    }
}

/// Record that `client_key` logged in to `user_id` at `now` (part of the
/// login's session transaction).
pub(super) fn remember_client<'q>(
    user_id: i64,
    client_key: &'q str,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(
        "INSERT INTO known_clients (user_id, client_key, last_success_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, client_key) DO UPDATE SET last_success_at = $3",
    )
    .bind(user_id)
    .bind(super::stored_addrs::address_key(client_key))
    .bind(now)
}
