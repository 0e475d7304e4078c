//! `latchkey import django`: copy a Django project's users (and SimpleJWT's
//! blacklist) into latchkey, keeping their ids, so the `user_id` of every
//! token Django issued stays true.
//!
//! Idempotent: each imported user's source row is fingerprinted, and a
//! re-run touches only users whose Django row changed since (a changed
//! password replaces the hash; an unchanged one keeps whatever latchkey holds,
//! which may be an upgraded hash). Passwords are never seen: hashes are
//! copied as they are, and verified at login. Everything is written in one
//! transaction.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::auth::identity::{Email, Name, NAME_MAX_LENGTH};
use crate::auth::ids::hex;
use crate::auth::now;
use crate::auth::password::StoredHash;
use crate::store::import::{
    DjangoSource, DjangoUserRow, ImportDigests, ImportTransaction, ImportedUser, SqlIdentifier,
    UserTable,
};
use crate::store::{Store, StoreError};

/// Where to read from: the database and the names of the user table and its
/// columns. `None` means "detect".
#[derive(Debug, Clone)]
pub struct DjangoImportOptions {
    /// The Django database URL (`sqlite://PATH` or `postgres://...`).
    pub from: String,
    /// The user table; default `accounts_user` if present, else `auth_user`.
    pub user_table: Option<String>,
    /// The name column; default `name` if present, else `username`.
    pub name_column: Option<String>,
    /// Primary key column.
    pub id_column: String,
    /// Email column.
    pub email_column: String,
    /// Password hash column.
    pub password_column: String,
    /// Active flag column.
    pub active_column: String,
    /// Join date column.
    pub joined_column: String,
}

/// Why the import stopped (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// latchkey's database failed.
    #[error("latchkey database: {0}")]
    Store(#[from] StoreError),
    /// The Django database could not be opened or read.
    #[error("Django database: {0}")]
    Source(StoreError),
    /// A table or column option is not a plain SQL identifier.
    #[error("{0:?} is not a plain table or column name")]
    BadIdentifier(String),
    /// No user table was named and none of the usual ones exists.
    #[error(
        "no user table found (looked for accounts_user and auth_user); name it with --user-table"
    )]
    NoUserTable,
    /// The named user table does not exist.
    #[error("the Django database has no table {0}")]
    MissingTable(String),
    /// A column of the user table is missing.
    #[error("table {table} has no column {column}; name it with --{flag}")]
    MissingColumn {
        /// The table.
        table: String,
        /// The missing column.
        column: String,
        /// The option that names it.
        flag: &'static str,
    },
}

/// What an import did, for the operator. Holds ids, names and counts, never
/// a password hash.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// The source database, without credentials.
    pub source: String,
    /// The user table read.
    pub table: String,
    /// Its name column.
    pub name_column: String,
    /// Users created.
    pub imported: usize,
    /// Users brought up to date with a changed Django row.
    pub updated: usize,
    /// Users already imported and unchanged in Django.
    pub unchanged: usize,
    /// Users not imported, by Django id, with the reason.
    pub skipped: Vec<(i64, String)>,
    /// Users whose name another user already had: id, Django name, latchkey name.
    pub renamed: Vec<(i64, String, String)>,
    /// Django users per password hash algorithm.
    pub hash_kinds: BTreeMap<String, usize>,
    /// Users whose hash latchkey cannot verify, by algorithm.
    pub unsupported: BTreeMap<String, Vec<i64>>,
    /// The blacklist, when SimpleJWT's `token_blacklist` tables exist.
    pub blacklist: Option<BlacklistReport>,
    /// Users whose address django-allauth had verified (its
    /// `account_emailaddress.verified`), now verified here too; `None`
    /// when the table is absent (every imported address stays unverified).
    pub verified: Option<usize>,
}

/// What became of SimpleJWT's blacklisted refresh tokens.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlacklistReport {
    /// Newly recorded.
    pub recorded: usize,
    /// Recorded by an earlier run.
    pub known: usize,
    /// Already expired, so refused anyway: left out.
    pub expired: usize,
    /// Rows without a `jti`: nothing to record, left out. (Rows without a
    /// readable expiry are recorded as never expiring.)
    pub incomplete: usize,
}

