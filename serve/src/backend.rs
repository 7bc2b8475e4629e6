//! Where a served run happens when it is not run here: a `RunBackend` takes the request and
//! gives back the result (kettle-worker's queue of workers, for `kettle serve --nats`). This
//! crate knows only the trait; the CLI wires the implementation in.

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// A run to hand over.
#[derive(Debug, Clone)]
pub struct QueuedRun {
    pub agent: String,
    pub input: Map<String, Value>,
    /// The caller's span (W3C `traceparent`, already checked): the run's root becomes its child.
    pub traceparent: Option<String>,
}

/// A handed-over run's end.
#[derive(Debug, Clone, Default)]
pub struct QueuedResult {
    pub run_id: String,
    pub agent: String,
    /// `completed`, `failed` or `interrupted`.
    pub status: String,
    pub state: Map<String, Value>,
    pub error: Option<String>,
    pub trace_id: String,
    /// The run's root span, when known.
    pub traceparent: Option<String>,
    /// Who ran it (a worker's name).
    pub ran_by: Option<String>,
    pub nodes_run: Option<u64>,
    pub duration_ms: Option<u64>,
    /// LLM calls, input tokens, output tokens.
    pub llm: Option<(u64, u64, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The run was handed over, and its result did not come in time; it may still end.
    #[error("{message}")]
    NoResultYet { run_id: String, message: String },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
}

/// Runs elsewhere.
pub trait RunBackend: Send + Sync + 'static {
    /// Says where runs go, for the start-up line.
    fn describe(&self) -> String;

    /// Hands `run` over, sends its node event lines to `events` (if given) as they come, and
    /// waits up to `timeout` for its result.
    fn run(
        &self,
        run: QueuedRun,
        timeout: Duration,
        events: Option<mpsc::UnboundedSender<String>>,
    ) -> BoxFuture<'static, Result<QueuedResult, BackendError>>;

    /// The result of run `run_id`, if it has ended.
    fn result(
        &self,
        run_id: &str,
    ) -> BoxFuture<'static, Result<Option<QueuedResult>, BackendError>>;
}
