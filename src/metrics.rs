//! Prometheus metrics: what the server counts, and their text exposition.
//!
//! Counters and histograms are updated where things happen (the HTTP edge,
//! the domain); gauges of current state (hash queue, database pool) are
//! sampled when `/metrics` is scraped. Labels are bounded: routes are the
//! router's templates (`/auth/sessions/{id}`), never raw paths, and no label
//! or value ever holds a user, a token or an address.

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Latency buckets, in seconds: sub-millisecond reads to multi-second hashes.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Credentials accepted, session started.
    Success,
    /// Wrong password, unknown or inactive account.
    InvalidCredentials,
    /// Refused by the attempt throttle.
    Throttled,
    /// Refused because the hash queue was full.
    Overloaded,
    /// Password right; the second factor is asked for (an `mfa_token`).
    MfaRequired,
}

impl LoginOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Throttled => "throttled",
            Self::Overloaded => "overloaded",
            Self::MfaRequired => "mfa_required",
        }
    }
}

/// Something that happened to a second factor (never a secret or a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaEvent {
    /// A TOTP secret was issued, pending confirmation.
    EnrolmentStarted,
    /// Enrolment confirmed: login needs a second factor from now on.
    Enrolled,
    /// The second factor was removed by its user.
    Disabled,
    /// The second factor was removed by an operator (`user mfa-reset`).
    Reset,
    /// Recovery codes were replaced by new ones.
    RecoveryCodesRegenerated,
    /// A login was asked for its second factor.
    Challenge,
    /// A second step succeeded with a TOTP code.
    TotpAccepted,
    /// A second step succeeded with a recovery code.
    RecoveryCodeUsed,
    /// A wrong, replayed or used code.
    Failure,
}

impl MfaEvent {
    fn label(self) -> &'static str {
        match self {
            Self::EnrolmentStarted => "enrolment_started",
            Self::Enrolled => "enrolled",
            Self::Disabled => "disabled",
            Self::Reset => "reset",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::Challenge => "challenge",
            Self::TotpAccepted => "totp_accepted",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::Failure => "failure",
        }
    }
}

/// How a refresh-token presentation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Rotated into a new pair.
    Rotated,
    /// An already-rotated token forgiven inside the reuse grace window.
    Grace,
    /// Refused (expired, revoked, invalid, reused).
    Refused,
}

impl RefreshOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Grace => "grace",
            Self::Refused => "refused",
        }
    }
}

/// How a mail delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// Delivered.
    Sent,
    /// Failed; another attempt is scheduled.
    Retried,
    /// Failed for good.
    Failed,
}

/// The outbox's counters and gauge.
#[derive(Clone)]
struct MailMetrics {
    queued: IntCounter,
    sent: IntCounter,
    retried: IntCounter,
    failed: IntCounter,
    oldest_queued_age: IntGauge,
}

/// Why sessions were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// `POST /auth/logout`.
    Logout,
    /// `POST /auth/logout/all`.
    LogoutAll,
    /// `DELETE /auth/sessions/{id}`.
    SessionEnded,
    /// A password change ended the user's other sessions.
    PasswordChanged,
    /// A rotated refresh token was presented again.
    Reuse,
    /// Enabling or disabling the second factor ended the user's other sessions.
    MfaChanged,
    /// A password reset ended every session of the user.
    PasswordReset,
    /// The user deleted their account.
    AccountDeleted,
}

impl Revocation {
    fn label(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionEnded => "session_ended",
            Self::PasswordChanged => "password_changed",
            Self::Reuse => "reuse",
            Self::MfaChanged => "mfa_changed",
            Self::PasswordReset => "password_reset",
            Self::AccountDeleted => "account_deleted",
        }
    }
}

/// Current state sampled at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    /// Password-hash jobs waiting for a worker.
    pub hash_queue_depth: usize,
    /// Open database connections.
    pub pool_size: u32,
    /// Idle database connections.
    pub pool_idle: usize,
    /// The pool's maximum.
    pub pool_max: u32,
}

