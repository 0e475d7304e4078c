//! The `user_agents` table as sessions refer to it: each distinct
//! `User-Agent` stored once, its `last_seen_at` refreshed by a login when a
//! day stale, and removed by `flush-expired` only when no session refers to
//! it and it is two days stale (see `maintenance.rs`).
//!
//! A login makes sure its `User-Agent` has a row its session may refer to
//! (one upsert), except when this process found the row fresh lately: most
//! logins come from a few browsers' strings, and the upsert is one round
//! trip to the database, a tenth of a login's work besides the hash
//! (docs/benchmarks.md).

use std::collections::HashMap;
use std::sync::Mutex;

use super::StoreError;

/// A login refreshes its `User-Agent`'s `last_seen_at` when it is older
/// than this (seconds): at most one write a day to a popular row.
pub(super) const SEEN_REFRESH: i64 = 24 * 3600;

/// `flush-expired` removes a row no session refers to once its
/// `last_seen_at` is this old (seconds).
pub(super) const STALE: i64 = 2 * SEEN_REFRESH;

/// How long a row found fresh is trusted to stay (seconds). Fresh means
/// `last_seen_at` at most [`SEEN_REFRESH`] old, so the row cannot be removed
/// for [`STALE`] − [`SEEN_REFRESH`] = a day; half of that is trusted, the
/// other half left for the clocks of instances sharing a database to
/// disagree.
const TRUSTED_FOR: i64 = (STALE - SEEN_REFRESH) / 2;
// Found fresh at `now`, a row has `last_seen_at >= now - SEEN_REFRESH`, so
// the flush removes it no earlier than `now - SEEN_REFRESH + STALE`.
const _: () = assert!(TRUSTED_FOR > 0 && TRUSTED_FOR < STALE - SEEN_REFRESH);

/// Strings remembered at most; past it the memory starts over (clients
/// choose the string, so their number must not grow memory without bound).
const MAX_ENTRIES: usize = 1024;

/// The `User-Agent`s this process found with a fresh row, each with the time
/// until which it is trusted to stay.
#[derive(Default)]
pub(super) struct FreshUserAgents {
    until: Mutex<HashMap<String, i64>>,
}

impl FreshUserAgents {
    fn is_fresh(&self, value: &str, now: i64) -> bool {
        self.until
            .lock()
            .is_ok_and(|until| until.get(value).is_some_and(|&t| now < t))
    }

    fn found_fresh(&self, value: &str, now: i64) {
        if let Ok(mut until) = self.until.lock() {
            if until.len() >= MAX_ENTRIES && !until.contains_key(value) {
                until.clear();
            }
            until.insert(value.to_owned(), now + TRUSTED_FOR);
        }
    }
}

/// Make sure `value` has a row in `user_agents` that no `flush-expired`
/// removes before the caller's transaction (on `conn`) commits a session
/// referring to it: inserted if missing, its `last_seen_at` set to `now` if
/// a day stale. On PostgreSQL the refresh locks a stale row, which a
/// flush's delete then waits for and finds fresh.
///
/// A row found fresh (the upsert changed nothing: it was committed before,
/// at most a day stale) is remembered in `fresh`, and for
/// [`TRUSTED_FOR`] logins with the same string skip the upsert.
pub(super) async fn ensure(
    conn: &mut sqlx::AnyConnection,
    value: &str,
    now: i64,
    fresh: &FreshUserAgents,
) -> Result<(), StoreError> {
    if fresh.is_fresh(value, now) {
        return Ok(());
    }
    let changed = sqlx::query(
        "INSERT INTO user_agents (value, last_seen_at) VALUES ($1, $2) \
         ON CONFLICT (value) DO UPDATE SET last_seen_at = excluded.last_seen_at \
         WHERE user_agents.last_seen_at < $3",
    )
    .bind(value)
    .bind(now)
    .bind(now - SEEN_REFRESH)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        fresh.found_fresh(value, now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_found_fresh_is_trusted_for_half_a_day_then_asked_again() {
        let fresh = FreshUserAgents::default();
        assert!(!fresh.is_fresh("Mozilla/5.0", 1_000));
        fresh.found_fresh("Mozilla/5.0", 1_000);
        assert!(fresh.is_fresh("Mozilla/5.0", 1_000));
        assert!(fresh.is_fresh("Mozilla/5.0", 1_000 + TRUSTED_FOR - 1));
        assert!(!fresh.is_fresh("Mozilla/5.0", 1_000 + TRUSTED_FOR));
        assert!(!fresh.is_fresh("curl/8.0", 1_000));
    }

    /// The rows of `user_agents`, by value.
    async fn rows(db: &mut sqlx::AnyConnection) -> Vec<(String, i64)> {
        use sqlx::Row as _;
        sqlx::query("SELECT value, last_seen_at FROM user_agents ORDER BY value")
            .fetch_all(db)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }

    #[tokio::test]
    async fn a_login_skips_the_upsert_only_for_a_row_it_found_fresh_and_only_while_trusted() {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut db = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        super::super::SQLITE_MIGRATIONS.run(&mut db).await.unwrap();
        let fresh = FreshUserAgents::default();
        let t = 10 * STALE;
        // Inserted: a row this transaction wrote is not known committed.
        ensure(&mut db, "A", t, &fresh).await.unwrap();
        assert!(!fresh.is_fresh("A", t));
        // Found fresh (the upsert changed nothing): remembered.
        ensure(&mut db, "A", t + 1, &fresh).await.unwrap();
        assert!(fresh.is_fresh("A", t + 1));
        assert_eq!(rows(&mut db).await, [("A".to_owned(), t)]);
        // While trusted, no statement runs: a row removed behind its back
        // is not written again.
        sqlx::query("DELETE FROM user_agents")
            .execute(&mut db)
            .await
            .unwrap();
        ensure(&mut db, "A", t + TRUSTED_FOR - 1, &fresh)
            .await
            .unwrap();
        assert!(rows(&mut db).await.is_empty());
        // Once the trust ends, the upsert runs again.
        ensure(&mut db, "A", t + 1 + TRUSTED_FOR, &fresh)
            .await
            .unwrap();
        assert_eq!(rows(&mut db).await, [("A".to_owned(), t + 1 + TRUSTED_FOR)]);
        // A day-stale row is refreshed (a write), not remembered.
        let later = t + 1 + TRUSTED_FOR + SEEN_REFRESH + 1;
        ensure(&mut db, "A", later, &fresh).await.unwrap();
        assert_eq!(rows(&mut db).await, [("A".to_owned(), later)]);
        let remembered = fresh.until.lock().unwrap().get("A").copied();
        assert_eq!(remembered, Some(t + 1 + TRUSTED_FOR), "only the first find");
    }

    #[test]
    fn memory_starts_over_past_its_bound() {
        let fresh = FreshUserAgents::default();
        for i in 0..MAX_ENTRIES {
            fresh.found_fresh(&format!("agent {i}"), 0);
        }
        assert!(fresh.is_fresh("agent 0", 0));
        fresh.found_fresh("agent 0", 0);
        assert!(
            fresh.is_fresh("agent 1", 0),
            "a known string does not start it over"
        );
        fresh.found_fresh("one more", 0);
        assert!(fresh.is_fresh("one more", 0));
        assert!(!fresh.is_fresh("agent 0", 0));
        assert_eq!(fresh.until.lock().map(|u| u.len()).unwrap_or(0), 1);
    }
}
