//! Statements more than one table module runs inside its own transaction:
//! starting a session holding its first refresh token (registration, login,
//! a legacy token's redemption) and revoking every session of a user
//! (logout everywhere, password change, deactivation, import). A leaf, so
//! the table modules need not import each other.

use super::user_agents::{self, FreshUserAgents};
use super::{stored_addrs, stored_ids, StoreError};

/// A session about to start.
pub struct NewSession<'a> {
    /// Random session id (the tokens' `sid`).
    pub id: &'a str,
    /// Its user.
    pub user_id: i64,
    /// Start time.
    pub now: i64,
    /// When it ends unless a refresh extends it.
    pub expires_at: i64,
    /// The client's address, for the user's session list.
    pub client_addr: Option<&'a str>,
    /// The client's `User-Agent`, truncated.
    pub user_agent: Option<&'a str>,
}

/// A refresh token about to be issued.
pub struct NewRefreshToken<'a> {
    /// Its `jti`.
    pub jti: &'a str,
    /// Its session.
    pub session_id: &'a str,
    /// The token it was rotated from, if any.
    pub parent_jti: Option<&'a str>,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry time.
    pub expires_at: i64,
}

/// The user behind a live session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// User id.
    pub user_id: i64,
    /// User email.
    pub email: String,
    /// User name.
    pub name: String,
    /// Whether the user's address is verified.
    pub email_verified: bool,
}

/// Start a new session holding `first`, its first refresh token, on `conn`
/// (inside the caller's transaction). A session holds its chain: the live
/// token's id, and the token it was exchanged for (a SimpleJWT token's id,
/// for a legacy redemption) as the one rotated last, at the session's
/// start. Its `User-Agent` is stored once, in `user_agents`
/// ([`user_agents::ensure`]: a row no `flush-expired` removes before this
/// commits).
///
/// With `unless_second_factor`, the session is started only if its user has
/// no confirmed second factor at this moment, in the same statement: false
/// when one was confirmed since the caller looked (no row written).
/// Otherwise always true.
pub(super) async fn insert_session(
    conn: &mut sqlx::AnyConnection,
    s: &NewSession<'_>,
    first: &NewRefreshToken<'_>,
    fresh: &FreshUserAgents,
    unless_second_factor: bool,
) -> Result<bool, StoreError> {
    if let Some(user_agent) = s.user_agent {
        user_agents::ensure(conn, user_agent, s.now, fresh).await?;
    }
    let (client_ip, client_addr_text) = stored_addrs::session_addr(s.client_addr);
    let parent = first.parent_jti.map(stored_ids::key_to_write).transpose()?;
    let (hi, lo) = stored_ids::session_key_to_write(s.id)?;
    // The start only when the id does not say it (store/stored_ids.rs).
    let created_at = (stored_ids::seconds_of(hi) != s.now).then_some(s.now);
    let inserted = sqlx::query(
        "INSERT INTO sessions (id_hi, id_lo, user_id, created_at, last_used_at, expires_at, client_ip, \
                               client_addr_text, user_agent_id, current_jti, last_rotated_jti_prefix, \
                               last_rotated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, (SELECT id FROM user_agents WHERE value = $9), $10, $11, \
                CASE WHEN $11 IS NULL THEN NULL ELSE $5 END \
          WHERE $12 = 0 OR NOT EXISTS \
                (SELECT 1 FROM mfa_totp WHERE user_id = $3 AND confirmed_at IS NOT NULL)",
    )
    .bind(hi)
    .bind(lo)
    .bind(s.user_id)
    .bind(created_at)
    .bind(s.now)
    .bind(s.expires_at)
    .bind(client_ip)
    .bind(client_addr_text)
    .bind(s.user_agent)
    .bind(stored_ids::key_to_write(first.jti)?)
    .bind(parent.as_deref().map(stored_ids::prefix))
    .bind(i64::from(unless_second_factor))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Revoke every live session of `user_id` except `keep`; the count revoked.
pub(super) async fn revoke_all_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    now: i64,
    reason: &str,
    keep: Option<&str>,
) -> Result<u64, StoreError> {
    let keep = keep.map(stored_ids::session_key_to_write).transpose()?;
    let revoked = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE user_id = $3 AND revoked_at IS NULL AND expires_at > $1 \
           AND ($4 IS NULL OR id_hi <> $4 OR id_lo <> $5)",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .bind(keep.map(|(hi, _)| hi))
    .bind(keep.map(|(_, lo)| lo))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    revoke_legacy_tokens_of(tx, user_id, now).await?;
    Ok(revoked)
}

/// Refuse every SimpleJWT token of `user_id` issued up to `now`: part of
/// ending all of a user's sessions (logout everywhere, password change,
/// deactivation). Nothing for users latchkey made.
pub(super) async fn revoke_legacy_tokens_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE django_imported_users SET legacy_tokens_revoked_at = $1 WHERE user_id = $2",
    )
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
