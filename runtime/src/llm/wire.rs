//! What every provider's wire format shares: the HTTP call to make (with its secret headers
//! marked, so that recordings can redact them), the state a stream builds up, and the reading
//! of error bodies.

use super::types::{ChatResponse, LlmError, ToolCall, Usage};
use serde_json::{Map, Value};

/// Marks a header value that must never be written anywhere.
pub use crate::redact::REDACTED;

/// One HTTP request to a provider.
#[derive(Debug, Clone)]
pub struct WireCall {
    pub url: reqwest::Url,
    /// (name, value, secret)
    pub headers: Vec<(String, String, bool)>,
    pub body: Value,
}

impl WireCall {
    pub fn new(url: reqwest::Url, body: Value) -> Self {
        Self {
            url,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into(), false));
        self
    }

    pub fn secret_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into(), true));
        self
    }

    /// The call as JSON with every secret header replaced by [`REDACTED`].
    pub fn redacted(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value, secret)| {
                let value = if *secret { REDACTED } else { value.as_str() };
                (name.clone(), Value::String(value.into()))
            })
            .collect();
        serde_json::json!({
            "method": "POST",
            "url": self.url.as_str(),
            "headers": headers,
            "body": self.body,
        })
    }
}

/// A tool call being assembled from stream deltas.
#[derive(Debug, Clone, Default)]
pub struct PartialToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What a stream has said so far.
#[derive(Debug, Default)]
pub struct StreamState {
    pub id: Option<String>,
    pub model: Option<String>,
    pub content: String,
    pub tool_calls: Vec<PartialToolCall>,
    pub finish_reason: Option<String>,
    pub usage: Usage,
    /// The provider said the answer is complete.
    pub done: bool,
}

impl StreamState {
    /// The tool call at `index`, created (empty) if new.
    pub fn tool_call(&mut self, index: usize) -> &mut PartialToolCall {
        if self.tool_calls.len() <= index {
            self.tool_calls
                .resize_with(index + 1, PartialToolCall::default);
        }
        &mut self.tool_calls[index]
    }

    pub fn into_response(self, requested_model: &str) -> ChatResponse {
        ChatResponse {
            id: self.id,
            content: self.content,
            model: self.model.unwrap_or_else(|| requested_model.to_string()),
            finish_reason: self.finish_reason.unwrap_or_else(|| "unknown".into()),
            usage: self.usage,
            tool_calls: self
                .tool_calls
                .into_iter()
                .filter(|c| !c.name.is_empty())
                .map(|c| ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: c.arguments,
                })
                .collect(),
        }
    }
}

/// Parses a provider's JSON answer, or says the answer is unreadable.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, LlmError> {
    serde_json::from_str(text).map_err(|e| {
        let start: String = text.chars().take(120).collect();
        LlmError::Provider(format!(
            "the provider's answer is not {what}: {e} (it starts with {start:?})"
        ))
    })
}

/// The error for an HTTP error status, with the provider's own message when it gives one
/// (`{"error": {"message": …}}` or `{"error": "…"}`).
pub fn status_error(status: u16, body: &str) -> LlmError {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error").filter(|e| e.is_string()))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(300).collect());
    let message = format!("HTTP {status}: {detail}");
    match status {
        429 => LlmError::RateLimited(message),
        408 | 504 => LlmError::Timeout(message),
        401 | 403 => LlmError::Denied(message),
        400 | 404 | 413 | 422 => LlmError::InvalidRequest(message),
        _ => LlmError::Provider(message),
    }
}

/// Arguments as a JSON value, for the providers that take an object (Anthropic, Ollama).
pub fn arguments_value(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.into()))
}

/// Joins `base` and `path` into a URL.
pub fn endpoint(base: &str, path: &str) -> Result<reqwest::Url, String> {
    let mut root = base.trim_end_matches('/').to_string();
    root.push_str(path);
    reqwest::Url::parse(&root).map_err(|e| format!("`{base}` is not a URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_variants() {
        assert!(matches!(status_error(429, "{}"), LlmError::RateLimited(_)));
        assert_eq!(
            status_error(400, r#"{"error":{"message":"bad"}}"#),
            LlmError::InvalidRequest("HTTP 400: bad".into())
        );
        assert_eq!(
            status_error(404, r#"{"error":"model 'x' not found"}"#),
            LlmError::InvalidRequest("HTTP 404: model 'x' not found".into())
        );
        assert!(matches!(status_error(401, "no"), LlmError::Denied(_)));
        assert!(matches!(status_error(503, "down"), LlmError::Provider(_)));
    }

    #[test]
    fn redaction_hides_secret_headers_only() {
        let call = WireCall::new(endpoint("http://h/v1", "/x").unwrap(), Value::Null)
            .secret_header("authorization", "Bearer sk-1")
            .header("anthropic-version", "2023-06-01");
        let json = call.redacted();
        assert_eq!(json["headers"]["authorization"], REDACTED);
        assert_eq!(json["headers"]["anthropic-version"], "2023-06-01");
        assert!(!json.to_string().contains("sk-1"));
    }
}
