//! Housekeeping: removing rows that can never matter again. Runs beside a
//! serving instance, in small batches, so it never holds a long lock.

use super::{Store, StoreError};

/// What one flush removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Sessions past their expiry (a session holds its refresh tokens).
    pub sessions: u64,
    /// Throttle counters whose window has ended, and known login clients
    /// not seen for [`KNOWN_CLIENT_MAX_AGE_SECONDS`](super::KNOWN_CLIENT_MAX_AGE_SECONDS).
    pub throttle_counters: u64,
    /// Ids of SimpleJWT tokens (blacklisted or redeemed) past their expiry.
    pub legacy_tokens: u64,
    /// Mailed link tokens (reset, verification, email change) and sign-in
    /// challenges (the second factor's) past their expiry.
    pub challenges: u64,
    /// Passkey ceremonies past their expiry (answers to them are refused
    /// by their `expires_at` already).
    pub passkey_challenges: u64,
    /// `User-Agent` strings no session refers to any more.
    pub user_agents: u64,
}

/// Rows deleted per statement.
const BATCH: i64 = 1_000;

/// Rows deleted per statement on SQLite. Each batch rewrites, in the WAL,
/// every page of the random-ordered indexes (the session id's, the
/// `User-Agent` reference's) it deletes an entry from, nearly one page per
/// row at 1,000 rows; at 5,000 the pages are shared by more of the batch's
/// rows and the flush of 10^6 sessions writes half the bytes
/// (docs/benchmarks.md). A batch holds SQLite's one write lock for about
/// a quarter of a second at that size; readers never wait for it.
const SQLITE_BATCH: i64 = 5_000;

