//! `latchkey keys ...`: rotate, list, revoke and import the token signing
//! keys.

use clap::Subcommand;
use latchkey::config::Config;

use super::{count, open_for_admin, say, CliError};

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Make the next key current (every instance signs with it within the
    /// session cache's TTL), keep the current one as previous until its
    /// tokens have expired, and make a new next key.
    Rotate {
        /// Rotate even though the next key is younger than the JWKS cache
        /// lifetime (5 minutes): verifiers that cached the JWKS before it
        /// existed refuse its tokens until they fetch the JWKS again.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: Config,
    },
    /// List the keys: kid, state, dates, and whether it is published.
    List(Config),
    /// Refuse every token signed by key KID, now. A current key is
    /// replaced by the next at once (and a new next key is made).
    Revoke {
        /// The key's kid (see `latchkey keys list`).
        kid: String,
        #[command(flatten)]
        config: Config,
    },
    /// Import a PKCS#8 PEM private key (`openssl genpkey`) as the next
    /// key, in place of the generated one; the next rotation makes it current.
    Import {
        /// The PEM file.
        file: std::path::PathBuf,
        #[command(flatten)]
        config: Config,
    },
}

pub(crate) async fn keys(command: KeysCommand) -> Result<(), CliError> {
    use latchkey::auth::signing::KeyAdmin;
    let config = match &command {
        KeysCommand::Rotate { config, .. }
        | KeysCommand::List(config)
        | KeysCommand::Revoke { config, .. }
        | KeysCommand::Import { config, .. } => config.clone(),
    };
    let store = open_for_admin(&config).await?;
    let admin = KeyAdmin::new(store.clone(), config.jwt_algorithm);
    let now = latchkey::auth::now();
    let when = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), latchkey::http::rfc3339);
    let result = match command {
        KeysCommand::Rotate { force, .. } => match admin.rotate(now, force).await {
            Ok(kid) => say(format_args!(
                "rotated: {kid} is the current {} key; the one before stays published until its tokens have expired",
                config.jwt_algorithm
            )),
            Err(e) => Err(CliError::Refused(e.to_string())),
        },
        KeysCommand::List(_) => match admin.list(latchkey::key_retention(&config), now).await {
            Ok(keys) => (|| {
                say(format_args!(
                    "{:<43}  {:<8}  {:<20}  {:<20}  {:<20}  {:<20}  published",
                    "kid", "state", "created", "activated", "retired", "revoked"
                ))?;
                for k in &keys {
                    say(format_args!(
                        "{:<43}  {:<8}  {:<20}  {:<20}  {:<20}  {:<20}  {}",
                        k.kid,
                        k.state.as_str(),
                        latchkey::http::rfc3339(k.created_at),
                        when(k.activated_at),
                        when(k.retired_at),
                        when(k.revoked_at),
                        if k.published { "yes" } else { "no" }
                    ))?;
                }
                say(format_args!(
                    "{} ({})",
                    count(u64::try_from(keys.len()).unwrap_or(u64::MAX), "key"),
                    config.jwt_algorithm
                ))
            })(),
            Err(e) => Err(CliError::Refused(e.to_string())),
        },
        KeysCommand::Revoke { kid, .. } => match admin.revoke(&kid, now).await {
            Ok(state) => say(format_args!(
                "revoked: {kid} (was {}); its tokens are refused on every instance within the session cache's TTL",
                state.as_str()
            )),
            Err(e) => Err(CliError::Refused(e.to_string())),
        },
        KeysCommand::Import { file, .. } => match std::fs::read_to_string(&file) {
            Ok(pem) => match admin.import(&pem, now).await {
                Ok(kid) => say(format_args!(
                    "imported: {kid} is the next key; `latchkey keys rotate` makes it current"
                )),
                Err(e) => Err(CliError::Refused(e.to_string())),
            },
            Err(e) => Err(CliError::Refused(format!("{}: {e}", file.display()))),
        },
    };
    store.close().await;
    result
}
