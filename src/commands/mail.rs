//! `latchkey mail ...`: the outbox's list, and retrying or dropping a
//! message.

use clap::{Args, Subcommand};
use latchkey::config::Config;

use super::{admin_action, count, say, CliError};

#[derive(Subcommand)]
pub(crate) enum MailCommand {
    /// Queued and failed messages: id, kind, recipient, state, attempts,
    /// next attempt, last error (never a body).
    List(Config),
    /// Make a queued message due now (after fixing the SMTP settings).
    Retry(MailTarget),
    /// Delete a message from the outbox.
    Drop(MailTarget),
}

#[derive(Args)]
pub(crate) struct MailTarget {
    /// The message id, from `latchkey mail list`.
    id: i64,
    #[command(flatten)]
    config: Config,
}

pub(crate) async fn mail(command: MailCommand) -> Result<(), CliError> {
    match command {
        MailCommand::List(config) => {
            admin_action(&config, |admin| async move {
                let outbox = admin.outbox().await?;
                say(format_args!(
                    "{:>6}  {:<20}  {:<32}  {:<6}  {:>8}  {:<20}  last error",
                    "id", "kind", "recipient", "state", "attempts", "next attempt"
                ))?;
                for m in &outbox {
                    say(format_args!(
                        "{:>6}  {:<20}  {:<32}  {:<6}  {:>8}  {:<20}  {}",
                        m.id,
                        m.kind,
                        m.recipient,
                        m.state,
                        m.attempts,
                        latchkey::http::rfc3339(m.next_attempt_at),
                        m.last_error.as_deref().unwrap_or("")
                    ))?;
                }
                say(format_args!(
                    "{}",
                    count(u64::try_from(outbox.len()).unwrap_or(u64::MAX), "message")
                ))
            })
            .await
        }
        MailCommand::Retry(MailTarget { id, config }) => {
            admin_action(&config, |admin| async move {
                if !admin.retry_mail(id).await? {
                    return Err(CliError::Refused(format!("no queued message {id}")));
                }
                say(format_args!("message {id} is due now"))
            })
            .await
        }
        MailCommand::Drop(MailTarget { id, config }) => {
            admin_action(&config, |admin| async move {
                if !admin.drop_mail(id).await? {
                    return Err(CliError::Refused(format!("no message {id}")));
                }
                say(format_args!("message {id} dropped"))
            })
            .await
        }
    }
}
