//! The `latchkey` command: parse arguments, dispatch. Nothing else.

use std::io::Write as _;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use latchkey::auth::admin::UserRef;
use latchkey::config::{Config, DjangoImportArgs};
use latchkey::store::{redacted, ServeLock};
use latchkey::{telemetry, App, StartError};

mod commands;

use commands::keys::{keys, KeysCommand};
use commands::mail::{mail, MailCommand};
use commands::user::{user, UserCommand};
use commands::{admin_action, count, open_for_admin, report, say, CliError};

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
