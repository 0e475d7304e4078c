//! The keys tokens are signed with: HS256's secret, or a set of asymmetric
//! keys (EdDSA, ES256, RS256) kept in the database, each with a `kid` and
//! a state that moves next → current → previous (or to revoked).
//!
//! The current key signs. Tokens verify only under the configured
//! algorithm, and only with a key this set lists as usable — the next
//! key, the current one, and previous keys until every token they can
//! have signed has expired — selected by the header's `kid` among those
//! alone. Every instance reloads the set from the database once it is
//! older than the session cache's TTL, so a rotation or a revocation made
//! anywhere (the CLI included) is seen everywhere within that delay; a
//! forged `kid` cannot make requests reload faster than that.

mod admin;
pub mod jwk;
pub mod keypair;
mod verified;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use admin::{KeyAdmin, KeyInfo, RotateError, JWKS_MAX_AGE_SECONDS};
pub use keypair::{KeyError, PrivateKey, PublicKey};
pub use verified::VerifiedSignatures;

use super::keys::SecretKey;
use crate::store::{SigningKeyRecord, Store};

/// A JWS algorithm latchkey signs with (`LATCHKEY_JWT_ALGORITHM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-SHA256 with the secret key (SimpleJWT's; the default).
    Hs256,
    /// Ed25519.
    EdDsa,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The `alg` header value (RFC 7518 / RFC 8037).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// Whether it signs with a key pair (and so has `kid`s and a JWKS).
    pub fn is_asymmetric(self) -> bool {
        self != Self::Hs256
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `alg` latchkey does not sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown JWT algorithm {0:?}: use HS256, EdDSA, ES256 or RS256")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// The exact `alg` names (`HS256`, `EdDSA`, `ES256`, `RS256`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Hs256, Self::EdDsa, Self::Es256, Self::Rs256]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// Where a stored key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not yet signing: verifiers fetch it before it signs.
    Next,
    /// Signing.
    Current,
    /// Retired by a rotation; verifies (and is published) until every
    /// token it can have signed has expired.
    Previous,
    /// Refused at once, published no more.
    Revoked,
}

impl KeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Revoked => "revoked",
        }
    }

    /// The state a stored name says, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Next, Self::Current, Self::Previous, Self::Revoked]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// How long a retired key keeps verifying: the longest token lifetime,
/// the clock leeway and the reload delay (an instance that has not seen
/// the rotation yet still signs with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Seconds after `retired_at` a previous key stays usable.
    pub seconds: i64,
}

impl Retention {
    /// From the token lifetimes, the leeway and the reload interval.
    pub fn new(access: i64, refresh: i64, leeway: i64, reload: Duration) -> Self {
        let reload = i64::try_from(reload.as_secs()).unwrap_or(i64::MAX / 4) + 1;
        Self {
            seconds: access
                .max(refresh)
                .saturating_add(leeway.max(0))
                .saturating_add(reload),
        }
    }

    /// Whether a key in `state`, retired at `retired_at`, verifies at `now`.
    pub fn usable(self, state: KeyState, retired_at: Option<i64>, now: i64) -> bool {
        match state {
            KeyState::Next | KeyState::Current => true,
            KeyState::Previous => retired_at.is_some_and(|t| now < t.saturating_add(self.seconds)),
            KeyState::Revoked => false,
        }
    }
}

/// What signs new tokens.
enum Signer {
    /// Before the first load: signs nothing.
    Unloaded,
    Hmac(Hmac<Sha256>),
    Key {
        /// `{"alg":…,"kid":…,"typ":"JWT"}`, base64url, ready to prepend.
        header_b64: String,
        key: Arc<PrivateKey>,
    },
}

/// A snapshot of the keys: what signs, what verifies, what is published.
pub struct KeySet {
    algorithm: Algorithm,
    signer: Signer,
    /// The usable asymmetric keys by `kid` (empty with HS256).
    verifiers: HashMap<String, PublicKey>,
    /// `{"keys": [...]}`, serialised once per snapshot.
    jwks: Arc<[u8]>,
    /// Tokens whose signature verified, shared by the snapshots of one
    /// server (see verified.rs); none with HS256, whose check costs a digest.
    verified: Option<Arc<VerifiedSignatures>>,
}

/// The `kid` header is at most this long (a SHA-256 thumbprint is 43).
pub const MAX_KID_LEN: usize = 64;