impl ImportReport {
    /// Whether the run changed nothing in latchkey's database.
    pub fn changed_nothing(&self) -> bool {
        self.imported == 0 && self.updated == 0 && self.blacklist.is_none_or(|b| b.recorded == 0)
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Django import from {} (table {}, name column {}):",
            self.source, self.table, self.name_column
        )?;
        writeln!(
            f,
            "  users: {} imported, {} updated, {} unchanged, {} skipped",
            self.imported,
            self.updated,
            self.unchanged,
            self.skipped.len()
        )?;
        let kinds: Vec<String> = self
            .hash_kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if !kinds.is_empty() {
            writeln!(f, "  password hashes: {}", kinds.join(", "))?;
        }
        for (algorithm, ids) in &self.unsupported {
            writeln!(
                f,
                "  unsupported password hash {algorithm} (these users cannot log in until their password is set anew): users {}",
                join_ids(ids)
            )?;
        }
        for (id, from, to) in &self.renamed {
            writeln!(
                f,
                "  renamed user {id}: {from:?} -> {to:?} (the name was taken)"
            )?;
        }
        for (id, reason) in &self.skipped {
            writeln!(f, "  skipped user {id}: {reason}")?;
        }
        match &self.blacklist {
            Some(b) => writeln!(
                f,
                "  blacklisted refresh tokens: {} recorded, {} already known, {} expired (ignored), \
                 {} without a jti (skipped)",
                b.recorded, b.known, b.expired, b.incomplete
            )?,
            None => writeln!(
                f,
                "  blacklisted refresh tokens: none (no token_blacklist tables)"
            )?,
        }
        match self.verified {
            Some(n) => writeln!(f, "  verified addresses (django-allauth): {n}")?,
            None => writeln!(
                f,
                "  verified addresses: none known (no account_emailaddress table); imported addresses are unverified"
            )?,
        }
        if self.changed_nothing() {
            writeln!(f, "  nothing changed")?;
        }
        Ok(())
    }
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn identifier(raw: &str) -> Result<SqlIdentifier, ImportError> {
    SqlIdentifier::parse(raw).ok_or_else(|| ImportError::BadIdentifier(raw.to_owned()))
}

