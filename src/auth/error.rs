//! Everything a domain operation can fail with, and DRF's per-field
//! error shape; the HTTP layer maps them to responses in one place.

use std::collections::BTreeMap;

use super::csrf::CsrfError;
use super::password::HashError;
use super::tokens::TokenError;
use crate::store::{StoreError, UniqueField};

/// Field validation errors, DRF's `{"field": ["message", ...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Add `message` under `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// A single error.
    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(field, message);
        e
    }

    /// The value of a parsed field, or `None` with its message recorded.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|m| self.add(field, m)).ok()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a token was refused, as far as a client may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Malformed, forged, wrong type, or for an unknown session.
    Invalid,
    /// Past its `exp`.
    Expired,
    /// Its session was revoked (logout, reuse detection) or it was rotated.
    Revoked,
}

/// Everything a domain operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input failed validation: 400 with per-field messages.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// Wrong password, unknown or inactive account: indistinguishable.
    #[error("no active account found with the given credentials")]
    InvalidCredentials,
    /// The password was right and the account has a second factor: the
    /// login goes on at `/auth/login/mfa` with this challenge (no tokens).
    #[error("a second factor is required")]
    MfaRequired(super::mfa::MfaChallenge),
    /// Too many login attempts; retry after this many seconds.
    #[error("throttled")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// A presented token was refused.
    #[error("token refused: {0:?}")]
    Token(TokenRejection),
    /// A refresh token of another user was presented at logout.
    #[error("the token belongs to another user")]
    NotOwner,
    /// A correct password for an account whose address is not verified,
    /// while `LATCHKEY_REQUIRE_VERIFIED_EMAIL` is on.
    #[error("email not verified")]
    EmailNotVerified,
    /// The thing asked for does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// A CSRF check failed.
    #[error("CSRF failed: {0}")]
    Csrf(CsrfError),
    /// The password hashing queue is full; retry shortly.
    #[error("overloaded")]
    Overloaded,
    /// The database is unreachable or busy; retry shortly.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an environment failure (RNG, corrupt data).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Duplicate(field) => Self::Invalid(duplicate(field)),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Overloaded => Self::Overloaded,
            HashError::Failed(m) => Self::Internal(m),
        }
    }
}

impl From<getrandom::Error> for AuthError {
    fn from(e: getrandom::Error) -> Self {
        Self::Internal(format!("random number generator failed: {e}"))
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        if e == TokenError::SigningFailed {
            return Self::Internal(e.to_string());
        }
        Self::Token(match e {
            TokenError::Expired => TokenRejection::Expired,
            _ => TokenRejection::Invalid,
        })
    }
}

pub(super) fn duplicate(field: UniqueField) -> FieldErrors {
    match field {
        UniqueField::Email => FieldErrors::one("email", "user with this email already exists."),
        UniqueField::Name => FieldErrors::one("name", "user with this name already exists."),
        UniqueField::PasskeyCredential => {
            FieldErrors::one("credential", super::passkeys::ALREADY_REGISTERED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_collect_messages_per_field() {
        let mut e = FieldErrors::default();
        e.add("password", "a");
        e.add("password", "b");
        e.add("email", "c");
        assert_eq!(e.0["password"], ["a", "b"]);
        assert_eq!(e.0.len(), 2);
    }
}
