//! The refresh cookie's `SameSite` attribute, as `LATCHKEY_REFRESH_COOKIE_SAMESITE` names it.

/// A cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SameSite {
    /// Sent on same-site requests and top-level navigations.
    #[value(name = "Lax")]
    Lax,
    /// Sent on same-site requests only.
    #[value(name = "Strict")]
    Strict,
    /// Sent cross-site too (requires `Secure`).
    #[value(name = "None")]
    None,
}

impl SameSite {
    /// The attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}
