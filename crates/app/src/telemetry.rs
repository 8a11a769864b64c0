//! Logging setup.

use std::io::IsTerminal as _;

use tracing::Subscriber;
use tracing_subscriber::{
    EnvFilter, Layer, fmt, fmt::MakeWriter, layer::SubscriberExt as _, registry::LookupSpan,
    util::SubscriberInitExt as _,
};

use crate::settings::{LogFormat, LogSection};

/// Installs the global subscriber: text or JSON lines on stderr, filtered by
/// `RUST_LOG` if set, else `log.filter`.
pub fn init(settings: &LogSection) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer(settings.format, std::io::stderr, std::io::stderr().is_terminal()))
        .try_init();
}

/// The formatting layer of `format`, writing to `writer` (tests capture it),
/// with colours only if `ansi` (a terminal; never in a file or a pipe).
///
/// JSON lines carry the event's fields at the top level and, under `span`
/// and `spans`, the fields of the spans the event happened in: every line
/// logged while a request is handled has the request span's `request_id`
/// (and its method and path, never its query string).
pub fn layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = fmt::layer().with_writer(writer).with_ansi(ansi);
    match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
}
