//! The options of `latchkey import django`: where the Django users are and
//! which columns hold what.

use clap::Args;

use crate::auth::legacy::import::DjangoImportOptions;

/// `latchkey import django`: where the Django users are.
#[derive(Debug, Clone, Args)]
pub struct DjangoImportArgs {
    /// The Django database: `sqlite://PATH` or `postgres://user@host:port/db`
    /// (read only, never written).
    #[arg(
        long = "from",
        hide_env_values = true,
        env = "LATCHKEY_DJANGO_DATABASE_URL"
    )]
    pub from: String,

    /// The user model's table. Default: `accounts_user` if it exists (a
    /// custom model like the seed's), else Django's stock `auth_user`.
    #[arg(long, hide_env_values = true, env = "LATCHKEY_DJANGO_USER_TABLE")]
    pub user_table: Option<String>,

    /// The column imported as the name. Default: `name` if the table has it,
    /// else `username`.
    #[arg(long, hide_env_values = true, env = "LATCHKEY_DJANGO_NAME_COLUMN")]
    pub name_column: Option<String>,

    /// The primary key column (kept as the latchkey user id).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DJANGO_ID_COLUMN",
        default_value = "id"
    )]
    pub id_column: String,

    /// The email column.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DJANGO_EMAIL_COLUMN",
        default_value = "email"
    )]
    pub email_column: String,

    /// The password hash column.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DJANGO_PASSWORD_COLUMN",
        default_value = "password"
    )]
    pub password_column: String,

    /// The active flag column.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DJANGO_ACTIVE_COLUMN",
        default_value = "is_active"
    )]
    pub active_column: String,

    /// The join date column.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DJANGO_JOINED_COLUMN",
        default_value = "date_joined"
    )]
    pub joined_column: String,
}

impl DjangoImportArgs {
    /// The options the importer takes.
    pub fn options(&self) -> DjangoImportOptions {
        DjangoImportOptions {
            from: self.from.clone(),
            user_table: self.user_table.clone(),
            name_column: self.name_column.clone(),
            id_column: self.id_column.clone(),
            email_column: self.email_column.clone(),
            password_column: self.password_column.clone(),
            active_column: self.active_column.clone(),
            joined_column: self.joined_column.clone(),
        }
    }
}
