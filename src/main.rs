//! The `latchkey` command: parse arguments, dispatch. Nothing else.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latchkey::config::{Config, DjangoImportArgs};
use latchkey::{telemetry, App};

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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => match config.with_secret_from_env() {
            Ok(config) => serve(config).await,
            Err(e) => Err(latchkey::StartError::Key(e)),
        },
        Command::Migrate(config) => {
            telemetry::init(config.log_format, &config.log);
            latchkey::open_store(&config)
                .await
                .map(|_| tracing::info!("migrations applied"))
        }
        Command::FlushExpired(config) => flush_expired(config).await,
        Command::Import(ImportFrom::Django { source, config }) => {
            import_django(config, source).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn flush_expired(config: Config) -> Result<(), latchkey::StartError> {
    telemetry::init(config.log_format, &config.log);
    let store = latchkey::open_store(&config).await?;
    let window = i64::try_from(config.login_throttle_window_seconds).unwrap_or(i64::MAX / 4);
    let flushed = store.flush_expired(latchkey::auth::now(), window).await?;
    println!(
        "flushed {} expired sessions, {} expired refresh tokens, {} stale throttle counters, {} expired legacy token ids",
        flushed.sessions, flushed.refresh_tokens, flushed.throttle_counters, flushed.legacy_tokens
    );
    Ok(())
}

async fn import_django(
    config: Config,
    source: DjangoImportArgs,
) -> Result<(), latchkey::StartError> {
    telemetry::init(config.log_format, &config.log);
    let store = latchkey::open_store(&config).await?;
    let report = latchkey::auth::legacy::import::import_django(&store, &source.options()).await;
    store.close().await;
    print!("{}", report?);
    Ok(())
}

async fn serve(config: Config) -> Result<(), latchkey::StartError> {
    telemetry::init(config.log_format, &config.log);
    let app = App::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(address = %listener.local_addr()?, "latchkey listening");
    app.serve(listener, shutdown_signal()).await
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
