//! JSON Web Keys (RFC 7517/7518) for the public halves, and their RFC 7638
//! thumbprints, which are the keys' `kid`s.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::keypair::PublicKey;
use super::Algorithm;

/// A public key as the JWKS publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `OKP`, `EC` or `RSA`.
    pub kty: String,
    /// `Ed25519` or `P-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The Ed25519 point, or the P-256 x coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The P-256 y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The key id (its thumbprint).
    pub kid: String,
    /// The JWS algorithm it verifies.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Length of a P-256 coordinate.
const P256_COORDINATE: usize = 32;

impl PublicKey {
    /// The RFC 7638 thumbprint: SHA-256 over the required members in
    /// lexicographic order, base64url. Used as the `kid`.
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::Ed25519(x) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
            Self::P256(point) => {
                let (x, y) = p256_coordinates(point);
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                )
            }
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    /// The JWK publishing this key under `kid`.
    pub fn to_jwk(&self, kid: &str) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
            kid: kid.to_owned(),
            alg: self.algorithm().to_string(),
            use_: "sig".into(),
        };
        match self {
            Self::Ed25519(x) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(b64(x));
            }
            Self::P256(point) => {
                let (x, y) = p256_coordinates(point);
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(b64(x));
                jwk.y = Some(b64(y));
            }
            Self::Rsa { n, e } => {
                jwk.kty = "RSA".into();
                jwk.n = Some(b64(n));
                jwk.e = Some(b64(e));
            }
        }
        jwk
    }
}

/// The x and y halves of an uncompressed P-256 point (`04 || x || y`).
fn p256_coordinates(point: &[u8]) -> (&[u8], &[u8]) {
    let body = point.get(1..).unwrap_or_default();
    body.split_at(body.len().min(P256_COORDINATE))
}

/// Why a JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a public signing JWK latchkey uses: {0}")]
pub struct JwkError(&'static str);

impl Jwk {
    /// The public key this JWK describes, if it is one latchkey could have
    /// published: a known `kty`/`crv`/`alg` combination, base64url members
    /// of the right lengths, `use` `sig`.
    pub fn public_key(&self) -> Result<PublicKey, JwkError> {
        let decode = |field: &Option<String>| -> Result<Vec<u8>, JwkError> {
            let text = field.as_deref().ok_or(JwkError("a member is missing"))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| JwkError("a member is not base64url"))
        };
        if self.use_ != "sig" {
            return Err(JwkError("`use` is not `sig`"));
        }
        let algorithm: Algorithm = self.alg.parse().map_err(|_| JwkError("unknown `alg`"))?;
        let key = match (self.kty.as_str(), self.crv.as_deref(), algorithm) {
            ("OKP", Some("Ed25519"), Algorithm::EdDsa) => {
                let x = decode(&self.x)?;
                if x.len() != 32 {
                    return Err(JwkError("an Ed25519 key is 32 bytes"));
                }
                PublicKey::Ed25519(x)
            }
            ("EC", Some("P-256"), Algorithm::Es256) => {
                let (x, y) = (decode(&self.x)?, decode(&self.y)?);
                if x.len() != P256_COORDINATE || y.len() != P256_COORDINATE {
                    return Err(JwkError("a P-256 coordinate is 32 bytes"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                PublicKey::P256(point)
            }
            ("RSA", None, Algorithm::Rs256) => {
                let (n, e) = (decode(&self.n)?, decode(&self.e)?);
                if n.first() == Some(&0) || e.first() == Some(&0) || n.is_empty() || e.is_empty() {
                    return Err(JwkError("RSA members have no leading zeros"));
                }
                PublicKey::Rsa { n, e }
            }
            _ => return Err(JwkError("`kty`, `crv` and `alg` do not agree")),
        };
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keypair::PrivateKey;
    use super::*;
    use proptest::prelude::*;

    fn public(algorithm: Algorithm) -> PublicKey {
        let der = PrivateKey::generate(algorithm).unwrap();
        PrivateKey::from_pkcs8(algorithm, &der)
            .unwrap()
            .public()
            .clone()
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s_example() {
        // RFC 7638 §3.1: the thumbprint of its example RSA key.
        let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
        let e = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
        assert_eq!(
            PublicKey::Rsa { n, e }.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_jwk_carries_only_public_members() {
        for algorithm in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
            let key = public(algorithm);
            let json = serde_json::to_value(key.to_jwk(&key.thumbprint())).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(json.get(private).is_none(), "{algorithm}: {json}");
            }
            assert_eq!(json["alg"], algorithm.to_string());
            assert_eq!(json["use"], "sig");
        }
    }

    #[test]
    fn mismatched_members_are_refused() {
        let key = public(Algorithm::EdDsa);
        let mut jwk = key.to_jwk("k");
        jwk.alg = "ES256".into();
        assert!(jwk.public_key().is_err());
        let mut jwk = key.to_jwk("k");
        jwk.x = Some("AAAA".into());
        assert!(jwk.public_key().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn every_generated_key_round_trips_through_its_jwk(which in 0usize..2) {
            let algorithm = [Algorithm::EdDsa, Algorithm::Es256][which];
            let key = public(algorithm);
            let kid = key.thumbprint();
            let text = serde_json::to_string(&key.to_jwk(&kid)).unwrap();
            let parsed: Jwk = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&parsed.kid, &kid);
            prop_assert_eq!(parsed.public_key().unwrap(), key);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_jwk_members_never_panic(kty in "(OKP|EC|RSA|[A-Z]{0,3})", crv in proptest::option::of("(Ed25519|P-256|[a-z]{0,4})"),
            alg in "(EdDSA|ES256|RS256|HS256|none)", x in proptest::option::of("[A-Za-z0-9_=+/-]{0,90}"),
            y in proptest::option::of("[A-Za-z0-9_-]{0,50}"), n in proptest::option::of("[A-Za-z0-9_-]{0,50}")) {
            let jwk = Jwk { kty, crv, x, y, e: n.clone(), n, kid: "k".into(), alg, use_: "sig".into() };
            let _ = jwk.public_key();
        }
    }
}
