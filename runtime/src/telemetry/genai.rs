//! Span content by the OpenTelemetry GenAI semantic conventions: the root `invoke_agent` span's
//! attributes (agent, conversation, the run's input and output) and the `chat` span's request,
//! response and (when captured) message attributes.

use super::caps::{json_chars, truncate_chars};
use super::config::ContentPolicy;
use super::semconv::*;
use crate::llm::{ChatRequest, ChatResponse};
use opentelemetry::{KeyValue, StringValue, Value as OtelValue};
use serde_json::{Map, Value, json};

/// Input keys that name the conversation a run belongs to, in order of preference.
const CONVERSATION_KEYS: &[&str] = &["conversation_id", "thread_id", "session_id"];

/// Attributes of the root span, set when it starts.
pub fn root_attributes(agent: &str, run_id: &str, input: &Map<String, Value>) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(GEN_AI_OPERATION_NAME, "invoke_agent"),
        KeyValue::new(GEN_AI_AGENT_NAME, agent.to_string()),
        KeyValue::new(super::RUN_ID_KEY, run_id.to_string()),
    ];
    let conversation = CONVERSATION_KEYS
        .iter()
        .find_map(|key| match input.get(*key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
    if let Some(id) = conversation {
        attributes.push(KeyValue::new(GEN_AI_CONVERSATION_ID, id));
    }
    attributes
}

/// The run's input, for the root span once it is known to record: a state of megabytes costs
/// its serialization only when the span is kept.
pub fn root_input(input: &Map<String, Value>, content: ContentPolicy) -> Vec<KeyValue> {
    vec![
        KeyValue::new(INPUT_MIME_TYPE, "application/json"),
        KeyValue::new(INPUT_VALUE, json_chars(input, content.max_chars)),
    ]
}

/// The run's final state, for the root span when it ends.
pub fn root_output(state: &Map<String, Value>, content: ContentPolicy) -> Vec<KeyValue> {
    vec![
        KeyValue::new(OUTPUT_MIME_TYPE, "application/json"),
        KeyValue::new(OUTPUT_VALUE, json_chars(state, content.max_chars)),
    ]
}

/// `gen_ai.tool.definitions`: the tools offered, as JSON, capped like content.
fn tool_definitions(request: &ChatRequest, content: ContentPolicy) -> KeyValue {
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    let text = Value::Array(tools).to_string();
    // Cut JSON is not JSON: past the cap, the names only.
    let text = if text.chars().count() <= content.max_chars {
        text
    } else {
        let names: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"type": "function", "name": t.name}))
            .collect();
        truncate_chars(&Value::Array(names).to_string(), content.max_chars)
    };
    KeyValue::new(GEN_AI_TOOL_DEFINITIONS, text)
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
        KeyValue::new(GEN_AI_OPERATION_NAME, "chat"),
        KeyValue::new(GEN_AI_PROVIDER_NAME, provider),
        KeyValue::new(GEN_AI_SYSTEM, provider),
        KeyValue::new(GEN_AI_REQUEST_MODEL, model.to_string()),
    ];
    if let Some(t) = request
        .temperature
        .as_ref()
        .and_then(serde_json::Number::as_f64)
    {
        attributes.push(KeyValue::new(GEN_AI_REQUEST_TEMPERATURE, t));
    }
    if let Some(max) = request.max_tokens {
        attributes.push(KeyValue::new(GEN_AI_REQUEST_MAX_TOKENS, i64::from(max)));
    }
    if let Some(top_p) = request.extra.get("top_p").and_then(Value::as_f64) {
        attributes.push(KeyValue::new(GEN_AI_REQUEST_TOP_P, top_p));
    }
    if !request.stop.is_empty() {
        attributes.push(KeyValue::new(
            GEN_AI_REQUEST_STOP_SEQUENCES,
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
        attributes.push(KeyValue::new(SERVER_ADDRESS, host));
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    if content.capture && !request.tools.is_empty() {
        attributes.push(tool_definitions(request, content));
    }
    if content.capture {
        let messages = super::genai_messages::input_messages(&request.messages, content.max_chars);
        attributes.push(KeyValue::new(GEN_AI_INPUT_MESSAGES, messages.to_string()));
    }
    attributes
}

/// Response attributes of a `chat` span.
pub fn chat_response_attributes(response: &ChatResponse, content: ContentPolicy) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(GEN_AI_RESPONSE_MODEL, response.model.clone()),
        KeyValue::new(
            GEN_AI_RESPONSE_FINISH_REASONS,
            OtelValue::Array(vec![StringValue::from(response.finish_reason.clone())].into()),
        ),
        KeyValue::new(
            GEN_AI_USAGE_INPUT_TOKENS,
            i64::from(response.usage.input_tokens),
        ),
        KeyValue::new(
            GEN_AI_USAGE_OUTPUT_TOKENS,
            i64::from(response.usage.output_tokens),
        ),
    ];
    if let Some(id) = &response.id {
        attributes.push(KeyValue::new(GEN_AI_RESPONSE_ID, id.clone()));
    }
    if content.capture {
        let message = super::genai_messages::output_messages(response, content.max_chars);
        attributes.push(KeyValue::new(GEN_AI_OUTPUT_MESSAGES, message.to_string()));
    }
    attributes
}
