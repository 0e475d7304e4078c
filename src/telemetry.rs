//! Logging set-up, in one place, and the request id every log line of a
//! request carries.
//!
//! The id lives in a task-local, set around each poll of the request's
//! future by the edge service and around the edge's own log lines
//! ([`as_request`]), and carried into tasks the request spawns
//! ([`in_current_request`]); the formatter adds it
//! to each line as it is written. A `tracing` span per request would do the
//! same at a cost of several thousand instructions per request, paid even
//! when the request logs nothing; this costs a task-local scope.

use std::future::Future;
use std::sync::Arc;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Run `f` as the request `id` (for code outside the request's future).
pub fn as_request<R>(id: &Arc<str>, f: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(Arc::clone(id), f)
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// `fut` under the current request's id, for a task spawned on its behalf.
pub fn in_current_request<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let id = current_request_id();
    async move {
        match id {
            Some(id) => REQUEST_ID.scope(id, fut).await,
            None => fut.await,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Install the global `tracing` subscriber: human-readable or JSON lines on
/// stderr, filtered by `filter` (e.g. `info`), each line of a request with
/// its `request_id`.
pub fn init(format: LogFormat, filter: &str) {
    let mut env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // PostgreSQL's NOTICEs arrive at INFO: the migrator's `relation
    // "_sqlx_migrations" already exists, skipping` on every start is noise.
    // Shown again when the filter names sqlx itself.
    if !filter.contains("sqlx") {
        if let Ok(quiet) = "sqlx::postgres::notice=warn".parse() {
            env_filter = env_filter.add_directive(quiet);
        }
    }
    let filter = env_filter;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already installed; keep that one.
    let _ = match format {
        LogFormat::Text => builder
            .event_format(WithRequestId {
                inner: tracing_subscriber::fmt::format().with_ansi(false),
                json: false,
            })
            .try_init(),
        LogFormat::Json => builder
            .json()
            .event_format(WithRequestId {
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
                json: true,
            })
            .try_init(),
    };
}

/// A line formatter that adds `request_id` to the lines written while a
/// request is served: a first field in JSON, a last `request_id=` in text.
struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(id) = current_request_id() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // Ids are checked to be `[A-Za-z0-9._:-]` (or generated), so they
        // need no quoting or escaping in either format.
        if self.json {
            if let Some(rest) = line.strip_prefix('{') {
                return write!(writer, "{{\"request_id\":\"{id}\",{rest}");
            }
        } else if let Some(body) = line.strip_suffix('\n') {
            return writeln!(writer, "{body} request_id={id}");
        }
        writer.write_str(&line)
    }
}
