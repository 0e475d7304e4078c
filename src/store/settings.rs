//! The `server_settings` table: values every instance must share.

use sqlx::Row as _;

use super::{Store, StoreError};

const SIGNING_KEY: &str = "signing_key";

/// The row readiness rewrites to prove the database takes writes.
const WRITE_PROBE: &str = "write_probe";

/// A value that differs between probes, so each one really writes.
fn probe_value() -> Vec<u8> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_be_bytes()
        .to_vec()
}

/// Commit a one-row write on `writer`: the readiness probe.
pub(super) async fn probe_write(writer: &sqlx::AnyPool) -> Result<(), StoreError> {
    // In a transaction so that a failed COMMIT is reported, not lost.
    let mut tx = writer.begin().await?;
    sqlx::query(
        "INSERT INTO server_settings (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(WRITE_PROBE)
    .bind(probe_value())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

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
