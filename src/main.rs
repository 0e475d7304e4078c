//! The `latchkey` command: parse arguments, dispatch. Nothing else.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use latchkey::auth::admin::{Admin, Changed, UserRef};
use latchkey::auth::password::Password;
use latchkey::auth::AuthError;
use latchkey::config::{Config, DjangoImportArgs};
use latchkey::store::{redacted, ServeLock};
use latchkey::{telemetry, App, StartError};

/// latchkey: an authentication API server for single-page apps.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server (migrations are applied first).
    #[command(after_help = SECRET_KEY_HELP)]
    Serve(Config),
    /// Apply pending database migrations and exit.
    Migrate(Config),
    /// Delete expired sessions, refresh tokens and throttle counters (like
    /// SimpleJWT's `flushexpiredtokens`). Safe to run while serving.
    FlushExpired(Config),
    /// Import users from another system into the configured database.
    #[command(subcommand)]
    Import(ImportFrom),
    /// Print the OpenAPI 3.1 document (the one served at /openapi.json).
    Openapi,
    /// Manage users (like Django's createsuperuser / changepassword).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage the token signing key pairs (LATCHKEY_JWT_ALGORITHM EdDSA,
    /// ES256 or RS256), published at /.well-known/jwks.json.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the mail outbox: list it, retry or drop a message.
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
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

#[derive(Subcommand)]
enum MailCommand {
    /// Queued and failed messages: id, kind, recipient, state, attempts,
    /// next attempt, last error (never a body).
    List(Config),
    /// Make a queued message due now (after fixing the SMTP settings).
    Retry(MailTarget),
    /// Delete a message from the outbox.
    Drop(MailTarget),
}

