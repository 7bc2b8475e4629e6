//! The error a node returns, mapped onto the WIT `node-error`.

use crate::bindings::kettle::node::types::NodeError as WitNodeError;
use crate::llm::LlmError;
use std::fmt;

/// Why a node gave up. `?` converts LLM errors and JSON errors into it.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeError {
    /// The state or config handed to the node is not what it needs.
    InvalidInput(String),
    /// An LLM call failed and the node chose not to recover.
    Llm(String),
    /// Any other failure.
    Failed(String),
}

impl NodeError {
    /// The state or config is not what the node needs.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// Any other failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Self::Llm(m) => write!(f, "LLM call failed: {m}"),
            Self::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for NodeError {}

impl From<LlmError> for NodeError {
    fn from(error: LlmError) -> Self {
        Self::Llm(error.to_string())
    }
}

impl From<serde_json::Error> for NodeError {
    fn from(error: serde_json::Error) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

impl From<NodeError> for WitNodeError {
    fn from(error: NodeError) -> Self {
        match error {
            NodeError::InvalidInput(m) => WitNodeError::InvalidInput(m),
            NodeError::Llm(m) => WitNodeError::Llm(m),
            NodeError::Failed(m) => WitNodeError::Failed(m),
        }
    }
}
