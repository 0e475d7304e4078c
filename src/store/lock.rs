//! One serving process per SQLite file. The design counts on a single
//! writer process (the write pool's one connection queues writers in order,
//! and the session cache sees every revocation made here); a second `serve`
//! on the same file would break both silently, so it is refused.

use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::PathBuf;
use std::str::FromStr as _;

use sqlx::sqlite::SqliteConnectOptions;

use super::{redacted, Backend, OpenError};

/// An exclusive `flock` on `<database file>.lock`, held while this value
/// lives (the OS releases it when the process ends, however it ends).
#[derive(Debug)]
pub struct ServeLock {
    _file: std::fs::File,
}

impl ServeLock {
    /// Lock the SQLite file `url` names for this process. `Ok(None)` for
    /// PostgreSQL and in-memory databases, which need no lock.
    pub fn acquire(url: &str) -> Result<Option<Self>, OpenError> {
        if Backend::from_url(url) != Some(Backend::Sqlite)
            || url.contains(":memory:")
            || url.contains("mode=memory")
        {
            return Ok(None);
        }
        let fail = |reason: String| OpenError {
            database: redacted(url),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
        let mut lock_path = PathBuf::from(options.get_filename()).into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = std::fs::metadata(dir) {
                return Err(fail(format!("directory {}: {e}", dir.display())));
            }
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| fail(format!("cannot create {}: {e}", lock_path.display())))?;
        // SAFETY: flock on a descriptor we own, kept open by `file`.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let os = std::io::Error::last_os_error();
            return Err(fail(if os.kind() == std::io::ErrorKind::WouldBlock {
                format!(
                    "another `latchkey serve` is using this file (it holds {}); one serving \
                     process per SQLite file: stop the other, use PostgreSQL for several \
                     instances, or set LATCHKEY_SQLITE_ALLOW_SHARED=true",
                    lock_path.display()
                )
            } else {
                format!("cannot lock {}: {os}", lock_path.display())
            }));
        }
        Ok(Some(Self { _file: file }))
    }
}

/// An exclusive `flock` on `<database file>.migrate.lock` while migrations
/// run on a SQLite file (sqlx's migrator takes no lock there), so stores
/// opening one fresh file at once — two processes, or two in one process —
/// take turns instead of both applying a migration.
#[derive(Debug)]
pub(super) struct MigrationLock {
    _file: std::fs::File,
}

impl MigrationLock {
    /// Wait for the migration lock of SQLite `url`; `Ok(None)` for an
    /// in-memory database.
    pub(super) async fn acquire(url: &str) -> Result<Option<Self>, super::StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Ok(None);
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| super::StoreError::Other(e.to_string()))?;
        let mut path = PathBuf::from(options.get_filename()).into_os_string();
        path.push(".migrate.lock");
        let path = PathBuf::from(path);
        let locked = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)?;
            // SAFETY: flock on a descriptor we own, kept open by `file`.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(file)
        })
        .await
        .map_err(|e| super::StoreError::Other(e.to_string()))?
        .map_err(|e| super::StoreError::Other(format!("migration lock: {e}")))?;
        Ok(Some(Self { _file: locked }))
    }
}
