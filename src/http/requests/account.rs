//! The request bodies of the account lifecycle (password reset, email
//! verification, email change, profile, deletion), parsed as the others
//! are: every field's problem at once, in DRF's words.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{invalid, ApiError, Email, FieldErrors, Name, Password, Text};
use crate::auth::mail::EmailToken;
use crate::auth::INVALID_EMAIL_TOKEN;

/// A mailed token as presented: any string of the wrong shape is the same
/// "invalid or expired" as an unknown one.
fn email_token(text: Text) -> Result<EmailToken, String> {
    text.non_blank()
        .and_then(|t| EmailToken::parse(&t).ok_or_else(|| INVALID_EMAIL_TOKEN.to_owned()))
}

/// `POST /auth/password/reset`.
#[derive(Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    /// The account's email address.
    #[serde(default)]
    #[schema(value_type = String, format = "email", required = true)]
    email: Text,
}

impl PasswordResetRequest {
    /// The parsed address.
    pub fn parse(self) -> Result<Email, ApiError> {
        self.email
            .required()
            .and_then(|e| Email::parse(&e))
            .map_err(|m| invalid(FieldErrors::one("email", m)))
    }
}

/// `POST /auth/password/reset/confirm`.
#[derive(Deserialize, ToSchema)]
pub struct ResetConfirmRequest {
    /// The token of the reset link.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    token: Text,
    /// Checked against the password policy.
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    new_password: Text,
}

impl ResetConfirmRequest {
    /// The parsed token and new password.
    pub fn parse(self) -> Result<(EmailToken, Password), ApiError> {
        let mut errors = FieldErrors::default();
        let token = errors.check("token", email_token(self.token));
        let password = errors.check("new_password", self.new_password.password());
        match (token, password) {
            (Some(token), Some(password)) => Ok((token, password)),
            _ => Err(invalid(errors)),
        }
    }
}

/// A body carrying a mailed token (`/auth/email/verify`,
/// `/auth/email/change/confirm`).
#[derive(Deserialize, ToSchema)]
pub struct EmailTokenRequest {
    /// The token of the mailed link.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    token: Text,
}

impl EmailTokenRequest {
    /// The parsed token.
    pub fn parse(self) -> Result<EmailToken, ApiError> {
        email_token(self.token).map_err(|m| invalid(FieldErrors::one("token", m)))
    }
}

/// `PATCH /auth/me`.
#[derive(Deserialize, ToSchema)]
pub struct RenameRequest {
    /// New display name, with registration's rules.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    name: Text,
}

impl RenameRequest {
    /// The parsed name.
    pub fn parse(self) -> Result<Name, ApiError> {
        self.name
            .required()
            .and_then(|n| Name::parse(&n))
            .map_err(|m| invalid(FieldErrors::one("name", m)))
    }
}

/// `POST /auth/email/change`.
#[derive(Deserialize, ToSchema)]
pub struct EmailChangeRequest {
    /// The new address.
    #[serde(default)]
    #[schema(value_type = String, format = "email", required = true)]
    email: Text,
    /// The current password.
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    password: Text,
}

impl EmailChangeRequest {
    /// The parsed address and password.
    pub fn parse(self) -> Result<(Email, Password), ApiError> {
        let mut errors = FieldErrors::default();
        let email = errors.check(
            "email",
            self.email.required().and_then(|e| Email::parse(&e)),
        );
        let password = errors.check("password", self.password.password());
        match (email, password) {
            (Some(email), Some(password)) => Ok((email, password)),
            _ => Err(invalid(errors)),
        }
    }
}

/// `DELETE /auth/me`.
#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    /// The current password.
    #[serde(default)]
    #[schema(value_type = String, format = "password", write_only, required = true)]
    password: Text,
}

impl PasswordRequest {
    /// The parsed password.
    pub fn parse(self) -> Result<Password, ApiError> {
        self.password
            .password()
            .map_err(|m| invalid(FieldErrors::one("password", m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn token_errors(body: Value) -> Option<Value> {
        match serde_json::from_value::<EmailTokenRequest>(body)
            .unwrap()
            .parse()
        {
            Ok(_) => None,
            Err(ApiError::Auth(crate::auth::AuthError::Invalid(e))) => {
                Some(serde_json::to_value(e.0).unwrap())
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_of_the_wrong_shape_is_invalid_or_expired() {
        assert_eq!(
            token_errors(json!({"token": "short"})),
            Some(json!({"token": ["Invalid or expired token."]}))
        );
        assert_eq!(
            token_errors(json!({"token": ""})),
            Some(json!({"token": ["This field may not be blank."]}))
        );
        assert_eq!(
            token_errors(json!({})),
            Some(json!({"token": ["This field is required."]}))
        );
        let good = EmailToken::generate().unwrap();
        assert_eq!(token_errors(json!({"token": good.expose()})), None);
    }

    proptest! {
        #[test]
        fn the_token_field_never_panics_and_refuses_what_is_not_a_token(raw in "\\PC{0,60}") {
            let shaped = raw.len() == 43
                && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !shaped {
                let refused = token_errors(json!({ "token": raw })).is_some();
                prop_assert!(refused);
            }
        }
    }
}
