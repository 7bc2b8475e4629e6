//! OpenInference attributes (`settings.tracing.conventions: openinference | both`), derived
//! when a span is exported from what the host's spans already carry: the span kind (AGENT for
//! the run, LLM for `chat`, CHAIN for node, parallel, step, iteration and item spans), the
//! agent and graph node, the session, and for `chat` spans the model, token counts, messages,
//! tool calls and tool definitions (those last only when content is captured, since they come
//! from the captured `gen_ai.*` messages). Guest-made spans get nothing: a guest cannot make
//! its span look like the host's. With `genai`, nothing is added.

use super::config::Conventions;
use super::semconv::*;
use super::span::GRAPH_PARENT_KEY;
use opentelemetry::{KeyValue, Value as OtelValue};
use opentelemetry_sdk::trace::SpanData;
use serde_json::Value;

pub const SPAN_KIND: &str = "openinference.span.kind";
/// Messages (and tool calls per message, tools) mapped at most, to keep a span's attributes few.
const MAX_MESSAGES: usize = 32;
const MAX_TOOL_CALLS: usize = 16;
const MAX_TOOLS: usize = 32;

/// Adds the OpenInference attributes `conventions` asks for; removes Kettle's graph
/// bookkeeping in any case.
pub fn enrich(span: &mut SpanData, conventions: Conventions) {
    let parent = take(&mut span.attributes, GRAPH_PARENT_KEY);
    if !conventions.openinference() || text(span, "kettle.span.origin").as_deref() == Some("guest")
    {
        return;
    }
    let mut added = Vec::new();
    match text(span, GEN_AI_OPERATION_NAME).as_deref() {
        Some("invoke_agent") => {
            added.push(KeyValue::new(SPAN_KIND, "AGENT"));
            if let Some(agent) = text(span, GEN_AI_AGENT_NAME) {
                added.push(KeyValue::new("agent.name", agent.clone()));
                added.push(KeyValue::new("graph.node.id", agent));
            }
            if let Some(session) = text(span, GEN_AI_CONVERSATION_ID) {
                added.push(KeyValue::new("session.id", session));
            }
        }
        Some("chat") => {
            added.push(KeyValue::new(SPAN_KIND, "LLM"));
            llm(span, &mut added);
        }
        _ => {
            let Some(node) = text(span, "kettle.node.name") else {
                return;
            };
            added.push(KeyValue::new(SPAN_KIND, "CHAIN"));
            if span.name.starts_with("node ") {
                added.push(KeyValue::new("graph.node.id", node));
                if let Some(parent) = parent {
                    added.push(KeyValue::new("graph.node.parent_id", parent));
                }
            }
        }
    }
    span.attributes.extend(added);
}

fn llm(span: &SpanData, added: &mut Vec<KeyValue>) {
    let model = text(span, GEN_AI_RESPONSE_MODEL).or_else(|| text(span, GEN_AI_REQUEST_MODEL));
    if let Some(model) = model {
        added.push(KeyValue::new("llm.model_name", model));
    }
    if let Some(provider) = text(span, GEN_AI_PROVIDER_NAME) {
        added.push(KeyValue::new("llm.provider", provider.clone()));
        added.push(KeyValue::new("llm.system", provider));
    }
    let input = int(span, GEN_AI_USAGE_INPUT_TOKENS);
    let output = int(span, GEN_AI_USAGE_OUTPUT_TOKENS);
    if let Some(n) = input {
        added.push(KeyValue::new("llm.token_count.prompt", n));
    }
    if let Some(n) = output {
        added.push(KeyValue::new("llm.token_count.completion", n));
    }
    if let (Some(i), Some(o)) = (input, output) {
        added.push(KeyValue::new("llm.token_count.total", i + o));
    }
    let mut parameters = serde_json::Map::new();
    for (key, name) in [
        (GEN_AI_REQUEST_TEMPERATURE, "temperature"),
        (GEN_AI_REQUEST_MAX_TOKENS, "max_tokens"),
        (GEN_AI_REQUEST_TOP_P, "top_p"),
        (GEN_AI_REQUEST_SEED, "seed"),
    ] {
        if let Some(value) = attribute(span, key) {
            parameters.insert(name.into(), json_of(value));
        }
    }
    added.push(KeyValue::new(
        "llm.invocation_parameters",
        Value::Object(parameters).to_string(),
    ));
    if let Some(messages) = text(span, GEN_AI_INPUT_MESSAGES) {
        added.push(KeyValue::new(INPUT_VALUE, messages.clone()));
        added.push(KeyValue::new(INPUT_MIME_TYPE, "application/json"));
        messages_attributes("llm.input_messages", &messages, added);
    }
    if let Some(messages) = text(span, GEN_AI_OUTPUT_MESSAGES) {
        let answer = serde_json::from_str::<Value>(&messages)
            .ok()
            .and_then(|v| v.as_array()?.first().map(content_of));
        if let Some(answer) = answer {
            added.push(KeyValue::new(OUTPUT_VALUE, answer));
            added.push(KeyValue::new(OUTPUT_MIME_TYPE, "text/plain"));
        }
        messages_attributes("llm.output_messages", &messages, added);
    }
    if let Some(Value::Array(tools)) =
        text(span, GEN_AI_TOOL_DEFINITIONS).and_then(|t| serde_json::from_str(&t).ok())
    {
        for (i, tool) in tools.iter().take(MAX_TOOLS).enumerate() {
            let schema = serde_json::json!({
                "type": "function",
                "function": {
                    "name": tool.get("name"),
                    "description": tool.get("description"),
                    "parameters": tool.get("parameters"),
                },
            });
            added.push(KeyValue::new(
                format!("llm.tools.{i}.tool.json_schema"),
                schema.to_string(),
            ));
        }
    }
}

