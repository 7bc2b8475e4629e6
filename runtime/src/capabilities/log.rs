//! The `log` import: guest log lines go to the host's log, tagged with run and node, and onto
//! the node's innermost open span as `log` events.

use super::bindings::log::{self as wit, Level};
use super::capability::{Capability, CapabilityView, NodeSetup, RunSetup};
use super::trace::NodeTrace;
use crate::spec::MAX_LOG_LINE_BYTES;
use opentelemetry::KeyValue;
use std::borrow::Cow;
use wasmtime::component::{HasData, Linker};

/// What the `log` import sees of the store.
pub struct LogCtx<'a> {
    pub run_id: &'a str,
    pub node: &'a str,
    pub trace: &'a NodeTrace,
    pub budget: &'a mut LogBudget,
}

/// Lines and bytes a node execution may log (its `log` calls and its stdout and stderr lines
/// together). A line longer than [`MAX_LOG_LINE_BYTES`], or longer than the bytes left, is cut
/// with a marker saying how much; past the caps lines are counted, not kept.
#[derive(Debug)]
pub struct LogBudget {
    max_lines: u64,
    max_bytes: u64,
    kept_lines: u64,
    kept_bytes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    pub fn new(max_lines: u64, max_bytes: u64) -> Self {
        Self {
            max_lines,
            max_bytes,
            kept_lines: 0,
            kept_bytes: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    /// The line as it may be kept (cut if too long), or `None` when it is dropped.
    pub fn admit<'a>(&mut self, line: &'a str) -> Option<Cow<'a, str>> {
        let room = self.max_bytes.saturating_sub(self.kept_bytes);
        if self.kept_lines >= self.max_lines || room == 0 {
            self.dropped_lines += 1;
            self.dropped_bytes += line.len() as u64;
            return None;
        }
        let max = MAX_LOG_LINE_BYTES.min(usize::try_from(room).unwrap_or(usize::MAX));
        let kept = cut_to(line, max);
        let kept_len = line.len().min(max) as u64;
        self.dropped_bytes += line.len() as u64 - kept_len;
        self.kept_lines += 1;
        self.kept_bytes += kept_len;
        Some(kept)
    }

    /// Lines dropped because of the caps.
    pub fn dropped(&self) -> u64 {
        self.dropped_lines
    }

    /// Bytes dropped or cut because of the caps.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), with a marker saying how many
/// bytes were cut; `text` itself when it fits.
pub fn cut_to(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… [{} bytes cut]",
        &text[..end],
        text.len() - end
    ))
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
            budget: LogBudget::new(node.limits.max_log_lines, node.limits.max_log_bytes),
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
        let Some(message) = self.budget.admit(&message) else {
            return Ok(());
        };
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
                KeyValue::new(
                    "log.message",
                    crate::telemetry::cap_value(message.into_owned()),
                ),
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
        let mut budget = LogBudget::new(2, 1 << 20);
        assert!(budget.admit("a").is_some());
        assert!(budget.admit("b").is_some());
        assert!(budget.admit("cc").is_none());
        assert!(budget.admit("d").is_none());
        assert_eq!((budget.dropped(), budget.dropped_bytes()), (2, 3));

        let mut none = LogBudget::new(0, 1 << 20);
        assert!(none.admit("x").is_none());
        assert_eq!(none.dropped(), 1);
    }

    #[test]
    fn long_lines_are_cut_with_a_marker_and_the_bytes_are_capped() {
        let mut budget = LogBudget::new(100, 20 << 10);
        let long = "x".repeat(MAX_LOG_LINE_BYTES + 100);
        let kept = budget.admit(&long).expect("kept, cut");
        assert_eq!(
            kept,
            format!("{}… [100 bytes cut]", "x".repeat(MAX_LOG_LINE_BYTES))
        );
        // 4 KiB of the 20 KiB are left: the next line is cut there.
        let kept = budget.admit(&long).expect("kept, cut");
        assert!(kept.ends_with(&format!("… [{} bytes cut]", long.len() - (4 << 10))));
        assert!(budget.admit("short").is_none(), "no bytes left");
        assert_eq!(budget.dropped(), 1);
        assert_eq!(
            budget.dropped_bytes(),
            100 + (long.len() - (4 << 10)) as u64 + 5
        );
    }

    #[test]
    fn cutting_respects_characters() {
        assert_eq!(cut_to("héllo", 2), "h… [5 bytes cut]");
        assert_eq!(cut_to("short", 5), "short");
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
                tape: None,
            },
        );
        assert_eq!(
            (log.run_id.as_str(), log.node.as_str()),
            ("run-1", "summarize")
        );
        assert!(log.budget.admit("one").is_some());
        assert!(log.budget.admit("two").is_none());
    }

    #[test]
    fn kept_lines_are_events_on_the_innermost_span() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let mut trace = NodeTrace::new(test.tracer.clone(), node_span.clone());
        let mut budget = LogBudget::new(1, 1 << 20);
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
