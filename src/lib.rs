//! latchkey: an authentication API server for single-page apps.
//!
//! The crate is layered: [`http`] (routes, extractors, middleware, error
//! mapping) calls [`auth`] (the domain: passwords, tokens, sessions, CSRF,
//! throttling), which reaches the database only through [`store`].
//! [`App::build`] assembles them from a [`config::Config`].

pub mod auth;
pub mod config;
pub mod http;
pub mod metrics;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::ServiceExt as _;
use tokio::net::TcpListener;

use auth::password::{HashError, Hasher, PasswordPolicy};
use auth::throttle::ThrottlePolicy;
use auth::{Auth, SecretKey, TokenPolicy};
use config::Config;
use store::{PoolConfig, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
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
    /// `latchkey import` failed; nothing was imported.
    #[error("import: {0}")]
    Import(#[from] auth::legacy::import::ImportError),
}

/// Open the configured database and apply pending migrations.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    let store = Store::connect(
        &config.database_url,
        &PoolConfig {
            max_connections: config.database_max_connections,
            acquire_timeout: Duration::from_secs(config.database_acquire_timeout_seconds),
            session_cache_ttl: Duration::from_millis(config.session_cache_millis),
        },
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

/// A built application, ready to serve.
pub struct App {
    router: http::Service,
    metrics_router: Option<http::Service>,
    store: Store,
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
        let key = match &config.secret_key {
            Some(key) => key.clone(),
            None => {
                // First start: keep a random key in the database, shared by
                // every instance and kept across restarts.
                let candidate = SecretKey::generate()?;
                SecretKey::from_bytes(store.signing_key_or_insert(candidate.expose()).await?)?
            }
        };
        let hasher = hasher(config)?;
        let metrics = metrics::Metrics::new(hasher.wait_histogram())?;
        let policies = auth::Policies {
            passwords: password_policy(config),
            tokens: TokenPolicy {
                access_lifetime: secs(config.access_token_lifetime_seconds),
                refresh_lifetime: secs(config.refresh_token_lifetime_seconds),
                reuse_grace: secs(config.refresh_reuse_grace_seconds),
                clock_leeway: secs(config.clock_leeway_seconds),
            },
            throttle: ThrottlePolicy {
                per_account: config.login_failures_per_account,
                per_address: config.login_failures_per_address,
                registrations_per_address: config.registrations_per_address,
                window_seconds: secs(config.login_throttle_window_seconds),
            },
            csrf_max_age: config.csrf_token_max_age_seconds,
        };
        let auth = Auth::new(store.clone(), key, hasher, policies, metrics)
            .with_legacy_django(config.legacy_django_key.as_ref())
            .with_clock(clock);
        let doc = http::openapi();
        let state = std::sync::Arc::new(http::Shared {
            auth,
            origins: http::middleware::Origins::new(&config.allowed_origins),
            https: config.https,
            max_body_bytes: config.max_body_bytes,
            trusted_proxy_hops: config.trusted_proxy_hops,
            csrf_cookie_attributes: http::csrf_cookie_attributes(
                config.csrf_token_max_age_seconds,
                config.https,
            ),
            device_cookie_attributes: http::device_cookie_attributes(config.https),
            metrics_here: config.metrics_bind.is_none(),
            openapi_json: serde_json::to_vec(&doc)?.into(),
        });
        Ok(Self {
            metrics_router: config
                .metrics_bind
                .map(|_| http::metrics_router(state.clone(), &doc))
                .transpose()?,
            router: http::router(state, &doc)?,
            store,
        })
    }

    /// Serve on `listener` (and `/metrics` on `metrics_listener`, when
    /// `LATCHKEY_METRICS_BIND` is set) until `shutdown` completes, then
    /// finish in-flight requests and close the database pool.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let metrics = match (self.metrics_router, metrics_listener) {
            (Some(router), Some(listener)) => {
                let mut stopped = stopped.clone();
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                Some(tokio::spawn(async move {
                    axum::serve(listener, service)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.changed().await;
                        })
                        .await
                }))
            }
            _ => None,
        };
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        drop(stop);
        if let Some(task) = metrics {
            if let Ok(Err(e)) = task.await {
                tracing::warn!(error = %e, "metrics listener failed");
            }
        }
        self.store.close().await;
        Ok(served?)
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX / 4)
}
