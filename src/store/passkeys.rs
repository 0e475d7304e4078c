//! The passkeys' tables: `passkey_users` (each user's WebAuthn user
//! handle), `passkeys` (registered credentials) and `passkey_challenges`
//! (ceremonies under way). A challenge is taken by one conditional delete,
//! so it is used once even when two instances receive it together; a sign
//! counter advances by a conditional update, so two logins racing with one
//! assertion cannot both win.

use sqlx::Row as _;

use super::{Backend, Store, StoreError, UniqueField};

/// What a ceremony's challenge is for; a challenge of one purpose is
/// never accepted for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// Registering a passkey for a logged-in user.
    Register,
    /// Logging in with a discoverable passkey.
    Login,
}

impl ChallengePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
        }
    }
}

/// Whom a ceremony is for, and how many of theirs may be under way at once.
#[derive(Debug, Clone, Copy)]
pub enum ChallengeOwner<'a> {
    /// A registration of `user_id`: its newest `keep` challenges (this one
    /// included) are kept, older ones deleted.
    User {
        /// The user registering.
        user_id: i64,
        /// How many of the user's challenges stay.
        keep: u32,
    },
    /// A login asked for by the client whose address key is `key`: refused
    /// while `limit` of its challenges are live.
    Client {
        /// The address key (see `auth::throttle::address_key`).
        key: &'a str,
        /// How many of its challenges may be live at once.
        limit: u32,
    },
}

/// A ceremony to remember until its answer arrives.
pub struct NewPasskeyChallenge<'a> {
    /// The `challenge_id` the client sends back.
    pub id: &'a str,
    /// What it is for.
    pub purpose: ChallengePurpose,
    /// Whom it is for.
    pub owner: ChallengeOwner<'a>,
    /// The relying party's ceremony state (JSON).
    pub state: &'a str,
    /// When it dies.
    pub expires_at: i64,
}

/// What became of a ceremony to remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStored {
    /// It is stored.
    Stored,
    /// Not stored: its client holds its limit of live challenges, the
    /// oldest of which expires at `oldest_expires_at`.
    ClientFull {
        /// When the client's oldest live challenge expires.
        oldest_expires_at: i64,
    },
}

/// A credential to store.
pub struct NewPasskey<'a> {
    /// Its public id (the `{id}` of `DELETE /auth/passkeys/{id}`).
    pub id: &'a str,
    /// The owner.
    pub user_id: i64,
    /// The WebAuthn credential id, base64url.
    pub credential_id: &'a str,
    /// The name the user gave it.
    pub name: &'a str,
    /// The relying party's credential state (JSON: public key, counter, flags).
    pub credential: &'a str,
    /// The sign counter at registration.
    pub sign_count: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySummary {
    /// Public id.
    pub id: String,
    /// The name the user gave it.
    pub name: String,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The last login with it, Unix seconds.
    pub last_used_at: Option<i64>,
}

/// A passkey as a login needs it.
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    /// Public id.
    pub id: String,
    /// The owner.
    pub user_id: i64,
    /// The owner's WebAuthn user handle.
    pub user_handle: String,
    /// The relying party's credential state (JSON).
    pub credential: String,
    /// The sign counter after the last accepted use.
    pub sign_count: i64,
}

/// How a deletion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyDeletion {
    /// Deleted.
    Deleted,
    /// No such passkey of this user.
    NotFound,
    /// Refused: it is the user's last passkey and `keep_last` was asked.
    LastOne,
}

