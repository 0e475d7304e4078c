//! The request bodies: one typed struct per form, the same structs the
//! OpenAPI document describes, read from the JSON object and parsed here,
//! at the edge, into the domain's values (`Email`, `Name`, `Password`).
//! A field is read as DRF's `CharField` reads it ([`Text`]), so every
//! problem of every field is reported at once, in DRF's words
//! ([`super::error::drf`]).

mod mfa;
mod passkeys;

pub use mfa::{MfaCodeRequest, MfaLoginRequest, MfaPasswordRequest};
pub use passkeys::{PasskeyLoginRequest, PasskeyRegisterRequest};

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{drf, ApiError};
use crate::auth::identity::{Email, Name};
use crate::auth::password::Password;
use crate::auth::{AuthError, Credentials, FieldErrors, Identifier, PasswordChange, Registration};

/// A string field as received: absent, `null`, some other JSON value, or a
/// string.
#[derive(Default)]
pub enum Text {
    /// Not in the body.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A number, a list, an object, a boolean.
    NotAString,
    /// A string.
    Given(String),
}

impl std::fmt::Debug for Text {
    // A `Text` may hold a password not yet wrapped in `Password`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Absent => "Absent",
            Self::Null => "Null",
            Self::NotAString => "NotAString",
            Self::Given(_) => "Given([redacted])",
        })
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(s) => Self::Given(s),
            Value::Null => Self::Null,
            _ => Self::NotAString,
        })
    }
}

impl Text {
    /// The string, DRF's message saying why there is none, or `None` when absent.
    fn optional(self) -> Option<Result<String, String>> {
        match self {
            Self::Absent => None,
            Self::Null => Some(Err(drf::NULL.to_owned())),
            Self::NotAString => Some(Err(drf::NOT_A_STRING.to_owned())),
            Self::Given(s) => Some(Ok(s)),
        }
    }

    /// The string, or DRF's message saying why there is none.
    fn required(self) -> Result<String, String> {
        self.optional()
            .unwrap_or_else(|| Err(drf::REQUIRED.to_owned()))
    }

    /// A required, non-empty string.
    fn non_blank(self) -> Result<String, String> {
        self.required().and_then(|s| {
            if s.is_empty() {
                Err(drf::BLANK.to_owned())
            } else {
                Ok(s)
            }
        })
    }

    /// A required password, wrapped at once so it cannot be logged.
    fn password(self) -> Result<Password, String> {
        self.required()
            .map(Password::new)
            .and_then(Password::non_blank)
    }
}

/// What every problem of a form's fields becomes.
fn invalid(errors: FieldErrors) -> ApiError {
    ApiError::Auth(AuthError::Invalid(errors))
}

/// The registration form.
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Display name, unique (case-insensitive), 1–150 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    name: Text,
    /// Email address, unique (case-insensitive).
    #[serde(default)]
    #[schema(value_type = String, format = "email", required = true)]
    email: Text,
    /// Checked against the password policy (length, similarity, common, numeric).
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    password: Text,
}

impl RegisterRequest {
    /// The parsed form, or every field's problem (the domain counts the
    /// attempt against the address either way, then refuses it).
    pub fn parse(self) -> Result<Registration, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", self.name.required().and_then(|n| Name::parse(&n)));
        let email = errors.check(
            "email",
            self.email.required().and_then(|e| Email::parse(&e)),
        );
        let password = errors.check("password", self.password.password());
        match (name, email, password) {
            (Some(name), Some(email), Some(password)) => Ok(Registration {
                name,
                email,
                password,
            }),
            _ => Err(errors),
        }
    }
}

/// The login form: `email`, or (without it) `name`, and `password`.
#[derive(Deserialize, ToSchema)]
// The example shows the usual form: an example built from the fields would
// send `name` beside `email`, which /docs users then copy.
#[schema(example = json!({"email": "ada@example.com", "password": "Analytical-Engine-1843"}))]
pub struct LoginRequest {
    /// Email address (preferred when both are given).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "email")]
    email: Text,
    /// Name, used when no email is given.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Text,
    /// Password.
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    password: Text,
}

impl LoginRequest {
    /// The parsed credentials, or every field's problem.
    pub fn parse(self) -> Result<Credentials, ApiError> {
        let mut errors = FieldErrors::default();
        let identifier = match (self.email.optional(), self.name.optional()) {
            (Some(email), _) => errors.check(
                "email",
                email.and_then(|e| Email::parse(&e)).map(Identifier::Email),
            ),
            (None, Some(name)) => errors.check(
                "name",
                name.and_then(|n| Name::parse(&n)).map(Identifier::Name),
            ),
            (None, None) => {
                errors.add("email", drf::REQUIRED);
                None
            }
        };
        let password = errors.check("password", self.password.password());
        match (identifier, password) {
            (Some(identifier), Some(password)) => Ok(Credentials {
                identifier,
                password,
            }),
            _ => Err(invalid(errors)),
        }
    }
}

