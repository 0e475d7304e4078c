//! `latchkey import django`: reading a Django database (SQLite or
//! PostgreSQL; never written to) and writing its users into latchkey's, in one
//! transaction. The decisions (what to import, rename or skip) are the
//! domain's, in `auth::legacy::import`; this module only moves rows.

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row as _};

use super::legacy::{insert_legacy_token, BLACKLISTED};
use super::{Backend, Store, StoreError};

/// A table or column name from the command line, checked before it goes
/// into SQL (it cannot be a bound parameter): ASCII letters, digits and `_`,
/// not starting with a digit, optionally `schema.table`. Written quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlIdentifier(String);

impl SqlIdentifier {
    /// The identifier, if `raw` is a plain one.
    pub fn parse(raw: &str) -> Option<Self> {
        let plain = |part: &str| {
            !part.is_empty()
                && part.len() <= 63
                && !part.as_bytes()[0].is_ascii_digit()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        let parts: Vec<&str> = raw.split('.').collect();
        (parts.len() <= 2 && parts.iter().all(|p| plain(p))).then(|| Self(raw.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted for SQL (`"schema"."table"`).
    fn quoted(&self) -> String {
        self.0
            .split('.')
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The unqualified name (catalog lookups).
    fn last(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or(&self.0)
    }
}

/// Where the users live in the Django database.
#[derive(Debug, Clone)]
pub struct UserTable {
    /// The user model's table (`accounts_user`, `auth_user`, ...).
    pub table: SqlIdentifier,
    /// Primary key.
    pub id: SqlIdentifier,
    /// Email address.
    pub email: SqlIdentifier,
    /// Display name (`name`, or `username` for Django's stock user).
    pub name: SqlIdentifier,
    /// Django's `<algorithm>$...` password hash.
    pub password: SqlIdentifier,
    /// Active flag.
    pub is_active: SqlIdentifier,
    /// Join time.
    pub date_joined: SqlIdentifier,
}

/// A user row as read from Django. `Debug` leaves the hash out.
#[derive(Clone)]
pub struct DjangoUserRow {
    /// Primary key, kept as the latchkey user id.
    pub id: i64,
    /// Email as stored.
    pub email: String,
    /// Name as stored.
    pub name: String,
    /// The password hash, `<algorithm>$...`.
    pub password_hash: String,
    /// Active flag.
    pub is_active: bool,
    /// Join time, seconds since the Unix epoch.
    pub date_joined: i64,
}

impl std::fmt::Debug for DjangoUserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DjangoUserRow")
            .field("id", &self.id)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// A SimpleJWT refresh token Django blacklisted, as its row holds it
/// (Django's columns are nullable: a row may lack either value).
#[derive(Debug, Clone)]
pub struct BlacklistedToken {
    /// Its `jti`.
    pub jti: Option<String>,
    /// Its expiry, seconds since the Unix epoch.
    pub expires_at: Option<i64>,
}

/// A Django database, opened read-only where the engine allows.
pub struct DjangoSource {
    pool: AnyPool,
    backend: Backend,
}

impl DjangoSource {
    /// Connect to `url` (`sqlite://PATH` or `postgres://...`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let url = match backend {
            // Read-only: the import never writes to Django's database, and
            // must not create an empty file at a mistyped path.
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=ro", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let options =
            AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Other(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// Whether `table` exists.
    pub async fn has_table(&self, table: &SqlIdentifier) -> Result<bool, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = $1"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = $1"
            }
        };
        let n: i64 = sqlx::query_scalar(sql)
            .bind(table.last())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Whether `table` has a column `column`.
    pub async fn has_column(
        &self,
        table: &SqlIdentifier,
        column: &SqlIdentifier,
    ) -> Result<bool, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = $2"
            }
        };
        let n: i64 = sqlx::query_scalar(sql)
            .bind(table.last())
            .bind(column.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// `column` (a date-time) as whole seconds since the Unix epoch.
    fn epoch(&self, column: &str) -> String {
        format!("COALESCE({}, 0)", self.epoch_or_null(column))
    }

    /// As [`epoch`](Self::epoch), NULL where the column is NULL or unreadable.
    fn epoch_or_null(&self, column: &str) -> String {
        match self.backend {
            // Django stores UTC text, `YYYY-MM-DD HH:MM:SS[.ffffff]`.
            Backend::Sqlite => format!("CAST(strftime('%s', {column}) AS BIGINT)"),
            Backend::Postgres => format!("CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"),
        }
    }

    /// Every user, by id.
    pub async fn users(&self, t: &UserTable) -> Result<Vec<DjangoUserRow>, StoreError> {
        let sql = format!(
            "SELECT CAST({id} AS BIGINT), CAST(COALESCE({email}, '') AS TEXT), \
                    CAST(COALESCE({name}, '') AS TEXT), CAST(COALESCE({password}, '') AS TEXT), \
                    CAST(CASE WHEN {active} THEN 1 ELSE 0 END AS BIGINT), {joined} \
             FROM {table} ORDER BY {id}",
            id = t.id.quoted(),
            email = t.email.quoted(),
            name = t.name.quoted(),
            password = t.password.quoted(),
            active = t.is_active.quoted(),
            joined = self.epoch(&t.date_joined.quoted()),
            table = t.table.quoted(),
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(DjangoUserRow {
                    id: row.try_get(0)?,
                    email: row.try_get(1)?,
                    name: row.try_get(2)?,
                    password_hash: row.try_get(3)?,
                    is_active: row.try_get::<i64, _>(4)? != 0,
                    date_joined: row.try_get(5)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The refresh tokens SimpleJWT's `token_blacklist` app blacklisted, or
    /// `None` when the app's tables are absent.
    pub async fn blacklisted_tokens(&self) -> Result<Option<Vec<BlacklistedToken>>, StoreError> {
        let outstanding = SqlIdentifier("token_blacklist_outstandingtoken".into());
        let blacklisted = SqlIdentifier("token_blacklist_blacklistedtoken".into());
        if !(self.has_table(&outstanding).await? && self.has_table(&blacklisted).await?) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT CAST(o.jti AS TEXT), {expires} FROM token_blacklist_blacklistedtoken b \
             JOIN token_blacklist_outstandingtoken o ON o.id = b.token_id ORDER BY o.jti",
            expires = self.epoch_or_null("o.expires_at"),
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let tokens = rows
            .iter()
            .map(|row| {
                Ok(BlacklistedToken {
                    jti: row.try_get(0)?,
                    expires_at: row.try_get(1)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Some(tokens))
    }

    /// The (user id, address) pairs django-allauth verified, or `None`
    /// when its `account_emailaddress` table is absent.
    pub async fn verified_emails(&self) -> Result<Option<Vec<(i64, String)>>, StoreError> {
        let table = SqlIdentifier("account_emailaddress".into());
        if !self.has_table(&table).await? {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT CAST(user_id AS BIGINT), CAST(email AS TEXT) FROM account_emailaddress              WHERE verified ORDER BY user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let pairs = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Some(pairs))
    }

    /// Close the connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A latchkey user as a previous import left it.
#[derive(Debug, Clone)]
pub struct ExistingUser {
    /// Name as stored.
    pub name: String,
    /// Fingerprints from the last import; `None` for a user latchkey made.
    pub digests: Option<ImportDigests>,
}

/// Fingerprints of a Django row as imported (SHA-256, hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportDigests {
    /// Of the email, name, active flag and join date.
    pub profile: String,
    /// Of the Django password hash.
    pub password: String,
}

/// A user to write: the domain has validated and normalised every field.
pub struct ImportedUser<'a> {
    /// Kept from Django.
    pub id: i64,
    /// Email as shown.
    pub email: &'a str,
    /// Lowercased email.
    pub email_key: &'a str,
    /// Name as shown.
    pub name: &'a str,
    /// Lowercased name.
    pub name_key: &'a str,
    /// Active flag.
    pub is_active: bool,
    /// Join time.
    pub date_joined: i64,
    /// The Django hash to store, or `None` to keep the current one (unchanged
    /// in Django since the last import, maybe upgraded by a login since).
    pub password_hash: Option<&'a str>,
    /// Fingerprints of the source row.
    pub digests: &'a ImportDigests,
    /// Import time.
    pub now: i64,
}

/// The write side of an import: one transaction on latchkey's database.
pub struct ImportTransaction {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
}

impl Store {
    /// Start an import. Nothing is visible to other connections until
    /// [`ImportTransaction::commit`].
    pub async fn begin_import(&self) -> Result<ImportTransaction, StoreError> {
        // The write lock is taken at once: an import reads before it writes.
        let tx = self.begin_write().await?;
        Ok(ImportTransaction {
            tx,
            backend: self.backend,
        })
    }
}

impl ImportTransaction {
    /// The latchkey user with id `id`, if any.
    pub async fn existing_user(&mut self, id: i64) -> Result<Option<ExistingUser>, StoreError> {
        let row = sqlx::query(
            "SELECT u.name, d.profile_digest, d.password_digest \
             FROM users u LEFT JOIN django_imported_users d ON d.user_id = u.id WHERE u.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let profile: Option<String> = row.try_get(1)?;
        let password: Option<String> = row.try_get(2)?;
        Ok(Some(ExistingUser {
            name: row.try_get(0)?,
            digests: profile
                .zip(password)
                .map(|(profile, password)| ImportDigests { profile, password }),
        }))
    }

    /// The id of the user holding `email_key`, if any.
    pub async fn id_by_email_key(&mut self, email_key: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM users WHERE email_key = $1")
                .bind(email_key)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    /// The id of the user holding `name_key`, if any.
    pub async fn id_by_name_key(&mut self, name_key: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM users WHERE name_key = $1")
                .bind(name_key)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    /// Count user `id`'s address as verified if it is `email_key`; whether
    /// it was.
    pub async fn mark_verified(&mut self, id: i64, email_key: &str) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE users SET email_verified = 1 WHERE id = $1 AND email_key = $2")
                .bind(id)
                .bind(email_key)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        Ok(updated == 1)
    }

    /// Insert a new user with its Django id.
    pub async fn insert_user(&mut self, u: &ImportedUser<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, email_key, name, name_key, password_hash, is_active, date_joined) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(u.id)
        .bind(u.email)
        .bind(u.email_key)
        .bind(u.name)
        .bind(u.name_key)
        .bind(super::stored_hashes::encode(u.password_hash.unwrap_or("")))
        .bind(i64::from(u.is_active))
        .bind(u.date_joined)
        .execute(&mut *self.tx)
        .await?;
        self.record_digests(u).await
    }

    /// Bring an imported user up to date with a changed Django row. A
    /// password changed or an account deactivated in Django ends the
    /// user's latchkey sessions and refuses their Django tokens, as the
    /// same change made in latchkey does (`Store::set_password_hash`,
    /// `Store::set_active`). Running servers see it once their session
    /// cache entries expire (at most `LATCHKEY_SESSION_CACHE_MILLIS`).
    pub async fn update_user(&mut self, u: &ImportedUser<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET email = $1, email_key = $2, name = $3, name_key = $4, \
                    password_hash = COALESCE($5, password_hash), is_active = $6, date_joined = $7 \
             WHERE id = $8",
        )
        .bind(u.email)
        .bind(u.email_key)
        .bind(u.name)
        .bind(u.name_key)
        .bind(u.password_hash.map(super::stored_hashes::encode))
        .bind(i64::from(u.is_active))
        .bind(u.date_joined)
        .bind(u.id)
        .execute(&mut *self.tx)
        .await?;
        let reason = match (u.password_hash.is_some(), u.is_active) {
            (_, false) => Some("deactivated in Django"),
            (true, true) => Some("password changed in Django"),
            (false, true) => None,
        };
        if let Some(reason) = reason {
            super::statements::revoke_all_of(&mut self.tx, u.id, u.now, reason, None).await?;
        }
        self.record_digests(u).await
    }

    async fn record_digests(&mut self, u: &ImportedUser<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO django_imported_users (user_id, profile_digest, password_digest, imported_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             profile_digest = excluded.profile_digest, password_digest = excluded.password_digest, \
             imported_at = excluded.imported_at",
        )
        .bind(u.id)
        .bind(&u.digests.profile)
        .bind(&u.digests.password)
        .bind(u.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Record a refresh token Django blacklisted; false if already known.
    pub async fn record_blacklisted(
        &mut self,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let inserted = insert_legacy_token(jti, BLACKLISTED, None, now, expires_at)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        Ok(inserted == 1)
    }

    /// Make everything visible at once. On PostgreSQL, first move the id
    /// sequence past the imported ids, so new registrations never collide
    /// (SQLite's AUTOINCREMENT follows explicit ids by itself).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query(
                "SELECT CAST(setval(pg_get_serial_sequence('users', 'id'), \
                        GREATEST((SELECT MAX(id) FROM users), 1)) AS BIGINT)",
            )
            .fetch_one(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}
