//! What the migration window from Django needs: the `legacy_tokens` table
//! (SimpleJWT refresh tokens Django blacklisted, and those already exchanged
//! for a latchkey session), the user a legacy token names, and the
//! compare-and-swap that stores an upgraded password hash.

use sqlx::Row as _;

use super::statements::insert_session;
use super::{NewRefreshToken, NewSession, SessionUser, Store, StoreError};

/// `legacy_tokens.state` of a token Django blacklisted.
pub(super) const BLACKLISTED: &str = "blacklisted";
/// `legacy_tokens.state` of a token exchanged for a latchkey session.
const REDEEMED: &str = "redeemed";

/// Record legacy token `jti` as `state` (once: false if already known).
pub(super) fn insert_legacy_token<'q>(
    jti: &'q str,
    state: &'static str,
    session_id: Option<&'q str>,
    recorded_at: i64,
    expires_at: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(
        "INSERT INTO legacy_tokens (jti, state, session_id, recorded_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(state)
    .bind(session_id)
    .bind(recorded_at)
    .bind(expires_at)
}

/// What became of an attempt to exchange a legacy refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyRedemption {
    /// First use: the session and its first refresh token were created.
    Redeemed,
    /// Django blacklisted it before the import.
    Blacklisted,
    /// It was exchanged before, at `redeemed_at`, for session `session_id`.
    AlreadyRedeemed {
        /// The session the first exchange started.
        session_id: Option<String>,
        /// When, by the database's clock (see `db_now`).
        redeemed_at: i64,
        /// Now by the clock that wrote `redeemed_at` (PostgreSQL's own; on
        /// SQLite the one writer process's), so the grace window is
        /// measured on one clock whatever the instances' skew.
        db_now: i64,
    },
}

/// A user a SimpleJWT token may name: imported from Django, and active.
#[derive(Debug, Clone)]
pub struct LegacyTokenUser {
    /// The user.
    pub user: SessionUser,
    /// When all of the user's sessions were last ended; SimpleJWT tokens
    /// issued before are refused.
    pub tokens_revoked_at: Option<i64>,
}

impl Store {
    /// The user a legacy token's `user_id` names, if that user was imported
    /// from Django (an id latchkey gave out itself is someone else) and is
    /// active.
    pub async fn legacy_token_user(
        &self,
        user_id: i64,
    ) -> Result<Option<LegacyTokenUser>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, d.legacy_tokens_revoked_at, u.email_verified \
             FROM users u JOIN django_imported_users d ON d.user_id = u.id \
             WHERE u.id = $1 AND u.is_active = 1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(LegacyTokenUser {
            user: SessionUser {
                user_id: row.try_get(0)?,
                email: row.try_get(1)?,
                name: row.try_get(2)?,
                email_verified: row.try_get::<i64, _>(4)? != 0,
            },
            tokens_revoked_at: row.try_get(3)?,
        }))
    }

    /// Exchange legacy refresh token `jti` (expiring at `expires_at`) for a
    /// new session: record the jti as redeemed and start `session` with
    /// `first`, all or nothing. Of any number of concurrent attempts, exactly
    /// one redeems; the others see what it recorded.
    pub async fn redeem_legacy_refresh(
        &self,
        jti: &str,
        expires_at: i64,
        session: &NewSession<'_>,
        first: &NewRefreshToken<'_>,
    ) -> Result<LegacyRedemption, StoreError> {
        let mut tx = self.begin_write().await?;
        let recorded =
            insert_legacy_token(jti, REDEEMED, Some(session.id), session.now, expires_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if recorded == 1 {
            if self.backend == super::Backend::Postgres {
                // The redemption time the grace window is measured from, on
                // PostgreSQL's clock rather than this instance's.
                sqlx::query(concat!(
                    "UPDATE legacy_tokens SET recorded_at = ",
                    pg_now!(),
                    " WHERE jti = $1"
                ))
                .bind(jti)
                .execute(&mut *tx)
                .await?;
            }
            insert_session(&mut tx, session, first, &self.fresh_user_agents, false).await?;
            tx.commit().await?;
            return Ok(LegacyRedemption::Redeemed);
        }
        let sql = match self.backend {
            super::Backend::Postgres => concat!(
                "SELECT state, session_id, recorded_at, ",
                pg_now!(),
                " FROM legacy_tokens WHERE jti = $1"
            ),
            // On SQLite the one writer process's clock is the database's.
            super::Backend::Sqlite => {
                "SELECT state, session_id, recorded_at, $2 FROM legacy_tokens WHERE jti = $1"
            }
        };
        let mut query = sqlx::query(sql).bind(jti);
        if self.backend == super::Backend::Sqlite {
            query = query.bind(session.now);
        }
        let row = query.fetch_one(&mut *tx).await?;
        let state: String = row.try_get(0)?;
        Ok(if state == REDEEMED {
            LegacyRedemption::AlreadyRedeemed {
                session_id: row.try_get(1)?,
                redeemed_at: row.try_get(2)?,
                db_now: row.try_get(3)?,
            }
        } else {
            LegacyRedemption::Blacklisted
        })
    }

    /// Blacklist legacy refresh token `jti` (a logout presented it). False
    /// when it was blacklisted or redeemed already.
    pub async fn blacklist_legacy_refresh(
        &self,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let inserted = insert_legacy_token(jti, BLACKLISTED, None, now, expires_at)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(inserted == 1)
    }

    /// Whether legacy token `jti` is used up: blacklisted in Django, or
    /// already exchanged for a latchkey session.
    pub async fn legacy_token_used(&self, jti: &str) -> Result<bool, StoreError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT state FROM legacy_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }
}