/// The password-change form.
#[derive(Deserialize, ToSchema)]
pub struct PasswordChangeRequest {
    /// The current password.
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    old_password: Text,
    /// The new password (same policy as registration).
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    new_password: Text,
}

impl PasswordChangeRequest {
    /// The parsed form, or every field's problem.
    pub fn parse(self) -> Result<PasswordChange, ApiError> {
        let mut errors = FieldErrors::default();
        let old_password = errors.check("old_password", self.old_password.password());
        let new_password = errors.check("new_password", self.new_password.password());
        match (old_password, new_password) {
            (Some(old_password), Some(new_password)) => Ok(PasswordChange {
                old_password,
                new_password,
            }),
            _ => Err(invalid(errors)),
        }
    }
}

/// A body carrying a refresh token.
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// A refresh token. Required, unless `LATCHKEY_REFRESH_COOKIE=true` and
    /// the request carries the `latchkey_refresh` cookie.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    refresh: Text,
}

impl RefreshRequest {
    /// Whether the body has no `refresh` field at all (the cookie may
    /// stand in for it).
    pub fn is_absent(&self) -> bool {
        matches!(self.refresh, Text::Absent)
    }

    /// The token, or why there is none.
    pub fn parse(self) -> Result<String, ApiError> {
        self.refresh
            .non_blank()
            .map_err(|m| invalid(FieldErrors::one("refresh", m)))
    }
}

/// A body carrying a token to check.
#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// An access or refresh token.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    token: Text,
}

impl VerifyRequest {
    /// The token, or why there is none.
    pub fn parse(self) -> Result<String, ApiError> {
        self.token
            .non_blank()
            .map_err(|m| invalid(FieldErrors::one("token", m)))
    }
}

pub mod account;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn login(body: Value) -> Result<Credentials, ApiError> {
        serde_json::from_value::<LoginRequest>(body)
            .unwrap()
            .parse()
    }

    fn field_errors(e: ApiError) -> serde_json::Map<String, Value> {
        match e {
            ApiError::Auth(AuthError::Invalid(errors)) => serde_json::to_value(errors.0)
                .unwrap()
                .as_object()
                .unwrap()
                .clone(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn every_field_is_reported_at_once_in_drfs_words() {
        let e = serde_json::from_value::<RegisterRequest>(json!({"name": null, "email": 5}))
            .unwrap()
            .parse()
            .map_err(invalid)
            .err()
            .unwrap();
        assert_eq!(
            Value::Object(field_errors(e)),
            json!({
                "name": ["This field may not be null."],
                "email": ["Not a valid string."],
                "password": ["This field is required."],
            })
        );
    }

    #[test]
    fn a_login_names_email_first_and_falls_back_to_name() {
        let by_email = login(json!({"email": "Ada@Example.com", "name": "x", "password": "p"}));
        assert!(matches!(
            by_email,
            Ok(Credentials {
                identifier: Identifier::Email(_),
                ..
            })
        ));
        let by_name = login(json!({"name": "ada", "password": "p"}));
        assert!(matches!(
            by_name,
            Ok(Credentials {
                identifier: Identifier::Name(_),
                ..
            })
        ));
        let neither = login(json!({"password": "p"})).err().unwrap();
        assert_eq!(
            Value::Object(field_errors(neither)),
            json!({"email": ["This field is required."]})
        );
    }

    #[test]
    fn a_blank_token_is_refused_by_name() {
        let e = serde_json::from_value::<RefreshRequest>(json!({"refresh": ""}))
            .unwrap()
            .parse()
            .err()
            .unwrap();
        assert_eq!(
            Value::Object(field_errors(e)),
            json!({"refresh": ["This field may not be blank."]})
        );
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON object reads as every form without failing: the fields
        /// become values or DRF messages, never a deserialisation error.
        #[test]
        fn any_object_reads_as_every_form(
            fields in prop::collection::btree_map(
                prop::sample::select(vec!["name", "email", "password", "old_password", "new_password", "refresh", "token", "other"]),
                any_json(),
                0..6,
            )
        ) {
            let body = Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
            let _ = serde_json::from_value::<RegisterRequest>(body.clone()).unwrap().parse();
            let _ = serde_json::from_value::<LoginRequest>(body.clone()).unwrap().parse();
            let _ = serde_json::from_value::<PasswordChangeRequest>(body.clone()).unwrap().parse();
            let _ = serde_json::from_value::<RefreshRequest>(body.clone()).unwrap().parse();
            let _ = serde_json::from_value::<VerifyRequest>(body).unwrap().parse();
        }
    }
}
