//! The operator's commands of the `latchkey` binary (not of the library):
//! `user`, `keys`, `mail`, and what they share: opening the database for
//! an admin command, reading a password, printing, and [`CliError`].

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use clap::Args;
use latchkey::auth::admin::{Admin, Changed};
use latchkey::auth::password::Password;
use latchkey::auth::AuthError;
use latchkey::config::Config;
use latchkey::store::redacted;
use latchkey::{telemetry, StartError};

pub(crate) mod keys;
pub(crate) mod mail;
pub(crate) mod user;

#[derive(Args)]
pub(crate) struct Target {
    /// The user: id, email or name.
    pub(crate) user: String,
    #[command(flatten)]
    pub(crate) config: Config,
}

/// One line to standard output. A write error (a closed pipe, a full disk)
/// becomes [`CliError::Output`] rather than `println!`'s panic.
pub(crate) fn say(line: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)
}

/// `n noun` or `n nouns`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("no such user")]
    NoSuchUser,
    #[error("{0}")]
    Refused(String),
    #[error("reading the password: {0}")]
    Input(#[from] std::io::Error),
    #[error("writing the output: {0}")]
    Output(std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<AuthError> for CliError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::NotFound => Self::NoSuchUser,
            AuthError::Invalid(fields) => Self::Refused(
                fields
                    .0
                    .iter()
                    .flat_map(|(field, messages)| {
                        messages.iter().map(move |m| format!("{field}: {m}"))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => Self::Refused(other.to_string()),
        }
    }
}

/// Open the store, build the admin service, run `action` on it.
pub(crate) async fn admin_action<F, Fut>(config: &Config, action: F) -> Result<(), CliError>
where
    F: FnOnce(Admin) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let store = open_for_admin(config).await?;
    let hasher = latchkey::hasher(config).map_err(StartError::from)?;
    let admin = Admin::new(store.clone(), hasher, latchkey::password_policy(config));
    let result = action(admin).await;
    store.close().await;
    result
}

/// Set up logging and open the existing, migrated database an admin
/// command works on, naming it on stderr (the operator sees which one).
pub(crate) async fn open_for_admin(config: &Config) -> Result<latchkey::store::Store, CliError> {
    telemetry::init(config.log_format, &config.log);
    let store = latchkey::open_existing_store(config).await?;
    let _ = writeln!(
        std::io::stderr(),
        "latchkey: database {}",
        redacted(&config.database_url)
    );
    Ok(store)
}

pub(crate) fn report(
    changed: Result<Changed, AuthError>,
    what: &str,
    with_sessions: bool,
) -> Result<(), CliError> {
    let changed = changed?;
    let user = &changed.user;
    if with_sessions {
        say(format_args!(
            "{what}: {} <{}> (id {}); {} ended",
            user.name,
            user.email,
            user.id,
            count(changed.sessions_ended, "session")
        ))
    } else {
        say(format_args!(
            "{what}: {} <{}> (id {})",
            user.name, user.email, user.id
        ))
    }
}

/// A password from the terminal (asked twice, not echoed) or, when standard
/// input is not a terminal, its first line. Never from the command line,
/// where other users could read it in the process list.
pub(crate) fn read_password(prompt: &str, confirm: bool) -> Result<Password, CliError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        if confirm && rpassword::prompt_password("Again: ")? != first {
            return Err(CliError::Refused("the passwords differ".into()));
        }
        return Ok(Password::new(first));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Password::new(line.to_owned()))
}
