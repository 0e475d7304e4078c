//! The operator's key commands (`latchkey keys rotate | list | revoke |
//! import`) and the first start's key generation.

use super::keypair::{KeyError, PrivateKey};
use super::{Algorithm, KeyState, Retention};
use crate::store::{NewSigningKey, Store, StoreError};

/// Why a key command failed.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A key could not be made or read.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// HS256 has no stored key pairs.
    #[error("LATCHKEY_JWT_ALGORITHM is HS256, which signs with the secret key: there are no key pairs to manage")]
    Symmetric,
    /// No next key to promote.
    #[error(
        "there is no next {0} key; start `latchkey serve` once with this algorithm to make one"
    )]
    NoNextKey(Algorithm),
    /// The next key is younger than the JWKS cache lifetime: verifiers
    /// may not have fetched it yet.
    #[error(
        "the next key was made {age} s ago; verifiers cache the JWKS for {max_age} s and may not know it yet. \
         Wait {wait} s, or pass --force (tokens it signs are refused by verifiers until they refetch the JWKS)"
    )]
    NextTooNew {
        /// Its age in seconds.
        age: i64,
        /// The JWKS cache lifetime.
        max_age: i64,
        /// Seconds left.
        wait: i64,
    },
    /// No key with that `kid`.
    #[error("no {algorithm} key with kid {kid}")]
    NotFound {
        /// The configured algorithm.
        algorithm: Algorithm,
        /// The `kid` asked for.
        kid: String,
    },
    /// The imported key is stored already.
    #[error("that key is stored already (kid {0})")]
    Duplicate(String),
}

/// A stored key as `latchkey keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its `kid`.
    pub kid: String,
    /// Its state.
    pub state: KeyState,
    /// Made or imported.
    pub created_at: i64,
    /// Became current.
    pub activated_at: Option<i64>,
    /// Became previous.
    pub retired_at: Option<i64>,
    /// Revoked.
    pub revoked_at: Option<i64>,
    /// Verifies tokens and is in the JWKS now.
    pub published: bool,
}

/// The seconds verifiers may cache the JWKS (`Cache-Control: max-age`).
pub const JWKS_MAX_AGE_SECONDS: i64 = 300;

/// A fresh key: its `kid` and PKCS#8 DER.
struct Generated {
    kid: String,
    der: Vec<u8>,
}

impl Generated {
    fn new(algorithm: Algorithm) -> Result<Self, KeyError> {
        Self::from_der(algorithm, PrivateKey::generate(algorithm)?)
    }

    fn from_der(algorithm: Algorithm, der: Vec<u8>) -> Result<Self, KeyError> {
        let kid = PrivateKey::from_pkcs8(algorithm, &der)?
            .public()
            .thumbprint();
        Ok(Self { kid, der })
    }

    fn record<'a>(&'a self, algorithm: &'a str, now: i64) -> NewSigningKey<'a> {
        NewSigningKey {
            kid: &self.kid,
            algorithm,
            private_key: &self.der,
            created_at: now,
        }
    }
}

/// The key commands, over the store, for the configured algorithm.
pub struct KeyAdmin {
    store: Store,
    algorithm: Algorithm,
}

impl KeyAdmin {
    /// Commands for `algorithm`'s keys.
    pub fn new(store: Store, algorithm: Algorithm) -> Self {
        Self { store, algorithm }
    }