/// `{prefix}.N.message.role`, `.content` and `.tool_calls.M.tool_call.*` of GenAI messages
/// (`[{role, parts: [{type: text, content} | {type: tool_call, id, name, arguments}]}]`).
fn messages_attributes(prefix: &str, messages: &str, added: &mut Vec<KeyValue>) {
    let Ok(Value::Array(messages)) = serde_json::from_str::<Value>(messages) else {
        return;
    };
    for (i, message) in messages.iter().take(MAX_MESSAGES).enumerate() {
        let at = format!("{prefix}.{i}.message");
        if let Some(role) = message.get("role").and_then(Value::as_str) {
            added.push(KeyValue::new(format!("{at}.role"), role.to_string()));
        }
        added.push(KeyValue::new(format!("{at}.content"), content_of(message)));
        let calls = message
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("tool_call"));
        for (j, call) in calls.take(MAX_TOOL_CALLS).enumerate() {
            let call_at = format!("{at}.tool_calls.{j}.tool_call");
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                added.push(KeyValue::new(format!("{call_at}.id"), id.to_string()));
            }
            if let Some(name) = call.get("name").and_then(Value::as_str) {
                added.push(KeyValue::new(
                    format!("{call_at}.function.name"),
                    name.to_string(),
                ));
            }
            if let Some(arguments) = call.get("arguments") {
                let arguments = match arguments {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                added.push(KeyValue::new(
                    format!("{call_at}.function.arguments"),
                    arguments,
                ));
            }
        }
    }
}

/// The text parts of a message, joined.
fn content_of(message: &Value) -> String {
    match message.get("parts").and_then(Value::as_array) {
        Some(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        None => message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> Option<String> {
    match attribute(span, key)? {
        OtelValue::String(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn int(span: &SpanData, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        OtelValue::I64(n) => Some(*n),
        _ => None,
    }
}

fn json_of(value: &OtelValue) -> Value {
    match value {
        OtelValue::Bool(b) => Value::Bool(*b),
        OtelValue::I64(n) => Value::from(*n),
        OtelValue::F64(f) => Value::from(*f),
        other => Value::String(other.as_str().into_owned()),
    }
}

fn take(attributes: &mut Vec<KeyValue>, key: &str) -> Option<String> {
    let at = attributes.iter().position(|kv| kv.key.as_str() == key)?;
    Some(attributes.remove(at).value.as_str().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    fn span(name: &str, attributes: Vec<KeyValue>) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                Default::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: name.to_string().into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    fn get<'a>(span: &'a SpanData, key: &str) -> Option<&'a OtelValue> {
        attribute(span, key)
    }

    /// The GenAI conventions' tool-call parts (what the LLM layer writes) become OpenInference
    /// `message.tool_calls`.
    #[test]
    fn tool_call_parts_become_message_tool_calls() {
        let output = serde_json::json!([{
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Looking it up."},
                {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Oslo"}},
                {"type": "tool_call", "id": "call_2", "name": "time", "arguments": "{}"},
            ],
        }]);
        let mut chat = span(
            "chat gpt",
            vec![
                KeyValue::new(GEN_AI_OPERATION_NAME, "chat"),
                KeyValue::new(GEN_AI_OUTPUT_MESSAGES, output.to_string()),
            ],
        );
        enrich(&mut chat, Conventions::Both);
        let at = "llm.output_messages.0.message.tool_calls";
        assert_eq!(
            get(&chat, &format!("{at}.0.tool_call.function.name")),
            Some(&OtelValue::from("weather"))
        );
        assert_eq!(
            get(&chat, &format!("{at}.0.tool_call.function.arguments")),
            Some(&OtelValue::from(r#"{"city":"Oslo"}"#))
        );
        assert_eq!(
            get(&chat, &format!("{at}.1.tool_call.id")),
            Some(&OtelValue::from("call_2"))
        );
        assert_eq!(
            get(&chat, OUTPUT_VALUE),
            Some(&OtelValue::from("Looking it up."))
        );
    }

    #[test]
    fn genai_adds_nothing_and_drops_the_graph_bookkeeping() {
        let attributes = vec![
            KeyValue::new("kettle.node.name", "a"),
            KeyValue::new(GRAPH_PARENT_KEY, "agent"),
        ];
        let mut node = span("node a", attributes);
        enrich(&mut node, Conventions::GenAi);
        assert_eq!(
            node.attributes,
            vec![KeyValue::new("kettle.node.name", "a")]
        );
    }
}
