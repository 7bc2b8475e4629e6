//! The `log` import: guest log lines go to the host's log, tagged with run and node, and onto
//! the node's innermost open span as `log` events.

use crate::bindings::log::{self as wit, Level};
use crate::capabilities::trace::NodeTrace;
use opentelemetry::KeyValue;
use wasmtime::component::HasData;

/// What the `log` import sees of the store.
pub struct LogCtx<'a> {
    pub run_id: &'a str,
    pub node: &'a str,
    pub trace: &'a NodeTrace,
    pub budget: &'a mut LogBudget,
}

/// Lines a node execution may log; past the cap lines are counted, not kept.
#[derive(Debug)]
pub struct LogBudget {
    max: u64,
    kept: u64,
    dropped: u64,
}

impl LogBudget {
    pub fn new(max: u64) -> Self {
        Self {
            max,
            kept: 0,
            dropped: 0,
        }
    }

    /// Whether one more line may be kept.
    pub fn admit(&mut self) -> bool {
        if self.kept < self.max {
            self.kept += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Lines dropped because of the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Names [`LogCtx`] for `add_to_linker`.
pub struct LogCapability;

impl HasData for LogCapability {
    type Data<'a> = LogCtx<'a>;
}

impl wit::Host for LogCtx<'_> {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if !self.budget.admit() {
            return Ok(());
        }
        let (run, node) = (self.run_id, self.node);
        match level {
            Level::Trace => tracing::trace!(target: "kettle::node", run, node, "{message}"),
            Level::Debug => tracing::debug!(target: "kettle::node", run, node, "{message}"),
            Level::Info => tracing::info!(target: "kettle::node", run, node, "{message}"),
            Level::Warn => tracing::warn!(target: "kettle::node", run, node, "{message}"),
            Level::Error => tracing::error!(target: "kettle::node", run, node, "{message}"),
        }
        self.trace.innermost().add_event(
            "log",
            vec![
                KeyValue::new("log.severity", level_name(level)),
                KeyValue::new("log.message", crate::telemetry::cap_value(message)),
            ],
        );
        Ok(())
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}
