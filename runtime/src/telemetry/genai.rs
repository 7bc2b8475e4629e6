//! Span content by the OpenTelemetry GenAI semantic conventions: the root `invoke_agent` span's
//! attributes (agent, conversation, the run's input and output) and the `chat` span's request,
//! response and (when captured) message attributes.

use super::caps::truncate_chars;
use super::config::ContentPolicy;
use crate::llm::{ChatRequest, ChatResponse};
use opentelemetry::{KeyValue, StringValue, Value as OtelValue};
use serde_json::{Map, Value, json};

/// Input keys that name the conversation a run belongs to, in order of preference.
const CONVERSATION_KEYS: &[&str] = &["conversation_id", "thread_id", "session_id"];

/// Attributes of the root span, set when it starts.
pub fn root_attributes(
    agent: &str,
    run_id: &str,
    input: &Map<String, Value>,
    content: ContentPolicy,
) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "invoke_agent"),
        KeyValue::new("gen_ai.agent.name", agent.to_string()),
        KeyValue::new(super::RUN_ID_KEY, run_id.to_string()),
        KeyValue::new("input.mime_type", "application/json"),
        KeyValue::new(
            "input.value",
            truncate_chars(&Value::Object(input.clone()).to_string(), content.max_chars),
        ),
    ];
    let conversation = CONVERSATION_KEYS
        .iter()
        .find_map(|key| match input.get(*key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
    if let Some(id) = conversation {
        attributes.push(KeyValue::new("gen_ai.conversation.id", id));
    }
    attributes
}

/// The run's final state, for the root span when it ends.
pub fn root_output(state: &Map<String, Value>, content: ContentPolicy) -> Vec<KeyValue> {
    vec![
        KeyValue::new("output.mime_type", "application/json"),
        KeyValue::new(
            "output.value",
            truncate_chars(&Value::Object(state.clone()).to_string(), content.max_chars),
        ),
    ]
}

/// Request attributes of a `chat` span, set at start (samplers see them).
pub fn chat_request_attributes(
    provider: &'static str,
    model: &str,
    request: &ChatRequest,
    server: Option<(String, u16)>,
    content: ContentPolicy,
) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", provider),
        KeyValue::new("gen_ai.system", provider),
        KeyValue::new("gen_ai.request.model", model.to_string()),
    ];
    if let Some(t) = request.temperature {
        attributes.push(KeyValue::new("gen_ai.request.temperature", f64::from(t)));
    }
    if let Some(max) = request.max_tokens {
        attributes.push(KeyValue::new("gen_ai.request.max_tokens", i64::from(max)));
    }
    if let Some(top_p) = request.extra.get("top_p").and_then(Value::as_f64) {
        attributes.push(KeyValue::new("gen_ai.request.top_p", top_p));
    }
    if !request.stop.is_empty() {
        attributes.push(KeyValue::new(
            "gen_ai.request.stop_sequences",
            OtelValue::Array(
                request
                    .stop
                    .iter()
                    .map(|s| StringValue::from(s.clone()))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        ));
    }
    if let Some((host, port)) = server {
        attributes.push(KeyValue::new("server.address", host));
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    if content.capture {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| {
                json!({
                    "role": m.role.as_str(),
                    "parts": [{"type": "text", "content": truncate_chars(&m.content, content.max_chars)}],
                })
            })
            .collect();
        attributes.push(KeyValue::new(
            "gen_ai.input.messages",
            Value::Array(messages).to_string(),
        ));
    }
    attributes
}

/// Response attributes of a `chat` span.
pub fn chat_response_attributes(response: &ChatResponse, content: ContentPolicy) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("gen_ai.response.model", response.model.clone()),
        KeyValue::new(
            "gen_ai.response.finish_reasons",
            OtelValue::Array(vec![StringValue::from(response.finish_reason.clone())].into()),
        ),
        KeyValue::new(
            "gen_ai.usage.input_tokens",
            i64::from(response.usage.input_tokens),
        ),
        KeyValue::new(
            "gen_ai.usage.output_tokens",
            i64::from(response.usage.output_tokens),
        ),
    ];
    if let Some(id) = &response.id {
        attributes.push(KeyValue::new("gen_ai.response.id", id.clone()));
    }
    if content.capture {
        let message = json!([{
            "role": "assistant",
            "parts": [{"type": "text", "content": truncate_chars(&response.content, content.max_chars)}],
            "finish_reason": response.finish_reason,
        }]);
        attributes.push(KeyValue::new("gen_ai.output.messages", message.to_string()));
    }
    attributes
}
