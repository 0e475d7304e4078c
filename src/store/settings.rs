//! The `server_settings` table: values every instance must share.

use sqlx::Row as _;

use super::{Store, StoreError};

const SIGNING_KEY: &str = "signing_key";

impl Store {
    /// The signing key kept in the database. The first instance to ask stores
    /// `candidate`; every later caller, on any instance, gets that same key.
    pub async fn signing_key_or_insert(&self, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(SIGNING_KEY)
            .bind(candidate.to_vec())
            .execute(&self.writer)
            .await?;
        let row = sqlx::query("SELECT value FROM server_settings WHERE name = $1")
            .bind(SIGNING_KEY)
            .fetch_one(&self.writer)
            .await?;
        Ok(row.try_get(0)?)
    }
}
