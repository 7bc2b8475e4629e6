//! Ollama's native chat API (`POST …/api/chat`), for servers run without the OpenAI layer:
//! options under `options`, JSON mode as `format`, streams as newline-delimited JSON.

use super::http::{Wire, WireSetup};
use super::types::{ChatMessage, ChatRequest, ChatResponse, LlmError, Role, Usage};
use super::wire::{
    StreamState, WireCall, arguments_value, body_error, endpoint, not_the_format, parse_json,
};
use crate::spec::ProviderSettings;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub const DEFAULT_BASE_URL: &str = "http://localhost:11434";

#[derive(Debug, Clone)]
pub struct OllamaWire;

/// `type: ollama`: a local server, which needs no key.
pub fn from_settings(p: &ProviderSettings) -> WireSetup {
    WireSetup {
        wire: Wire::Ollama(OllamaWire),
        system: "ollama",
        base_url: p
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
        standard_key_env: None,
        example_model: "llama3.2",
    }
}

impl OllamaWire {
    pub fn build(
        &self,
        base: &str,
        api_key: Option<&str>,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<WireCall, LlmError> {
        let url = endpoint(base, "/api/chat").map_err(LlmError::InvalidRequest)?;
        let mut call = WireCall::new(url, body(request, model, stream)?);
        if let Some(key) = api_key {
            call = call.secret_header("authorization", format!("Bearer {key}"));
        }
        Ok(call)
    }

    pub fn parse(&self, text: &str, requested_model: &str) -> Result<ChatResponse, LlmError> {
        let mut state = StreamState::default();
        self.on_event(text, &mut state)?;
        Ok(state.into_response(requested_model))
    }

    /// Applies one JSON line; returns the text it adds.
    pub fn on_event(
        &self,
        data: &str,
        state: &mut StreamState,
    ) -> Result<Option<String>, LlmError> {
        let what = "an Ollama chat answer";
        let value: Value = parse_json(data, what)?;
        if let Some(e) = body_error(&value) {
            state.error_retryable = e.retryable;
            return Err(e.error);
        }
        // Every line of /api/chat has its `message`; any other JSON is not an answer.
        if !value.get("message").is_some_and(Value::is_object) {
            return Err(not_the_format(data, what, "it has no `message`"));
        }
        let answer: Answer = parse_json(data, what)?;
        let before = state.content.len();
        apply(answer, state);
        let added = state.content[before..].to_string();
        Ok((!added.is_empty()).then_some(added))
    }
}

fn body(request: &ChatRequest, model: &str, stream: bool) -> Result<Value, LlmError> {
    // Ollama has no `tool_choice`: `auto` is what it does, `none` is a call without tools;
    // anything else it cannot honour.
    let send_tools = match request.tool_choice.as_deref() {
        None | Some("auto") => true,
        Some("none") => false,
        Some(other) => {
            return Err(LlmError::InvalidRequest(format!(
                "provider `{}` (ollama) takes no `tool_choice: {other}`: Ollama's chat API cannot force a tool; use `auto` or `none`, or an OpenAI-compatible provider",
                request.provider.as_deref().unwrap_or("ollama")
            )));
        }
    };
    let mut body = Map::new();
    body.extend(request.extra.clone());
    body.insert("model".into(), json!(model));
    body.insert(
        "messages".into(),
        Value::Array(
            request
                .messages
                .iter()
                .map(|m| message(m, &request.messages))
                .collect(),
        ),
    );
    body.insert("stream".into(), json!(stream));
    let mut options = match body.remove("options") {
        Some(Value::Object(options)) => options,
        _ => Map::new(),
    };
    if let Some(t) = &request.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(max) = request.max_tokens {
        options.insert("num_predict".into(), json!(max));
    }
    if !request.stop.is_empty() {
        options.insert("stop".into(), json!(request.stop));
    }
    if let Some(seed) = request.seed {
        options.insert("seed".into(), json!(seed));
    }
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    if send_tools && !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    // OpenAI's response_format, in Ollama's terms: "json", or the schema itself.
    if let Some(format) = &request.response_format {
        let format = match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => format
                .pointer("/json_schema/schema")
                .cloned()
                .unwrap_or(json!("json")),
            _ => json!("json"),
        };
        body.insert("format".into(), format);
    }
    Ok(Value::Object(body))
}

/// One message; a tool's answer names its tool (`tool_name`, which Ollama reads) and the call
/// it answers (`tool_call_id`, for the servers that read it).
fn message(m: &ChatMessage, all: &[ChatMessage]) -> Value {
    let mut out = json!({"role": m.role.as_str(), "content": m.content});
    if m.role == Role::Assistant && !m.tool_calls.is_empty() {
        out["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                let mut call = json!({"function": {"name": c.name, "arguments": arguments_value(&c.arguments)}});
                if !c.id.is_empty() {
                    call["id"] = json!(c.id);
                }
                call
            })
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        out["tool_call_id"] = json!(id);
        let name = all
            .iter()
            .flat_map(|earlier| &earlier.tool_calls)
            .find(|c| &c.id == id)
            .map(|c| c.name.clone());
        if let Some(name) = name {
            out["tool_name"] = json!(name);
        }
    }
    out
}

fn apply(answer: Answer, state: &mut StreamState) {
    if answer.model.is_some() {
        state.model = answer.model;
    }
    if let Some(message) = answer.message {
        state.content.push_str(&message.content);
        for call in message.tool_calls {
            let index = state.tool_calls.len();
            let slot = state.tool_call(index);
            slot.id = call.id.unwrap_or_else(|| format!("call_{index}"));
            slot.name = call.function.name;
            slot.arguments = call.function.arguments.to_string();
        }
    }
    if answer.done {
        state.done = true;
        state.finish_reason = Some(answer.done_reason.unwrap_or_else(|| "stop".into()));
        state.usage = Usage {
            input_tokens: answer.prompt_eval_count,
            output_tokens: answer.eval_count,
        };
    }
}

#[derive(Deserialize)]
struct Answer {
    model: Option<String>,
    message: Option<AnswerMessage>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: u32,
    #[serde(default)]
    eval_count: u32,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Vec<OllamaToolCall>,
}

#[derive(Deserialize)]
struct OllamaToolCall {
    id: Option<String>,
    function: OllamaFunction,
}

#[derive(Deserialize)]
struct OllamaFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;

    #[test]
    fn options_and_format() {
        let request = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "hi")],
            temperature: serde_json::Number::from_f64(0.5),
            max_tokens: Some(9),
            seed: Some(3),
            response_format: Some(json!({"type": "json_object"})),
            ..ChatRequest::default()
        };
        assert_eq!(
            body(&request, "llama3.2", false).expect("a body"),
            json!({"model": "llama3.2", "stream": false, "format": "json",
                   "messages": [{"role": "user", "content": "hi"}],
                   "options": {"temperature": 0.5, "num_predict": 9, "seed": 3}})
        );
    }

    #[test]
    fn tool_calls_get_ids() {
        let text = r#"{"model":"llama3.2","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"weather","arguments":{"city":"Oslo"}}}]},"done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":4}"#;
        let r = OllamaWire.parse(text, "m").unwrap();
        assert_eq!(
            r.tool_calls,
            vec![ToolCall {
                id: "call_0".into(),
                name: "weather".into(),
                arguments: "{\"city\":\"Oslo\"}".into()
            }]
        );
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 12,
                output_tokens: 4
            }
        );
    }
}
