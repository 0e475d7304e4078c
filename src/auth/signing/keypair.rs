//! One signing key per algorithm, over `ring` (already compiled for
//! rustls): Ed25519, ECDSA P-256 with SHA-256, RSA PKCS#1 v1.5 with
//! SHA-256. The private half is held as PKCS#8 DER (what the database
//! stores and what `openssl genpkey` writes); RSA keys are generated with
//! the `rsa` crate, because `ring` does not generate them, and signed
//! with `ring`.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

use super::Algorithm;

/// Bits of a generated RSA modulus (NIST SP 800-57: 3072 bits for
/// security beyond 2030; verifiers accept 2048 to 8192).
pub const RSA_BITS: usize = 3072;

/// Shortest RSA modulus accepted from a PEM file, in bits.
pub const RSA_MIN_BITS: usize = 2048;

/// Why a key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// Not a PKCS#8 key of the configured algorithm (or a weak RSA key).
    #[error("not a PKCS#8 {0} private key: {1}")]
    Rejected(Algorithm, String),
    /// A PEM file that is not one `PRIVATE KEY` block.
    #[error("not a PEM `PRIVATE KEY` (PKCS#8) file: {0}")]
    Pem(String),
    /// HS256 has no key pair.
    #[error("HS256 signs with the secret key, not a key pair")]
    Symmetric,
    /// Signing failed (only on an RNG failure).
    #[error("signing failed")]
    Signing,
}

enum Inner {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key able to sign tokens under one algorithm. `Debug` never
/// prints key material.
pub struct PrivateKey {
    inner: Inner,
    algorithm: Algorithm,
    public: PublicKey,
    rng: SystemRandom,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, [redacted])", self.algorithm)
    }
}

/// The public half of a key: what verifies its signatures and what the
/// JWKS publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519: the 32-byte point.
    Ed25519(Vec<u8>),
    /// P-256: the 65-byte uncompressed point (`04 || x || y`).
    P256(Vec<u8>),
    /// RSA: modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
}

impl PublicKey {
    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::EdDsa,
            Self::P256(_) => Algorithm::Es256,
            Self::Rsa { .. } => Algorithm::Rs256,
        }
    }

    /// Whether `signature` is this key's over `message` (a JWS signature:
    /// for ES256 the fixed 64-byte `r || s`, RFC 7518 §3.4).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ed25519(point) => signature::UnparsedPublicKey::new(&signature::ED25519, point)
                .verify(message, signature)
                .is_ok(),
            Self::P256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            Self::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
        }
    }
}

