//! A software authenticator for the passkey tests: ES256 keys (ring),
//! authenticator data built byte by byte, a `none` attestation object in
//! CBOR, and the JSON `credential.toJSON()` gives a page. Every field a
//! relying party checks can be set wrong on purpose (origin, rp id, user
//! verification, the sign counter).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// The origin the default configuration accepts for rp id `localhost`.
pub const ORIGIN: &str = "http://localhost:3000";

/// Authenticator data flags (WebAuthn §6.1).
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const ATTESTED_CREDENTIAL: u8 = 0x40;

/// A discoverable credential the authenticator holds.
pub struct Credential {
    /// The credential id.
    pub id: Vec<u8>,
    /// The user handle it was created for.
    pub user_handle: Vec<u8>,
    /// The next assertion's sign counter is this plus one.
    pub counter: u32,
    key: EcdsaKeyPair,
}

/// A platform authenticator with resident keys.
pub struct Authenticator {
    /// The page origin written into client data.
    pub origin: String,
    /// The rp id whose hash starts the authenticator data.
    pub rp_id: String,
    /// Whether the user is verified (PIN, biometric): the UV flag.
    pub user_verification: bool,
    /// The credentials made so far, oldest first.
    pub credentials: Vec<Credential>,
    rng: SystemRandom,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

/// Base64url without padding, as `toJSON()` writes binary fields.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(value.as_str().expect("a base64url string"))
        .expect("base64url without padding")
}

impl Authenticator {
    /// A verifying authenticator on [`ORIGIN`] for rp id `localhost`.
    pub fn new() -> Self {
        Self {
            origin: ORIGIN.into(),
            rp_id: "localhost".into(),
            user_verification: true,
            credentials: Vec::new(),
            rng: SystemRandom::new(),
        }
    }

    fn flags(&self) -> u8 {
        USER_PRESENT
            | if self.user_verification {
                USER_VERIFIED
            } else {
                0
            }
    }

    fn client_data(&self, kind: &str, challenge: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge.as_str().expect("a challenge"),
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// `navigator.credentials.create({publicKey})` then `toJSON()`:
    /// `public_key` is the `publicKey` of the registration options.
    pub fn create(&mut self, public_key: &Value) -> Value {
        let id: [u8; 32] = latchkey::auth::ids::random().unwrap();
        self.create_with_id(public_key, &id)
    }

    /// [`create`](Self::create), with credential id `id` (as a broken or
    /// malicious authenticator might reuse one).
    pub fn create_with_id(&mut self, public_key: &Value, id: &[u8]) -> Value {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &self.rng)
                .unwrap();
        let point = key.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let cose = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),  // kty: EC2
            (Cbor::Integer(3), Cbor::Integer(-7)), // alg: ES256
            (Cbor::Integer(-1), Cbor::Integer(1)), // crv: P-256
            (Cbor::Integer(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer(-3), Cbor::Bytes(point[33..].to_vec())),
        ]));
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags() | ATTESTED_CREDENTIAL);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(id);
        auth_data.extend_from_slice(&serde_cbor_2::to_vec(&cose).unwrap());
        let attestation = Cbor::Map(BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        let client_data = self.client_data("webauthn.create", &public_key["challenge"]);
        self.credentials.push(Credential {
            id: id.to_vec(),
            user_handle: unb64(&public_key["user"]["id"]),
            counter: 0,
            key,
        });
        json!({
            "id": b64url(id),
            "rawId": b64url(id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(&client_data),
                "attestationObject": b64url(&serde_cbor_2::to_vec(&attestation).unwrap()),
                "transports": ["internal"],
            },
            "clientExtensionResults": {"credProps": {"rk": true}},
        })
    }

    /// `navigator.credentials.get({publicKey})` then `toJSON()`, signed by
    /// credential `index`, its counter advanced by one.
    pub fn get_with(&mut self, index: usize, public_key: &Value) -> Value {
        let flags = self.flags();
        let client_data = self.client_data("webauthn.get", &public_key["challenge"]);
        let rp_id_hash = Sha256::digest(self.rp_id.as_bytes());
        let credential = &mut self.credentials[index];
        credential.counter += 1;
        let mut auth_data = rp_id_hash.to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&credential.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = credential.key.sign(&self.rng, &signed).unwrap();
        json!({
            "id": b64url(&credential.id),
            "rawId": b64url(&credential.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(&client_data),
                "authenticatorData": b64url(&auth_data),
                "signature": b64url(signature.as_ref()),
                "userHandle": b64url(&credential.user_handle),
            },
            "clientExtensionResults": {},
        })
    }

    /// [`get_with`](Self::get_with) the newest credential.
    pub fn get(&mut self, public_key: &Value) -> Value {
        let newest = self.credentials.len().checked_sub(1).expect("a credential");
        self.get_with(newest, public_key)
    }
}
