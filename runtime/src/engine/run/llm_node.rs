//! The `uses: llm.call`, `llm.stream` and `llm.tools` nodes: their `with:` rendered against the
//! state, sent through the same traced path as a component's calls, the answer stored under
//! `output` as `{content, usage, model, finish_reason, tool_calls}`.

use crate::capabilities::{LlmUsage, NodeWatch, traced_call, traced_stream};
use crate::checkpoint::ExecutionTape;
use crate::graph::LlmAction;
use crate::llm::{
    ChatMessage, ChatRequest, ChatResponse, LlmClient, LlmError, Role, StreamItem, Tool,
    shell_provider_key,
};
use crate::spec::SHELL;
use crate::telemetry::{ContentPolicy, SpanHandle};
use opentelemetry_sdk::trace::SdkTracer;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Performs the action: a call, or a stream read to its end.
#[allow(clippy::too_many_arguments)]
pub async fn perform(
    action: LlmAction,
    client: &LlmClient,
    tracer: &SdkTracer,
    parent: &SpanHandle,
    usage: &Arc<LlmUsage>,
    content: ContentPolicy,
    request: ChatRequest,
    tape: Option<Arc<ExecutionTape>>,
    watch: Option<NodeWatch>,
) -> Result<ChatResponse, LlmError> {
    match action {
        LlmAction::Call | LlmAction::Tools => {
            traced_call(
                client,
                tracer,
                parent,
                usage,
                content,
                request,
                tape.as_deref(),
                watch.as_ref(),
            )
            .await
        }
        LlmAction::Stream => {
            let mut stream = traced_stream(
                client,
                tracer,
                parent,
                usage,
                content,
                request,
                tape.as_ref(),
                watch.as_ref(),
            )
            .await?;
            loop {
                match stream.next().await? {
                    Some(StreamItem::Delta(_)) => {}
                    Some(StreamItem::End(response)) => return Ok(response),
                    None => {
                        return Err(LlmError::Provider(
                            "the stream ended without an answer".into(),
                        ));
                    }
                }
            }
        }
    }
}

/// Builds the request from rendered `with:` parameters.
pub fn request_from(action: LlmAction, with: &Map<String, Value>) -> Result<ChatRequest, String> {
    let mut messages = Vec::new();
    if let Some(system) = with.get("system") {
        messages.push(ChatMessage::new(Role::System, text(system, "system")?));
    }
    if let Some(list) = with.get("messages") {
        messages.extend(crate::llm::messages_from_value(list)?);
    }
    if let Some(prompt) = with.get("prompt") {
        messages.push(ChatMessage::new(Role::User, text(prompt, "prompt")?));
    }
    let present = |key: &str| with.get(key).filter(|v| !v.is_null());
    let optional_text = |key: &str| present(key).map(|v| text(v, key)).transpose();
    let tools = match present("tools") {
        None => Vec::new(),
        Some(Value::Array(tools)) => tools
            .iter()
            .enumerate()
            .map(|(i, t)| tool(t).map_err(|e| format!("`tools[{i}]`: {e}")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`tools` must be a list of {name, description, parameters}".into()),
    };
    if action == LlmAction::Tools && tools.is_empty() {
        return Err("llm.tools needs `tools`: a list of {name, description, parameters}".into());
    }
    Ok(ChatRequest {
        messages,
        model: optional_text("model")?,
        temperature: present("temperature")
            .map(|v| match v {
                Value::Number(n) => Ok(n.clone()),
                _ => Err("`temperature` must be a number"),
            })
            .transpose()?,
        max_tokens: present("max_tokens")
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
        seed: present("seed")
            .map(|v| v.as_i64().ok_or("`seed` must be an integer"))
            .transpose()?,
        tools,
        tool_choice: optional_text("tool_choice")?,
        response_format: match present("response_format") {
            None => None,
            Some(Value::String(kind)) if kind == "json" || kind == "json_object" => {
                Some(json!({"type": "json_object"}))
            }
            Some(format @ Value::Object(_)) => Some(format.clone()),
            Some(_) => {
                return Err("`response_format` must be `json` or an object such as {type: json_schema, json_schema: {name, schema}}".into());
            }
        },
        provider: provider(optional_text("provider")?, optional_text("shell_provider")?)?,
        api_base: optional_text("api_base")?,
        extra: Map::new(),
    })
}

/// The provider a call goes to: TEA's `provider: shell` with `shell_provider: NAME` is the
/// shell provider NAME.
fn provider(provider: Option<String>, shell: Option<String>) -> Result<Option<String>, String> {
    match (provider, shell) {
        (None, Some(shell)) => Ok(Some(shell_provider_key(&shell))),
        (Some(p), Some(shell)) if p == SHELL => Ok(Some(shell_provider_key(&shell))),
        (Some(p), Some(_)) => Err(format!(
            "`shell_provider` needs `provider: shell`, not `{p}`"
        )),
        (Some(p), None) if p == SHELL => {
            Err("`provider: shell` needs `shell_provider: NAME`, such as `claude`".into())
        }
        (p, None) => Ok(p),
    }
}

/// A tool in OpenAI's form (`{type: function, function: {...}}`) or plain `{name, ...}`.
fn tool(value: &Value) -> Result<Tool, String> {
    let inner = value.get("function").unwrap_or(value);
    serde_json::from_value(inner.clone()).map_err(|e| format!("not a tool ({e})"))
}

/// What the node stores under its `output:` key.
pub fn result_value(response: &ChatResponse) -> Value {
    let tool_calls: Vec<Value> = response
        .tool_calls
        .iter()
        .map(|c| {
            // Arguments as the JSON they are, or the model's text when it is not JSON.
            let arguments = serde_json::from_str::<Value>(&c.arguments)
                .unwrap_or_else(|_| Value::String(c.arguments.clone()));
            json!({"id": c.id, "name": c.name, "arguments": arguments})
        })
        .collect();
    json!({
        "content": response.content,
        "model": response.model,
        "finish_reason": response.finish_reason,
        "usage": {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
        },
        "tool_calls": tool_calls,
    })
}

fn text(value: &Value, key: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(value.to_string()),
        _ => Err(format!("`{key}` must be text")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn tea_parameters_and_tools() {
        let request = request_from(
            LlmAction::Tools,
            &with(json!({
                "model": "gpt-4o", "provider": "local", "api_base": "http://127.0.0.1:9/v1",
                "messages": [{"role": "user", "content": "weather?"}],
                "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
                "response_format": "json", "seed": 4
            })),
        )
        .unwrap();
        assert_eq!(request.provider.as_deref(), Some("local"));
        assert_eq!(request.api_base.as_deref(), Some("http://127.0.0.1:9/v1"));
        assert_eq!(request.tools[0].name, "weather");
        assert_eq!(
            request.response_format,
            Some(json!({"type": "json_object"}))
        );
        assert_eq!(request.seed, Some(4));
        let missing = request_from(LlmAction::Tools, &with(json!({"prompt": "x"})));
        assert!(missing.unwrap_err().contains("needs `tools`"));
    }
}
