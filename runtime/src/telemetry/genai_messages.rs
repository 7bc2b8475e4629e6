//! Captured content (`capture_content: true`) in the GenAI semantic conventions' message
//! schema: `gen_ai.input.messages` and `gen_ai.output.messages` as lists of `{role, parts}`,
//! with a part per piece of the message — `text`, `tool_call` (id, name, arguments) and
//! `tool_call_response` (id, response) — so that a tool round trip reads back whole.

use super::caps::truncate_chars;
use crate::llm::{ChatMessage, ChatResponse, Role, ToolCall};
use serde_json::{Value, json};

/// `gen_ai.input.messages`: every message of the request.
pub fn input_messages(messages: &[ChatMessage], max_chars: usize) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| {
                let mut parts = Vec::new();
                if m.role == Role::Tool {
                    parts.push(json!({
                        "type": "tool_call_response",
                        "id": m.tool_call_id,
                        "response": truncate_chars(&m.content, max_chars),
                    }));
                } else if !m.content.is_empty() || m.tool_calls.is_empty() {
                    parts.push(text_part(&m.content, max_chars));
                }
                parts.extend(m.tool_calls.iter().map(|c| tool_call_part(c, max_chars)));
                json!({"role": m.role.as_str(), "parts": parts})
            })
            .collect(),
    )
}

/// `gen_ai.output.messages`: the answer, its text and the tool calls it asks for.
pub fn output_messages(response: &ChatResponse, max_chars: usize) -> Value {
    let mut parts = Vec::new();
    if !response.content.is_empty() || response.tool_calls.is_empty() {
        parts.push(text_part(&response.content, max_chars));
    }
    parts.extend(
        response
            .tool_calls
            .iter()
            .map(|c| tool_call_part(c, max_chars)),
    );
    json!([{"role": "assistant", "parts": parts, "finish_reason": response.finish_reason}])
}

fn text_part(text: &str, max_chars: usize) -> Value {
    json!({"type": "text", "content": truncate_chars(text, max_chars)})
}

/// Arguments as the JSON object they are; as text when the model wrote something else (or
/// when they are over the capture limit, cut).
fn tool_call_part(call: &ToolCall, max_chars: usize) -> Value {
    let arguments = match serde_json::from_str::<Value>(&call.arguments) {
        Ok(value) if call.arguments.chars().count() <= max_chars => value,
        _ => Value::String(truncate_chars(&call.arguments, max_chars)),
    };
    json!({"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;

    #[test]
    fn a_tool_round_trip_keeps_its_calls_and_answers() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "weather".into(),
            arguments: "{\"city\":\"Oslo\"}".into(),
        };
        let messages = vec![
            ChatMessage::new(Role::User, "weather?"),
            ChatMessage {
                role: Role::Assistant,
                tool_calls: vec![call.clone()],
                ..ChatMessage::default()
            },
            ChatMessage {
                role: Role::Tool,
                content: "rain".into(),
                tool_call_id: Some("call_1".into()),
                ..ChatMessage::default()
            },
        ];
        assert_eq!(
            input_messages(&messages, 1000),
            json!([
                {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Oslo"}}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rain"}]}
            ])
        );
        let response = ChatResponse {
            id: None,
            content: String::new(),
            model: "m".into(),
            finish_reason: "tool_calls".into(),
            usage: Usage::default(),
            tool_calls: vec![call],
        };
        assert_eq!(
            output_messages(&response, 1000),
            json!([{"role": "assistant", "finish_reason": "tool_calls", "parts": [
                {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Oslo"}}]}])
        );
    }
}
