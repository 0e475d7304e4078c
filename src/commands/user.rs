//! `latchkey user ...`: create, list, (de)activate, set a password, unlock,
//! reset the second factor.

use clap::Subcommand;
use latchkey::auth::admin::UserRef;
use latchkey::config::Config;

use super::{admin_action, count, read_password, report, say, CliError, Target};

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Create an active user. The password is prompted for on a terminal,
    /// else read from the first line of standard input; never an argument.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Count the address as verified (no verification mail is sent).
        #[arg(long)]
        verified: bool,
        #[command(flatten)]
        config: Config,
    },
    /// List users: id, email, name, active, joined, live sessions.
    List(Config),
    /// Stop a user from logging in or refreshing, and end their sessions.
    Deactivate(Target),
    /// Let a deactivated user log in again.
    Activate(Target),
    /// Set a user's password (prompted, or the first line of standard input)
    /// and end their sessions. Clears their failed-login counters too.
    SetPassword(Target),
    /// Clear a user's failed-login counters, so a lockout ends now.
    Unlock(Target),
    /// Remove a user's second factor (TOTP and recovery codes), for one who
    /// lost both device and codes, and end their sessions. Logged as a
    /// security event; the password alone logs them in afterwards.
    MfaReset(Target),
}

pub(crate) async fn user(command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            email,
            name,
            verified,
            config,
        } => {
            admin_action(&config, |admin| async move {
                let password = read_password("Password: ", true)?;
                let user = admin.create_user(&name, &email, password).await?;
                if verified {
                    admin.mark_email_verified(user.id).await?;
                }
                say(format_args!(
                    "created user {} <{}> (id {})",
                    user.name, user.email, user.id
                ))
            })
            .await
        }
        UserCommand::List(config) => {
            admin_action(&config, |admin| async move {
                let users = admin.list_users().await?;
                say(format_args!(
                    "{:>6}  {:<32}  {:<24}  {:<6}  {:<20}  sessions",
                    "id", "email", "name", "active", "joined"
                ))?;
                for u in &users {
                    say(format_args!(
                        "{:>6}  {:<32}  {:<24}  {:<6}  {:<20}  {}",
                        u.id,
                        u.email,
                        u.name,
                        if u.is_active { "yes" } else { "no" },
                        latchkey::http::rfc3339(u.date_joined),
                        u.live_sessions
                    ))?;
                }
                say(format_args!(
                    "{}",
                    count(u64::try_from(users.len()).unwrap_or(u64::MAX), "user")
                ))
            })
            .await
        }
        UserCommand::Deactivate(Target { user, config }) => {
            admin_action(&config, |admin| async move {
                report(
                    admin.deactivate(&UserRef::parse(&user)).await,
                    "deactivated",
                    true,
                )
            })
            .await
        }
        UserCommand::Activate(Target { user, config }) => {
            admin_action(&config, |admin| async move {
                // Activating ends no session: saying "0 sessions ended" would
                // suggest it might have.
                report(
                    admin.activate(&UserRef::parse(&user)).await,
                    "activated",
                    false,
                )
            })
            .await
        }
        UserCommand::SetPassword(Target { user, config }) => {
            admin_action(&config, |admin| async move {
                let password = read_password("New password: ", true)?;
                report(
                    admin.set_password(&UserRef::parse(&user), password).await,
                    "password set",
                    true,
                )
            })
            .await
        }
        UserCommand::MfaReset(Target { user, config }) => {
            admin_action(&config, |admin| async move {
                let (changed, removed) = admin.mfa_reset(&UserRef::parse(&user)).await?;
                let what = if removed {
                    "second factor removed"
                } else {
                    "no second factor (nothing removed)"
                };
                report(Ok(changed), what, true)
            })
            .await
        }
        UserCommand::Unlock(Target { user, config }) => {
            admin_action(&config, |admin| async move {
                let (user, cleared) = admin.unlock(&UserRef::parse(&user)).await?;
                say(format_args!(
                    "unlocked: {} <{}> (id {}); {} cleared",
                    user.name,
                    user.email,
                    user.id,
                    count(cleared, "failed-login counter")
                ))
            })
            .await
        }
    }
}
