//! latchkey: an authentication API server for single-page apps.
//!
//! The crate is layered: [`http`] (routes, extractors, middleware, error
//! mapping) calls [`auth`] (the domain: passwords, tokens, sessions, CSRF,
//! throttling), which reaches the database only through [`store`].
//! [`App::build`] assembles them from a [`config::Config`].

pub mod auth;
pub mod config;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

use auth::clock::seconds;
use auth::password::{HashError, Hasher, PasswordPolicy};
use auth::throttle::ThrottlePolicy;
use auth::{Auth, SecretKey, TokenPolicy};
use config::Config;
use store::{OpenMode, PoolConfig, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The database could not be opened: which one, and the reason.
    #[error("{0}")]
    Open(#[from] store::OpenError),
    /// An admin command found the schema not (fully) migrated.
    #[error(
        "database {database}: {pending} migration(s) not applied; run `latchkey migrate` (or start `latchkey serve`) first"
    )]
    NotMigrated {
        /// The URL, without its password.
        database: String,
        /// How many migrations are missing.
        pending: usize,
    },
    /// A listening address could not be resolved or bound.
    #[error("cannot listen on {address} ({setting}): {source}")]
    Listen {
        /// The configured address, as given.
        address: String,
        /// The flag or variable it came from.
        setting: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The passkey settings (rp id, origins) cannot work.
    #[error("passkeys (LATCHKEY_WEBAUTHN_RP_ID, LATCHKEY_WEBAUTHN_ORIGINS): {0}")]
    Passkeys(#[from] auth::passkeys::RelyingPartyError),
    /// The stored token signing key pairs are unusable.
    #[error("signing keys: {0}")]
    SigningKeys(#[from] auth::signing::KeySetError),
    /// The configured or stored signing key is unusable.
    #[error("signing key: {0}")]
    Key(#[from] auth::keys::KeyTooShort),
    /// The password hasher could not be set up.
    #[error("password hasher: {0}")]
    Hasher(#[from] HashError),
    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Random(#[from] getrandom::Error),
    /// Binding or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The metrics registry could not be set up.
    #[error("{0}")]
    Metrics(#[from] metrics::MetricsError),
    /// The OpenAPI document could not be serialised.
    #[error("OpenAPI document: {0}")]
    OpenApi(#[from] serde_json::Error),
    /// The edge's route table could not be built.
    #[error("{0}")]
    Routes(#[from] http::middleware::RouteTableError),
    /// A start-up pass over the stored users (the password hash census, the
    /// NFKC name keys) failed.
    #[error("users: {0}")]
    Census(auth::AuthError),
    /// The mail settings cannot work.
    #[error("{0}")]
    Mail(#[from] mail::MailConfigError),
    /// `latchkey import` failed; nothing was imported.
    #[error("import: {0}")]
    Import(#[from] auth::legacy::import::ImportError),
}

fn pool_config(config: &Config) -> PoolConfig {
    PoolConfig {
        max_connections: config.database_max_connections,
        acquire_timeout: Duration::from_secs(config.database_acquire_timeout_seconds),
        session_cache_ttl: Duration::from_millis(config.session_cache_millis),
    }
}

/// Open the configured database, creating a missing SQLite file, and apply
/// pending migrations (`serve`, `migrate`).
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    let store = Store::open(&config.database_url, &pool_config(config), OpenMode::Create).await?;
    store.migrate().await?;
    let (rekeyed, kept) = auth::admin::normalise_name_keys(&store)
        .await
        .map_err(StartError::Census)?;
    if rekeyed > 0 || !kept.is_empty() {
        tracing::info!(
            rekeyed,
            left = kept.len(),
            "name keys of earlier users recomputed in NFKC"
        );
    }
    Ok(store)
}

/// Open the configured database for an admin command: it must exist and be
/// migrated already. Never creates a database nor changes its schema.
pub async fn open_existing_store(config: &Config) -> Result<Store, StartError> {
    let store = Store::open(
        &config.database_url,
        &pool_config(config),
        OpenMode::Existing,
    )
    .await?;
    match store.pending_migrations().await {
        Ok(0) => Ok(store),
        Ok(pending) => {
            store.close().await;
            Err(StartError::NotMigrated {
                database: store::redacted(&config.database_url),
                pending,
            })
        }
        Err(e) => {
            store.close().await;
            Err(e.into())
        }
    }
}

/// Where the token signing key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `LATCHKEY_SECRET_KEY`.
    Environment,
    /// Generated at this start and stored in the database (its first start).
    GeneratedAndStored,
    /// Generated by an earlier start, read from the database.
    Stored,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Environment => "from LATCHKEY_SECRET_KEY",
            Self::GeneratedAndStored => "generated and stored in the database",
            Self::Stored => "stored in the database",
        })
    }
}

/// A built application, ready to serve.
pub struct App {
    router: http::Service,
    metrics_router: Option<http::Service>,
    limits: http::server::ConnectionLimits,
    /// From SIGTERM to exit, at most.
    shutdown_deadline: Duration,
    store: Store,
    key_source: KeySource,
    sender: mail::Sender,
    mail_transport: String,
}

/// A password hasher at the configured cost and concurrency.
pub fn hasher(config: &Config) -> Result<Hasher, HashError> {
    let workers = config
        .hash_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    Hasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        workers,
        config.hash_queue,
    )
}

/// The mail the flows send, as configured (links, templates, limits).
pub fn mail_settings(config: &Config) -> Result<auth::mail::MailSettings, mail::MailConfigError> {
    let templates = match &config.mail_template_dir {
        Some(dir) => auth::mail::Templates::with_overrides_from(dir)
            .map_err(mail::MailConfigError::Templates)?,
        None => auth::mail::Templates::builtin(),
    };
    let blank_is_none = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    Ok(auth::mail::MailSettings {
        app_name: config.app_name.clone(),
        app_url: config.app_url.trim_end_matches('/').to_owned(),
        verify_email_url: blank_is_none(&config.verify_email_url),
        reset_password_url: blank_is_none(&config.reset_password_url),
        confirm_email_change_url: blank_is_none(&config.confirm_email_change_url),
        reset_lifetime: seconds(config.password_reset_token_lifetime_seconds),
        verification_lifetime: seconds(config.email_verification_token_lifetime_seconds),
        require_verified_email: config.require_verified_email,
        per_email: config.mail_requests_per_email,
        per_address: config.mail_requests_per_address,
        window_seconds: seconds(config.mail_throttle_window_seconds.max(1)),
        templates,
    })
}

/// The password policy as configured.
pub fn password_policy(config: &Config) -> PasswordPolicy {
    PasswordPolicy {
        max_length: config.password_max_length,
    }
}

impl App {
    /// Connect, migrate, load or create the signing key, and assemble the
    /// layers. Everything that can fail at start-up fails here.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, auth::Clock::system()).await
    }

    /// [`App::build`] with the domain reading time from `clock` (tests and
    /// fault tests move or skew it).
    pub async fn build_with_clock(config: &Config, clock: auth::Clock) -> Result<Self, StartError> {
        let store = open_store(config).await?;
        let (key, key_source) = match &config.secret_key {
            Some(key) => (key.clone(), KeySource::Environment),
            None => {
                // First start: keep a random key in the database, shared by
                // every instance and kept across restarts.
                let candidate = SecretKey::generate()?;
                let stored = store.signing_key_or_insert(candidate.expose()).await?;
                let source = if stored.as_slice() == candidate.expose() {
                    KeySource::GeneratedAndStored
                } else {
                    KeySource::Stored
                };
                (SecretKey::from_bytes(stored)?, source)
            }
        };
        let hasher = hasher(config)?;
        let metrics = metrics::Metrics::new(hasher.wait_histogram())?;
        let policies = auth::Policies {
            passwords: password_policy(config),
            tokens: TokenPolicy {
                access_lifetime: seconds(config.access_token_lifetime_seconds),
                refresh_lifetime: seconds(config.refresh_token_lifetime_seconds),
                reuse_grace: seconds(config.refresh_reuse_grace_seconds),
                clock_leeway: seconds(config.clock_leeway_seconds),
                issuer: config.jwt_issuer.clone(),
                audience: config.jwt_audience.clone(),
            },
            throttle: ThrottlePolicy {
                per_account: config.login_failures_per_account,
                per_address: config.login_failures_per_address,
                registrations_per_address: config.registrations_per_address,
                passkey_challenges_per_address: config.passkey_challenges_per_address,
                window_seconds: seconds(config.login_throttle_window_seconds),
            },
            csrf_max_age: config.csrf_token_max_age_seconds,
        };
        let transport = mail::Transport::new(config.smtp_url.as_deref(), config.mail_dir.clone())?;
        let mail_transport = transport.describe();
        let sender = mail::Sender::new(
            store.clone(),
            transport,
            &config.mail_from,
            metrics.clone(),
            clock.clone(),
            mail::RetrySchedule {
                min: seconds(config.mail_retry_min_seconds.max(1)),
                max: seconds(config.mail_retry_max_seconds.max(1)),
                give_up_after: seconds(config.mail_retry_for_seconds.max(1)),
            },
            Duration::from_millis(config.mail_poll_millis),
        )?;
        let mut auth = Auth::new(store.clone(), key, hasher, policies, metrics)
            .with_legacy_django(config.legacy_django_key.as_ref())
            .with_mail(mail_settings(config)?)
            .with_clock(clock.clone());
        if let Some(relying_party) = relying_party(config)? {
            auth = auth.with_passkeys(relying_party);
        }
        if config.jwt_algorithm.is_asymmetric() {
            let keys = auth::signing::SigningKeys::stored(
                store.clone(),
                config.jwt_algorithm,
                key_retention(config),
                key_reload_interval(config),
                clock.now(),
            )
            .await?;
            auth = auth.with_signing_keys(keys);
        }
        // Unknown accounts cost what the stored hashes cost, from the start.
        auth.take_hash_census().await.map_err(StartError::Census)?;
        let doc = http::openapi();
        let state = std::sync::Arc::new(http::Shared {
            auth,
            origins: http::middleware::Origins::new(&config.allowed_origins),
            https: config.https,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: Duration::from_secs(config.body_read_timeout_seconds.max(1)),
            trusted_proxy_hops: config.trusted_proxy_hops,
            csrf_cookie_attributes: http::csrf_cookie_attributes(
                config.csrf_token_max_age_seconds,
                config.https,
            ),
            device_cookie_attributes: http::device_cookie_attributes(config.https),
            refresh_cookie: config.refresh_cookie.then(|| {
                http::refresh_cookie::RefreshCookie::new(
                    config.refresh_token_lifetime_seconds,
                    config.refresh_cookie_samesite,
                    config.https,
                )
            }),
            metrics_here: config.metrics_bind.is_none(),
            openapi_json: serde_json::to_vec(&doc)?.into(),
        });
        Ok(Self {
            metrics_router: config
                .metrics_bind
                .as_ref()
                .map(|_| http::metrics_router(state.clone(), &doc))
                .transpose()?,
            router: http::router(state, &doc)?,
            limits: connection_limits(config),
            shutdown_deadline: Duration::from_secs(config.shutdown_deadline_seconds),
            store,
            key_source,
            sender,
            mail_transport,
        })
    }

    /// The service a listener serves (the router behind the edge), for
    /// driving requests without a socket (`tower::ServiceExt::oneshot`).
    pub fn service(&self) -> http::Service {
        self.router.clone()
    }

    /// Where mail goes, for the start-up log line (never a password).
    pub fn mail_transport(&self) -> &str {
        &self.mail_transport
    }

    /// Where the signing key came from, for the start-up log line.
    pub fn key_source(&self) -> KeySource {
        self.key_source
    }

    /// Serve on `listener` (and `/metrics` on `metrics_listener`, when
    /// `LATCHKEY_METRICS_BIND` is set) until `shutdown` completes; then stop
    /// accepting, let in-flight requests finish within the shutdown
    /// deadline, and close the database pool.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stopping = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        // One budget of connections for both listeners.
        let slots = http::server::slots(&self.limits);
        let metrics = match (self.metrics_router, metrics_listener) {
            (Some(router), Some(listener)) => Some(tokio::spawn(http::server::serve(
                listener,
                router,
                self.limits,
                slots.clone(),
                stopping(stopped.clone()),
            ))),
            _ => None,
        };
        let sender = tokio::spawn(self.sender.run(stopped.clone()));
        let main = tokio::spawn(http::server::serve(
            listener,
            self.router,
            self.limits,
            slots,
            stopping(stopped),
        ));
        shutdown.await;
        let deadline = tokio::time::Instant::now() + self.shutdown_deadline;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop.send(true);
        if let Err(e) = main.await {
            tracing::warn!(error = %e, "listener task failed");
        }
        if let Some(task) = metrics {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "metrics listener failed");
            }
        }
        // A delivery in progress finishes within the deadline; one cut off
        // keeps its lease and is sent again (by any instance) once it ends.
        if tokio::time::timeout_at(deadline, sender).await.is_err() {
            tracing::warn!(
                "mail delivery in progress cut at the shutdown deadline; it will be retried"
            );
        }
        // Every request has ended, so no transaction is open; a connection
        // that will not close (one cut mid-query by a network fault) must not
        // keep the process alive past the deadline either.
        let closed_by = deadline.min(tokio::time::Instant::now() + POOL_CLOSE_MAX);
        if tokio::time::timeout_at(closed_by, self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections did not close in time; exiting without them");
        }
        Ok(())
    }
}