impl KeySet {
    /// HS256 with `key`, as SimpleJWT signs (no `kid`, an empty JWKS).
    pub fn hs256(key: &SecretKey) -> Self {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self {
            algorithm: Algorithm::Hs256,
            signer: Signer::Hmac(keyed),
            verifiers: HashMap::new(),
            jwks: Arc::from(&br#"{"keys":[]}"#[..]),
            verified: None,
        }
    }

    /// The set whose `current` key signs and whose `usable` keys verify
    /// (`current` among them), published in `usable`'s order.
    pub fn asymmetric(
        current: (&str, Arc<PrivateKey>),
        usable: Vec<(String, PublicKey)>,
    ) -> Result<Self, KeyError> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let (kid, key) = current;
        let algorithm = key.algorithm();
        let header = serde_json::json!({"alg": algorithm.as_str(), "kid": kid, "typ": "JWT"});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        let keys: Vec<jwk::Jwk> = usable.iter().map(|(kid, k)| k.to_jwk(kid)).collect();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": keys }))
            .map_err(|e| KeyError::Rejected(algorithm, e.to_string()))?;
        Ok(Self {
            algorithm,
            signer: Signer::Key { header_b64, key },
            verifiers: usable
                .into_iter()
                .filter(|(_, k)| k.algorithm() == algorithm)
                .collect(),
            jwks: Arc::from(jwks),
            verified: None,
        })
    }

    /// The same set, remembering verified signatures in `verified`.
    pub fn remembering(mut self, verified: Arc<VerifiedSignatures>) -> Self {
        self.verified = Some(verified);
        self
    }

    /// Whether `token`'s signature verified before (under a key of this
    /// server's; the caller has checked its `kid` is usable now).
    pub(crate) fn verified_before(&self, token: &str) -> bool {
        self.verified.as_ref().is_some_and(|v| v.contains(token))
    }

    /// Remembers that `token`'s signature verified.
    pub(crate) fn remember_verified(&self, token: &str) {
        if let Some(v) = &self.verified {
            v.insert(token);
        }
    }

    /// The configured algorithm: the only one tokens verify under.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The JWKS document: `{"keys": [...]}`.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.jwks.clone()
    }

    /// The base64url header every new token starts with.
    pub(crate) fn header_b64(&self) -> &str {
        match &self.signer {
            // `{"alg":"HS256","typ":"JWT"}`, exactly as SimpleJWT.
            Signer::Hmac(_) => "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            Signer::Key { header_b64, .. } => header_b64,
            Signer::Unloaded => "",
        }
    }

    /// The signature of `signing_input` by the current key.
    pub(crate) fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Hmac(keyed) => {
                let mut mac = keyed.clone();
                mac.update(signing_input);
                Ok(mac.finalize().into_bytes().to_vec())
            }
            Signer::Key { key, .. } => key.sign(signing_input),
            Signer::Unloaded => Err(KeyError::Signing),
        }
    }

    /// The HMAC key, with HS256.
    pub(crate) fn hmac(&self) -> Option<&Hmac<Sha256>> {
        match &self.signer {
            Signer::Hmac(keyed) => Some(keyed),
            Signer::Key { .. } | Signer::Unloaded => None,
        }
    }

    /// The usable key named `kid`, if any.
    pub(crate) fn verifier(&self, kid: &str) -> Option<&PublicKey> {
        self.verifiers.get(kid)
    }

    /// The `kid`s tokens verify with.
    pub fn usable_kids(&self) -> impl Iterator<Item = &str> {
        self.verifiers.keys().map(String::as_str)
    }
}

/// Why the key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// The database failed.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// A stored key is unusable, or there is no current key.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// No current key of the configured algorithm (all revoked?).
    #[error("no current {0} signing key; run `latchkey keys rotate`")]
    NoCurrentKey(Algorithm),
}

/// The keys of one running server: a fixed HS256 set, or the stored
/// asymmetric keys, reloaded when older than the reload interval.
#[derive(Clone)]
pub struct SigningKeys(Arc<Inner>);

struct Inner {
    source: Source,
    snapshot: RwLock<(Arc<KeySet>, Instant)>,
    reloading: tokio::sync::Mutex<()>,
    /// Parsed private keys by `kid`: a reload parses only new keys.
    parsed: Mutex<HashMap<String, Arc<PrivateKey>>>,
}

enum Source {
    Fixed,
    Stored {
        store: Store,
        algorithm: Algorithm,
        retention: Retention,
        reload: Duration,
        /// Verified signatures, kept across reloads (HS256 has none: its
        /// check costs no more than the digest would).
        verified: Arc<VerifiedSignatures>,
    },
}

impl SigningKeys {
    /// HS256 with the secret key: nothing to reload.
    pub fn hs256(key: &SecretKey) -> Self {
        Self(Arc::new(Inner {
            source: Source::Fixed,
            snapshot: RwLock::new((Arc::new(KeySet::hs256(key)), Instant::now())),
            reloading: tokio::sync::Mutex::new(()),
            parsed: Mutex::new(HashMap::new()),
        }))
    }

    /// The stored keys of `algorithm`: makes the first current and next
    /// keys when there are none (the first start), then loads them.
    pub async fn stored(
        store: Store,
        algorithm: Algorithm,
        retention: Retention,
        reload: Duration,
        now: i64,
    ) -> Result<Self, KeySetError> {
        KeyAdmin::new(store.clone(), algorithm)
            .ensure_keys(now)
            .await
            .map_err(|e| match e {
                RotateError::Store(e) => KeySetError::Store(e),
                RotateError::Key(e) => KeySetError::Key(e),
                _ => KeySetError::NoCurrentKey(algorithm),
            })?;
        let inner = Inner {
            source: Source::Stored {
                store,
                algorithm,
                retention,
                reload,
                verified: Arc::default(),
            },
            snapshot: RwLock::new((Arc::new(KeySet::empty(algorithm)), Instant::now())),
            reloading: tokio::sync::Mutex::new(()),
            parsed: Mutex::new(HashMap::new()),
        };
        let keys = Self(Arc::new(inner));
        let set = keys.load(now).await?;
        keys.install(set);
        Ok(keys)
    }

