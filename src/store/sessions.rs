//! The `sessions` table: one session per login, holding its refresh-token
//! chain. A session stores the id of its one live refresh token and of the
//! one rotated last (with when, for the grace window); every token names its
//! session (`sid`) and is signed, so any other token of the session is an
//! older, rotated one, and presenting it is reuse. No row per token: a
//! rotation is one `UPDATE` of one row, in one round trip on either backend.

use sqlx::Row as _;

use super::mfa::LockFor;
use super::statements::{insert_session, revoke_all_of};
use super::throttle::Settle;
use super::{stored_addrs, stored_ids};
use super::{NewRefreshToken, NewSession, SessionUser, Store, StoreError};

/// What the store knows about a presented refresh token.
#[derive(Debug, Clone)]
pub struct RefreshTokenState {
    /// The session's user.
    pub user_id: i64,
    /// `None` for the session's live token. For the token rotated last, when
    /// it was rotated; for an older token of the session, no later than that
    /// (it is never the one rotated last, so no grace applies to it).
    pub rotated_at: Option<i64>,
    /// Session neither revoked nor expired, and its user active.
    pub session_live: bool,
    /// Whether the token is the one of this session rotated most recently
    /// (by its id's first bytes; see `stored_ids::prefix`).
    pub rotated_last: bool,
    /// The time by the clock that wrote `rotated_at` (PostgreSQL's own
    /// clock; on SQLite, the one writer process's), so the grace window is
    /// measured on one clock however skewed the instances are.
    pub db_now: i64,
}

/// A refresh token already issued: enough to sign it again, unchanged.
#[derive(Debug, Clone)]
pub struct IssuedRefresh {
    /// Its `jti`.
    pub jti: String,
    /// Its issue time.
    pub issued_at: i64,
    /// Its expiry.
    pub expires_at: i64,
}

/// The state of a refresh token `$1` (its id's prefix `$4`) of session
/// (`$3`, `$5`); `$now` is the column of "now" by the clock that wrote
/// `last_rotated_at`.
macro_rules! refresh_state_sql {
    ($now:expr) => {
        concat!(
            "SELECT s.user_id, \
                    CASE WHEN s.current_jti = $1 THEN NULL ELSE COALESCE(s.last_rotated_at, 0) END, \
                    CASE WHEN s.revoked_at IS NULL AND s.expires_at > $2 AND u.is_active = 1 THEN 1 ELSE 0 END, \
                    CASE WHEN s.last_rotated_jti_prefix = $4 THEN 1 ELSE 0 END, ",
            $now,
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hi = $3 AND s.id_lo = $5"
        )
    };
}