/// The URL without user, password or query (which may hold a password).
pub fn without_credentials(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut digest = Sha256::new();
    for part in parts {
        // Length-prefixed, so no two different rows fingerprint alike.
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    hex(&digest.finalize())
}

fn digests(row: &DjangoUserRow) -> ImportDigests {
    ImportDigests {
        profile: sha256_hex(&[
            row.email.as_bytes(),
            row.name.as_bytes(),
            &[u8::from(row.is_active)],
            &row.date_joined.to_be_bytes(),
        ]),
        password: sha256_hex(&[row.password_hash.as_bytes()]),
    }
}

/// Read the Django database named in `options` and import it into `store`.
pub async fn import_django(
    store: &Store,
    options: &DjangoImportOptions,
) -> Result<ImportReport, ImportError> {
    let source = DjangoSource::connect(&options.from)
        .await
        .map_err(ImportError::Source)?;
    let result = import_from(store, &source, options).await;
    source.close().await;
    result
}

async fn import_from(
    store: &Store,
    source: &DjangoSource,
    options: &DjangoImportOptions,
) -> Result<ImportReport, ImportError> {
    let layout = user_table(source, options).await?;
    let rows = source.users(&layout).await.map_err(ImportError::Source)?;
    let blacklisted = source
        .blacklisted_tokens()
        .await
        .map_err(ImportError::Source)?;

    let mut report = ImportReport {
        source: without_credentials(&options.from),
        table: layout.table.as_str().to_owned(),
        name_column: layout.name.as_str().to_owned(),
        ..ImportReport::default()
    };
    let now = now();
    let mut tx = store.begin_import().await?;
    for row in &rows {
        import_user(&mut tx, row, now, &mut report).await?;
    }
    // django-allauth's verification state, for the addresses the users
    // still have; a verification made in latchkey is never undone.
    if let Some(verified) = source
        .verified_emails()
        .await
        .map_err(ImportError::Source)?
    {
        let mut marked = 0;
        for (id, email) in &verified {
            if let Ok(email) = Email::parse(email) {
                if tx.mark_verified(*id, &email.lookup_key()).await? {
                    marked += 1;
                }
            }
        }
        report.verified = Some(marked);
    }
    if let Some(tokens) = blacklisted {
        let mut b = BlacklistReport::default();
        for token in &tokens {
            let Some(jti) = token.jti.as_deref() else {
                b.incomplete += 1;
                continue;
            };
            // Revoked in Django, with no readable expiry: refused for good
            // rather than let through (the token's own `exp` is unknown).
            let expires_at = token.expires_at.unwrap_or(NEVER);
            if expires_at <= now {
                b.expired += 1;
            } else if tx.record_blacklisted(jti, expires_at, now).await? {
                b.recorded += 1;
            } else {
                b.known += 1;
            }
        }
        report.blacklist = Some(b);
    }
    tx.commit().await?;
    Ok(report)
}

/// The user table and its columns: as named, or detected.
async fn user_table(
    source: &DjangoSource,
    options: &DjangoImportOptions,
) -> Result<UserTable, ImportError> {
    let src = ImportError::Source;
    let table = match &options.user_table {
        Some(named) => {
            let table = identifier(named)?;
            if !source.has_table(&table).await.map_err(src)? {
                return Err(ImportError::MissingTable(named.clone()));
            }
            table
        }
        None => {
            let mut found = None;
            for candidate in ["accounts_user", "auth_user"] {
                let table = identifier(candidate)?;
                if source.has_table(&table).await.map_err(src)? {
                    found = Some(table);
                    break;
                }
            }
            found.ok_or(ImportError::NoUserTable)?
        }
    };
    let name = match &options.name_column {
        Some(named) => identifier(named)?,
        None => {
            let name = identifier("name")?;
            if source.has_column(&table, &name).await.map_err(src)? {
                name
            } else {
                identifier("username")?
            }
        }
    };
    let layout = UserTable {
        id: identifier(&options.id_column)?,
        email: identifier(&options.email_column)?,
        name,
        password: identifier(&options.password_column)?,
        is_active: identifier(&options.active_column)?,
        date_joined: identifier(&options.joined_column)?,
        table,
    };
    for (column, flag) in [
        (&layout.id, "id-column"),
        (&layout.email, "email-column"),
        (&layout.name, "name-column"),
        (&layout.password, "password-column"),
        (&layout.is_active, "active-column"),
        (&layout.date_joined, "joined-column"),
    ] {
        if !source
            .has_column(&layout.table, column)
            .await
            .map_err(src)?
        {
            return Err(ImportError::MissingColumn {
                table: layout.table.as_str().to_owned(),
                column: column.as_str().to_owned(),
                flag,
            });
        }
    }
    Ok(layout)
}

/// The expiry recorded for a blacklisted token whose expiry Django did not
/// keep: the year 9999, past any token's.
const NEVER: i64 = 253_402_300_799;

/// The largest user id imported: 2^53 - 1, JavaScript's largest exact
/// integer (an SPA reads `user_id` as a number), and far enough below the
/// id column's maximum that registrations after the import get ids too.
pub const MAX_IMPORTED_ID: i64 = (1 << 53) - 1;

async fn import_user(
    tx: &mut ImportTransaction,
    row: &DjangoUserRow,
    now: i64,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    if !(1..=MAX_IMPORTED_ID).contains(&row.id) {
        report.skipped.push((
            row.id,
            format!(
                "its id is outside 1..={MAX_IMPORTED_ID} (JavaScript clients read ids as doubles)"
            ),
        ));
        return Ok(());
    }
    let Ok(email) = Email::parse(&row.email) else {
        report
            .skipped
            .push((row.id, "no valid email address".into()));
        return Ok(());
    };
    let Ok(name) = Name::parse(&row.name) else {
        report.skipped.push((row.id, "no valid name".into()));
        return Ok(());
    };
    if let Some(why) = StoredHash::parse(&row.password_hash).cost_out_of_bounds() {
        report
            .skipped
            .push((row.id, format!("its password hash is refused: {why}")));
        return Ok(());
    }
    let digests = digests(row);
    let existing = tx.existing_user(row.id).await?;
    let password_changed = match &existing {
        None => true,
        Some(existing) => match &existing.digests {
            None => {
                report.skipped.push((
                    row.id,
                    "latchkey already has a user of its own with this id".into(),
                ));
                return Ok(());
            }
            Some(previous) if *previous == digests => {
                report.unchanged += 1;
                count_hash(report, row);
                return Ok(());
            }
            Some(previous) => previous.password != digests.password,
        },
    };

    let email_key = email.lookup_key();
    if let Some(owner) = tx.id_by_email_key(&email_key).await? {
        if owner != row.id {
            report.skipped.push((
                row.id,
                format!("its email address already belongs to latchkey user {owner}"),
            ));
            return Ok(());
        }
    }
    let Some(shown) = free_name(tx, &name, row.id).await? else {
        report.skipped.push((row.id, "its name is taken".into()));
        return Ok(());
    };
    let kept_name = existing.as_ref().map(|e| e.name.as_str());
    if shown.as_str() != name.as_str() && kept_name != Some(shown.as_str()) {
        report
            .renamed
            .push((row.id, name.as_str().to_owned(), shown.as_str().to_owned()));
    }

    let user = ImportedUser {
        id: row.id,
        email: email.as_str(),
        email_key: &email_key,
        name: shown.as_str(),
        name_key: &shown.lookup_key(),
        is_active: row.is_active,
        date_joined: row.date_joined,
        password_hash: password_changed.then_some(row.password_hash.as_str()),
        digests: &digests,
        now,
    };
    if existing.is_some() {
        tx.update_user(&user).await?;
        report.updated += 1;
    } else {
        tx.insert_user(&user).await?;
        report.imported += 1;
    }
    count_hash(report, row);
    Ok(())
}

/// Count the hash kind of a user latchkey now holds (skipped users are
/// reported as skipped, not as users who cannot log in).
fn count_hash(report: &mut ImportReport, row: &DjangoUserRow) {
    let kind = StoredHash::parse(&row.password_hash);
    *report.hash_kinds.entry(kind.name().to_owned()).or_default() += 1;
    if let StoredHash::Unsupported(algorithm) = kind {
        report
            .unsupported
            .entry(algorithm)
            .or_default()
            .push(row.id);
    }
}

/// `name` if no other user holds it (latchkey names are unique,
/// case-insensitively; Django's need not be), else `name (id)`.
async fn free_name(
    tx: &mut ImportTransaction,
    name: &Name,
    id: i64,
) -> Result<Option<Name>, ImportError> {
    let suffix = format!(" ({id})");
    let room = NAME_MAX_LENGTH.saturating_sub(suffix.chars().count());
    let base: String = name.as_str().chars().take(room).collect();
    let disambiguated = Name::parse(&format!("{}{suffix}", base.trim_end())).ok();
    for candidate in std::iter::once(name.clone()).chain(disambiguated) {
        match tx.id_by_name_key(&candidate.lookup_key()).await? {
            Some(owner) if owner != id => continue,
            _ => return Ok(Some(candidate)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_shown_in_reports_lose_their_credentials() {
        assert_eq!(
            without_credentials("postgres://django:s3cret@db.internal:5432/app?password=x"),
            "postgres://db.internal:5432/app"
        );
        assert_eq!(
            without_credentials("sqlite:///srv/app/db.sqlite3"),
            "sqlite:///srv/app/db.sqlite3"
        );
        assert_eq!(
            without_credentials("postgres://db/app"),
            "postgres://db/app"
        );
    }

    #[test]
    fn fingerprints_separate_their_fields() {
        assert_ne!(sha256_hex(&[b"ab", b"c"]), sha256_hex(&[b"a", b"bc"]));
    }
}