impl Store {
    /// The WebAuthn user handle of `user_id`: the stored one, or
    /// `candidate`, stored now (whichever a racing request wrote first).
    pub async fn passkey_user_handle(
        &self,
        user_id: i64,
        candidate: &str,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO passkey_users (user_id, user_handle) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(candidate)
        .execute(&self.writer)
        .await?;
        let row = sqlx::query("SELECT user_handle FROM passkey_users WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.writer)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Remember a ceremony within its owner's bound (and forget every
    /// expired one).
    pub async fn create_passkey_challenge(
        &self,
        challenge: &NewPasskeyChallenge<'_>,
        now: i64,
    ) -> Result<ChallengeStored, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM passkey_challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let (user_id, client_key) = match challenge.owner {
            ChallengeOwner::User { user_id, keep } => {
                // The user's registrations one at a time from here, so none
                // outlives the trim: on PostgreSQL a lock on the user's row
                // (the row an account deletion locks first too, so the two
                // queue rather than deadlock), with no row written; SQLite
                // writes one at a time anyway.
                if matches!(self.backend, Backend::Postgres) {
                    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "DELETE FROM passkey_challenges WHERE user_id = $1 AND id NOT IN \
                       (SELECT id FROM passkey_challenges WHERE user_id = $1 \
                         ORDER BY seq DESC LIMIT $2)",
                )
                .bind(user_id)
                .bind(i64::from(keep.saturating_sub(1)))
                .execute(&mut *tx)
                .await?;
                (Some(user_id), None)
            }
            ChallengeOwner::Client { key, limit } => {
                // One count at a time per address, so concurrent requests
                // cannot all pass it (SQLite writes one at a time anyway).
                if matches!(self.backend, Backend::Postgres) {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                let row = sqlx::query(
                    "SELECT COUNT(*), MIN(expires_at) FROM passkey_challenges WHERE client_key = $1",
                )
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
                if row.try_get::<i64, _>(0)? >= i64::from(limit) {
                    let oldest_expires_at = row.try_get::<Option<i64>, _>(1)?.unwrap_or(now);
                    tx.commit().await?;
                    return Ok(ChallengeStored::ClientFull { oldest_expires_at });
                }
                (None, Some(key))
            }
        };
        sqlx::query(
            "INSERT INTO passkey_challenges (id, purpose, user_id, client_key, state, expires_at, seq) \
             VALUES ($1, $2, $3, $4, $5, $6, \
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM passkey_challenges WHERE user_id = $3))",
        )
        .bind(challenge.id)
        .bind(challenge.purpose.as_str())
        .bind(user_id)
        .bind(client_key)
        .bind(challenge.state)
        .bind(challenge.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ChallengeStored::Stored)
    }

    /// Take the live challenge `id` of `purpose` (and, for a registration,
    /// of `user_id`): its state, deleted in the same statement, or `None`
    /// when it is unknown, expired at `now`, of another purpose or user, or
    /// already taken.
    pub async fn take_passkey_challenge(
        &self,
        id: &str,
        purpose: ChallengePurpose,
        user_id: Option<i64>,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = match user_id {
            Some(user_id) => {
                sqlx::query(
                    "DELETE FROM passkey_challenges \
                     WHERE id = $1 AND purpose = $2 AND expires_at > $3 AND user_id = $4 \
                     RETURNING state",
                )
                .bind(id)
                .bind(purpose.as_str())
                .bind(now)
                .bind(user_id)
                .fetch_optional(&self.writer)
                .await?
            }
            None => {
                sqlx::query(
                    "DELETE FROM passkey_challenges \
                     WHERE id = $1 AND purpose = $2 AND expires_at > $3 AND user_id IS NULL \
                     RETURNING state",
                )
                .bind(id)
                .bind(purpose.as_str())
                .bind(now)
                .fetch_optional(&self.writer)
                .await?
            }
        };
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Store a new credential. A credential id registered before (to
    /// anyone) is [`StoreError::Duplicate`]`(`[`UniqueField::PasskeyCredential`]`)`.
    pub async fn add_passkey(&self, passkey: &NewPasskey<'_>) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, name, credential, sign_count, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(passkey.id)
        .bind(passkey.user_id)
        .bind(passkey.credential_id)
        .bind(passkey.name)
        .bind(passkey.credential)
        .bind(passkey.sign_count)
        .bind(passkey.created_at)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if inserted == 1 {
            Ok(())
        } else {
            Err(StoreError::Duplicate(UniqueField::PasskeyCredential))
        }
    }

    /// The passkeys of `user_id`, oldest first.
    pub async fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeySummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, credential_id, created_at, last_used_at FROM passkeys \
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PasskeySummary {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    credential_id: row.try_get(2)?,
                    created_at: row.try_get(3)?,
                    last_used_at: row.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The passkey of `credential_id` (base64url), with its owner's handle.
    pub async fn passkey_by_credential_id(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT p.id, p.user_id, u.user_handle, p.credential, p.sign_count \
             FROM passkeys p JOIN passkey_users u ON u.user_id = p.user_id \
             WHERE p.credential_id = $1",
        )
        .bind(credential_id)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|row| {
            Ok(PasskeyRecord {
                id: row.try_get(0)?,
                user_id: row.try_get(1)?,
                user_handle: row.try_get(2)?,
                credential: row.try_get(3)?,
                sign_count: row.try_get(4)?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Record an accepted login with passkey `id`: its new state and
    /// counter, if its counter is still `seen_count` (false, nothing
    /// written, when another login moved it meanwhile or it was deleted).
    pub async fn record_passkey_use(
        &self,
        id: &str,
        seen_count: i64,
        sign_count: i64,
        credential: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE passkeys SET credential = $1, sign_count = $2, last_used_at = $3 \
             WHERE id = $4 AND sign_count = $5",
        )
        .bind(credential)
        .bind(sign_count)
        .bind(now)
        .bind(id)
        .bind(seen_count)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Delete passkey `id` of `user_id`; with `keep_last`, only if the user
    /// keeps another one (checked and done in one transaction).
    pub async fn delete_passkey(
        &self,
        user_id: i64,
        id: &str,
        keep_last: bool,
    ) -> Result<PasskeyDeletion, StoreError> {
        let mut tx = self.begin_write().await?;
        // Lock the user's passkeys (their handle row) first, so two
        // deletions cannot each see the other's passkey and both go ahead.
        sqlx::query("UPDATE passkey_users SET user_handle = user_handle WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let owned = sqlx::query("SELECT 1 FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !owned {
            tx.rollback().await?;
            return Ok(PasskeyDeletion::NotFound);
        }
        if keep_last {
            let count: i64 = sqlx::query("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if count <= 1 {
                tx.rollback().await?;
                return Ok(PasskeyDeletion::LastOne);
            }
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PasskeyDeletion::Deleted)
    }
}