impl Store {
    /// Start a session with its first refresh token, remember the client
    /// address key that logged in (see `known_clients`) and settle the
    /// login's throttle counters (see [`Settle`]), atomically: one commit
    /// for all three.
    ///
    /// With `unless_second_factor`, only if the user has no confirmed second
    /// factor by then: false, and nothing written, when one was confirmed
    /// since the caller looked. Otherwise always true. A confirmation in
    /// progress is waited for, or waits for this commit
    /// ([`Store::lock_second_factor_of`]), so it never misses the session.
    pub async fn start_session(
        &self,
        s: &NewSession<'_>,
        first: &NewRefreshToken<'_>,
        client_key: &str,
        settle: &Settle<'_>,
        unless_second_factor: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if unless_second_factor {
            self.lock_second_factor_of(&mut tx, s.user_id, LockFor::Login)
                .await?;
        }
        if !insert_session(
            &mut tx,
            s,
            first,
            &self.fresh_user_agents,
            unless_second_factor,
        )
        .await?
        {
            return Ok(false);
        }
        super::throttle::remember_client(s.user_id, client_key, s.now)
            .execute(&mut *tx)
            .await?;
        super::throttle::settle(settle, &mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The user of session `sid` if the session is live at `now` (not
    /// revoked, not expired) and the user active. One indexed lookup, or the
    /// session cache (see `session_cache.rs`): this runs on every
    /// authenticated request.
    pub async fn session_user(
        &self,
        sid: &str,
        now: i64,
    ) -> Result<Option<SessionUser>, StoreError> {
        if let Some(user) = self.sessions.get(sid, now) {
            return Ok(Some(user));
        }
        let generation = self.sessions.generation();
        let Some((hi, lo)) = stored_ids::session_key(sid) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, s.expires_at, u.email_verified \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hi = $1 AND s.id_lo = $3 AND s.revoked_at IS NULL AND s.expires_at > $2 \
               AND u.is_active = 1",
        )
        .bind(hi)
        .bind(now)
        .bind(lo)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = SessionUser {
            user_id: row.try_get(0)?,
            email: row.try_get(1)?,
            name: row.try_get(2)?,
            email_verified: row.try_get::<i64, _>(4)? != 0,
        };
        self.sessions.put(sid, &user, row.try_get(3)?, generation);
        Ok(Some(user))
    }

    /// The state of refresh token `jti` of session `sid` (its claims, whose
    /// signature was checked), if the session exists.
    pub async fn refresh_token_state(
        &self,
        sid: &str,
        jti: &str,
        now: i64,
    ) -> Result<Option<RefreshTokenState>, StoreError> {
        // On SQLite the one writer process's clock is the database's.
        let sql = match self.backend {
            super::Backend::Postgres => refresh_state_sql!(pg_now!()),
            super::Backend::Sqlite => refresh_state_sql!("$2"),
        };
        let (Some((hi, lo)), Some(jti)) = (stored_ids::session_key(sid), stored_ids::key(jti))
        else {
            return Ok(None);
        };
        let jti_prefix = stored_ids::prefix(&jti);
        let row = sqlx::query(sql)
            .bind(jti)
            .bind(now)
            .bind(hi)
            .bind(jti_prefix)
            .bind(lo)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RefreshTokenState {
            user_id: row.try_get(0)?,
            rotated_at: row.try_get(1)?,
            session_live: row.try_get::<i64, _>(2)? != 0,
            rotated_last: row.try_get::<i64, _>(3)? != 0,
            db_now: row.try_get(4)?,
        }))
    }

    /// The token issued in session `session_id` in exchange for `parent_jti`,
    /// if it is still the live head of the chain: the session's live token,
    /// `parent_jti` the one rotated last, the session live and its user
    /// active. A replay of the parent inside the grace window is handed this
    /// same token, so a session never has two chains.
    pub async fn live_successor(
        &self,
        session_id: &str,
        parent_jti: &str,
        now: i64,
    ) -> Result<Option<IssuedRefresh>, StoreError> {
        let (Some((hi, lo)), Some(parent_jti)) = (
            stored_ids::session_key(session_id),
            stored_ids::key(parent_jti),
        ) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT s.current_jti, s.last_used_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hi = $1 AND s.id_lo = $4 AND s.last_rotated_jti_prefix = $2 \
               AND s.current_jti IS NOT NULL \
               AND s.revoked_at IS NULL AND s.expires_at > $3 AND u.is_active = 1",
        )
        .bind(hi)
        .bind(stored_ids::prefix(&parent_jti))
        .bind(now)
        .bind(lo)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(IssuedRefresh {
            jti: stored_ids::text(&row.try_get::<Vec<u8>, _>(0)?)?,
            issued_at: row.try_get(1)?,
            expires_at: row.try_get(2)?,
        }))
    }

    /// Rotate `old_jti` (of `next`'s session) into `next`: `next` becomes
    /// the session's live token, `old_jti` the one rotated last, and the
    /// session is extended to `next`'s expiry — one `UPDATE` of one row, so
    /// all or nothing in one round trip on either backend. False when
    /// `old_jti` is not the session's live token (already rotated, or never
    /// of this session), or the session (or its user) is no longer live.
    pub async fn rotate_refresh(
        &self,
        old_jti: &str,
        next: &NewRefreshToken<'_>,
    ) -> Result<bool, StoreError> {
        // The grace window is measured on the clock that reads it back
        // (`refresh_state_sql`): PostgreSQL's own, or the one SQLite writer's.
        let sql = match self.backend {
            super::Backend::Postgres => concat!(
                "UPDATE sessions SET current_jti = $4, last_rotated_jti_prefix = $6, last_rotated_at = ",
                pg_now!(),
                ", last_used_at = $1, expires_at = $5 \
                 WHERE id_hi = $3 AND id_lo = $7 AND current_jti = $2 AND revoked_at IS NULL AND expires_at > $1 \
                   AND EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND u.is_active = 1)"
            ),
            super::Backend::Sqlite => {
                "UPDATE sessions SET current_jti = $4, last_rotated_jti_prefix = $6, last_rotated_at = $1, \
                        last_used_at = $1, expires_at = $5 \
                 WHERE id_hi = $3 AND id_lo = $7 AND current_jti = $2 AND revoked_at IS NULL AND expires_at > $1 \
                   AND EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND u.is_active = 1)"
            }
        };
        let Some(old_jti) = stored_ids::key(old_jti) else {
            return Ok(false);
        };
        let old_prefix = stored_ids::prefix(&old_jti);
        let (hi, lo) = stored_ids::session_key_to_write(next.session_id)?;
        let rotated = sqlx::query(sql)
            .bind(next.issued_at)
            .bind(old_jti)
            .bind(hi)
            .bind(stored_ids::key_to_write(next.jti)?)
            .bind(next.expires_at)
            .bind(old_prefix)
            .bind(lo)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(rotated == 1)
    }

    /// Revoke session `sid` (and so every token of it). Idempotent.
    pub async fn revoke_session(
        &self,
        sid: &str,
        now: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let Some((hi, lo)) = stored_ids::session_key(sid) else {
            return Ok(());
        };
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id_hi = $3 AND id_lo = $4 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(hi)
        .bind(lo)
        .execute(&self.writer)
        .await?
        .rows_affected();
        self.forget_cached_sessions(revoked);
        Ok(())
    }
}

