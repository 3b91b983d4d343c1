//! Logging: the core logs with `tracing`; a foreign `LogSink` (logcat, os_log, a file) receives
//! each record as level, target and message. Secrets and whole payloads are never logged.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::error::{Result, WalletError};

/// Severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something unexpected that the core handled.
    Warn,
    /// Milestones: connected, prompt received, payment confirmed.
    Info,
    /// Details for debugging.
    Debug,
    /// Very verbose.
    Trace,
}

impl LogLevel {
    fn from_tracing(level: &Level) -> LogLevel {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Receives the core's log records; implement it to route them to logcat, os_log or a file.
/// Called from the core's threads; must not block for long. An exception thrown here is
/// swallowed (logging never breaks the core).
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One record: its level, its target (the core module, e.g. `opencharge_wallet::events`)
    /// and the formatted message with its fields.
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<()>;
}

struct SinkSlot {
    sink: Arc<dyn LogSink>,
    max_level: LogLevel,
}

static SINK: RwLock<Option<SinkSlot>> = RwLock::new(None);
static INSTALLED: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// Set while a record is being delivered, so a sink that logs cannot recurse.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Routes the core's logs to `sink`, up to `max_level`. Replaces any previous sink.
///
/// Fails with [`WalletError::Internal`] only if the host process already installed another
/// global `tracing` subscriber (then the core's records go to that subscriber instead).
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>, max_level: LogLevel) -> Result<()> {
    if let Ok(mut slot) = SINK.write() {
        *slot = Some(SinkSlot { sink, max_level });
    }
    let installed = *INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(SinkLayer);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    });
    if installed {
        Ok(())
    } else {
        Err(WalletError::internal(
            "another global tracing subscriber is installed; the log sink receives nothing",
        ))
    }
}

/// Stops sending logs to the sink set by [`set_log_sink`].
#[uniffi::export]
pub fn clear_log_sink() {
    if let Ok(mut slot) = SINK.write() {
        *slot = None;
    }
}

/// The `tracing` layer that forwards records to the sink.
struct SinkLayer;

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if IN_SINK.with(Cell::get) {
            return;
        }
        let level = LogLevel::from_tracing(event.metadata().level());
        let Ok(slot) = SINK.read() else { return };
        let Some(slot) = slot.as_ref() else { return };
        if level > slot.max_level {
            return;
        }
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        IN_SINK.with(|flag| flag.set(true));
        // A failing sink is ignored on purpose: logging must never break the core.
        let _ = slot.sink.log(
            level,
            event.metadata().target().to_string(),
            visitor.finish(),
        );
        IN_SINK.with(|flag| flag.set(false));
    }
}

/// Formats `message` followed by ` key=value` for every other field.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_string()
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}
