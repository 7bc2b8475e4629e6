//! The execution context the host hands to a node.

use serde_json::Value;

/// What the host tells the node about this execution.
#[derive(Debug, Clone)]
pub struct Context {
    /// Identifier of the run.
    pub run_id: String,
    /// The node's name in the agent's YAML.
    pub node_name: String,
    /// 1 for the first attempt, incremented on every retry.
    pub attempt: u32,
    /// The node's `config:` block from the YAML (`{}` when absent).
    pub config: Value,
}
