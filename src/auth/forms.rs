//! The forms the use cases take, already parsed: the HTTP layer (and the
//! CLI) turn what they received into these values, so a use case holds only
//! a valid `Email`, `Name` and `Password` and checks what needs the
//! database or the policy (a taken address, a weak password).

use super::identity::{Email, Name};
use super::password::Password;

/// The registration form.
#[derive(Debug)]
pub struct Registration {
    /// Display name.
    pub name: Name,
    /// Email address.
    pub email: Email,
    /// Password (never logged: see [`Password`]).
    pub password: Password,
}

/// Who is logging in: by email address or, without one, by name.
#[derive(Debug)]
pub enum Identifier {
    /// The account's email address.
    Email(Email),
    /// The account's name.
    Name(Name),
}

/// The login form.
#[derive(Debug)]
pub struct Credentials {
    /// The account.
    pub identifier: Identifier,
    /// Password.
    pub password: Password,
}

/// The password-change form.
#[derive(Debug)]
pub struct PasswordChange {
    /// The current password.
    pub old_password: Password,
    /// The new password.
    pub new_password: Password,
}

/// Django's message for a wrong current password.
pub const WRONG_OLD_PASSWORD: &str =
    "Your old password was entered incorrectly. Please enter it again.";
