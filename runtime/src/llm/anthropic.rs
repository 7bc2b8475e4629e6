//! Anthropic's Messages API (`POST …/v1/messages`): the system prompt apart, `max_tokens`
//! required, content blocks, tool use, `x-api-key` and `anthropic-version` headers.

use super::http::{Wire, WireSetup};
use super::types::{ChatMessage, ChatRequest, ChatResponse, LlmError, Role, ToolCall, Usage};
use super::wire::{
    StreamState, WireCall, arguments_value, body_error, endpoint, not_the_format, parse_json,
};
use crate::spec::ProviderSettings;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` the Messages API documents as current (structured outputs in
/// `output_config` need no beta header with it).
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// The Messages API requires a limit; this one applies when neither the call nor the
/// provider's settings give one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

#[derive(Debug, Clone)]
pub struct AnthropicWire {
    pub version: String,
    pub default_max_tokens: u32,
}

/// `type: anthropic`.
pub fn from_settings(p: &ProviderSettings) -> WireSetup {
    WireSetup {
        wire: Wire::Anthropic(AnthropicWire {
            version: p
                .anthropic_version
                .clone()
                .unwrap_or_else(|| DEFAULT_VERSION.into()),
            default_max_tokens: p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        }),
        system: "anthropic",
        base_url: p
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
        standard_key_env: Some("ANTHROPIC_API_KEY"),
        example_model: "claude-sonnet-4-5",
    }
}

impl AnthropicWire {
    pub fn build(
        &self,
        base: &str,
        api_key: Option<&str>,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<WireCall, LlmError> {
        let provider = request.provider.as_deref().unwrap_or("anthropic");
        if request.seed.is_some() {
            return Err(LlmError::InvalidRequest(format!(
                "provider `{provider}` (anthropic) takes no `seed`: the Messages API has none; remove `seed` from the call"
            )));
        }
        let format = output_format(request.response_format.as_ref(), provider)?;
        let url = endpoint(base, "/v1/messages").map_err(LlmError::InvalidRequest)?;
        let mut body = self.body(request, model, stream);
        if let (Some(format), Value::Object(map)) = (format, &mut body) {
            map.insert("output_config".into(), json!({"format": format}));
        }
        let mut call = WireCall::new(url, body).header("anthropic-version", self.version.clone());
        if let Some(key) = api_key {
            call = call.secret_header("x-api-key", key);
        }
        Ok(call)
    }

    fn body(&self, request: &ChatRequest, model: &str, stream: bool) -> Value {
        let mut body = Map::new();
        body.extend(request.extra.clone());
        body.insert("model".into(), json!(model));
        body.insert(
            "max_tokens".into(),
            json!(request.max_tokens.unwrap_or(self.default_max_tokens)),
        );
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        if !system.is_empty() {
            body.insert("system".into(), json!(system.join("\n\n")));
        }
        body.insert("messages".into(), messages(&request.messages));
        if let Some(t) = &request.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if !request.stop.is_empty() {
            body.insert("stop_sequences".into(), json!(request.stop));
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(choice) = &request.tool_choice {
            let choice = match choice.as_str() {
                "auto" => json!({"type": "auto"}),
                "none" => json!({"type": "none"}),
                "required" => json!({"type": "any"}),
                name => json!({"type": "tool", "name": name}),
            };
            body.insert("tool_choice".into(), choice);
        }
        if stream {
            body.insert("stream".into(), json!(true));
        }
        Value::Object(body)
    }

    pub fn parse(&self, text: &str, requested_model: &str) -> Result<ChatResponse, LlmError> {
        let what = "an Anthropic message";
        let value: Value = parse_json(text, what)?;
        if let Some(e) = body_error(&value) {
            return Err(e.error);
        }
        // A body of another format must not pass for an empty answer.
        match value.get("type").and_then(Value::as_str) {
            Some("message") | None if value.get("content").is_some_and(Value::is_array) => {}
            _ => {
                return Err(not_the_format(
                    text,
                    what,
                    "it has no `type: message` with a `content` list",
                ));
            }
        }
        let message: Message = parse_json(text, what)?;
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for block in message.content {
            match block {
                Block::Text { text } => content.push_str(&text),
                Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input.to_string(),
                }),
                Block::Other => {}
            }
        }
        Ok(ChatResponse {
            id: message.id,
            content,
            model: message.model.unwrap_or_else(|| requested_model.to_string()),
            finish_reason: message.stop_reason.unwrap_or_else(|| "unknown".into()),
            usage: message.usage.unwrap_or_default().into(),
            tool_calls,
        })
    }

    /// Applies one SSE message; returns the text it adds.
    pub fn on_event(
        &self,
        data: &str,
        state: &mut StreamState,
    ) -> Result<Option<String>, LlmError> {
        let value: Value = parse_json(data, "an Anthropic stream event")?;
        if let Some(e) = body_error(&value) {
            state.error_retryable = e.retryable;
            return Err(e.error);
        }
        let event: Event = parse_json(data, "an Anthropic stream event")?;
        match event {
            Event::MessageStart { message } => {
                state.id = message.id;
                state.model = message.model;
                let usage = message.usage.unwrap_or_default();
                state.usage.input_tokens = usage.input_tokens;
                state.usage.output_tokens = usage.output_tokens;
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                Block::ToolUse { id, name, .. } => {
                    let slot = state.tool_call(index);
                    slot.id = id;
                    slot.name = name;
                }
                Block::Text { text } if !text.is_empty() => {
                    state.content.push_str(&text);
                    return Ok(Some(text));
                }
                _ => {}
            },
            Event::ContentBlockDelta { index, delta } => match delta {
                Delta::Text { text } => {
                    state.content.push_str(&text);
                    return Ok((!text.is_empty()).then_some(text));
                }
                Delta::InputJson { partial_json } => {
                    state.tool_call(index).arguments.push_str(&partial_json);
                }
                Delta::Other => {}
            },
            Event::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    state.finish_reason = Some(reason);
                }
                // Cumulative counts; some servers (LiteLLM) give the input here and not in
                // message_start.
                if let Some(usage) = usage {
                    if let Some(input) = usage.input_tokens.filter(|n| *n > 0) {
                        state.usage.input_tokens = input;
                    }
                    if let Some(output) = usage.output_tokens {
                        state.usage.output_tokens = output;
                    }
                }
            }
            Event::MessageStop => state.done = true,
            Event::Other => {}
        }
        Ok(None)
    }
}

/// OpenAI's `response_format` as Anthropic's `output_config.format`: a JSON schema is
/// structured output; JSON without a schema has no Anthropic equivalent.
fn output_format(format: Option<&Value>, provider: &str) -> Result<Option<Value>, LlmError> {
    let Some(format) = format else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let schema = format
                .pointer("/json_schema/schema")
                .or_else(|| format.get("schema"))
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    LlmError::InvalidRequest(
                        "`response_format` of type json_schema needs `json_schema: {name, schema}` with the schema as a mapping".into(),
                    )
                })?;
            Ok(Some(json!({"type": "json_schema", "schema": schema})))
        }
        Some("text") => Ok(None),
        _ => Err(LlmError::InvalidRequest(format!(
            "provider `{provider}` (anthropic) has JSON output only with a schema: give `response_format: {{type: json_schema, json_schema: {{name, schema}}}}`, or ask for JSON in the prompt"
        ))),
    }
}

/// Kettle's messages as Anthropic's: system messages left out (they go to `system`), tool
/// results as `tool_result` blocks of a user turn, consecutive turns of one role merged.
fn messages(messages: &[ChatMessage]) -> Value {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in messages {
        let (role, blocks) = match m.role {
            Role::System => continue,
            Role::User => ("user", vec![json!({"type": "text", "text": m.content})]),
            Role::Tool => (
                "user",
                vec![json!({"type": "tool_result",
                            "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                            "content": m.content})],
            ),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name,
                                       "input": arguments_value(&c.arguments)}));
                }
                ("assistant", blocks)
            }
        };
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    Value::Array(
        turns
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect(),
    )
}

#[derive(Deserialize)]
struct Message {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<MessageUsage>,
}

#[derive(Deserialize, Default)]
struct MessageUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
}

impl From<MessageUsage> for Usage {
    fn from(u: MessageUsage) -> Self {
        Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: Message,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: Option<DeltaUsage>,
    },
    MessageStop,
    #[serde(other)]
    Other,
}

/// `message_delta.usage`: every count optional.
#[derive(Deserialize)]
struct DeltaUsage {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_apart_and_tool_results_in_a_user_turn() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::new(Role::System, "Be brief."),
                ChatMessage::new(Role::User, "weather?"),
                ChatMessage {
                    role: Role::Assistant,
                    tool_calls: vec![ToolCall {
                        id: "toolu_1".into(),
                        name: "weather".into(),
                        arguments: "{\"city\":\"Oslo\"}".into(),
                    }],
                    ..ChatMessage::default()
                },
                ChatMessage {
                    role: Role::Tool,
                    content: "rain".into(),
                    tool_call_id: Some("toolu_1".into()),
                    ..ChatMessage::default()
                },
            ],
            ..ChatRequest::default()
        };
        let wire = AnthropicWire {
            version: DEFAULT_VERSION.into(),
            default_max_tokens: 100,
        };
        let body = wire.body(&request, "claude-x", false);
        assert_eq!(
            body,
            json!({
                "model": "claude-x", "max_tokens": 100, "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"}]}
                ]
            })
        );
    }
}