/// Every metric latchkey exports, in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    logins: IntCounterVec,
    registrations: IntCounter,
    refreshes: IntCounterVec,
    reuse_detections: IntCounter,
    revocations: IntCounterVec,
    mfa_events: IntCounterVec,
    hash_queue_depth: IntGauge,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    mail: MailMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A metric could not be registered (a bug: names are fixed).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// A registry with every metric, plus the password hasher's wait histogram.
    pub fn new(hash_wait: prometheus::Histogram) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "latchkey_http_request_duration_seconds",
                "HTTP request latency by route, method and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method", "status"],
        )?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(hash_wait))?;
        Ok(Self {
            http_requests: counter_vec(
                "latchkey_http_requests_total",
                "HTTP requests by route, method and status.",
                &["route", "method", "status"],
            )?,
            http_duration,
            logins: counter_vec(
                "latchkey_logins_total",
                "Login attempts by outcome.",
                &["outcome"],
            )?,
            registrations: counter("latchkey_registrations_total", "Accounts registered.")?,
            refreshes: counter_vec(
                "latchkey_token_refreshes_total",
                "Refresh-token presentations by outcome.",
                &["outcome"],
            )?,
            reuse_detections: counter(
                "latchkey_refresh_reuse_detections_total",
                "Rotated refresh tokens presented again (the session is revoked).",
            )?,
            revocations: counter_vec(
                "latchkey_session_revocations_total",
                "Sessions ended, by reason.",
                &["reason"],
            )?,
            mfa_events: counter_vec(
                "latchkey_mfa_events_total",
                "Second-factor enrolments, challenges, successes and failures, by event.",
                &["event"],
            )?,
            hash_queue_depth: gauge(
                "latchkey_password_hash_queue_depth",
                "Password-hash jobs waiting for a worker.",
            )?,
            pool_connections: gauge("latchkey_db_pool_connections", "Open database connections.")?,
            pool_idle: gauge(
                "latchkey_db_pool_idle_connections",
                "Idle database connections.",
            )?,
            pool_max: gauge(
                "latchkey_db_pool_max_connections",
                "Maximum database connections.",
            )?,
            mail: MailMetrics {
                queued: counter("latchkey_mail_queued_total", "Messages written to the outbox.")?,
                sent: counter("latchkey_mail_sent_total", "Messages delivered (to SMTP or a file).")?,
                retried: counter(
                    "latchkey_mail_retried_total",
                    "Delivery attempts that failed and will be retried.",
                )?,
                failed: counter(
                    "latchkey_mail_failed_total",
                    "Messages given up on (permanent error, or retried for the whole retry period).",
                )?,
                oldest_queued_age: gauge(
                    "latchkey_mail_oldest_queued_age_seconds",
                    "Age of the oldest message waiting in the outbox, as this instance's sender last saw it (0: none).",
                )?,
            },
            registry,
        })
    }

    /// `count` messages were queued.
    pub fn mail_queued(&self, count: u64) {
        self.mail.queued.inc_by(count);
    }

    /// A delivery attempt ended.
    pub fn mail_attempt(&self, outcome: MailOutcome) {
        match outcome {
            MailOutcome::Sent => self.mail.sent.inc(),
            MailOutcome::Retried => self.mail.retried.inc(),
            MailOutcome::Failed => self.mail.failed.inc(),
        }
    }

    /// The age of the oldest queued message (0: none).
    pub fn mail_oldest_queued_age(&self, seconds: i64) {
        self.mail.oldest_queued_age.set(seconds.max(0));
    }

    /// One HTTP request served. The method is labelled from the standard
    /// set, anything else as `other`: a client chooses the method, and every
    /// distinct label value is a new series kept for the life of the process.
    pub fn http_request(&self, route: &str, method: &str, status: &str, seconds: f64) {
        let labels = [route, method_label(method), status];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// A login attempt ended.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.with_label_values(&[outcome.label()]).inc();
    }

    /// An account was registered.
    pub fn registration(&self) {
        self.registrations.inc();
    }

    /// A refresh token was presented.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        self.refreshes.with_label_values(&[outcome.label()]).inc();
    }

    /// A reused refresh token was detected.
    pub fn reuse_detected(&self) {
        self.reuse_detections.inc();
    }

    /// `count` sessions were ended for `why`.
    pub fn revoked(&self, why: Revocation, count: u64) {
        self.revocations
            .with_label_values(&[why.label()])
            .inc_by(count);
    }

    /// A second-factor event.
    pub fn mfa(&self, event: MfaEvent) {
        self.mfa_events.with_label_values(&[event.label()]).inc();
    }

    /// The exposition text (Prometheus text format 0.0.4), with gauges set
    /// from `now`.
    pub fn render(&self, now: Sampled) -> String {
        self.hash_queue_depth.set(saturating(now.hash_queue_depth));
        self.pool_connections.set(i64::from(now.pool_size));
        self.pool_idle.set(saturating(now.pool_idle));
        self.pool_max.set(i64::from(now.pool_max));
        let mut out = Vec::with_capacity(8 * 1024);
        // Encoding into memory fails only on a metric with invalid names,
        // which the fixed names above exclude; an empty page is the fallback.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn saturating(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `method` if it is one of HTTP's standard methods, else `other`.
fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        let wait = prometheus::Histogram::with_opts(HistogramOpts::new("w", "w")).unwrap();
        Metrics::new(wait).unwrap()
    }

    #[test]
    fn counters_appear_in_the_text_exposition_with_their_labels() {
        let m = metrics();
        m.login(LoginOutcome::Throttled);
        m.login(LoginOutcome::Throttled);
        m.http_request("/auth/me", "GET", "200", 0.001);
        let text = m.render(Sampled::default());
        assert!(
            text.contains("latchkey_logins_total{outcome=\"throttled\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "latchkey_http_requests_total{method=\"GET\",route=\"/auth/me\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE latchkey_http_request_duration_seconds histogram"));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let m = metrics();
        for i in 0..100 {
            m.http_request("unmatched", &format!("BREW{i}"), "405", 0.001);
        }
        let text = m.render(Sampled::default());
        assert!(!text.contains("BREW"), "{text}");
        assert!(text.contains(
            "latchkey_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 100"
        ));
    }

    #[test]
    fn gauges_show_the_sampled_state() {
        let text = metrics().render(Sampled {
            hash_queue_depth: 3,
            pool_size: 4,
            pool_idle: 2,
            pool_max: 10,
        });
        assert!(text.contains("latchkey_password_hash_queue_depth 3"));
        assert!(text.contains("latchkey_db_pool_connections 4"));
        assert!(text.contains("latchkey_db_pool_idle_connections 2"));
        assert!(text.contains("latchkey_db_pool_max_connections 10"));
    }
}
