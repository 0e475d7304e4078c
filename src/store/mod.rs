//! Storage: the only place with SQL. One [`Store`] over a pool of either
//! SQLite (embedded, the default) or PostgreSQL connections. The statements
//! are written once in the dialect both accept (`$n` parameters, `ON
//! CONFLICT`, `RETURNING`); the schemas differ and live in
//! `migrations/<backend>/`, embedded in the binary.
//!
//! Constraint violations and connectivity failures become [`StoreError`]
//! variants here, so the layers above never see a `sqlx::Error`.

/// `now` in whole seconds by PostgreSQL's clock, as SQL text. Times the
/// grace window compares are written and read with it, never with an
/// instance's clock. A macro, so statements using it stay literals.
macro_rules! pg_now {
    () => {
        "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS BIGINT)"
    };
}

pub mod import;
mod legacy;
mod lock;
mod mail;
mod maintenance;
mod mfa;
mod open;
mod outbox;
mod passkeys;
mod session_cache;
mod sessions;
mod settings;
mod signing_keys;
mod statements;
mod stored_addrs;
mod stored_hashes;
mod stored_ids;
mod throttle;
mod user_agents;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection as _, Executor as _};

pub use legacy::{LegacyRedemption, LegacyTokenUser};
pub use lock::ServeLock;
pub use mail::{EmailTokenRecord, NewEmailToken, NewMessage};
pub use maintenance::Flushed;
pub use mfa::{ChallengeRecord, Finish, MfaState, NewChallenge, Proof, TotpRecord};
pub use open::{redacted, OpenError, OpenMode};
pub use outbox::{ClaimedMessage, OutboxEntry};
pub use passkeys::{
    ChallengeOwner, ChallengePurpose, ChallengeStored, NewPasskey, NewPasskeyChallenge,
    PasskeyDeletion, PasskeyRecord, PasskeySummary,
};
pub use sessions::{IssuedRefresh, RefreshTokenState, SessionRecord};
pub use signing_keys::{NewSigningKey, SigningKeyRecord};
pub use statements::{NewRefreshToken, NewSession, SessionUser};
pub use stored_hashes::decode as password_hash_text;
pub use throttle::{Settle, ThrottleWindow, KNOWN_CLIENT_MAX_AGE_SECONDS};
pub use users::{LoginAccount, LoginKey, NewUser, UserRecord, UserSummary};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Database connection counts, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Idle connections.
    pub idle: usize,
    /// The maximum.
    pub max: u32,
}

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH`: an embedded file, WAL mode.
    Sqlite,
    /// `postgres://...`: a shared server, for several instances.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if any.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// A unique field a new row collided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    /// `users.email_key`.
    Email,
    /// `users.name_key`.
    Name,
    /// `passkeys.credential_id`: the authenticator's credential is
    /// registered already.
    PasskeyCredential,
}

/// What can go wrong in storage, as the layers above need to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. a racing registration).
    #[error("duplicate {0:?}")]
    Duplicate(UniqueField),
    /// The database cannot be reached or is too busy right now; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The URL names no supported backend.
    #[error("unsupported database URL (use sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    /// Anything else: a bug or a corrupt database.
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                Self::Unavailable(e.to_string())
            }
            E::Database(ref db) => {
                if db.is_unique_violation() {
                    let on = |col: &str| {
                        db.message().contains(col)
                            || db.constraint().is_some_and(|c| c.contains(col))
                    };
                    if on("email_key") {
                        return Self::Duplicate(UniqueField::Email);
                    }
                    if on("name_key") {
                        return Self::Duplicate(UniqueField::Name);
                    }
                }
                if is_transient(db.as_ref()) {
                    Self::Unavailable(e.to_string())
                } else {
                    Self::Other(e.to_string())
                }
            }
            other => Self::Other(other.to_string()),
        }
    }
}

/// Whether a database error means "not now" rather than "never": nothing
/// was committed, and the same request may succeed once the fault clears.
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // The primary result code is the low byte of the extended one:
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), another writer; SQLITE_IOERR
        // (10) and SQLITE_FULL (13), a disk that cannot take the write.
        let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
        return matches!(code & 0xff, 5 | 6 | 10 | 13);
    }
    // PostgreSQL: admin shutdown, crash shutdown, cannot connect now,
    // serialization failure, deadlock, disk full, out of resources, I/O error.
    matches!(
        db.code().as_deref(),
        Some("57P01" | "57P02" | "57P03" | "40001" | "40P01" | "53100" | "53000" | "58030")
    )
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Maximum open connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing.
    pub acquire_timeout: Duration,
    /// How long a live-session lookup may be reused (0: never).
    pub session_cache_ttl: Duration,
}

