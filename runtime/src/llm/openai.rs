//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`): OpenAI itself, vLLM,
//! LiteLLM, LM Studio, Ollama's `/v1`.

use super::types::{ChatRequest, ChatResponse, LlmError, Usage};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    api_key: Option<String>,
}

impl OpenAiProvider {
    /// `base_url` is the API root (`…/v1`); the key, when given, is sent as a bearer token.
    pub fn new(base_url: &str, api_key: Option<String>, timeout: Duration) -> Result<Self, String> {
        let mut root = base_url.trim_end_matches('/').to_string();
        root.push_str("/chat/completions");
        let endpoint =
            reqwest::Url::parse(&root).map_err(|e| format!("`{base_url}` is not a URL: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("kettle/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
        Ok(Self {
            http,
            endpoint,
            api_key,
        })
    }

    /// Host and port of the server, for `server.address` / `server.port`.
    pub fn server(&self) -> (String, u16) {
        let host = self.endpoint.host_str().unwrap_or_default().to_string();
        (host, self.endpoint.port_or_known_default().unwrap_or(443))
    }

    pub async fn complete(
        &self,
        request: &ChatRequest,
        model: &str,
        traceparent: Option<&str>,
    ) -> Result<ChatResponse, LlmError> {
        let body = request_body(request, model);
        let mut http = self.http.post(self.endpoint.clone()).json(&body);
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key);
        }
        if let Some(traceparent) = traceparent {
            http = http.header("traceparent", traceparent);
        }
        let response = http.send().await.map_err(transport_error)?;
        let status = response.status();
        let text = response.text().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(status_error(status.as_u16(), &text));
        }
        parse_response(&text, model)
    }
}

fn request_body(request: &ChatRequest, model: &str) -> Value {
    let mut body = Map::new();
    // Extra options first, so that the fields Kettle sets always win.
    body.extend(request.extra.clone());
    body.insert("model".into(), json!(model));
    body.insert(
        "messages".into(),
        Value::Array(
            request
                .messages
                .iter()
                .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                .collect(),
        ),
    );
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(max) = request.max_tokens {
        body.insert("max_tokens".into(), json!(max));
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<CompletionUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct CompletionUsage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

fn parse_response(text: &str, requested_model: &str) -> Result<ChatResponse, LlmError> {
    let completion: Completion = serde_json::from_str(text).map_err(|e| {
        LlmError::Provider(format!(
            "the provider's answer is not a chat completion: {e}"
        ))
    })?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(LlmError::Provider(
            "the provider answered with no choices".into(),
        ));
    };
    let usage = completion.usage.map(|u| Usage {
        input_tokens: u.prompt_tokens.unwrap_or(0),
        output_tokens: u.completion_tokens.unwrap_or(0),
    });
    Ok(ChatResponse {
        id: completion.id,
        content: choice.message.and_then(|m| m.content).unwrap_or_default(),
        model: completion
            .model
            .unwrap_or_else(|| requested_model.to_string()),
        finish_reason: choice.finish_reason.unwrap_or_else(|| "unknown".into()),
        usage: usage.unwrap_or_default(),
    })
}

fn transport_error(error: reqwest::Error) -> LlmError {
    if error.is_timeout() {
        LlmError::Timeout(format!("no answer from the provider in time: {error}"))
    } else {
        LlmError::Provider(format!("cannot reach the provider: {error}"))
    }
}

fn status_error(status: u16, body: &str) -> LlmError {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(300).collect());
    let message = format!("HTTP {status}: {detail}");
    match status {
        429 => LlmError::RateLimited(message),
        408 | 504 => LlmError::Timeout(message),
        400 | 404 | 413 | 422 => LlmError::InvalidRequest(message),
        _ => LlmError::Provider(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatMessage, Role};

    #[test]
    fn body_keeps_kettle_fields_over_extra() {
        let mut extra = Map::new();
        extra.insert("model".into(), json!("sneaky"));
        extra.insert("seed".into(), json!(7));
        let request = ChatRequest {
            messages: vec![ChatMessage {
                role: Role::User,
                content: "hi".into(),
            }],
            max_tokens: Some(5),
            extra,
            ..ChatRequest::default()
        };
        let body = request_body(&request, "gpt-4o-mini");
        assert_eq!(
            body,
            json!({"model": "gpt-4o-mini", "seed": 7, "max_tokens": 5,
                   "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn errors_map_to_variants() {
        assert!(matches!(status_error(429, "{}"), LlmError::RateLimited(_)));
        assert!(
            matches!(status_error(400, r#"{"error":{"message":"bad"}}"#), LlmError::InvalidRequest(m) if m == "HTTP 400: bad")
        );
        assert!(matches!(status_error(503, "down"), LlmError::Provider(_)));
        assert!(matches!(
            parse_response(r#"{"choices":[]}"#, "m"),
            Err(LlmError::Provider(_))
        ));
    }
}
