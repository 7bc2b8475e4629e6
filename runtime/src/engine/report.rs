//! What a run did: its final state or error, and the figures of its summary.

use super::error::RunError;
use crate::capabilities::{LlmUsage, ProviderCalls};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSnapshot {
    /// Calls admitted by the quotas (some may have been refused before they were sent).
    pub calls: u64,
    pub failed_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The calls sent, per provider.
    pub by_provider: Vec<ProviderCalls>,
    /// Calls sent before the checkpoint a resumed run continued from.
    pub restored_calls: u64,
}

impl UsageSnapshot {
    /// Calls sent to a provider (or answered by the mock or a recording), before a resume
    /// included.
    pub fn sent(&self) -> u64 {
        self.restored_calls + self.by_provider.iter().map(|p| p.calls).sum::<u64>()
    }
}

impl From<&LlmUsage> for UsageSnapshot {
    fn from(usage: &LlmUsage) -> Self {
        Self {
            calls: usage.calls.load(Ordering::Relaxed),
            failed_calls: usage.failed_calls.load(Ordering::Relaxed),
            input_tokens: usage.input_tokens.load(Ordering::Relaxed),
            output_tokens: usage.output_tokens.load(Ordering::Relaxed),
            by_provider: usage.sent_by_provider(),
            restored_calls: usage.restored_calls.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
pub struct RunReport {
    pub run_id: String,
    pub agent: String,
    pub trace_id: String,
    /// The W3C `traceparent` naming the run's root span, for callers that continue the trace.
    pub traceparent: Option<String>,
    /// Where the trace was written, with the file exporter.
    pub trace_file: Option<PathBuf>,
    /// A problem while flushing the trace, such as spans a local exporter could not write:
    /// the trace is incomplete (`kettle run` then fails).
    pub trace_error: Option<String>,
    /// Whether the run reached its end, or why it stopped.
    pub outcome: Result<(), RunError>,
    /// The final state, or the state when the run stopped.
    pub state: Map<String, Value>,
    pub nodes_run: u32,
    pub llm: UsageSnapshot,
    pub llm_provider: &'static str,
    pub llm_is_mock: bool,
    /// Guest-made spans the run's span budget refused, and that budget.
    pub spans_refused: u64,
    pub max_spans: u64,
    pub duration: Duration,
}
