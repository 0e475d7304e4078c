//! Opening the database at start-up, with the cause of a failure named.
//!
//! The pools connect lazily and retry a refused connection (or a failed
//! `PRAGMA`) until their acquire timeout, so a wrong path or host would
//! surface as "pool timed out". One direct connection first, without retry,
//! gets the real error; it is then described with the database (no
//! password), the path or host, and the operating system's reason.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, Executor as _};

use super::{Backend, PoolConfig, Store, StoreError, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

/// Whether opening may create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve` and `migrate`: a missing SQLite file is created.
    Create,
    /// Admin commands: the database must already exist (a typo in the URL
    /// must not become an empty database reported as "0 users").
    Existing,
}

/// The database could not be opened; `reason` names the path or host and
/// the operating system's (or the database's) reason.
#[derive(Debug, thiserror::Error)]
#[error("database {database}: {reason}")]
pub struct OpenError {
    /// The URL, without its password.
    pub database: String,
    /// What went wrong, in one line.
    pub reason: String,
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redacted(url: &str) -> String {
    // The userinfo first, over the whole URL: a password may hold `/`, `?`
    // or `#` unencoded, so it ends only at the last `@` (one in the path or
    // query hides more than needed, never less).
    let url = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) if rest[..at].contains(':') => {
                let user = rest[..at].split_once(':').map_or("", |(u, _)| u);
                format!("{scheme}://{user}:***{}", &rest[at..])
            }
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    };
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

impl Store {
    /// Open `url` after one direct connection has shown it works (see the
    /// module comment). With [`OpenMode::Existing`] a missing SQLite file is
    /// refused, never created. Does not migrate.
    pub async fn open(url: &str, pool: &PoolConfig, mode: OpenMode) -> Result<Self, OpenError> {
        let fail = |reason: String| OpenError {
            database: redacted(url),
            reason,
        };
        let backend =
            Backend::from_url(url).ok_or_else(|| fail(StoreError::UnsupportedUrl.to_string()))?;
        let url = match backend {
            Backend::Sqlite => {
                let path = probe_sqlite(url, mode).await.map_err(fail)?;
                // A file deleted after the probe must still not be recreated.
                match (mode, path) {
                    (OpenMode::Existing, Some(_)) if !url.contains("mode=") => {
                        format!("{url}{}mode=rw", if url.contains('?') { '&' } else { '?' })
                    }
                    _ => url.to_owned(),
                }
            }
            Backend::Postgres => {
                probe_postgres(url).await.map_err(fail)?;
                url.to_owned()
            }
        };
        Self::connect(&url, pool)
            .await
            .map_err(|e| fail(e.to_string()))
    }

    /// How many embedded migrations this database has not applied (all of
    /// them when it was never migrated). Reads only: admin commands check
    /// instead of migrating, so they never change the schema behind a
    /// running server's back, nor log the migrator's "already exists" notices.
    ///
    /// On one direct connection, closed before this returns, rather than the
    /// pool: a database found unmigrated is left as it was, with no SQLite
    /// `-wal` or `-shm` file from a pooled connection whose close the
    /// process may outrun on its way out.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        let migrator: &Migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let mut conn = sqlx::AnyConnection::connect_with(&self.pool.connect_options()).await?;
        let applied = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut conn)
            .await;
        conn.close().await?;
        let applied: Vec<i64> = match applied {
            Ok(versions) => versions,
            // No bookkeeping table: never migrated.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("42P01")
                    || e.message().contains("no such table") =>
            {
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        Ok(migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .count())
    }
}

/// Open the SQLite file once, as the pool will (WAL included), and close
/// it. `Ok(None)` for an in-memory database; else the file's path.
async fn probe_sqlite(url: &str, mode: OpenMode) -> Result<Option<PathBuf>, String> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let path = options.get_filename().to_path_buf();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Err(e) = std::fs::metadata(&dir) {
        return Err(format!("directory {}: {e}", dir.display()));
    }
    if !path.exists() && mode == OpenMode::Existing {
        return Err(format!(
            "no such file {} (only `latchkey serve` and `latchkey migrate` create a database; check the URL)",
            path.display()
        ));
    }
    let existed = path.exists();
    if existed {
        warn_if_readable_by_others(&path);
    } else if mode == OpenMode::Create {
        create_owner_only(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    let options = options.create_if_missing(mode == OpenMode::Create);
    let opened = async {
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        // The first statement that reads the file: "not a database" shows here.
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.close().await
    }
    .await;
    match opened {
        Ok(()) => Ok(Some(path)),
        Err(e) => Err(describe_sqlite_failure(&path, &dir, existed, &e)),
    }
}

/// The SQLite file holds the signing key and every password hash: create
/// it readable by its owner only (SQLite gives its `-wal` and `-shm` files
/// the database file's mode). Any local user who can read it can forge
/// tokens.
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // Another process created it meanwhile: SQLite opens that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

/// Warn when an existing database file is readable by group or others.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "the database file is readable by other users; it holds the signing key and password hashes: chmod 600 it"
        );
    }
}

/// One line for a failed SQLite open: SQLite reports "unable to open
/// database file" without the path or errno, so ask the OS the same
/// question (open the file or create it) to get its reason.
fn describe_sqlite_failure(path: &Path, dir: &Path, existed: bool, e: &sqlx::Error) -> String {
    let sqlite_says = match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    if let sqlx::Error::Database(db) = e {
        if db.code().as_deref() == Some("26") {
            return format!(
                "{} is not a SQLite database ({sqlite_says})",
                path.display()
            );
        }
    }
    if existed {
        if let Err(os) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            return format!("cannot open {}: {os}", path.display());
        }
    } else {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Err(os) => return format!("cannot create {}: {os}", path.display()),
            // We made it only to learn the reason; it is not ours to keep.
            Ok(_) => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    // The file is fine; WAL mode also needs its -wal and -shm files beside it.
    let wal = path.with_file_name(format!(
        "{}-wal-probe",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&wal)
    {
        Err(os) => format!(
            "{}: {sqlite_says}: directory {} (for the -wal and -shm files): {os}",
            path.display(),
            dir.display()
        ),
        Ok(_) => {
            let _ = std::fs::remove_file(&wal);
            format!("{}: {sqlite_says}", path.display())
        }
    }
}

/// Connect once, without the pool's retries, and close.
async fn probe_postgres(url: &str) -> Result<(), String> {
    let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let server = format!("{}:{}", options.get_host(), options.get_port());
    match sqlx::PgConnection::connect_with(&options).await {
        Ok(conn) => conn.close().await.map_err(|e| format!("{server}: {e}")),
        Err(sqlx::Error::Io(e)) => Err(format!("cannot connect to {server}: {e}")),
        Err(sqlx::Error::Database(e)) => Err(format!("{server}: {}", e.message())),
        Err(e) => Err(format!("{server}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_everything_but_the_password() {
        assert_eq!(
            redacted("postgres://app:s3cret@db.internal:5432/latchkey?sslmode=require"),
            "postgres://app:***@db.internal:5432/latchkey?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://app@db/latchkey?password=s3cret&x=1"),
            "postgres://app@db/latchkey?password=***&x=1"
        );
        assert_eq!(redacted("sqlite://latchkey.db"), "sqlite://latchkey.db");
        assert_eq!(redacted("postgres://u:pa/ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redacted("postgres://u:pa?ss#x@h/db?sslmode=require"),
            "postgres://u:***@h/db?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://a:p@ss@host/db"),
            "postgres://a:***@host/db"
        );
    }
}
