//! Reading the one [`Config`]: from flags and the environment (`from_env`,
//! for tests and embedders), from the defaults alone, and the two secrets
//! that are environment-only.

use std::time::Duration;

use super::{Config, LEGACY_DJANGO_KEY_ENV, SECRET_KEY_ENV};
use crate::auth::keys::KeyTooShort;

/// The options alone, for [`Config::defaults`].
#[derive(clap::Parser)]
struct Bare {
    #[command(flatten)]
    config: Config,
}

/// The options' parser with every `env = ...` dropped.
fn without_environment() -> clap::Command {
    use clap::CommandFactory as _;
    Bare::command().mut_args(|arg| arg.env(None::<&str>))
}

impl Config {
    /// The configuration with no flags: defaults, overridden by any `LATCHKEY_*`
    /// variables set in the environment. Used by tests and embedders.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct EnvOnly {
            #[command(flatten)]
            config: Config,
        }
        let config = <EnvOnly as clap::Parser>::try_parse_from(["latchkey"]).map(|d| d.config)?;
        config
            .with_secret_from_env()
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e))
    }

    /// The defaults alone: no flag and no environment variable is read
    /// (for tests, which must not inherit a developer's `LATCHKEY_*`).
    pub fn defaults() -> Result<Self, clap::Error> {
        use clap::FromArgMatches as _;
        let matches = without_environment().try_get_matches_from(["latchkey"])?;
        Bare::from_arg_matches(&matches).map(|b| b.config)
    }

    /// Fill in [`Config::secret_key`] from `LATCHKEY_SECRET_KEY`, if set, and
    /// [`Config::legacy_django_key`] from `LATCHKEY_LEGACY_DJANGO_KEY`, if set
    /// and not empty.
    pub fn with_secret_from_env(mut self) -> Result<Self, KeyTooShort> {
        if let Some(value) = std::env::var_os(SECRET_KEY_ENV) {
            self.secret_key = Some(value.to_string_lossy().parse()?);
        }
        if let Some(value) = std::env::var_os(LEGACY_DJANGO_KEY_ENV) {
            self.legacy_django_key = value.to_string_lossy().parse().ok();
        }
        Ok(self)
    }

    /// Access token lifetime.
    pub fn access_lifetime(&self) -> Duration {
        Duration::from_secs(self.access_token_lifetime_seconds)
    }

    /// Refresh token and session lifetime.
    pub fn refresh_lifetime(&self) -> Duration {
        Duration::from_secs(self.refresh_token_lifetime_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::signing::Algorithm;
    use crate::config::SameSite;

    #[test]
    fn the_defaults_read_no_environment_variable() {
        use clap::CommandFactory as _;
        let reading = |cmd: clap::Command| {
            cmd.get_arguments()
                .filter(|a| a.get_env().is_some())
                .count()
        };
        assert!(
            reading(Bare::command()) > 20,
            "the options read LATCHKEY_* variables"
        );
        // ... and the parser of the defaults reads none of them, whatever
        // the environment holds.
        assert_eq!(reading(without_environment()), 0);
        assert!(Config::defaults().unwrap().secret_key.is_none());
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::defaults().expect("defaults parse");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(c.database_url, "sqlite://latchkey.db");
        assert_eq!(c.access_token_lifetime_seconds, 86_400);
        assert_eq!(c.refresh_token_lifetime_seconds, 7 * 86_400);
        assert_eq!(c.refresh_reuse_grace_seconds, 10);
        assert_eq!(c.max_body_bytes, 64 * 1024);
        assert_eq!(c.password_max_length, 256);
        assert_eq!(c.allowed_origins.len(), 4);
        assert!(c.secret_key.is_none());
        assert_eq!(c.jwt_algorithm, Algorithm::Hs256);
        assert!(c.jwt_issuer.is_none() && c.jwt_audience.is_none());
        assert!(!c.refresh_cookie);
        assert_eq!(c.refresh_cookie_samesite, SameSite::Lax);
        assert!(c.validate().is_ok(), "the default origins are valid");
    }
}
