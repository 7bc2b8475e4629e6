//! Provider-neutral request, response and error types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    #[default]
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default)]
    pub content: String,
    /// The calls an assistant message asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            ..Self::default()
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments.
    #[serde(default = "empty_object")]
    pub parameters: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// A call of a [`Tool`] the model asked for. Read from `{id, name, arguments}` (the form
/// `llm.tools` stores, arguments as an object) or OpenAI's `{id, type, function: {name,
/// arguments}}` (arguments as JSON text); see [`super::messages`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, as the model wrote them.
    pub arguments: String,
}

impl<'de> Deserialize<'de> for ToolCall {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        super::messages::tool_call(&value).map_err(serde::de::Error::custom)
    }
}

/// A chat completion request; `None` options take the provider's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// As the user wrote it (`0.2` is sent as `0.2`, `1` as `1`), never through an `f32`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// `auto`, `none`, `required`, or the name of one tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<String>,
    /// `{"type": "json_object"}` or `{"type": "json_schema", "json_schema": {...}}` (OpenAI's form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// The named provider of `settings.llm.providers`; the default one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Overrides the provider's `base_url` for this call (TEA's `api_base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// Provider options merged into the request body.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A temperature given as an `f32` (the WIT interface's type) as the number its digits say:
/// `0.2f32` is `0.2`, not `0.20000000298023224`.
pub fn temperature_from_f32(t: f32) -> Option<Number> {
    t.to_string().parse::<f64>().ok().and_then(Number::from_f64)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The provider's id for the completion, when it gives one.
    #[serde(default)]
    pub id: Option<String>,
    pub content: String,
    pub model: String,
    pub finish_reason: String,
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// One item of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamItem {
    /// The next piece of text.
    Delta(String),
    /// The whole answer, with usage and finish reason; nothing follows it.
    End(ChatResponse),
}

/// Why a call failed; the variants are those of the WIT `llm-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "message")]
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
    /// `kettle run --replay` met a call its recording does not have.
    #[error("not recorded: {0}")]
    NotRecorded(String),
}

impl LlmError {
    /// The message alone, without the kind that `Display` puts before it.
    pub fn message(&self) -> &str {
        match self {
            LlmError::Denied(m)
            | LlmError::InvalidRequest(m)
            | LlmError::RateLimited(m)
            | LlmError::Timeout(m)
            | LlmError::Provider(m)
            | LlmError::NotRecorded(m) => m,
        }
    }

    /// A short, stable name for `error.type` on spans.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Denied(_) => "denied",
            LlmError::InvalidRequest(_) => "invalid_request",
            LlmError::RateLimited(_) => "rate_limited",
            LlmError::Timeout(_) => "timeout",
            LlmError::Provider(_) => "provider_error",
            LlmError::NotRecorded(_) => "not_recorded",
        }
    }

    /// The same error with every secret Kettle holds redacted from its message (a provider
    /// may echo the key it was sent).
    pub fn redacted(self) -> Self {
        use crate::redact::string;
        match self {
            LlmError::Denied(m) => LlmError::Denied(string(m)),
            LlmError::InvalidRequest(m) => LlmError::InvalidRequest(string(m)),
            LlmError::RateLimited(m) => LlmError::RateLimited(string(m)),
            LlmError::Timeout(m) => LlmError::Timeout(string(m)),
            LlmError::Provider(m) => LlmError::Provider(string(m)),
            LlmError::NotRecorded(m) => LlmError::NotRecorded(string(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_f32_temperature_keeps_its_digits() {
        assert_eq!(
            serde_json::to_string(&temperature_from_f32(0.2)).ok(),
            Some("0.2".to_string())
        );
        assert_eq!(
            serde_json::to_string(&temperature_from_f32(0.7)).ok(),
            Some("0.7".to_string())
        );
        assert_eq!(temperature_from_f32(f32::NAN), None);
    }
}
