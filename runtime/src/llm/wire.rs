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
    /// The last error the stream carried may pass on another attempt (an `error` event
    /// saying the server is overloaded, not that the request is wrong).
    pub error_retryable: bool,
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
    serde_json::from_str(text).map_err(|e| not_the_format(text, what, &e.to_string()))
}

/// The error for an answer that is JSON but not in the provider's format (`why` says what is
/// missing), with its start and, when it has the shape of another provider's answer, which.
pub fn not_the_format(text: &str, what: &str, why: &str) -> LlmError {
    let start: String = text.chars().take(120).collect();
    let value = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let looks_like = if value.get("choices").is_some() {
        "; it looks like an OpenAI chat completion (`type: openai`)"
    } else if value.get("type").and_then(Value::as_str) == Some("message")
        || value.get("type").and_then(Value::as_str) == Some("message_start")
    {
        "; it looks like an Anthropic message (`type: anthropic`)"
    } else if value.get("response").is_some() && value.get("done").is_some() {
        "; it looks like Ollama's /api/generate, not /api/chat"
    } else if value.get("message").is_some() && value.get("done").is_some() {
        "; it looks like an Ollama chat answer (`type: ollama`)"
    } else {
        ""
    };
    LlmError::Provider(format!(
        "the provider's answer is not {what}: {why}{looks_like} (it starts with {start:?})"
    ))
}

/// The longest server message Kettle passes on in an error.
const MAX_SERVER_MESSAGE: usize = 300;

/// A server's message on one line: line breaks and runs of spaces folded into one space, cut
/// to [`MAX_SERVER_MESSAGE`] characters (an HTML error page or a stack trace must not fill
/// the terminal).
pub fn fold_message(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= MAX_SERVER_MESSAGE {
        return folded;
    }
    let mut cut: String = folded.chars().take(MAX_SERVER_MESSAGE).collect();
    cut.push('…');
    cut
}

/// The provider's own message in an error body (`{"error": {"message": …}}`, `{"error": "…"}`).
fn error_message(value: &Value) -> Option<String> {
    value
        .pointer("/error/message")
        .or_else(|| value.get("error").filter(|e| e.is_string()))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// An error a provider put in a body or a stream event, and whether another attempt may
/// succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyError {
    pub error: LlmError,
    pub retryable: bool,
}

/// The error `value` carries, if it is one: OpenAI's and Ollama's `{"error": …}`,
/// Anthropic's `{"type": "error", "error": {"type", "message"}}`. The error's type decides
/// its kind; an unknown one is taken as the server's trouble, worth another attempt.
pub fn body_error(value: &Value) -> Option<BodyError> {
    let error = value.get("error").filter(|e| !e.is_null())?;
    let message = error_message(value).unwrap_or_else(|| error.to_string());
    let message = format!("error in the answer: {}", fold_message(&message));
    let kind = error
        .get("type")
        .or_else(|| error.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (error, retryable) = match kind {
        "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" => {
            (LlmError::RateLimited(message), kind != "insufficient_quota")
        }
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            (LlmError::InvalidRequest(message), false)
        }
        "authentication_error" | "permission_error" | "invalid_api_key" => {
            (LlmError::Denied(message), false)
        }
        "timeout_error" => (LlmError::Timeout(message), true),
        _ => (LlmError::Provider(message), true),
    };
    Some(BodyError { error, retryable })
}

/// The error for an HTTP error status, with the provider's own message when it gives one
/// (`{"error": {"message": …}}` or `{"error": "…"}`), on one line.
pub fn status_error(status: u16, body: &str) -> LlmError {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(error_message)
        .unwrap_or_else(|| body.to_string());
    let message = format!("HTTP {status}: {}", fold_message(&detail));
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
        let page = format!("<html>\n  <body>\n{}</body>", "x".repeat(1000));
        let LlmError::Provider(message) = status_error(502, &page) else {
            panic!("a provider error")
        };
        assert!(
            !message.contains('\n') && message.chars().count() < 320,
            "{message}"
        );
    }

    #[test]
    fn body_errors_by_type() {
        let overloaded = serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let e = body_error(&overloaded).expect("an error");
        assert!(e.retryable);
        assert_eq!(
            e.error,
            LlmError::Provider("error in the answer: Overloaded".into())
        );
        let bad = serde_json::json!({"error": {"type": "invalid_request_error", "message": "bad\n  field"}});
        let e = body_error(&bad).expect("an error");
        assert!(!e.retryable);
        assert_eq!(
            e.error,
            LlmError::InvalidRequest("error in the answer: bad field".into())
        );
        assert_eq!(body_error(&serde_json::json!({"choices": []})), None);
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
