//! Provider-neutral request, response and error types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// A chat completion request; `None` options take the client's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    /// Provider options merged into the request body.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The provider's id for the completion, when it gives one.
    pub id: Option<String>,
    pub content: String,
    pub model: String,
    pub finish_reason: String,
    pub usage: Usage,
}

/// Why a call failed; the variants are those of the WIT `llm-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("rate limited: {0}")]
    RateLimited(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("provider error: {0}")]
    Provider(String),
}

impl LlmError {
    /// A short, stable name for `error.type` on spans.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Denied(_) => "denied",
            LlmError::InvalidRequest(_) => "invalid_request",
            LlmError::RateLimited(_) => "rate_limited",
            LlmError::Timeout(_) => "timeout",
            LlmError::Provider(_) => "provider_error",
        }
    }
}
