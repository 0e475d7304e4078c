//! The plaintext password: a newtype that keeps it out of logs and debug
//! output. A leaf of the password modules.

use std::fmt;

/// A plaintext password. `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wrap a password as received.
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The password, refused with DRF's message when empty.
    pub fn non_blank(self) -> Result<Self, String> {
        if self.0.is_empty() {
            Err("This field may not be blank.".into())
        } else {
            Ok(self)
        }
    }

    /// The plaintext, for hashing and the policy only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        assert_eq!(
            format!("{:?}", Password::new("hunter22".into())),
            "Password([redacted])"
        );
    }
}