/// Of the shutdown deadline, what is kept for closing the database pool
/// once the connections are done (or cut).
const POOL_CLOSE_RESERVE: Duration = Duration::from_secs(1);
/// The longest closing the pool may take: idle connections close in
/// milliseconds; one cut mid-query by a network fault may never.
const POOL_CLOSE_MAX: Duration = Duration::from_secs(3);

/// The connection limits as configured, the connection count kept below
/// the open-files limit (raised to its hard maximum first) with room for
/// the database, log and hashing files.
fn connection_limits(config: &Config) -> http::server::ConnectionLimits {
    const RESERVED_FILES: u64 = 128;
    let mut max_connections = config.max_connections.max(1);
    if let Some(files) = http::server::raise_open_files_limit() {
        let room =
            usize::try_from(files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
        if max_connections > room {
            tracing::warn!(
                configured = max_connections,
                open_files_limit = files,
                "LATCHKEY_MAX_CONNECTIONS is above what the open-files limit allows; serving {room} at once"
            );
            max_connections = room;
        }
    }
    http::server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds.max(1)),
        idle_timeout: Duration::from_secs(config.idle_timeout_seconds.max(1)),
        max_connections,
        // Behind proxies every connection comes from a proxy's address.
        max_connections_per_address: if config.trusted_proxy_hops > 0 {
            0
        } else {
            config.max_connections_per_address
        },
        // The connections get the deadline less the pool's share, so the
        // process is gone by the deadline whatever clients do.
        shutdown_deadline: Duration::from_secs(config.shutdown_deadline_seconds)
            .saturating_sub(POOL_CLOSE_RESERVE),
    }
}

