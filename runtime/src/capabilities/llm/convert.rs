//! Conversions between the `llm` interface's WIT types and the provider-neutral
//! [`crate::llm`] types.

use super::super::bindings::llm as wit;
use crate::llm::{
    ChatMessage, ChatRequest, ChatResponse, LlmError, Role, Tool, ToolCall, temperature_from_f32,
};
use serde_json::{Map, Value};

pub(super) fn from_wit(request: wit::Request) -> Result<ChatRequest, LlmError> {
    Ok(ChatRequest {
        messages: request
            .messages
            .into_iter()
            .map(|m| ChatMessage::new(role(m.role), m.content))
            .collect(),
        model: request.model,
        temperature: request.temperature.and_then(temperature_from_f32),
        max_tokens: request.max_tokens,
        stop: request.stop,
        extra: extra(request.extra.as_deref())?,
        ..ChatRequest::default()
    })
}

pub(super) fn from_wit_chat(request: wit::ChatRequest) -> Result<ChatRequest, LlmError> {
    let tools = request
        .tools
        .into_iter()
        .map(|t| {
            let parameters = json_object(Some(&t.parameters), "tool parameters")?
                .map_or_else(|| Value::Object(Map::new()), Value::Object);
            Ok(Tool {
                name: t.name,
                description: t.description,
                parameters,
            })
        })
        .collect::<Result<_, LlmError>>()?;
    Ok(ChatRequest {
        messages: request
            .messages
            .into_iter()
            .map(|m| ChatMessage {
                role: role(m.role),
                content: m.content,
                tool_calls: m.tool_calls.into_iter().map(from_wit_tool_call).collect(),
                tool_call_id: m.tool_call_id,
            })
            .collect(),
        model: request.model,
        temperature: request.temperature.and_then(temperature_from_f32),
        max_tokens: request.max_tokens,
        stop: request.stop,
        seed: request.seed,
        tools,
        tool_choice: request.tool_choice,
        response_format: json_object(request.response_format.as_deref(), "response-format")?
            .map(Value::Object),
        provider: request.provider,
        api_base: None,
        extra: extra(request.extra.as_deref())?,
    })
}

/// Keys of the provider's request body the host owns: what the request has its own field for,
/// how the answer comes back (`stream`, `n`), and who is calling on whose account (`user`,
/// keys). `extra` may set none of them.
const HOST_OWNED_KEYS: &[&str] = &[
    "model",
    "messages",
    "system",
    "stream",
    "stream_options",
    "n",
    "user",
    "metadata",
    "api_key",
    "api-key",
    "apiKey",
    "key",
    "authorization",
    "headers",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
];

/// The request's `extra` options, refused when they set a key the host owns.
fn extra(text: Option<&str>) -> Result<Map<String, Value>, LlmError> {
    let extra = json_object(text, "extra")?.unwrap_or_default();
    if let Some(key) = extra.keys().find(|k| {
        HOST_OWNED_KEYS
            .iter()
            .any(|owned| owned.eq_ignore_ascii_case(k))
    }) {
        return Err(LlmError::InvalidRequest(format!(
            "`extra` may not set `{key}`: Kettle sets it itself; use the request's own fields (model, temperature, max-tokens, stop, tools, …) or the streaming call instead"
        )));
    }
    Ok(extra)
}

/// Parses an optional JSON object handed over as text.
fn json_object(text: Option<&str>, what: &str) -> Result<Option<Map<String, Value>>, LlmError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(LlmError::InvalidRequest(format!(
                "`{what}` must be a JSON object"
            ))),
            Err(e) => Err(LlmError::InvalidRequest(format!(
                "`{what}` is not JSON: {e}"
            ))),
        },
    }
}

fn role(role: wit::Role) -> Role {
    match role {
        wit::Role::System => Role::System,
        wit::Role::User => Role::User,
        wit::Role::Assistant => Role::Assistant,
        wit::Role::Tool => Role::Tool,
    }
}

fn from_wit_tool_call(c: wit::ToolCall) -> ToolCall {
    ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn to_wit_tool_call(c: ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn to_wit_usage(response: &ChatResponse) -> wit::Usage {
    wit::Usage {
        input_tokens: response.usage.input_tokens,
        output_tokens: response.usage.output_tokens,
    }
}

pub(super) fn to_wit_response(response: ChatResponse) -> wit::Response {
    wit::Response {
        usage: to_wit_usage(&response),
        content: response.content,
        model: response.model,
        finish_reason: response.finish_reason,
    }
}

pub(super) fn to_wit_chat_response(response: ChatResponse) -> wit::ChatResponse {
    wit::ChatResponse {
        usage: to_wit_usage(&response),
        content: response.content,
        model: response.model,
        finish_reason: response.finish_reason,
        tool_calls: response
            .tool_calls
            .into_iter()
            .map(to_wit_tool_call)
            .collect(),
    }
}

pub(super) fn to_wit_error(error: LlmError) -> wit::LlmError {
    match error {
        LlmError::Denied(m) => wit::LlmError::Denied(m),
        LlmError::InvalidRequest(m) => wit::LlmError::InvalidRequest(m),
        LlmError::RateLimited(m) => wit::LlmError::RateLimited(m),
        LlmError::Timeout(m) => wit::LlmError::Timeout(m),
        LlmError::Provider(m) => wit::LlmError::Provider(m),
        LlmError::NotRecorded(m) => wit::LlmError::Provider(format!("not recorded: {m}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_cannot_set_host_owned_keys() {
        for key in ["stream", "n", "user", "api_key", "Model"] {
            let text = format!("{{\"{key}\": 1, \"top_p\": 0.9}}");
            assert!(
                matches!(extra(Some(&text)), Err(LlmError::InvalidRequest(m)) if m.contains(&format!("`{key}`"))),
                "{key} is refused"
            );
        }
        assert_eq!(extra(Some(r#"{"top_p": 0.9}"#)).unwrap().len(), 1);
        assert!(extra(None).unwrap().is_empty());
    }
}