    fn asymmetric(&self) -> Result<&'static str, RotateError> {
        if self.algorithm.is_asymmetric() {
            Ok(self.algorithm.as_str())
        } else {
            Err(RotateError::Symmetric)
        }
    }

    /// Make a current and a next key when missing (the first start; two
    /// instances starting at once keep one of each).
    pub async fn ensure_keys(&self, now: i64) -> Result<(), RotateError> {
        let algorithm = self.asymmetric()?;
        let records = self.store.signing_keys(algorithm).await?;
        let has = |state: &str| records.iter().any(|r| r.state == state);
        if !has("current") {
            let key = Generated::new(self.algorithm)?;
            if self
                .store
                .insert_current_signing_key(&key.record(algorithm, now))
                .await?
            {
                tracing::info!(kid = %key.kid, algorithm, "signing key generated and stored in the database");
            }
        }
        if !has("next") {
            let key = Generated::new(self.algorithm)?;
            self.store
                .insert_next_signing_key(&key.record(algorithm, now))
                .await?;
        }
        Ok(())
    }

    /// Every stored key of the algorithm, oldest first.
    pub async fn list(&self, retention: Retention, now: i64) -> Result<Vec<KeyInfo>, RotateError> {
        let algorithm = self.asymmetric()?;
        let records = self.store.signing_keys(algorithm).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| {
                let state = KeyState::parse(&r.state)?;
                Some(KeyInfo {
                    published: retention.usable(state, r.retired_at, now),
                    kid: r.kid,
                    state,
                    created_at: r.created_at,
                    activated_at: r.activated_at,
                    retired_at: r.retired_at,
                    revoked_at: r.revoked_at,
                })
            })
            .collect())
    }

    /// Rotate: the next key becomes current (refused while it is younger
    /// than the JWKS cache lifetime, unless `force`), the current one
    /// previous, and a new next key is made. The new current `kid`.
    pub async fn rotate(&self, now: i64, force: bool) -> Result<String, RotateError> {
        let algorithm = self.asymmetric()?;
        let records = self.store.signing_keys(algorithm).await?;
        let next = records
            .iter()
            .find(|r| r.state == "next")
            .ok_or(RotateError::NoNextKey(self.algorithm))?;
        let age = now - next.created_at;
        if !force && age < JWKS_MAX_AGE_SECONDS {
            return Err(RotateError::NextTooNew {
                age,
                max_age: JWKS_MAX_AGE_SECONDS,
                wait: JWKS_MAX_AGE_SECONDS - age,
            });
        }
        let new_next = Generated::new(self.algorithm)?;
        let promoted = self
            .store
            .rotate_signing_keys(&new_next.record(algorithm, now), now)
            .await?
            .ok_or(RotateError::NoNextKey(self.algorithm))?;
        tracing::info!(target: "latchkey::security", event = "signing_key_rotated", kid = %promoted, next = %new_next.kid);
        Ok(promoted)
    }

    /// Revoke `kid`: its tokens are refused. A revoked current key is
    /// replaced by the next at once, and a new next key is made. The state
    /// it was in.
    pub async fn revoke(&self, kid: &str, now: i64) -> Result<KeyState, RotateError> {
        let algorithm = self.asymmetric()?;
        let new_next = Generated::new(self.algorithm)?;
        let state = self
            .store
            .revoke_signing_key(kid, &new_next.record(algorithm, now), now)
            .await?
            .and_then(|s| KeyState::parse(&s))
            .ok_or_else(|| RotateError::NotFound {
                algorithm: self.algorithm,
                kid: kid.to_owned(),
            })?;
        tracing::warn!(target: "latchkey::security", event = "signing_key_revoked", kid, was = state.as_str());
        Ok(state)
    }

    /// Import the PKCS#8 PEM `pem` as the next key (replacing the one
    /// there); the next rotation makes it current. Its `kid`.
    pub async fn import(&self, pem: &str, now: i64) -> Result<String, RotateError> {
        let algorithm = self.asymmetric()?;
        let key = Generated::from_der(self.algorithm, PrivateKey::pkcs8_from_pem(pem)?)?;
        if !self
            .store
            .replace_next_signing_key(&key.record(algorithm, now))
            .await?
        {
            return Err(RotateError::Duplicate(key.kid));
        }
        tracing::info!(target: "latchkey::security", event = "signing_key_imported", kid = %key.kid);
        Ok(key.kid)
    }
}
