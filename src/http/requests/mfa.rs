//! The second factor's request bodies.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{invalid, Text};
use crate::auth::mfa::{Code, MfaLogin, INVALID_CODE};
use crate::auth::password::Password;
use crate::auth::FieldErrors;
use crate::http::error::ApiError;

/// A body carrying the caller's password (enrol, disable, new recovery codes).
#[derive(Deserialize, ToSchema)]
pub struct MfaPasswordRequest {
    /// The caller's current password.
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    password: Text,
}

impl MfaPasswordRequest {
    /// The password, or why there is none.
    pub fn parse(self) -> Result<Password, ApiError> {
        self.password
            .password()
            .map_err(|m| invalid(FieldErrors::one("password", m)))
    }
}

/// A body carrying a TOTP code (confirming an enrolment).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"code": "123456"}))]
pub struct MfaCodeRequest {
    /// The current 6-digit code of the authenticator app.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    code: Text,
}

impl MfaCodeRequest {
    /// The code, or why it is not one.
    pub fn parse(self) -> Result<Code, ApiError> {
        parse_code(self.code).map_err(|m| invalid(FieldErrors::one("code", m)))
    }
}

/// The second step of a login.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"mfa_token": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "code": "123456"}))]
pub struct MfaLoginRequest {
    /// The `mfa_token` of the login's `401 mfa_required` answer.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    mfa_token: Text,
    /// A current TOTP code, or an unused recovery code (`xxxx-xxxx-xxxx`).
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    code: Text,
}

impl MfaLoginRequest {
    /// The parsed form, or every field's problem.
    pub fn parse(self) -> Result<MfaLogin, ApiError> {
        let mut errors = FieldErrors::default();
        let token = errors.check("mfa_token", self.mfa_token.non_blank());
        let code = errors.check("code", parse_code(self.code));
        match (token, code) {
            (Some(token), Some(code)) => Ok(MfaLogin { token, code }),
            _ => Err(invalid(errors)),
        }
    }
}

/// A required code field: anything but a code's shape is an invalid code.
fn parse_code(field: Text) -> Result<Code, String> {
    let given = field.non_blank()?;
    Code::parse(&given).ok_or_else(|| INVALID_CODE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn login(body: Value) -> Result<MfaLogin, ApiError> {
        serde_json::from_value::<MfaLoginRequest>(body)
            .unwrap()
            .parse()
    }

    #[test]
    fn both_fields_are_required_and_reported_at_once() {
        let Err(ApiError::Auth(crate::auth::AuthError::Invalid(e))) = login(json!({})) else {
            panic!("not a field error");
        };
        assert!(e.0.contains_key("mfa_token") && e.0.contains_key("code"));
    }

    #[test]
    fn a_malformed_code_is_an_invalid_code() {
        let Err(ApiError::Auth(crate::auth::AuthError::Invalid(e))) =
            login(json!({"mfa_token": "x", "code": "12"}))
        else {
            panic!("not a field error");
        };
        assert_eq!(e.0["code"], [INVALID_CODE]);
    }

    proptest! {
        #[test]
        fn any_json_values_parse_or_fail_without_panicking(
            token in prop_oneof![any::<String>().prop_map(Value::from), Just(Value::Null), any::<i64>().prop_map(Value::from)],
            code in prop_oneof![any::<String>().prop_map(Value::from), "[0-9]{6}".prop_map(Value::from), Just(Value::Null)],
        ) {
            let _ = login(json!({"mfa_token": token, "code": code}));
        }
    }
}