impl PrivateKey {
    /// A fresh key for `algorithm`, as PKCS#8 DER (for storage).
    pub fn generate(algorithm: Algorithm) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match algorithm {
            Algorithm::Hs256 => Err(KeyError::Symmetric),
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Random),
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map(|d| d.as_ref().to_vec())
                    .map_err(|_| KeyError::Random)
            }
            Algorithm::Rs256 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)
                    .map_err(|_| KeyError::Random)?;
                key.to_pkcs8_der()
                    .map(|d| d.as_bytes().to_vec())
                    .map_err(|e| KeyError::Rejected(algorithm, e.to_string()))
            }
        }
    }

    /// The key in `pkcs8` (DER), which must be a key of `algorithm`.
    pub fn from_pkcs8(algorithm: Algorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let rejected = |e: ring::error::KeyRejected| KeyError::Rejected(algorithm, e.to_string());
        let rng = SystemRandom::new();
        let (inner, public) = match algorithm {
            Algorithm::Hs256 => return Err(KeyError::Symmetric),
            Algorithm::EdDsa => {
                // `maybe_unchecked` also takes PKCS#8 v1 (no public key),
                // which is what `openssl genpkey -algorithm ed25519` writes.
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(rejected)?;
                let public = PublicKey::Ed25519(pair.public_key().as_ref().to_vec());
                (Inner::Ed25519(pair), public)
            }
            Algorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &rng,
                )
                .map_err(rejected)?;
                let public = PublicKey::P256(pair.public_key().as_ref().to_vec());
                (Inner::P256(pair), public)
            }
            Algorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?;
                if pair.public().modulus_len() * 8 < RSA_MIN_BITS {
                    return Err(KeyError::Rejected(
                        algorithm,
                        format!("the modulus is shorter than {RSA_MIN_BITS} bits"),
                    ));
                }
                let components = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                let public = PublicKey::Rsa {
                    n: components.n,
                    e: components.e,
                };
                (Inner::Rsa(pair), public)
            }
        };
        Ok(Self {
            inner,
            algorithm,
            public,
            rng,
        })
    }

    /// The PKCS#8 DER inside a PEM `PRIVATE KEY` block (what `openssl
    /// genpkey` writes). Anything else is refused.
    pub fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>, KeyError> {
        let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes())
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "PRIVATE KEY" {
            return Err(KeyError::Pem(format!(
                "the block is `{label}`; convert it with `openssl pkcs8 -topk8 -nocrypt`"
            )));
        }
        Ok(der)
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Its public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The JWS signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Inner::P256(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Signing),
            Inner::Rsa(pair) => {
                let mut out = vec![0u8; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut out)
                    .map_err(|_| KeyError::Signing)?;
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_refuses_a_changed_message() {
        for algorithm in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
            let der = PrivateKey::generate(algorithm).unwrap();
            let key = PrivateKey::from_pkcs8(algorithm, &der).unwrap();
            let signature = key.sign(b"header.payload").unwrap();
            assert!(
                key.public().verify(b"header.payload", &signature),
                "{algorithm}"
            );
            assert!(
                !key.public().verify(b"header.payloae", &signature),
                "{algorithm}"
            );
            assert_eq!(key.public().algorithm(), algorithm);
        }
    }

    #[test]
    fn a_key_of_one_algorithm_is_refused_as_another() {
        let ed = PrivateKey::generate(Algorithm::EdDsa).unwrap();
        assert!(PrivateKey::from_pkcs8(Algorithm::Es256, &ed).is_err());
        assert!(PrivateKey::from_pkcs8(Algorithm::Rs256, &ed).is_err());
        assert!(PrivateKey::from_pkcs8(Algorithm::Hs256, &ed).is_err());
        let ec = PrivateKey::generate(Algorithm::Es256).unwrap();
        assert!(PrivateKey::from_pkcs8(Algorithm::EdDsa, &ec).is_err());
    }

    #[test]
    fn a_pem_private_key_block_is_read_and_other_blocks_are_refused() {
        let der = PrivateKey::generate(Algorithm::EdDsa).unwrap();
        let pem =
            pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der).unwrap();
        assert_eq!(PrivateKey::pkcs8_from_pem(&pem).unwrap(), der);
        let other = pem_rfc7468::encode_string("EC PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der)
            .unwrap();
        assert!(PrivateKey::pkcs8_from_pem(&other).is_err());
        assert!(PrivateKey::pkcs8_from_pem("not a key").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let der = PrivateKey::generate(Algorithm::EdDsa).unwrap();
        let key = PrivateKey::from_pkcs8(Algorithm::EdDsa, &der).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(EdDSA, [redacted])");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_as_a_key(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for algorithm in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
                let _ = PrivateKey::from_pkcs8(algorithm, &bytes);
            }
        }

        #[test]
        fn arbitrary_text_never_panics_as_a_pem_file(text in "(-----BEGIN PRIVATE KEY-----\n)?[ -~\n]{0,300}(-----END PRIVATE KEY-----)?") {
            let _ = PrivateKey::pkcs8_from_pem(&text);
        }

        #[test]
        fn arbitrary_signatures_never_verify(sig in proptest::collection::vec(any::<u8>(), 0..400)) {
            let der = PrivateKey::generate(Algorithm::Es256).unwrap();
            let key = PrivateKey::from_pkcs8(Algorithm::Es256, &der).unwrap();
            prop_assert!(!key.public().verify(b"m", &sig));
        }
    }
}
