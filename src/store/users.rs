//! The `users` table.

use sqlx::Row as _;

use super::statements::{insert_session, NewRefreshToken, NewSession};
use super::{stored_addrs, stored_hashes, Store, StoreError};

/// A user row as the domain needs it.
#[derive(Clone)]
pub struct UserRecord {
    /// Integer id, the tokens' `user_id`.
    pub id: i64,
    /// Email as registered (domain lowercased).
    pub email: String,
    /// Display name as registered.
    pub name: String,
    /// PHC string of the password hash.
    pub password_hash: String,
    /// Inactive users cannot log in or refresh.
    pub is_active: bool,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// A user about to be inserted.
pub struct NewUser<'a> {
    /// Email as it will be shown.
    pub email: &'a str,
    /// Lowercased email, unique.
    pub email_key: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Lowercased name, unique.
    pub name_key: &'a str,
    /// PHC string.
    pub password_hash: &'a str,
    /// Registration time.
    pub now: i64,
}

/// The columns [`user_from_row`] reads, as a literal so statements can be
/// `concat!`ed from it.
macro_rules! user_columns {
    () => {
        "id, email, name, password_hash, is_active"
    };
}

const USER_COLUMNS: &str = user_columns!();
/// How many columns [`USER_COLUMNS`] names: the index of a statement's first
/// column after them.
const USER_COLUMN_COUNT: usize = 5;

const INSERT_USER: &str = concat!(
    "INSERT INTO users (email, email_key, name, name_key, password_hash, is_active, date_joined) \
     VALUES ($1, $2, $3, $4, $5, 1, $6) RETURNING ",
    user_columns!()
);

pub(super) fn insert_user<'q>(
    user: &'q NewUser<'q>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(INSERT_USER)
        .bind(user.email)
        .bind(user.email_key)
        .bind(user.name)
        .bind(user.name_key)
        .bind(stored_hashes::encode(user.password_hash))
        .bind(user.now)
}

/// Which unique key a login names its account by.
#[derive(Debug, Clone, Copy)]
pub enum LoginKey<'a> {
    /// The lowercased email.
    Email(&'a str),
    /// The lowercased name.
    Name(&'a str),
}

/// What a login looks up about the account it names.
#[derive(Debug, Clone)]
pub struct LoginAccount {
    /// The account.
    pub user: UserRecord,
    /// The client's address logged in to it recently (see
    /// [`Store::user_for_login`]).
    pub address_known: bool,
    /// It has a confirmed second factor.
    pub second_factor: bool,
}

pub(super) fn user_from_row(row: &sqlx::any::AnyRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        name: row.try_get(2)?,
        password_hash: stored_hashes::decode(&stored_hashes::column(row, 3)?)
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
        is_active: row.try_get::<i64, _>(4)? != 0,
    })
}

impl Store {
    /// Replace user `user_id`'s password hash with `new_hash`, only if it is
    /// still `old_hash` (a password changed meanwhile wins). True if replaced.
    pub async fn replace_password_hash(
        &self,
        user_id: i64,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        // The old hash as this release writes it, or as a row written
        // before migration 0012 holds it.
        let replaced = sqlx::query(
            "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash IN ($3, $4)",
        )
        .bind(stored_hashes::encode(new_hash))
        .bind(user_id)
        .bind(stored_hashes::encode(old_hash))
        .bind(stored_hashes::encode_before_0012(old_hash))
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(replaced == 1)
    }

    /// Insert a user; [`StoreError::Duplicate`] when the email or name is taken,
    /// even when another request inserted it a moment ago.
    pub async fn create_user(&self, user: &NewUser<'_>) -> Result<UserRecord, StoreError> {
        // An explicit transaction, not autocommit: SQLite commits an
        // autocommit `INSERT ... RETURNING` only when the statement is
        // stepped to its end, and a failure there (a full disk) would be lost
        // behind the row already returned.
        let mut tx = self.begin_write().await?;
        let row = insert_user(user).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(user_from_row(&row)?)
    }

