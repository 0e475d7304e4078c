//! The settings refused before anything starts: values that could never
//! work (an origin no browser sends) or must never be honoured (`*` with
//! credentials, an insecure `SameSite=None` cookie, an empty issuer).

use super::{Config, SameSite};

/// A setting that cannot work, found by [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The field (clap's argument id): `--<id with dashes>` as a flag,
    /// `LATCHKEY_<ID>` in the environment.
    pub field: &'static str,
    /// What is wrong with its value, and what would work.
    pub problem: String,
}

impl InvalidSetting {
    /// The setting's flag, e.g. `--allowed-origins`.
    pub fn flag(&self) -> String {
        format!("--{}", self.field.replace('_', "-"))
    }

    /// The setting's environment variable, e.g. `LATCHKEY_ALLOWED_ORIGINS`.
    pub fn env(&self) -> String {
        format!("LATCHKEY_{}", self.field.to_ascii_uppercase())
    }
}

/// Why `origin` can never match a browser's `Origin` header (or must not),
/// if it cannot.
fn origin_problem(origin: &str) -> Option<String> {
    let origin = origin.trim();
    if origin == "*" {
        return Some(
            "`*` is not allowed: credentials are never granted to every origin; \
             list each one, e.g. https://app.example.com"
                .into(),
        );
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Some(format!(
            "{origin:?} has no scheme; write it as browsers send it, e.g. http://{origin}"
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Some(format!("{origin:?}: the scheme must be http or https"));
    }
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() {
        return Some(format!("{origin:?} has no host"));
    }
    if host.contains(['/', '?', '#']) {
        return Some(format!(
            "{origin:?} has a path; an origin is only scheme://host[:port]"
        ));
    }
    if host.contains('*') {
        return Some(format!(
            "{origin:?}: wildcards are not allowed; list each origin"
        ));
    }
    None
}

impl Config {
    /// Refuse settings that cannot work, before anything starts: an allowed
    /// origin without a scheme (it would never match) or `*` (never honoured
    /// with credentials; empty entries are ignored), `SameSite=None` without
    /// HTTPS, an empty issuer or audience, no passkey challenge per address.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for origin in self.allowed_origins.iter().filter(|o| !o.trim().is_empty()) {
            if let Some(problem) = origin_problem(origin) {
                return Err(InvalidSetting {
                    field: "allowed_origins",
                    problem,
                });
            }
        }
        if self.refresh_cookie_samesite == SameSite::None && !self.https {
            return Err(InvalidSetting {
                field: "refresh_cookie_samesite",
                problem: "`None` needs LATCHKEY_HTTPS=true: browsers drop a SameSite=None cookie that is not Secure".into(),
            });
        }
        if self.passkey_challenges_per_address == 0 {
            return Err(InvalidSetting {
                field: "passkey_challenges_per_address",
                problem: "0 would refuse every passkey login; give at least 1".into(),
            });
        }
        for (field, value) in [
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(InvalidSetting {
                    field,
                    problem: "empty; unset it, or give a value".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_without_a_scheme_with_a_path_or_a_wildcard_are_refused() {
        for bad in [
            "*",
            "localhost:3000",
            "app.example.com",
            "ftp://app.example.com",
            "https://app.example.com/login",
            "https://*.example.com",
            "https://",
        ] {
            assert!(origin_problem(bad).is_some(), "{bad} accepted");
        }
        for good in [
            "http://localhost:3000",
            "https://app.example.com",
            "https://app.example.com/",
            "HTTPS://App.Example.com:8443",
        ] {
            assert_eq!(origin_problem(good), None, "{good} refused");
        }
    }

    #[test]
    fn no_passkey_challenge_per_address_is_refused() {
        let mut config = Config::defaults().unwrap();
        config.passkey_challenges_per_address = 0;
        let invalid = config.validate().unwrap_err();
        assert_eq!(invalid.env(), "LATCHKEY_PASSKEY_CHALLENGES_PER_ADDRESS");
        config.passkey_challenges_per_address = 1;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn an_invalid_setting_names_its_flag_and_variable() {
        let invalid = InvalidSetting {
            field: "allowed_origins",
            problem: String::new(),
        };
        assert_eq!(invalid.flag(), "--allowed-origins");
        assert_eq!(invalid.env(), "LATCHKEY_ALLOWED_ORIGINS");
    }
}
