//! One typed configuration, read once from flags, `LATCHKEY_*` environment
//! variables and defaults, then passed down. Nothing else reads the environment.

use clap::Args;

use crate::auth::legacy::tokens::DjangoKey;
use crate::auth::signing::Algorithm;
use crate::auth::SecretKey;
use crate::telemetry::LogFormat;

mod django_import;
mod load;
mod same_site;
mod validate;

pub use django_import::DjangoImportArgs;
pub use same_site::SameSite;
pub use validate::InvalidSetting;

/// The environment variable holding the signing key.
pub const SECRET_KEY_ENV: &str = "LATCHKEY_SECRET_KEY";

/// The environment variable holding the Django `SECRET_KEY` (or SimpleJWT's
/// `SIGNING_KEY`) during a migration from Django.
pub const LEGACY_DJANGO_KEY_ENV: &str = "LATCHKEY_LEGACY_DJANGO_KEY";

/// Every option of `latchkey serve` (and the subset the other commands use).
///
/// Each flag has an environment equivalent; `docs/configuration.md` is the
/// reference table and must list every field here.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address (or host name) and port to listen on, e.g. `127.0.0.1:8000`
    /// or `localhost:8000` (every address the name resolves to).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_BIND",
        default_value = "127.0.0.1:8000"
    )]
    pub bind: String,

    /// Database URL: `sqlite://PATH` (embedded, the default) or `postgres://...`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DATABASE_URL",
        default_value = "sqlite://latchkey.db"
    )]
    pub database_url: String,

    /// Maximum number of pooled database connections.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10
    )]
    pub database_max_connections: u32,

    /// Seconds to wait for a pooled database connection before answering 503.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_DATABASE_ACQUIRE_TIMEOUT_SECONDS",
        default_value_t = 2
    )]
    pub database_acquire_timeout_seconds: u64,

    /// Milliseconds a live-session lookup may be reused by this instance.
    /// Revocations made here are seen at once; revocations made by another
    /// instance within this time. 0: look the session up on every request.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_SESSION_CACHE_MILLIS",
        default_value_t = 500
    )]
    pub session_cache_millis: u64,

    /// Signing key for tokens (at least 32 bytes), read from the environment
    /// variable `LATCHKEY_SECRET_KEY` only, never from a flag, so it cannot
    /// show in the process list. When unset, a random key is generated once
    /// and kept in the database, so restarts keep tokens valid.
    #[arg(skip)]
    pub secret_key: Option<SecretKey>,

    /// The Django project's `SECRET_KEY` (SimpleJWT's signing key), read from
    /// `LATCHKEY_LEGACY_DJANGO_KEY` only. Set during a migration from Django:
    /// tokens SimpleJWT issued are then accepted (access tokens until they
    /// expire, refresh tokens once). Unset: no legacy token is accepted.
    #[arg(skip)]
    pub legacy_django_key: Option<DjangoKey>,

    /// Comma-separated origins allowed to call the API with credentials (CORS)
    /// and to send unsafe requests (CSRF Origin check), each
    /// `scheme://host[:port]` as browsers send it; `*` is refused.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173,http://127.0.0.1:5173"
    )]
    pub allowed_origins: Vec<String>,

    /// Set when clients reach latchkey over HTTPS (directly or through a
    /// TLS-terminating proxy): cookies get `Secure`, the own origin is `https://`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_HTTPS",
        default_value_t = false
    )]
    pub https: bool,

    /// Lifetime of access tokens, in seconds (default one day).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_ACCESS_TOKEN_LIFETIME_SECONDS",
        default_value_t = 86_400
    )]
    pub access_token_lifetime_seconds: u64,

    /// Lifetime of refresh tokens and sessions, in seconds (default seven days).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_REFRESH_TOKEN_LIFETIME_SECONDS",
        default_value_t = 604_800
    )]
    pub refresh_token_lifetime_seconds: u64,

    /// JWS algorithm tokens are signed with: `HS256` (the secret key, as
    /// SimpleJWT; the default), or `EdDSA`, `ES256`, `RS256` (a key pair kept
    /// in the database; its public half at `/.well-known/jwks.json`).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_JWT_ALGORITHM",
        default_value = "HS256"
    )]
    pub jwt_algorithm: Algorithm,

    /// `iss` claim added to every token, and required of every token
    /// verified (RFC 8725). Unset: no `iss`, and a token carrying one is refused.
    #[arg(long, hide_env_values = true, env = "LATCHKEY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// `aud` claim added to every token, and required of every token
    /// verified. Unset: no `aud`, and a token carrying one is refused.
    #[arg(long, hide_env_values = true, env = "LATCHKEY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The WebAuthn relying party id passkeys are bound to: the site's
    /// domain (`example.com`, or a parent of the front-end's host). A
    /// passkey registered under one rp id never works under another.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_WEBAUTHN_RP_ID",
        default_value = "localhost"
    )]
    pub webauthn_rp_id: String,

    /// Comma-separated page origins whose passkey ceremonies are accepted,
    /// each on the rp id (`https://` ones only with `LATCHKEY_HTTPS`).
    /// Unset: the allowed origins and the app URL's origin that are on the
    /// rp id (and `https://` with `LATCHKEY_HTTPS`); none of them: passkeys off.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_WEBAUTHN_ORIGINS",
        value_delimiter = ','
    )]
    pub webauthn_origins: Vec<String>,

    /// Send the refresh token only in an `HttpOnly` cookie
    /// (`latchkey_refresh`, `Path=/auth/`), never in a JSON body; refresh
    /// and logout read it from there.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_REFRESH_COOKIE",
        default_value_t = false
    )]
    pub refresh_cookie: bool,

    /// `SameSite` of the refresh cookie: `Lax` (default), `Strict`, or
    /// `None` (front-end on another site; needs `LATCHKEY_HTTPS`).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_REFRESH_COOKIE_SAMESITE",
        default_value = "Lax"
    )]
    pub refresh_cookie_samesite: SameSite,

    /// Seconds after a rotation during which the refresh token just rotated may
    /// be presented once more without counting as reuse (0 turns it off).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_REFRESH_REUSE_GRACE_SECONDS",
        default_value_t = 10
    )]
    pub refresh_reuse_grace_seconds: u64,

    /// Clock skew tolerated between instances, in seconds: a token stays
    /// valid this long past its `exp`, one whose `iat` is further ahead is
    /// refused, and CSRF token ages get the same slack.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_CLOCK_LEEWAY_SECONDS",
        default_value_t = 5
    )]
    pub clock_leeway_seconds: u64,

    /// Age after which a CSRF token is refused, in seconds (default one year).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_CSRF_TOKEN_MAX_AGE_SECONDS",
        default_value_t = 31_449_600
    )]
    pub csrf_token_max_age_seconds: u64,

    /// Failed logins allowed per account within one throttle window.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 10
    )]
    pub login_failures_per_account: u32,

    /// Failed logins allowed per client address within one throttle window.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 100
    )]
    pub login_failures_per_address: u32,

    /// Registrations (attempts, valid or not) allowed per client address
    /// within one throttle window.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_REGISTRATIONS_PER_ADDRESS",
        default_value_t = 10
    )]
    pub registrations_per_address: u32,

    /// Passkey login challenges (`POST /auth/passkeys/login/options`, which
    /// needs no account and stores one row each) one client address may
    /// hold at once, unanswered and unexpired.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_PASSKEY_CHALLENGES_PER_ADDRESS",
        default_value_t = 100
    )]
    pub passkey_challenges_per_address: u32,

    /// Length of the login (and registration) throttle window, in seconds.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_LOGIN_THROTTLE_WINDOW_SECONDS",
        default_value_t = 900
    )]
    pub login_throttle_window_seconds: u64,

    /// Number of reverse proxies in front of latchkey. With N > 0 the client
    /// address is the N-th entry from the right of `X-Forwarded-For`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_TRUSTED_PROXY_HOPS",
        default_value_t = 0
    )]
    pub trusted_proxy_hops: usize,

    /// Seconds a client has to send a request's head (line and headers);
    /// also how long a kept-alive connection may wait for its next request.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub header_read_timeout_seconds: u64,

    /// Seconds a client has to send a request's body once its head arrived.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_BODY_READ_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub body_read_timeout_seconds: u64,

    /// Seconds a connection may stay with no byte read or written before it
    /// is closed (after the response in progress, if any).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_IDLE_TIMEOUT_SECONDS",
        default_value_t = 60
    )]
    pub idle_timeout_seconds: u64,

    /// Client connections served at once; beyond it new ones wait in the
    /// listen queue. Kept below the open-files limit, which latchkey raises
    /// to its hard maximum at start-up.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Client connections from one address at once; beyond it a new one is
    /// closed at once. Not applied with `LATCHKEY_TRUSTED_PROXY_HOPS` > 0
    /// (every connection then comes from a proxy). 0: no limit.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT;
    /// then the connections still open are closed and the process exits.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_SHUTDOWN_DEADLINE_SECONDS",
        default_value_t = 30
    )]
    pub shutdown_deadline_seconds: u64,

    /// Largest accepted request body, in bytes.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAX_BODY_BYTES",
        default_value_t = 65_536
    )]
    pub max_body_bytes: usize,

    /// Longest accepted password, in characters.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_PASSWORD_MAX_LENGTH",
        default_value_t = 256
    )]
    pub password_max_length: usize,

    /// Password hashes computed at once (default: the number of CPU cores).
    #[arg(long, hide_env_values = true, env = "LATCHKEY_HASH_WORKERS")]
    pub hash_workers: Option<usize>,

    /// Password hashes allowed to wait for a worker; beyond it, 503 at once.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_HASH_QUEUE",
        default_value_t = 32
    )]
    pub hash_queue: usize,

    /// Argon2id memory cost in KiB (with the iterations, never below one of
    /// OWASP's equal-strength costs: m=47104/t=1, 19456/2, 12288/3, 9216/4,
    /// 7168/5).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_ARGON2_MEMORY_KIB",
        default_value_t = 7_168
    )]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations (raised to what OWASP's floor asks at the memory cost).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_ARGON2_ITERATIONS",
        default_value_t = 5
    )]
    pub argon2_iterations: u32,

    /// Serve `/metrics` on this address instead of the main one (e.g.
    /// `127.0.0.1:9100`, so metrics need not be public). Unset: on the main address.
    #[arg(long, hide_env_values = true, env = "LATCHKEY_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    /// Log format: `text` (human-readable) or `json`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `latchkey=debug`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_LOG",
        default_value = "info"
    )]
    pub log: String,

    /// Let `serve` start on a SQLite file another `serve` process is already
    /// using. Off: the second one refuses to start, since the design assumes
    /// one writer process per SQLite file (several instances: PostgreSQL).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_SQLITE_ALLOW_SHARED",
        default_value_t = false
    )]
    pub sqlite_allow_shared: bool,

    /// SMTP server for outgoing mail: `smtp://[user:pass@]host[:port]`
    /// (STARTTLS required unless the host is a loopback address; port 587)
    /// or `smtps://...` (implicit TLS; port 465). Unset: messages are
    /// written as `.eml` files to `LATCHKEY_MAIL_DIR`.
    #[arg(long, hide_env_values = true, env = "LATCHKEY_SMTP_URL")]
    pub smtp_url: Option<String>,

    /// Folder for `.eml` files (mode 0600) when no SMTP URL is set.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_DIR",
        default_value = "./latchkey-mail"
    )]
    pub mail_dir: std::path::PathBuf,

    /// The `From` of every message.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_FROM",
        default_value = "latchkey <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// The application's name, in subjects and bodies.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_APP_NAME",
        default_value = "latchkey"
    )]
    pub app_name: String,

    /// The front-end's base URL; mailed links are this followed by
    /// `/verify-email?token=T`, `/reset-password?token=T`,
    /// `/confirm-email-change?token=T`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_APP_URL",
        default_value = "http://localhost:3000"
    )]
    pub app_url: String,

    /// The verification link, whole, with `{token}` where the token goes
    /// (replaces `LATCHKEY_APP_URL` + `/verify-email?token=T`).
    #[arg(long, hide_env_values = true, env = "LATCHKEY_VERIFY_EMAIL_URL")]
    pub verify_email_url: Option<String>,

    /// The password reset link, whole, with `{token}`.
    #[arg(long, hide_env_values = true, env = "LATCHKEY_RESET_PASSWORD_URL")]
    pub reset_password_url: Option<String>,

    /// The email change confirmation link, whole, with `{token}`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_CONFIRM_EMAIL_CHANGE_URL"
    )]
    pub confirm_email_change_url: Option<String>,

    /// Lifetime of password reset (and email change) links, in seconds.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_PASSWORD_RESET_TOKEN_LIFETIME_SECONDS",
        default_value_t = 3_600
    )]
    pub password_reset_token_lifetime_seconds: u64,

    /// Lifetime of email verification links, in seconds (default three days).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_EMAIL_VERIFICATION_TOKEN_LIFETIME_SECONDS",
        default_value_t = 259_200
    )]
    pub email_verification_token_lifetime_seconds: u64,

    /// Refuse logins (403 `email_not_verified`) of accounts whose address is
    /// not verified, and give no tokens at registration.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_REQUIRE_VERIFIED_EMAIL",
        default_value_t = false
    )]
    pub require_verified_email: bool,

    /// Folder of templates replacing the built-in ones, file by file
    /// (`password_reset.subject`, `password_reset.txt`, `password_reset.html`, ...).
    #[arg(long, hide_env_values = true, env = "LATCHKEY_MAIL_TEMPLATE_DIR")]
    pub mail_template_dir: Option<std::path::PathBuf>,

    /// Reset requests per email address (and verification resends per
    /// user) per mail throttle window; beyond it the answer is the same
    /// and nothing is sent (resend: 429).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_REQUESTS_PER_EMAIL",
        default_value_t = 3
    )]
    pub mail_requests_per_email: u32,

    /// Reset requests per client address per mail throttle window; beyond
    /// it, 429 (counted alike for known and unknown addresses).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_REQUESTS_PER_ADDRESS",
        default_value_t = 20
    )]
    pub mail_requests_per_address: u32,

    /// The window of both mail request limits, in seconds.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_THROTTLE_WINDOW_SECONDS",
        default_value_t = 3_600
    )]
    pub mail_throttle_window_seconds: u64,

    /// Wait after a message's first failed delivery, in seconds; it doubles
    /// with each failure up to `LATCHKEY_MAIL_RETRY_MAX_SECONDS`.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_RETRY_MIN_SECONDS",
        default_value_t = 30
    )]
    pub mail_retry_min_seconds: u64,

    /// The longest wait between two delivery attempts of a message, in seconds.
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_RETRY_MAX_SECONDS",
        default_value_t = 3_600
    )]
    pub mail_retry_max_seconds: u64,

    /// How long a message is retried (since it was queued) before a failure
    /// is final, in seconds (default two days; at least one).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_RETRY_FOR_SECONDS",
        default_value_t = 172_800
    )]
    pub mail_retry_for_seconds: u64,

    /// How often the sender looks for mail other instances queued and
    /// retries coming due, in milliseconds (mail queued here is sent at once).
    #[arg(
        long,
        hide_env_values = true,
        env = "LATCHKEY_MAIL_POLL_MILLIS",
        default_value_t = 1_000
    )]
    pub mail_poll_millis: u64,
}