    /// Insert a user, their first session and its first refresh token in one
    /// transaction, so a registration happens whole or not at all. The
    /// session is the new user's whatever `session.user_id` says (the id is
    /// not known before the insert). [`StoreError::Duplicate`] as
    /// [`Store::create_user`].
    pub async fn create_user_with_session(
        &self,
        user: &NewUser<'_>,
        session: &NewSession<'_>,
        first: &NewRefreshToken<'_>,
    ) -> Result<UserRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let created = user_from_row(&insert_user(user).fetch_one(&mut *tx).await?)?;
        let session = NewSession {
            user_id: created.id,
            ..*session
        };
        insert_session(&mut tx, &session, first, &self.fresh_user_agents, false).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Whether the email key and the name key are already taken.
    pub async fn taken(&self, email_key: &str, name_key: &str) -> Result<(bool, bool), StoreError> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM users WHERE email_key = $1), \
               (SELECT COUNT(*) FROM users WHERE name_key = $2)",
        )
        .bind(email_key)
        .bind(name_key)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get::<i64, _>(0)? > 0, row.try_get::<i64, _>(1)? > 0))
    }

    /// The user whose lowercased email is `email_key`.
    pub async fn user_by_email(&self, email_key: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("email_key", email_key).await
    }

    /// The user whose lowercased name is `name_key`.
    pub async fn user_by_name(&self, name_key: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("name_key", name_key).await
    }

    /// The account a login names (by its lowercased email or name), whether
    /// `client_key` logged in to it successfully at or after `known_since`,
    /// and whether it has a second factor: one round trip where a login
    /// needs all three.
    pub async fn user_for_login(
        &self,
        key: LoginKey<'_>,
        client_key: &str,
        known_since: i64,
    ) -> Result<Option<LoginAccount>, StoreError> {
        let (column, key) = match key {
            LoginKey::Email(key) => ("email_key", key),
            LoginKey::Name(key) => ("name_key", key),
        };
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, \
                    (SELECT COUNT(*) FROM known_clients k \
                      WHERE k.user_id = users.id AND k.client_key IN ($2, $4) AND k.last_success_at >= $3), \
                    (SELECT COUNT(*) FROM mfa_totp t \
                      WHERE t.user_id = users.id AND t.confirmed_at IS NOT NULL) \
               FROM users WHERE {column} = $1"
        ))
        .bind(key)
        .bind(stored_addrs::address_key(client_key))
        .bind(known_since)
        // A row written before migration 0011, until it ages out.
        .bind(stored_addrs::address_key_before_0011(client_key))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(LoginAccount {
            user: user_from_row(&row)?,
            address_known: row.try_get::<i64, _>(USER_COLUMN_COUNT)? > 0,
            second_factor: row.try_get::<i64, _>(USER_COLUMN_COUNT + 1)? > 0,
        }))
    }

    async fn user_where(
        &self,
        column: &'static str,
        key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {column} = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }
}

/// A user as the admin listing shows them.
#[derive(Debug, Clone)]
pub struct UserSummary {
    /// Integer id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Whether the user may log in.
    pub is_active: bool,
    /// Registration time.
    pub date_joined: i64,
    /// Sessions neither revoked nor expired.
    pub live_sessions: i64,
}

