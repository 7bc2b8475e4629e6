//! Progress events for people watching a long run (`kettle run --events`, `kettle serve`'s
//! server-sent events): one JSON line per node start and finish, per delta of a streamed LLM
//! answer (`llm_chunk`, as it arrives) and per LLM call ended (`llm_call`, with its latency).

use super::error::RunError;
use crate::capabilities::{CallEnded, LlmWatcher};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where events go: a function given each event as one line of JSON.
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(&str) + Send + Sync>);

impl EventSink {
    pub fn new(write: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(write))
    }

    pub(super) fn emit(&self, event: &impl Serialize) {
        if let Ok(line) = serde_json::to_string(event) {
            (self.0)(&line);
        }
    }

    /// The run's LLM watcher: its deltas and calls as events of run `run_id`.
    pub(super) fn llm_watcher(&self, run_id: &str) -> Arc<dyn LlmWatcher> {
        Arc::new(LlmEvents {
            sink: self.clone(),
            run_id: run_id.to_string(),
        })
    }
}

/// `{"event":"llm_chunk","run_id":…,"node":…,"delta":…,"time_unix_ms":…}` and
/// `{"event":"llm_call","run_id":…,"node":…,"provider":…,"model":…,"status":"ok"|"error","duration_ms":…,"time_unix_ms":…}`.
struct LlmEvents {
    sink: EventSink,
    run_id: String,
}

#[derive(Serialize)]
struct LlmChunk<'a> {
    event: &'static str,
    run_id: &'a str,
    node: &'a str,
    delta: &'a str,
    time_unix_ms: u128,
}

#[derive(Serialize)]
struct LlmCall<'a> {
    event: &'static str,
    run_id: &'a str,
    node: &'a str,
    provider: &'a str,
    model: &'a str,
    status: &'static str,
    /// Fractional: a mock or local call takes well under a millisecond.
    duration_ms: f64,
    time_unix_ms: u128,
}

impl LlmWatcher for LlmEvents {
    fn delta(&self, node: &str, text: &str) {
        self.sink.emit(&LlmChunk {
            event: "llm_chunk",
            run_id: &self.run_id,
            node,
            delta: text,
            time_unix_ms: now_ms(),
        });
    }

    fn ended(&self, call: &CallEnded<'_>) {
        self.sink.emit(&LlmCall {
            event: "llm_call",
            run_id: &self.run_id,
            node: call.node,
            provider: call.provider,
            model: call.model,
            status: if call.ok { "ok" } else { "error" },
            duration_ms: call.took.as_secs_f64() * 1000.0,
            time_unix_ms: now_ms(),
        });
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSink")
    }
}

/// One event, as written: `{"event":"node_start","run_id":…,"node":…,"kind":…,"time_unix_ms":…}`
/// or `{"event":"node_finish",…,"status":"ok"|"error","duration_ms":…,"error":…}`.
#[derive(Debug, Serialize)]
pub struct NodeEvent<'a> {
    pub event: &'static str,
    pub run_id: &'a str,
    pub node: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    pub time_unix_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

impl<'a> NodeEvent<'a> {
    pub fn start(run_id: &'a str, node: &'a str, kind: &'a str) -> Self {
        Self {
            event: "node_start",
            run_id,
            node,
            kind: Some(kind),
            time_unix_ms: now_ms(),
            status: None,
            duration_ms: None,
            error: None,
        }
    }

    pub fn finish(
        run_id: &'a str,
        node: &'a str,
        took: Duration,
        error: Option<&RunError>,
    ) -> Self {
        Self {
            event: "node_finish",
            run_id,
            node,
            kind: None,
            time_unix_ms: now_ms(),
            status: Some(if error.is_some() { "error" } else { "ok" }),
            duration_ms: Some(took.as_millis()),
            error: error.map(ToString::to_string),
        }
    }
}
