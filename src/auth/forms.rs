//! The forms the use cases take: each field as received (a string, or
//! the DRF message saying why it is not one), parsed by the use case.

use super::password::Password;

/// A JSON field as received: its string value, or the DRF message saying why
/// it is not one ("This field is required.", "Not a valid string.", ...).
pub type RawField = Result<String, String>;

/// The registration form.
#[derive(Debug)]
pub struct Registration {
    /// Display name.
    pub name: RawField,
    /// Email address.
    pub email: RawField,
    /// Password (never logged: see [`Password`]).
    pub password: Result<Password, String>,
}

/// The login form: `email` (or, without it, `name`) and `password`.
#[derive(Debug)]
pub struct Credentials {
    /// Email address, preferred when present.
    pub email: Option<RawField>,
    /// Name, used only when no email is given.
    pub name: Option<RawField>,
    /// Password.
    pub password: Result<Password, String>,
}

/// The password-change form.
#[derive(Debug)]
pub struct PasswordChange {
    /// The current password.
    pub old_password: Result<Password, String>,
    /// The new password.
    pub new_password: Result<Password, String>,
}

/// Django's message for a wrong current password.
pub const WRONG_OLD_PASSWORD: &str =
    "Your old password was entered incorrectly. Please enter it again.";
