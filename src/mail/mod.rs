//! Mail delivery: the background sender that empties the outbox, and the
//! two ways it delivers (SMTP, or `.eml` files when no SMTP server is
//! configured).
//!
//! Infrastructure, not domain: the flows (`auth::recovery`, ...) only
//! write messages to the outbox, in the transaction of the state they
//! announce; this module knows SMTP and files, and nothing of accounts.
//! Every instance runs one sender. A message is claimed with a lease (on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`), so instances sharing the
//! database never take the same message while its lease runs; delivered
//! messages are deleted, failed ones retried with backoff, each on its own
//! schedule, so one bad message never holds up the rest. Delivery is at
//! least once: a sender that dies between the SMTP server's acceptance and
//! the delete leaves the message to be sent again when its lease ends.

mod smtp_url;

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::auth::Clock;
use crate::metrics::{MailOutcome, Metrics};
use crate::store::{ClaimedMessage, Store};

pub use smtp_url::{SmtpUrl, SmtpUrlError};

/// How long a claimed message is held by its sender; another instance may
/// take it after that (the sender died, or is stuck).
const LEASE_SECONDS: i64 = 120;
/// The longest one delivery may take (connect, TLS, the whole dialogue).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the mail settings cannot work.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    /// `LATCHKEY_SMTP_URL` is not usable.
    #[error("LATCHKEY_SMTP_URL: {0}")]
    SmtpUrl(#[from] SmtpUrlError),
    /// `LATCHKEY_MAIL_FROM` is not a mailbox.
    #[error("LATCHKEY_MAIL_FROM: {0}")]
    From(String),
    /// TLS could not be set up.
    #[error("LATCHKEY_SMTP_URL: TLS: {0}")]
    Tls(String),
    /// The template folder could not be read.
    #[error("LATCHKEY_MAIL_TEMPLATE_DIR: {0}")]
    Templates(std::io::Error),
}

/// Where messages go.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files (mode 0600) in this folder (mode 0700).
    Files(PathBuf),
}

impl Transport {
    /// SMTP to `url` when given, else files in `dir`.
    pub fn new(url: Option<&str>, dir: PathBuf) -> Result<Self, MailConfigError> {
        match url.filter(|u| !u.trim().is_empty()) {
            Some(url) => Ok(Self::Smtp(SmtpUrl::parse(url)?.transport()?)),
            None => Ok(Self::Files(dir)),
        }
    }

    /// What a start-up log line says about it (never a password).
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "SMTP".to_owned(),
            Self::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }
}

/// The retry schedule: `min`, doubling, capped at `max`, until the message
/// has waited `give_up_after`.
#[derive(Debug, Clone, Copy)]
pub struct RetrySchedule {
    /// Wait after the first failure, seconds.
    pub min: i64,
    /// The longest wait between attempts, seconds.
    pub max: i64,
    /// Age (since queued) after which a failure is final, seconds.
    pub give_up_after: i64,
}

impl RetrySchedule {
    /// The wait after the `attempts`-th failed attempt.
    pub fn backoff(&self, attempts: i64) -> i64 {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
        self.min
            .max(1)
            .saturating_mul(2_i64.saturating_pow(doublings))
            .min(self.max.max(self.min).max(1))
    }
}

/// A failed delivery.
#[derive(Debug)]
struct Failure {
    /// Retrying cannot help (the server refused the recipient for good,
    /// the address does not parse).
    permanent: bool,
    reason: String,
}

/// The background sender of one instance.
pub struct Sender {
    store: Store,
    transport: Transport,
    from: Mailbox,
    metrics: Metrics,
    clock: Clock,
    schedule: RetrySchedule,
    poll: Duration,
}