/// The database, behind the operations latchkey needs and nothing more.
#[derive(Clone)]
pub struct Store {
    /// Reads, and everything on PostgreSQL.
    pool: AnyPool,
    /// Writes. On SQLite, one connection: SQLite allows one writer at a
    /// time, and queueing writers here (FIFO, no sleeping) beats letting them
    /// collide on the file lock and back off in SQLite's busy handler. On
    /// PostgreSQL, the same pool as reads.
    writer: AnyPool,
    backend: Backend,
    sessions: std::sync::Arc<session_cache::SessionCache>,
    /// Notified when this store queues mail (see `mail.rs`).
    outbox_wake: std::sync::Arc<tokio::sync::Notify>,
    /// `User-Agent`s whose rows were found fresh (see `user_agents.rs`).
    fresh_user_agents: std::sync::Arc<user_agents::FreshUserAgents>,
}

impl Store {
    /// Open a pool on `url`. SQLite files are created when missing. Does not
    /// migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, pool: &PoolConfig) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let options =
            AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Other(e.to_string()))?;
        let open = |max_connections: u32| {
            let builder = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(pool.acquire_timeout);
            let builder = match backend {
                Backend::Postgres => builder,
                Backend::Sqlite => builder
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the single writer; NORMAL
                            // is durable across application crashes in WAL mode.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                            )
                            .await
                            .map(|_| ())
                        })
                    })
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            // A COMMIT that failed for a full disk or an I/O error
                            // may have been rolled back by SQLite itself; sqlx's
                            // ROLLBACK then fails and it still counts a
                            // transaction open, so the next BEGIN would become a
                            // SAVEPOINT inside a transaction that never commits,
                            // holding the write lock. The ping waits for the
                            // rollback queued on this connection's worker; a
                            // connection still inside a transaction after it is
                            // closed (SQLite rolls back and frees the lock), and
                            // the pool opens a fresh one.
                            //
                            // The worker counts the depth after each command it
                            // runs, and a dropped transaction queues its rollback
                            // only while the depth is above zero. At zero, what
                            // can still be queued (a `BEGIN` whose caller went
                            // away, which the worker rolls back itself when its
                            // answer finds no one) is flushed by the ping sqlx
                            // makes on every release right after this hook; so
                            // this one (a round trip to the worker thread, two
                            // thread wake-ups, on every statement run on the
                            // pool) is skipped.
                            if !conn.is_in_transaction() {
                                return Ok(true);
                            }
                            conn.ping().await?;
                            Ok(!conn.is_in_transaction())
                        })
                    }),
            };
            builder.connect_lazy_with(options.clone())
        };
        let reader = open(pool.max_connections.max(1));
        let writer = match backend {
            Backend::Sqlite => open(1),
            Backend::Postgres => reader.clone(),
        };
        let sessions =
            std::sync::Arc::new(session_cache::SessionCache::new(pool.session_cache_ttl));
        Ok(Self {
            pool: reader,
            writer,
            backend,
            sessions,
            outbox_wake: std::sync::Arc::default(),
            fresh_user_agents: std::sync::Arc::default(),
        })
    }

    /// Apply the embedded migrations that have not run yet. On PostgreSQL the
    /// migrator holds an advisory lock, so instances starting together take
    /// turns; on SQLite (where sqlx takes no lock) an exclusive `flock` on
    /// `<database file>.migrate.lock` does the same, so two processes opening
    /// a fresh file at once do not both apply one migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let _turn = match self.backend {
            Backend::Sqlite => {
                let url = self.writer.connect_options().database_url.to_string();
                lock::MigrationLock::acquire(&url).await?
            }
            Backend::Postgres => None,
        };
        migrator.run(&self.writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Other(other.to_string()),
        })
    }

    /// A transaction on the writer. On SQLite it begins `IMMEDIATE`, taking
    /// the write lock at once (waiting out `busy_timeout` for another
    /// process's writer): a deferred transaction that reads first fails at
    /// once with `SQLITE_BUSY`, no wait, when it then writes after another
    /// process (an admin command, a second instance sharing the file)
    /// committed in between.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// Succeeds when the database answers a read and commits a write (one
    /// row of `server_settings`, through the writer a request would use), so
    /// readiness fails while writes fail (a full disk, a stuck writer) and
    /// not only when the database is unreachable.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        settings::probe_write(&self.writer).await
    }

    /// Connections open, idle, and allowed, over every pool of this store.
    pub fn pool_stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        };
        if self.backend == Backend::Sqlite {
            stats.size += self.writer.size();
            stats.idle += self.writer.num_idle();
            stats.max += self.writer.options().get_max_connections();
        }
        stats
    }

    /// Close every connection (on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}