    /// The key set, reloaded first when it is older than the reload
    /// interval. A reload that fails keeps the last set (and is logged):
    /// the database's own failure shows in the request that needs it.
    pub async fn current(&self, now: i64) -> Arc<KeySet> {
        let Source::Stored { reload, .. } = &self.0.source else {
            return self.cached();
        };
        if self.age() < *reload && !reload.is_zero() {
            return self.cached();
        }
        let _one_at_a_time = self.0.reloading.lock().await;
        if self.age() < *reload && !reload.is_zero() {
            return self.cached();
        }
        match self.load(now).await {
            Ok(set) => self.install(set),
            Err(e) => {
                tracing::warn!(error = %e, "signing keys not reloaded; keeping the last set");
                self.cached()
            }
        }
    }

    fn age(&self) -> Duration {
        self.0
            .snapshot
            .read()
            .map_or(Duration::MAX, |s| s.1.elapsed())
    }

    fn cached(&self) -> Arc<KeySet> {
        match self.0.snapshot.read() {
            Ok(s) => s.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    fn install(&self, set: KeySet) -> Arc<KeySet> {
        let set = Arc::new(set);
        match self.0.snapshot.write() {
            Ok(mut s) => *s = (set.clone(), Instant::now()),
            Err(poisoned) => *poisoned.into_inner() = (set.clone(), Instant::now()),
        }
        set
    }

    async fn load(&self, now: i64) -> Result<KeySet, KeySetError> {
        let Source::Stored {
            store,
            algorithm,
            retention,
            verified,
            ..
        } = &self.0.source
        else {
            return Ok(KeySet::empty(Algorithm::Hs256));
        };
        let records = store.signing_keys(algorithm.as_str()).await?;
        let mut current = None;
        let mut usable = Vec::new();
        for record in &records {
            let Some(state) = KeyState::parse(&record.state) else {
                continue;
            };
            if !retention.usable(state, record.retired_at, now) {
                continue;
            }
            let key = self.parse(*algorithm, record)?;
            if state == KeyState::Current {
                current = Some((record.kid.clone(), key.clone()));
            }
            let rank = match state {
                KeyState::Current => 0,
                KeyState::Next => 1,
                _ => 2,
            };
            usable.push((
                rank,
                record.retired_at,
                record.kid.clone(),
                key.public().clone(),
            ));
        }
        // Published current first, then next, then previous keys newest first.
        usable.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let usable = usable
            .into_iter()
            .map(|(_, _, kid, key)| (kid, key))
            .collect();
        let (kid, key) = current.ok_or(KeySetError::NoCurrentKey(*algorithm))?;
        Ok(KeySet::asymmetric((&kid, key), usable)?.remembering(verified.clone()))
    }

    fn parse(
        &self,
        algorithm: Algorithm,
        record: &SigningKeyRecord,
    ) -> Result<Arc<PrivateKey>, KeyError> {
        if let Some(key) = self
            .0
            .parsed
            .lock()
            .ok()
            .and_then(|p| p.get(&record.kid).cloned())
        {
            return Ok(key);
        }
        let key = Arc::new(PrivateKey::from_pkcs8(algorithm, &record.private_key)?);
        if let Ok(mut parsed) = self.0.parsed.lock() {
            parsed.insert(record.kid.clone(), key.clone());
        }
        Ok(key)
    }
}

impl KeySet {
    /// A set that signs nothing and verifies nothing (before the first load).
    fn empty(algorithm: Algorithm) -> Self {
        Self {
            algorithm,
            signer: Signer::Unloaded,
            verifiers: HashMap::new(),
            jwks: Arc::from(&br#"{"keys":[]}"#[..]),
            verified: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_exact() {
        for name in ["HS256", "EdDSA", "ES256", "RS256"] {
            assert_eq!(name.parse::<Algorithm>().unwrap().as_str(), name);
        }
        for bad in ["hs256", "none", "ES384", "", "EDDSA"] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_previous_key_verifies_until_its_tokens_have_expired() {
        let retention = Retention::new(60, 600, 5, Duration::from_secs(1));
        assert_eq!(retention.seconds, 600 + 5 + 2);
        assert!(retention.usable(KeyState::Previous, Some(1_000), 1_606));
        assert!(!retention.usable(KeyState::Previous, Some(1_000), 1_607));
        assert!(retention.usable(KeyState::Next, None, 0));
        assert!(retention.usable(KeyState::Current, None, 0));
        assert!(!retention.usable(KeyState::Revoked, Some(1_000), 1_000));
        assert!(!retention.usable(KeyState::Previous, None, 0));
    }
}