/// A live session as its user sees it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Session id (the tokens' `sid`).
    pub id: String,
    /// Start (login or registration).
    pub created_at: i64,
    /// Last time it issued tokens (start or refresh).
    pub last_used_at: i64,
    /// When it ends unless refreshed.
    pub expires_at: i64,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// `User-Agent` at login.
    pub user_agent: Option<String>,
}

impl Store {
    /// The live sessions of `user_id` at `now`, most recently used first.
    pub async fn sessions_of(
        &self,
        user_id: i64,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id_hi, s.id_lo, s.created_at, s.last_used_at, s.expires_at, s.client_ip, \
                    s.client_addr_text, ua.value \
             FROM sessions s LEFT JOIN user_agents ua ON ua.id = s.user_agent_id \
             WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut sessions = rows
            .iter()
            .map(|row| -> Result<SessionRecord, StoreError> {
                let hi: i64 = row.try_get(0)?;
                // NULL when the id says it (store/stored_ids.rs).
                let created_at: Option<i64> = row.try_get(2)?;
                Ok(SessionRecord {
                    id: stored_ids::text_of_halves(hi, row.try_get(1)?)?,
                    created_at: created_at.unwrap_or_else(|| stored_ids::seconds_of(hi)),
                    last_used_at: row.try_get(3)?,
                    expires_at: row.try_get(4)?,
                    client_addr: stored_addrs::session_addr_text(row.try_get(5)?, row.try_get(6)?)?,
                    user_agent: row.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Most recently used first, then newest first, then by id (its hex
        // sorts as its bytes did when the id was stored whole).
        sessions.sort_by(|a, b| {
            (b.last_used_at, b.created_at)
                .cmp(&(a.last_used_at, a.created_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(sessions)
    }

    /// Revoke every live session of `user_id`; the count revoked.
    pub async fn revoke_sessions_of(
        &self,
        user_id: i64,
        now: i64,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let revoked = revoke_all_of(&mut tx, user_id, now, reason, None).await?;
        tx.commit().await?;
        self.forget_cached_sessions(revoked);
        Ok(revoked)
    }

    /// Revoke session `sid` if it is a live session of `user_id`; false otherwise.
    pub async fn revoke_session_of(
        &self,
        user_id: i64,
        sid: &str,
        now: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let Some((hi, lo)) = stored_ids::session_key(sid) else {
            return Ok(false);
        };
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id_hi = $3 AND id_lo = $5 AND user_id = $4 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(reason)
        .bind(hi)
        .bind(user_id)
        .bind(lo)
        .execute(&self.writer)
        .await?
        .rows_affected();
        self.forget_cached_sessions(revoked);
        Ok(revoked == 1)
    }

    /// Empty this instance's session cache after `revoked` sessions were
    /// revoked here, so the revocation is exact on this instance. Only when
    /// something was revoked: a request that revokes nothing (a made-up
    /// session id, say) must not be a way to empty the cache for everyone.
    pub(super) fn forget_cached_sessions(&self, revoked: u64) {
        if revoked > 0 {
            self.sessions.invalidate();
        }
    }
}