impl Sender {
    /// A sender over `store`'s outbox.
    pub fn new(
        store: Store,
        transport: Transport,
        from: &str,
        metrics: Metrics,
        clock: Clock,
        schedule: RetrySchedule,
        poll: Duration,
    ) -> Result<Self, MailConfigError> {
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| MailConfigError::From(e.to_string()))?;
        Ok(Self {
            store,
            transport,
            from,
            metrics,
            clock,
            schedule,
            poll: poll.max(Duration::from_millis(10)),
        })
    }

    /// Deliver until `stopped` turns true: whenever this instance queues
    /// mail, and every poll interval (for mail other instances queued and
    /// retries coming due). A delivery in progress at the stop is finished
    /// (the caller bounds it by the shutdown deadline).
    pub async fn run(self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        if let Transport::Files(dir) = &self.transport {
            if let Err(e) = create_private_dir(dir) {
                tracing::error!(dir = %dir.display(), error = %e, "mail folder cannot be created; messages stay queued");
            }
        }
        let wake = self.store.outbox_wake();
        loop {
            if *stopped.borrow() {
                break;
            }
            self.drain(&stopped).await;
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                () = wake.notified() => {},
                () = tokio::time::sleep(self.poll) => {},
            }
        }
    }

    /// Deliver due messages, one claim at a time, until none is due.
    async fn drain(&self, stopped: &tokio::sync::watch::Receiver<bool>) {
        while !*stopped.borrow() {
            let now = self.clock.now();
            let claimed = match self.store.claim_mail(now, now + LEASE_SECONDS, 1).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "mail outbox unreachable; retrying at the next poll");
                    return;
                }
            };
            let Some(message) = claimed.into_iter().next() else {
                break;
            };
            self.attempt(message).await;
        }
        match self.store.oldest_queued_mail().await {
            Ok(oldest) => self
                .metrics
                .mail_oldest_queued_age(oldest.map_or(0, |t| self.clock.now() - t)),
            Err(e) => tracing::debug!(error = %e, "oldest queued message unknown"),
        }
    }

    async fn attempt(&self, message: ClaimedMessage) {
        let id = message.id;
        let outcome = match tokio::time::timeout(DELIVERY_TIMEOUT, self.deliver(&message)).await {
            Ok(result) => result,
            Err(_) => Err(Failure {
                permanent: false,
                reason: "delivery timed out".to_owned(),
            }),
        };
        let now = self.clock.now();
        let recorded = match outcome {
            Ok(()) => {
                self.metrics.mail_attempt(MailOutcome::Sent);
                tracing::info!(mail_id = id, attempts = message.attempts, "mail delivered");
                self.store.mail_delivered(id).await
            }
            Err(failure)
                if failure.permanent || now - message.created_at >= self.schedule.give_up_after =>
            {
                self.metrics.mail_attempt(MailOutcome::Failed);
                // A warning, not an error: a mistyped address is the user's,
                // not the service's; latchkey_mail_failed_total counts them.
                tracing::warn!(mail_id = id, attempts = message.attempts, reason = %failure.reason, "mail delivery failed for good");
                self.store.mail_failed(id, &failure.reason).await
            }
            Err(failure) => {
                self.metrics.mail_attempt(MailOutcome::Retried);
                let next = now + self.schedule.backoff(message.attempts);
                tracing::warn!(mail_id = id, attempts = message.attempts, retry_in = next - now, reason = %failure.reason, "mail delivery failed; will retry");
                self.store.mail_retry_at(id, next, &failure.reason).await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the message is attempted again: at
            // least once, never lost.
            tracing::warn!(mail_id = id, error = %e, "mail outcome not recorded; the message will be attempted again");
        }
    }

    async fn deliver(&self, message: &ClaimedMessage) -> Result<(), Failure> {
        let permanent = |reason: String| Failure {
            permanent: true,
            reason,
        };
        let to = message
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| permanent(format!("recipient: {e}")))?;
        let domain = self.from.email.domain().to_owned();
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            // One id per outbox row: a message sent twice (at least once)
            // is recognisably the same one.
            .message_id(Some(format!(
                "<latchkey.{}.{}@{domain}>",
                message.id, message.created_at
            )))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(message.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(message.html.clone()),
                    ),
            )
            .map_err(|e| permanent(format!("message: {e}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(email).await.map(|_| ()).map_err(|e| Failure {
                permanent: e.is_permanent(),
                reason: e.to_string(),
            }),
            Transport::Files(dir) => {
                let path = dir.join(format!("{}-{}.eml", message.created_at, message.id));
                let bytes = email.formatted();
                tokio::task::spawn_blocking(move || write_private_file(&path, &bytes))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(|reason| Failure {
                        permanent: false,
                        reason,
                    })
            }
        }
    }
}

/// Create `dir` (mode 0700) if missing.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Write `bytes` to `path` (mode 0600) whole: to a temporary name first,
/// then renamed, so a reader never sees half a message.
fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let partial = path.with_extension("eml.partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_cap() {
        let s = RetrySchedule {
            min: 30,
            max: 3_600,
            give_up_after: 86_400,
        };
        let waits: Vec<i64> = (1..=9).map(|a| s.backoff(a)).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1_920, 3_600, 3_600]);
        assert_eq!(s.backoff(0), 30);
        assert_eq!(s.backoff(i64::MAX), 3_600);
    }

    #[test]
    fn the_default_schedule_retries_for_a_day() {
        let s = RetrySchedule {
            min: 30,
            max: 3_600,
            give_up_after: 86_400,
        };
        let (mut waited, mut attempts) = (0, 0);
        while waited < s.give_up_after {
            attempts += 1;
            waited += s.backoff(attempts);
        }
        assert!(attempts >= 24, "{attempts} attempts in a day");
    }
}
