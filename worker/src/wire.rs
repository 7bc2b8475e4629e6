//! What travels on NATS: a run request, a run's result, a dead letter (JSON).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A run to do, published on `kettle.runs.<agent>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Chosen by the submitter; the run keeps it on every worker it runs on.
    pub run_id: String,
    pub agent: String,
    #[serde(default)]
    pub input: Map<String, Value>,
    /// The submitter's span (W3C `traceparent`): the run's root becomes its child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// A run's end, published on `kettle.results.<run>` and kept in the outcomes stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub run_id: String,
    pub agent: String,
    /// `completed`, `failed`, or `interrupted` (stopped at an interrupt, checkpointed).
    pub status: String,
    pub state: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub trace_id: String,
    /// The worker that finished it.
    pub worker: String,
    /// Which delivery of the request finished it (1: the first worker to take it).
    pub delivery: u64,
    /// The checkpoint the last segment resumed from, when it was resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<u64>,
    /// What the last segment did, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<RunUsage>,
    /// The run's root span (W3C `traceparent`), when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// What a run's last segment did: nodes, time, LLM calls and tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunUsage {
    pub nodes_run: u64,
    pub duration_ms: u64,
    pub llm_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A request given up on, published on `kettle.dead.<agent>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub run_id: String,
    pub agent: String,
    pub deliveries: u64,
    pub error: String,
    /// The request as it was received.
    pub request: String,
}
