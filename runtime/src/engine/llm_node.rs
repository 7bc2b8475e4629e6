//! The `uses: llm.call` node: its `with:` rendered against the state, sent through the same
//! traced path as a component's `llm.call`.

use crate::llm::{ChatMessage, ChatRequest, ChatResponse, Role};
use serde_json::{Map, Value, json};

/// Builds the request from rendered `with:` parameters.
pub fn request_from(with: &Map<String, Value>) -> Result<ChatRequest, String> {
    let mut messages = Vec::new();
    if let Some(system) = with.get("system") {
        messages.push(ChatMessage {
            role: Role::System,
            content: text(system, "system")?,
        });
    }
    if let Some(list) = with.get("messages") {
        let list: Vec<ChatMessage> = serde_json::from_value(list.clone()).map_err(|e| {
            format!("`messages` must be a list of {{role, content}} with role system|user|assistant|tool: {e}")
        })?;
        messages.extend(list);
    }
    if let Some(prompt) = with.get("prompt") {
        messages.push(ChatMessage {
            role: Role::User,
            content: text(prompt, "prompt")?,
        });
    }
    let number = |key: &str| with.get(key).filter(|v| !v.is_null());
    Ok(ChatRequest {
        messages,
        model: with.get("model").map(|m| text(m, "model")).transpose()?,
        temperature: number("temperature")
            .map(|v| {
                v.as_f64()
                    .map(|f| f as f32)
                    .ok_or("`temperature` must be a number")
            })
            .transpose()?,
        max_tokens: number("max_tokens")
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or("`max_tokens` must be a positive integer")
            })
            .transpose()?,
        stop: match with.get("stop") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| "`stop` must be a string or a list of strings")?,
        },
        extra: Map::new(),
    })
}

/// What the node stores under its `output:` key.
pub fn result_value(response: &ChatResponse) -> Value {
    json!({
        "content": response.content,
        "model": response.model,
        "finish_reason": response.finish_reason,
        "usage": {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
        },
    })
}

fn text(value: &Value, key: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(value.to_string()),
        _ => Err(format!("`{key}` must be text")),
    }
}