/// How long a retired signing key keeps verifying (and stays published):
/// until every token it can have signed has expired.
pub fn key_retention(config: &Config) -> auth::signing::Retention {
    auth::signing::Retention::new(
        seconds(config.access_token_lifetime_seconds),
        seconds(config.refresh_token_lifetime_seconds),
        seconds(config.clock_leeway_seconds),
        key_reload_interval(config),
    )
}

/// How old the key set may get before an instance reloads it: the session
/// cache's TTL, so a revoked key is refused within the same delay as a
/// revoked session.
pub fn key_reload_interval(config: &Config) -> Duration {
    Duration::from_millis(config.session_cache_millis)
}

/// The passkeys' relying party: the configured origins, or those derived
/// from the CORS origins and the app URL; `None` (passkeys off, said in
/// the log) when none is derived.
fn relying_party(config: &Config) -> Result<Option<auth::passkeys::RelyingParty>, StartError> {
    use auth::passkeys::{relying_party::derived_origins, RelyingParty};
    let rp_id = config.webauthn_rp_id.trim();
    let configured: Vec<String> = config
        .webauthn_origins
        .iter()
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    let origins = if configured.is_empty() {
        let mut candidates = config.allowed_origins.clone();
        candidates.push(config.app_url.clone());
        derived_origins(rp_id, &candidates, config.https)
    } else {
        configured
    };
    if origins.is_empty() {
        tracing::warn!(
            rp_id,
            "passkeys are off: no allowed origin or app URL is on LATCHKEY_WEBAUTHN_RP_ID; \
             set LATCHKEY_WEBAUTHN_RP_ID to the site's domain, or LATCHKEY_WEBAUTHN_ORIGINS"
        );
        return Ok(None);
    }
    let relying_party = RelyingParty::new(rp_id, &config.app_name, &origins, config.https)?;
    tracing::info!(rp_id, origins = ?relying_party.origins(), "passkeys on");
    Ok(Some(relying_party))
}