impl Store {
    /// Delete expired sessions (a session holds its refresh tokens), stale
    /// throttle counters (older than `throttle_window` seconds) and known
    /// clients, and expired SimpleJWT ids, link tokens and challenges (the
    /// second factor's and the passkeys'), and then the `User-Agent`
    /// strings no session refers to any more.
    /// Expired tokens are refused by their `exp` claim (or their stored
    /// expiry) before anything else, so deleting their rows changes no
    /// answer.
    pub async fn flush_expired(
        &self,
        now: i64,
        throttle_window: i64,
    ) -> Result<Flushed, StoreError> {
        // What a flush deletes: a table, the condition on `$1` that makes a
        // row of it dead (each on an indexed column), and `$1`.
        let dead_rows = [
            ("sessions", "expires_at <= $1", now),
            (
                "login_throttle",
                "window_start <= $1",
                now - throttle_window,
            ),
            // Known login clients are remembered as long as device cookies live.
            (
                "known_clients",
                "last_success_at <= $1",
                now - super::KNOWN_CLIENT_MAX_AGE_SECONDS,
            ),
            ("legacy_tokens", "expires_at <= $1", now),
            ("email_tokens", "expires_at <= $1", now),
            ("mfa_challenges", "expires_at <= $1", now),
            ("passkey_challenges", "expires_at <= $1", now),
        ];
        // One connection for every batch. On SQLite, its page cache is made
        // large while the flush runs: a batch deletes each row's entry from
        // the session-id index at a random place, and with SQLite's default
        // 2 MiB cache the pages of a large table's index are read again for
        // almost every row (the flush of 10^6 sessions took twice as long per
        // row as that of 10^5; docs/benchmarks.md).
        //
        // And its WAL is checkpointed every 256 MiB instead of every 4 MiB
        // (SQLite's 1,000 pages): those random index pages are written again
        // by nearly every batch, and a checkpoint copies each page once
        // however many batches wrote it, so rarer checkpoints write a
        // fraction of the bytes (a quarter, flushing 10^6 sessions with no
        // other writer; a serving instance's own commits still checkpoint
        // at 4 MiB). The WAL is checkpointed and emptied at the end.
        let mut conn = self.writer.acquire().await?;
        if self.backend == super::Backend::Sqlite {
            sqlx::query("PRAGMA cache_size = -262144; PRAGMA wal_autocheckpoint = 65536")
                .execute(&mut *conn)
                .await?;
        }
        let mut deleted = dead_rows.map(|_| 0);
        let flushed = async {
            for (n, (table, condition, cutoff)) in deleted.iter_mut().zip(dead_rows) {
                *n = self
                    .delete_in_batches(&mut conn, table, condition, cutoff)
                    .await?;
            }
            unused_user_agents(&mut conn, now).await
        }
        .await;
        if self.backend == super::Backend::Sqlite {
            // Back to SQLite's default for whatever uses the connection next.
            sqlx::query("PRAGMA cache_size = -2000; PRAGMA wal_autocheckpoint = 1000")
                .execute(&mut *conn)
                .await?;
            // Back to an empty WAL, not one of up to 256 MiB kept on disk:
            // first a checkpoint that writers never wait for, which copies
            // (nearly) every page; then the one that empties the file, which
            // holds writers back while it copies what is left (a few pages)
            // and waits (up to `busy_timeout`) for the readers of older
            // snapshots, which are short. If it cannot finish, the WAL stays
            // as it is, which is harmless.
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut *conn)
                .await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await?;
        }
        let user_agents = flushed?;
        let [sessions, throttle, known, legacy, links, challenges, passkeys] = deleted;
        Ok(Flushed {
            sessions,
            throttle_counters: throttle + known,
            legacy_tokens: legacy,
            challenges: links + challenges,
            passkey_challenges: passkeys,
            user_agents,
        })
    }

    /// Delete the rows of `table` matching `condition` in batches of
    /// [`BATCH`] ([`SQLITE_BATCH`] on SQLite), each its own short statement
    /// (so a serving instance never waits long for the writer). A batch finds its rows by the condition's
    /// index and deletes them by their physical address — SQLite's `rowid`,
    /// PostgreSQL's `ctid` (`= ANY(ARRAY(...))` is a TID scan; `IN` over a
    /// subquery lets PostgreSQL's planner hash-join a scan of the whole
    /// table) — so no batch reads a row it does not delete. On PostgreSQL, a
    /// row updated meanwhile has a new `ctid` and is left for the next run.
    async fn delete_in_batches(
        &self,
        conn: &mut sqlx::AnyConnection,
        table: &str,
        condition: &str,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        let statement = match self.backend {
            super::Backend::Postgres => format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {condition} LIMIT $2))"
            ),
            super::Backend::Sqlite => format!(
                "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {condition} LIMIT $2)"
            ),
        };
        let batch = match self.backend {
            super::Backend::Postgres => BATCH,
            super::Backend::Sqlite => SQLITE_BATCH,
        };
        let mut total = 0;
        loop {
            let deleted = sqlx::query(&statement)
                .bind(cutoff)
                .bind(batch)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < batch as u64 {
                return Ok(total);
            }
        }
    }
}

/// Delete every `User-Agent` no session refers to that no login has seen
/// for two days, walking `user_agents` by its key [`BATCH`] at a time
/// (each batch one range of the primary key, each row's references looked
/// up in `sessions_user_agent_id`: no scan, however many are kept). Two
/// days, against the day after which a login refreshes the row before it
/// refers to it, and the half day a login trusts a row it found fresh
/// (`user_agents::ensure`), so a row a login is about to refer to is never
/// removed, on one instance's clock or several skewed by less than half a
/// day.
async fn unused_user_agents(conn: &mut sqlx::AnyConnection, now: i64) -> Result<u64, StoreError> {
    let stale = now - super::user_agents::STALE;
    let mut after = i64::MIN;
    let mut total = 0;
    loop {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(id) FROM (SELECT id FROM user_agents WHERE id > $1 ORDER BY id LIMIT $2) AS batch",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_one(&mut *conn)
        .await?;
        let Some(last) = last else {
            return Ok(total);
        };
        total += sqlx::query(
            "DELETE FROM user_agents WHERE id > $1 AND id <= $2 AND last_seen_at <= $3 \
               AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_agent_id = user_agents.id)",
        )
        .bind(after)
        .bind(last)
        .bind(stale)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        after = last;
    }
}
