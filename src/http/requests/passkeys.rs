//! The passkeys' request bodies. `credential` is what the browser's
//! `credential.toJSON()` gives (base64url binary fields), read here into
//! webauthn-rs's types; anything else is an invalid credential.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{invalid, Text};
use crate::auth::passkeys::{PasskeyLoginForm, PasskeyName, PasskeyRegistrationForm};
use crate::auth::FieldErrors;
use crate::http::error::{drf, ApiError};

/// What an unreadable `credential` field gets.
pub const NOT_A_CREDENTIAL: &str = "Not a valid credential.";

/// The answer to `POST /auth/passkeys/register/options`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"challenge_id": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "credential": {"id": "…", "rawId": "…", "type": "public-key",
        "response": {"clientDataJSON": "…", "attestationObject": "…"}, "clientExtensionResults": {}},
    "name": "Laptop"}))]
pub struct PasskeyRegisterRequest {
    /// The options' `challenge_id`.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    challenge_id: Text,
    /// `credential.toJSON()` of the credential `navigator.credentials.create` made.
    #[serde(default)]
    #[schema(value_type = Value, required = true)]
    credential: Value,
    /// What the user calls this passkey (1–64 characters).
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    name: Text,
}

impl PasskeyRegisterRequest {
    /// The parsed form, or every field's problem.
    pub fn parse(self) -> Result<PasskeyRegistrationForm, ApiError> {
        let mut errors = FieldErrors::default();
        let challenge_id = errors.check("challenge_id", self.challenge_id.non_blank());
        let credential = errors.check("credential", credential(self.credential));
        let name = errors.check(
            "name",
            self.name.required().and_then(|n| PasskeyName::parse(&n)),
        );
        match (challenge_id, credential, name) {
            (Some(challenge_id), Some(credential), Some(name)) => Ok(PasskeyRegistrationForm {
                challenge_id,
                credential,
                name,
            }),
            _ => Err(invalid(errors)),
        }
    }
}

/// The answer to `POST /auth/passkeys/login/options`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"challenge_id": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "credential": {"id": "…", "rawId": "…", "type": "public-key",
        "response": {"clientDataJSON": "…", "authenticatorData": "…", "signature": "…", "userHandle": "…"},
        "clientExtensionResults": {}}}))]
pub struct PasskeyLoginRequest {
    /// The options' `challenge_id`.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    challenge_id: Text,
    /// `credential.toJSON()` of the assertion `navigator.credentials.get` made.
    #[serde(default)]
    #[schema(value_type = Value, required = true)]
    credential: Value,
}

impl PasskeyLoginRequest {
    /// The parsed form, or every field's problem.
    pub fn parse(self) -> Result<PasskeyLoginForm, ApiError> {
        let mut errors = FieldErrors::default();
        let challenge_id = errors.check("challenge_id", self.challenge_id.non_blank());
        let credential = errors.check("credential", credential(self.credential));
        match (challenge_id, credential) {
            (Some(challenge_id), Some(credential)) => Ok(PasskeyLoginForm {
                challenge_id,
                credential,
            }),
            _ => Err(invalid(errors)),
        }
    }
}

/// A `credential` field read as `T`, or DRF-style words for why not.
fn credential<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    match value {
        Value::Null => Err(drf::REQUIRED.to_owned()),
        Value::Object(_) => serde_json::from_value(value).map_err(|_| NOT_A_CREDENTIAL.to_owned()),
        _ => Err(NOT_A_CREDENTIAL.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn field_errors(r: Result<impl std::fmt::Debug, ApiError>) -> FieldErrors {
        match r {
            Err(ApiError::Auth(crate::auth::AuthError::Invalid(e))) => e,
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn every_missing_field_is_reported_at_once() {
        let body: PasskeyRegisterRequest = serde_json::from_value(json!({})).unwrap();
        let e = field_errors(body.parse());
        assert_eq!(e.0["challenge_id"], [drf::REQUIRED]);
        assert_eq!(e.0["credential"], [drf::REQUIRED]);
        assert_eq!(e.0["name"], [drf::REQUIRED]);
    }

    #[test]
    fn a_credential_of_the_wrong_shape_is_not_a_credential() {
        for credential in [json!("x"), json!([1]), json!({"id": 1})] {
            let body: PasskeyLoginRequest =
                serde_json::from_value(json!({"challenge_id": "a", "credential": credential}))
                    .unwrap();
            assert_eq!(
                field_errors(body.parse()).0["credential"],
                [NOT_A_CREDENTIAL]
            );
        }
    }

    proptest! {
        #[test]
        fn any_json_parses_or_fails_without_panicking(
            id in prop_oneof![any::<String>().prop_map(Value::from), Just(Value::Null)],
            raw in prop_oneof![any::<String>().prop_map(Value::from), Just(Value::Null), any::<i64>().prop_map(Value::from)],
        ) {
            let credential = json!({"id": id, "rawId": raw.clone(), "type": "public-key",
                "response": {"clientDataJSON": raw.clone(), "authenticatorData": raw.clone(), "signature": raw}});
            if let Ok(body) = serde_json::from_value::<PasskeyLoginRequest>(json!({"challenge_id": "x", "credential": credential})) {
                let _ = body.parse();
            }
        }
    }
}
