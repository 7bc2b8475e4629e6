//! The `log` import: guest log lines go to the host's log, tagged with run and node, and onto
//! the node's innermost open span as `log` events.

use super::bindings::log::{self as wit, Level};
use super::capability::{Capability, CapabilityView, NodeSetup, RunSetup};
use super::trace::NodeTrace;
use opentelemetry::KeyValue;
use wasmtime::component::{HasData, Linker};

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

/// Per-node log state, kept in the node's `Store`: who is logging, and the line budget (shared
/// with the node's captured stdout and stderr).
#[derive(Debug)]
pub struct NodeLog {
    pub run_id: String,
    pub node: String,
    pub budget: LogBudget,
}

/// The `log` capability; also names [`LogCtx`] for `add_to_linker`.
pub struct LogCapability;

impl HasData for LogCapability {
    type Data<'a> = LogCtx<'a>;
}

/// The run the lines are tagged with.
#[derive(Debug, Clone)]
pub struct RunLog {
    pub run_id: String,
}

impl Capability for LogCapability {
    type RunState = RunLog;
    type NodeState = NodeLog;

    fn configure(run: &RunSetup<'_>) -> RunLog {
        RunLog {
            run_id: run.run_id.to_string(),
        }
    }

    fn prepare(run: &RunLog, node: &NodeSetup<'_>) -> NodeLog {
        NodeLog {
            run_id: run.run_id.clone(),
            node: node.node.to_string(),
            budget: LogBudget::new(node.limits.max_log_lines),
        }
    }

    fn link<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, LogCapability>(linker, log_ctx::<T>)
    }
}

fn log_ctx<T: CapabilityView>(host: &mut T) -> LogCtx<'_> {
    let view = host.capabilities();
    let states = view.states;
    LogCtx {
        run_id: &states.log.run_id,
        node: &states.log.node,
        trace: &states.trace,
        budget: &mut states.log.budget,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::LlmGrant;
    use crate::capabilities::test_support::TestTrace;
    use crate::spec::NodeLimits;
    use wit::Host as _;

    #[test]
    fn the_budget_keeps_lines_up_to_its_cap_and_counts_the_rest() {
        let mut budget = LogBudget::new(2);
        assert!(budget.admit());
        assert!(budget.admit());
        assert!(!budget.admit());
        assert!(!budget.admit());
        assert_eq!(budget.dropped(), 2);

        let mut none = LogBudget::new(0);
        assert!(!none.admit());
        assert_eq!(none.dropped(), 1);
    }

    #[test]
    fn prepare_takes_the_cap_from_the_node_limits() {
        let test = TestTrace::new();
        let span = test.node_span();
        let limits = NodeLimits {
            max_log_lines: 1,
            ..NodeLimits::default()
        };
        let run = RunLog {
            run_id: "run-1".into(),
        };
        let mut log = LogCapability::prepare(
            &run,
            &NodeSetup {
                node: "summarize",
                span: &span,
                limits: &limits,
                llm: &LlmGrant::default(),
            },
        );
        assert_eq!(
            (log.run_id.as_str(), log.node.as_str()),
            ("run-1", "summarize")
        );
        assert!(log.budget.admit());
        assert!(!log.budget.admit());
    }

    #[test]
    fn kept_lines_are_events_on_the_innermost_span() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let mut trace = NodeTrace::new(test.tracer.clone(), node_span.clone());
        let mut budget = LogBudget::new(1);
        let mut ctx = LogCtx {
            run_id: "run-1",
            node: "summarize",
            trace: &trace,
            budget: &mut budget,
        };
        ctx.log(Level::Warn, "first".into()).unwrap();
        ctx.log(Level::Info, "second".into()).unwrap();
        assert_eq!(budget.dropped(), 1);
        trace.close_leaked("the node returned");
        node_span.end();

        let node = test.span("node test");
        let events: Vec<_> = node.events.events.iter().collect();
        assert_eq!(events.len(), 1, "the second line is over the cap");
        assert_eq!(events[0].name, "log");
        let attributes: Vec<(String, String)> = events[0]
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        assert_eq!(
            attributes,
            [
                ("log.severity".to_string(), "warn".to_string()),
                ("log.message".to_string(), "first".to_string()),
            ]
        );
    }
}
