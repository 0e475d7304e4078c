//! The `signing_keys` table: asymmetric token signing keys and their
//! states (next, current, previous, revoked). Every change of states is
//! one transaction, so instances reloading the set never see two current
//! keys or none (the unique indexes refuse a second current or next key).

use sqlx::Row as _;

use super::{Store, StoreError};

/// A stored key.
#[derive(Clone)]
pub struct SigningKeyRecord {
    /// Its `kid` (the public key's RFC 7638 thumbprint).
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    pub algorithm: String,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// `next`, `current`, `previous` or `revoked`.
    pub state: String,
    /// When it was made or imported.
    pub created_at: i64,
    /// When it became current.
    pub activated_at: Option<i64>,
    /// When it became previous.
    pub retired_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// A key about to be stored.
pub struct NewSigningKey<'a> {
    /// Its `kid`.
    pub kid: &'a str,
    /// Its algorithm.
    pub algorithm: &'a str,
    /// PKCS#8 DER.
    pub private_key: &'a [u8],
    /// When it was made.
    pub created_at: i64,
}

async fn insert<'e, E>(
    executor: E,
    key: &NewSigningKey<'_>,
    state: &str,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    // Another instance (or a racing CLI) may have stored its key for this
    // state meanwhile: the unique index keeps the first one.
    let done = sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, private_key, state, created_at, activated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(key.kid)
    .bind(key.algorithm)
    .bind(key.private_key.to_vec())
    .bind(state)
    .bind(key.created_at)
    .bind((state == "current").then_some(key.created_at))
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Every stored key of `algorithm`, oldest first.
    pub async fn signing_keys(&self, algorithm: &str) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, state, created_at, activated_at, retired_at, revoked_at \
             FROM signing_keys WHERE algorithm = $1 ORDER BY created_at, kid",
        )
        .bind(algorithm)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get(0)?,
                    algorithm: r.try_get(1)?,
                    private_key: r.try_get(2)?,
                    state: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    activated_at: r.try_get(5)?,
                    retired_at: r.try_get(6)?,
                    revoked_at: r.try_get(7)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Store `key` as the current key of its algorithm unless there is one
    /// already (the first start); whether it was stored.
    pub async fn insert_current_signing_key(
        &self,
        key: &NewSigningKey<'_>,
    ) -> Result<bool, StoreError> {
        insert(&self.writer, key, "current").await
    }

    /// Store `key` as the next key of its algorithm unless there is one
    /// already; whether it was stored.
    pub async fn insert_next_signing_key(
        &self,
        key: &NewSigningKey<'_>,
    ) -> Result<bool, StoreError> {
        insert(&self.writer, key, "next").await
    }

    /// Rotation, in one transaction: the current key becomes previous, the
    /// next one current, and `new_next` the next. The `kid` that became
    /// current, or `None` when there was no next key (nothing changed).
    pub async fn rotate_signing_keys(
        &self,
        new_next: &NewSigningKey<'_>,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let next: Option<String> =
            sqlx::query("SELECT kid FROM signing_keys WHERE algorithm = $1 AND state = 'next'")
                .bind(new_next.algorithm)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        let Some(next) = next else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE signing_keys SET state = 'previous', retired_at = $2 \
             WHERE algorithm = $1 AND state = 'current'",
        )
        .bind(new_next.algorithm)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE signing_keys SET state = 'current', activated_at = $2 WHERE kid = $1")
            .bind(&next)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if !insert(&mut *tx, new_next, "next").await? {
            return Err(StoreError::Other(
                "a next key appeared during the rotation".into(),
            ));
        }
        tx.commit().await?;
        Ok(Some(next))
    }

    /// Revoke key `kid`, in one transaction. A revoked current key is
    /// replaced by the next one at once; whichever of the two left the
    /// `next` state is replaced by `new_next`. The state the key was in,
    /// or `None` for an unknown `kid`.
    pub async fn revoke_signing_key(
        &self,
        kid: &str,
        new_next: &NewSigningKey<'_>,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let state: Option<String> =
            sqlx::query("SELECT state FROM signing_keys WHERE kid = $1 AND algorithm = $2")
                .bind(kid)
                .bind(new_next.algorithm)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        let Some(state) = state else {
            return Ok(None);
        };
        if state == "revoked" {
            return Ok(Some(state));
        }
        sqlx::query("UPDATE signing_keys SET state = 'revoked', revoked_at = $2 WHERE kid = $1")
            .bind(kid)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if state == "current" {
            sqlx::query(
                "UPDATE signing_keys SET state = 'current', activated_at = $2 \
                 WHERE algorithm = $1 AND state = 'next'",
            )
            .bind(new_next.algorithm)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if state == "current" || state == "next" {
            insert(&mut *tx, new_next, "next").await?;
        }
        tx.commit().await?;
        Ok(Some(state))
    }

    /// Make `key` (imported from a PEM file) the next key of its
    /// algorithm, in place of the one there (which never signed anything).
    /// `false` when a key with this `kid` is stored already.
    pub async fn replace_next_signing_key(
        &self,
        key: &NewSigningKey<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let known = sqlx::query("SELECT 1 FROM signing_keys WHERE kid = $1")
            .bind(key.kid)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_some() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM signing_keys WHERE algorithm = $1 AND state = 'next'")
            .bind(key.algorithm)
            .execute(&mut *tx)
            .await?;
        insert(&mut *tx, key, "next").await?;
        tx.commit().await?;
        Ok(true)
    }
}
