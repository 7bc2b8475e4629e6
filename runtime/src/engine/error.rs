//! Why a run failed.

/// A run that did not reach `__end__`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("node `{node}` failed ({kind}): {message}")]
    Node {
        node: String,
        kind: String,
        message: String,
    },
    #[error(
        "the run made {limit} node executions without reaching the end, looping through {cycle}; the next node was `{node}`. If the loop is intended, raise settings.max_steps (or --max-steps); otherwise give the loop a way out (a `goto:` rule or edge condition that becomes true)"
    )]
    StepLimit {
        limit: u32,
        node: String,
        /// The loop the run was in, such as `` `a` → `b` → `a` ``.
        cycle: String,
    },
    #[error("the run was interrupted ({0})")]
    Interrupted(String),
    /// Stopped at an `interrupt_before` / `interrupt_after` node, checkpointed.
    #[error("the run stopped {when} node `{node}` (an interrupt); resume it with `kettle resume`")]
    Paused {
        node: String,
        /// `before`, `after`, or `inside` (the node called `interrupt`).
        when: String,
        /// What the node asked (JSON), for `inside`.
        payload: Option<String>,
    },
    #[error("cannot save the run's checkpoint: {0}")]
    Checkpoint(String),
}

impl RunError {
    pub fn node(node: &str, kind: &str, message: impl Into<String>) -> Self {
        RunError::Node {
            node: node.into(),
            kind: kind.into(),
            message: message.into(),
        }
    }
}
