//! Log set-up shared by every binary (`opencharge-gateway`, `opencharge gateway`, `opencharge
//! merchant serve`, `opencharge sandbox`, ...): `tracing` events to stderr, filtered by
//! `RUST_LOG` or else by the binary's default level, as text (colours only when stderr is a
//! terminal, so a redirected log holds no escape codes) or as one JSON object per line
//! (`--log-format json`: `timestamp`, `level`, `message`, `target` and the event's fields at
//! the top level, for a log collector).

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the process's log subscriber: `format` on stderr, filtered by `RUST_LOG` or else by
/// `default_filter` (e.g. `"info"`). A second call keeps the first set-up (tests running
/// several commands in one process).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
