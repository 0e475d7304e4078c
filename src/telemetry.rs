//! Logging set-up, in one place.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global `tracing` subscriber: human-readable or JSON lines on
/// stderr, filtered by `filter` (e.g. `info`).
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already installed; keep that one.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