impl Store {
    /// The user with id `id`.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// Every user, by id, with their live session count at `now`.
    pub async fn list_users(&self, now: i64) -> Result<Vec<UserSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.email, u.name, u.is_active, u.date_joined, \
                    (SELECT COUNT(*) FROM sessions s \
                      WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > $1) \
             FROM users u ORDER BY u.id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UserSummary {
                    id: row.try_get(0)?,
                    email: row.try_get(1)?,
                    name: row.try_get(2)?,
                    is_active: row.try_get::<i64, _>(3)? != 0,
                    date_joined: row.try_get(4)?,
                    live_sessions: row.try_get(5)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Activate or deactivate user `id`; deactivating also revokes every
    /// session of theirs, in the same transaction. The number of sessions
    /// revoked, or `None` for an unknown id.
    pub async fn set_active(
        &self,
        id: i64,
        active: bool,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET is_active = $1 WHERE id = $2")
            .bind(i64::from(active))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut revoked = 0;
        if updated == 1 && !active {
            revoked =
                super::statements::revoke_all_of(&mut tx, id, now, "deactivated", None).await?;
        }
        tx.commit().await?;
        self.forget_cached_sessions(revoked);
        Ok((updated == 1).then_some(revoked))
    }

    /// Replace user `id`'s password hash and revoke every session of theirs
    /// except `keep`, in one transaction. The number of sessions revoked, or
    /// `None` for an unknown id.
    pub async fn set_password_hash(
        &self,
        id: i64,
        password_hash: &str,
        now: i64,
        keep: Option<&str>,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(stored_hashes::encode(password_hash))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut revoked = 0;
        if updated == 1 {
            revoked = super::statements::revoke_all_of(&mut tx, id, now, "password changed", keep)
                .await?;
        }
        tx.commit().await?;
        self.forget_cached_sessions(revoked);
        Ok((updated == 1).then_some(revoked))
    }
}

/// Stored hashes that are not latchkey's Argon2id (`$argon2id$...`), in
/// neither of its stored forms (store/stored_hashes.rs): `$1` and `$2` are
/// what those start with.
const LEGACY_HASH: &str =
    "substr(password_hash, 1, 1) <> $1 AND substr(password_hash, 1, 15) <> $2";

impl Store {
    /// How many users there are, how many hold a hash other than latchkey's
    /// Argon2id, and up to `sample` of those hashes, drawn at random.
    pub async fn password_hash_census(
        &self,
        sample: i64,
    ) -> Result<(i64, i64, Vec<String>), StoreError> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN {LEGACY_HASH} THEN 1 ELSE 0 END), 0) FROM users"
        ))
        .bind(stored_hashes::ARGON2ID_PREFIXES.0)
        .bind(stored_hashes::ARGON2ID_PREFIXES.1)
        .fetch_one(&self.pool)
        .await?;
        let (users, legacy): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if legacy == 0 {
            return Ok((users, 0, Vec::new()));
        }
        let hashes = sqlx::query(&format!(
            "SELECT password_hash FROM users WHERE {LEGACY_HASH} ORDER BY random() LIMIT $3"
        ))
        .bind(stored_hashes::ARGON2ID_PREFIXES.0)
        .bind(stored_hashes::ARGON2ID_PREFIXES.1)
        .bind(sample)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| stored_hashes::decode(&stored_hashes::column(row, 0)?))
        .collect::<Result<_, StoreError>>()?;
        Ok((users, legacy, hashes))
    }
}

/// The `server_settings` row saying name keys were recomputed in NFKC.
const NAME_KEYS_NFKC: &str = "name_keys_nfkc_v1";

impl Store {
    /// Whether the name keys of users stored before names were normalised
    /// to NFKC have been recomputed.
    pub async fn name_keys_normalised(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM server_settings WHERE name = $1")
            .bind(NAME_KEYS_NFKC)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Users whose name holds a character outside printable ASCII (the only
    /// ones NFKC can change): id, name, name key.
    pub async fn users_with_non_ascii_names(
        &self,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let filter = match self.backend {
            super::Backend::Sqlite => "name GLOB '*[^ -~]*'",
            super::Backend::Postgres => "name ~ '[^ -~]'",
        };
        let rows = sqlx::query(&format!(
            "SELECT id, name, name_key FROM users WHERE {filter} ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Set user `id`'s name key; false when another user holds that key.
    pub async fn set_name_key(&self, id: i64, key: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE users SET name_key = $1 WHERE id = $2")
            .bind(key)
            .bind(id)
            .execute(&self.writer)
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) => Ok(true),
            Err(StoreError::Duplicate(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Record that the name keys are recomputed.
    pub async fn mark_name_keys_normalised(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(NAME_KEYS_NFKC)
        .bind(b"1".to_vec())
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_count_is_the_number_of_user_columns() {
        assert_eq!(USER_COLUMNS.split(',').count(), USER_COLUMN_COUNT);
    }
}