#[derive(Args)]
struct MailTarget {
    /// The message id, from `latchkey mail list`.
    id: i64,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum UserCommand {
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

#[derive(Subcommand)]
enum SessionsCommand {
    /// End every live session of a user (they must log in again).
    Revoke {
        /// The user: id, email or name.
        #[arg(long)]
        user: String,
        #[command(flatten)]
        config: Config,
    },
}

#[derive(Args)]
struct Target {
    /// The user: id, email or name.
    user: String,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum ImportFrom {
    /// Users from a Django database (ids, emails, names, active flags, join
    /// dates and password hashes, which logins upgrade to Argon2id), and
    /// SimpleJWT's blacklisted refresh tokens. Idempotent: run it again to
    /// pick up what changed in Django since.
    Django {
        #[command(flatten)]
        source: DjangoImportArgs,
        #[command(flatten)]
        config: Config,
    },
}

const SECRET_KEY_HELP: &str = "Environment only:\n  LATCHKEY_SECRET_KEY  Token signing key, at least 32 bytes. Never a flag, so it stays out of\n                       the process list. Unset: a random key is generated once and kept in\n                       the database (shared by every instance on it).\n  LATCHKEY_LEGACY_DJANGO_KEY  The Django project's SECRET_KEY, during a migration from Django:\n                       tokens SimpleJWT issued are accepted (access until they expire, refresh\n                       once). Unset: no legacy token is accepted.";

#[tokio::main]
async fn main() -> ExitCode {
    // Every file latchkey creates (the SQLite database and its -wal, -shm
    // and lock files) holds secrets or guards them: owner-only, whatever
    // the inherited umask says.
    // SAFETY: umask only replaces the process's file-creation mask.
    unsafe { libc::umask(0o077) };
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let settings = Settings(leaf(&matches));
    let result: Result<(), CliError> = match cli.command {
        Command::Serve(config) => match config.with_secret_from_env() {
            Ok(config) => serve(config, settings).await,
            Err(e) => Err(StartError::Key(e).into()),
        },
        Command::Migrate(config) => {
            telemetry::init(config.log_format, &config.log);
            latchkey::open_store(&config)
                .await
                .map(|_| {
                    tracing::info!(database = %redacted(&config.database_url), "migrations applied");
                })
                .map_err(Into::into)
        }
        Command::FlushExpired(config) => flush_expired(config).await,
        Command::Import(ImportFrom::Django { source, config }) => {
            import_django(config, source).await
        }
        Command::Openapi => print_openapi(),
        Command::User(command) => user(command).await,
        Command::Keys(command) => keys(command).await,
        Command::Mail(command) => mail(command).await,
        Command::Sessions(SessionsCommand::Revoke { user, config }) => {
            admin_action(&config, |admin| async move {
                report(
                    admin.revoke_sessions(&UserRef::parse(&user)).await,
                    "sessions revoked",
                    true,
                )
            })
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Whoever reads our output stopped (`latchkey openapi | head`): the
        // job is over, and nobody is left to tell.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // Ignored: with stderr gone too there is no one to tell.
            let _ = writeln!(std::io::stderr(), "latchkey: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The innermost subcommand's matches: where its options' values came from.
fn leaf(matches: &ArgMatches) -> &ArgMatches {
    match matches.subcommand() {
        Some((_, sub)) => leaf(sub),
        None => matches,
    }
}

/// Names settings the way the operator gave them: the flag when it was on
/// the command line, else the environment variable.
struct Settings<'a>(&'a ArgMatches);

impl Settings<'_> {
    /// `--flag` or `LATCHKEY_VAR` for the `Config` field `field`.
    fn name(&self, field: &str) -> String {
        let flag = format!("--{}", field.replace('_', "-"));
        let env = format!("LATCHKEY_{}", field.to_ascii_uppercase());
        match self.0.value_source(field) {
            Some(ValueSource::CommandLine) => flag,
            Some(ValueSource::EnvVariable) => env,
            _ => format!("{env} (default)"),
        }
    }
}

/// One line to standard output. A write error (a closed pipe, a full disk)
/// becomes [`CliError::Output`] rather than `println!`'s panic.
fn say(line: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)
}

/// `n noun` or `n nouns`.
fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
enum CliError {
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

async fn user(command: UserCommand) -> Result<(), CliError> {
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
                let counters = if cleared == 1 { "counter" } else { "counters" };
                println!(
                    "unlocked: {} <{}> (id {}); {cleared} failed-login {counters} cleared",
                    user.name, user.email, user.id
                );
                Ok(())
            })
            .await
        }
    }
}

async fn keys(command: KeysCommand) -> Result<(), CliError> {
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

/// Open the store, build the admin service, run `action` on it.
async fn mail(command: MailCommand) -> Result<(), CliError> {
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

async fn admin_action<F, Fut>(config: &Config, action: F) -> Result<(), CliError>
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
async fn open_for_admin(config: &Config) -> Result<latchkey::store::Store, CliError> {
    telemetry::init(config.log_format, &config.log);
    let store = latchkey::open_existing_store(config).await?;
    let _ = writeln!(
        std::io::stderr(),
        "latchkey: database {}",
        redacted(&config.database_url)
    );
    Ok(store)
}

fn report(
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
fn read_password(prompt: &str, confirm: bool) -> Result<Password, CliError> {
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

fn print_openapi() -> Result<(), CliError> {
    let doc = latchkey::http::openapi();
    let text = serde_json::to_string_pretty(&doc).map_err(StartError::from)?;
    say(format_args!("{text}"))
}

async fn flush_expired(config: Config) -> Result<(), CliError> {
    let store = open_for_admin(&config).await?;
    let window = latchkey::auth::clock::seconds(config.login_throttle_window_seconds);
    let flushed = store.flush_expired(latchkey::auth::now(), window).await;
    store.close().await;
    let flushed = flushed.map_err(StartError::from)?;
    say(format_args!(
        "flushed {}, {}, {}, {}, {}, {}",
        count(flushed.sessions, "expired session"),
        count(flushed.throttle_counters, "stale throttle counter"),
        count(flushed.legacy_tokens, "expired legacy token id"),
        count(flushed.challenges, "expired one-time token"),
        count(flushed.passkey_challenges, "expired passkey challenge"),
        count(flushed.user_agents, "unused user agent"),
    ))
}

async fn import_django(config: Config, source: DjangoImportArgs) -> Result<(), CliError> {
    let store = open_for_admin(&config).await?;
    let report = latchkey::auth::legacy::import::import_django(&store, &source.options()).await;
    store.close().await;
    let report = report.map_err(StartError::from)?.to_string();
    say(format_args!("{}", report.trim_end_matches('\n')))
}

/// Bind `address` (host names resolved; the first address that binds).
async fn listen(address: &str, setting: String) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Listen {
            address: address.to_owned(),
            setting,
            source,
        })
}

async fn serve(config: Config, settings: Settings<'_>) -> Result<(), CliError> {
    telemetry::init(config.log_format, &config.log);
    // Everything that can be refused without touching anything comes first:
    // the settings, then the addresses; only then the database is opened
    // (and perhaps created and migrated).
    config.validate().map_err(|invalid| {
        CliError::Invalid(format!(
            "{}: {}",
            settings.name(invalid.field),
            invalid.problem
        ))
    })?;
    let listener = listen(&config.bind, settings.name("bind")).await?;
    let metrics_listener = match &config.metrics_bind {
        Some(address) => Some(listen(address, settings.name("metrics_bind")).await?),
        None => None,
    };
    let _lock = if config.sqlite_allow_shared {
        None
    } else {
        ServeLock::acquire(&config.database_url).map_err(StartError::from)?
    };
    let app = App::build(&config).await?;
    let address = listener.local_addr().map_err(StartError::from)?;
    let metrics_address = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()
        .map_err(StartError::from)?;
    tracing::info!(
        %address,
        metrics = %metrics_address.map_or_else(|| "on the main address".to_owned(), |a| a.to_string()),
        database = %redacted(&config.database_url),
        key = %app.key_source(),
        mail = %app.mail_transport(),
        origins = %config.allowed_origins.join(","),
        "latchkey listening"
    );
    Ok(app
        .serve(listener, metrics_listener, shutdown_signal())
        .await?)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}
