//! Chat messages read from JSON (a `messages:` list of an `llm.*` node, a recording): every
//! form a tool call comes back in is accepted as it came, so that an answer can be fed back
//! unchanged, and a mistake names the message and the field (`messages[2].tool_calls[0].name`).

use super::types::{ChatMessage, Role, ToolCall};
use serde_json::{Map, Value};

/// The messages of a `messages:` list.
pub fn messages_from_value(list: &Value) -> Result<Vec<ChatMessage>, String> {
    let Value::Array(items) = list else {
        return Err(format!(
            "`messages` must be a list of {{role, content}}, not {}",
            kind(list)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| message(item).map_err(|e| format!("`messages[{i}]{e}")))
        .collect()
}

/// One message; an error starts with the field at fault (`.role`: …, or `: …` for the whole).
fn message(value: &Value) -> Result<ChatMessage, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "` must be a mapping {{role, content}}, not {}",
            kind(value)
        ));
    };
    let role = match map.get("role") {
        Some(Value::String(r)) => match r.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(format!(
                    ".role` is `{other}`; use system, user, assistant or tool"
                ));
            }
        },
        None => return Err("` has no `role`: give system, user, assistant or tool".into()),
        Some(other) => return Err(format!(".role` must be text, not {}", kind(other))),
    };
    let content = match map.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        // A tool's answer is often a structure: the model reads it as JSON.
        Some(v @ (Value::Object(_) | Value::Array(_))) if role == Role::Tool => v.to_string(),
        Some(Value::Array(parts)) => text_parts(parts).map_err(|e| format!(".content{e}"))?,
        Some(other) => return Err(format!(".content` must be text, not {}", kind(other))),
    };
    let tool_calls = match map.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(calls)) => calls
            .iter()
            .enumerate()
            .map(|(j, c)| tool_call(c).map_err(|e| format!(".tool_calls[{j}]{e}")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                ".tool_calls` must be a list of {{id, name, arguments}}, not {}",
                kind(other)
            ));
        }
    };
    let tool_call_id = match map.get("tool_call_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => return Err(format!(".tool_call_id` must be text, not {}", kind(other))),
    };
    if role == Role::Tool && tool_call_id.is_none() {
        return Err(
            "` is a `role: tool` message without `tool_call_id`: give the `id` of the tool call it answers".into(),
        );
    }
    Ok(ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
    })
}

/// OpenAI's content parts: only text parts can be sent on; joined.
fn text_parts(parts: &[Value]) -> Result<String, String> {
    let mut text = String::new();
    for (k, part) in parts.iter().enumerate() {
        match (
            part.get("type").and_then(Value::as_str),
            part.get("text").and_then(Value::as_str),
        ) {
            (Some("text") | None, Some(t)) => text.push_str(t),
            _ => {
                return Err(format!(
                    "[{k}]` is not a text part {{type: text, text}}; Kettle sends text only"
                ));
            }
        }
    }
    Ok(text)
}

/// A tool call as `llm.tools` stores it (`{id, name, arguments}`, arguments an object) or in
/// OpenAI's form (`{id, type: function, function: {name, arguments}}`, arguments as JSON
/// text). An error starts with the field at fault.
pub fn tool_call(value: &Value) -> Result<ToolCall, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "` must be a mapping {{id, name, arguments}}, not {}",
            kind(value)
        ));
    };
    let (inner, prefix): (&Map<String, Value>, &str) = match map.get("function") {
        Some(Value::Object(f)) => (f, ".function"),
        Some(other) => {
            return Err(format!(
                ".function` must be a mapping {{name, arguments}}, not {}",
                kind(other)
            ));
        }
        None => (map, ""),
    };
    let id = match map.get("id") {
        Some(Value::String(id)) => id.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => return Err(format!(".id` must be text, not {}", kind(other))),
    };
    let name = match inner.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(format!("{prefix}.name` is missing: name the tool called"));
        }
        Some(other) => return Err(format!("{prefix}.name` must be text, not {}", kind(other))),
    };
    let arguments = match inner.get("arguments") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(other) => {
            return Err(format!(
                "{prefix}.arguments` must be an object or JSON text, not {}",
                kind(other)
            ));
        }
    };
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_calls_in_both_forms() {
        let stored = json!({"id": "c1", "name": "weather", "arguments": {"city": "Oslo"}});
        let openai = json!({"id": "c1", "type": "function",
                            "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}});
        let a = tool_call(&stored).expect("stored form");
        let b = tool_call(&openai).expect("OpenAI form");
        assert_eq!(a.name, "weather");
        assert_eq!(
            serde_json::from_str::<Value>(&a.arguments).expect("json"),
            serde_json::from_str::<Value>(&b.arguments).expect("json")
        );
    }

    #[test]
    fn errors_name_the_message_and_field() {
        let list = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "name": "w", "arguments": [1]}]}
        ]);
        assert_eq!(
            messages_from_value(&list).unwrap_err(),
            "`messages[1].tool_calls[0].arguments` must be an object or JSON text, not a list"
        );
        let list = json!([{"role": "tool", "content": {"rain": true}}]);
        assert!(
            messages_from_value(&list)
                .unwrap_err()
                .starts_with("`messages[0]` is a `role: tool` message without `tool_call_id`")
        );
        let list = json!([{"role": "robot", "content": "x"}]);
        assert!(
            messages_from_value(&list)
                .unwrap_err()
                .starts_with("`messages[0].role` is `robot`")
        );
    }
}
