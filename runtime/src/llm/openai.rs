//! OpenAI's chat-completions wire format (`POST …/chat/completions`): OpenAI itself, any
//! compatible server (vLLM, LiteLLM, LM Studio, Ollama's `/v1`), and Azure OpenAI, which
//! differs only in its URL (deployment, `api-version`) and its key header.

use super::client::LlmConfigError;
use super::http::{Wire, WireSetup};
use super::types::{ChatMessage, ChatRequest, ChatResponse, LlmError, Role, ToolCall, Usage};
use super::wire::{StreamState, WireCall, body_error, endpoint, parse_json};
use crate::spec::ProviderSettings;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Where calls go and how they authenticate.
#[derive(Debug, Clone)]
pub enum Flavor {
    OpenAi,
    Azure {
        /// Fixed deployment; else the model name is the deployment.
        deployment: Option<String>,
        api_version: String,
        /// Send the key as `Authorization: Bearer` (Entra ID token) instead of `api-key`.
        bearer: bool,
    },
}

#[derive(Debug, Clone)]
pub struct OpenAiWire {
    pub flavor: Flavor,
    /// Send the token limit as `max_completion_tokens` instead of `max_tokens`.
    pub max_completion_tokens: bool,
}

/// `type: openai`, settings at `at`.
pub fn from_settings(p: &ProviderSettings, at: &str) -> Result<WireSetup, LlmConfigError> {
    Ok(WireSetup {
        wire: Wire::OpenAi(OpenAiWire {
            flavor: Flavor::OpenAi,
            max_completion_tokens: max_tokens_field(p, at)?,
        }),
        system: "openai",
        base_url: p
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
        standard_key_env: Some("OPENAI_API_KEY"),
        example_model: "gpt-4o-mini",
    })
}

/// `type: azure_openai`, settings at `at`.
pub fn azure_from_settings(p: &ProviderSettings, at: &str) -> Result<WireSetup, LlmConfigError> {
    let bearer = match p.auth.as_deref() {
        None | Some("api_key") => false,
        Some("bearer") => true,
        Some(other) => {
            return Err(LlmConfigError::new(
                format!("{at}.auth"),
                format!(
                    "{at}.auth is `{other}`; use `api_key` (the api-key header) or `bearer` (an Entra ID token)"
                ),
            ));
        }
    };
    let wire = Wire::OpenAi(OpenAiWire {
        flavor: Flavor::Azure {
            deployment: p.deployment.clone(),
            api_version: p
                .api_version
                .clone()
                .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.into()),
            bearer,
        },
        max_completion_tokens: max_tokens_field(p, at)?,
    });
    let base_url = p
        .base_url
        .clone()
        .or_else(|| std::env::var("AZURE_OPENAI_ENDPOINT").ok())
        .ok_or_else(|| {
            LlmConfigError::new(format!("{at}.base_url"), format!(
                "{at}.base_url is required for Azure OpenAI (https://RESOURCE.openai.azure.com), or set AZURE_OPENAI_ENDPOINT"
            ))
        })?;
    Ok(WireSetup {
        wire,
        system: "azure.ai.openai",
        base_url,
        standard_key_env: Some("AZURE_OPENAI_API_KEY"),
        example_model: "gpt-4o-mini",
    })
}

/// Azure deployment names are letters, digits, `-`, `_` and `.` (at most 64); anything else
/// (a `/`, a `?`, `..`) would change where the request, and its key, goes.
fn check_deployment(name: &str) -> Result<(), LlmError> {
    let plausible = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().any(|c| c.is_ascii_alphanumeric());
    if plausible {
        Ok(())
    } else {
        Err(LlmError::InvalidRequest(format!(
            "`{name}` is not an Azure OpenAI deployment name: use the deployment's name (letters, digits, `-`, `_` and `.`, at most 64)"
        )))
    }
}

fn max_tokens_field(p: &ProviderSettings, at: &str) -> Result<bool, LlmConfigError> {
    match p.max_tokens_field.as_deref() {
        None | Some("max_tokens") => Ok(false),
        Some("max_completion_tokens") => Ok(true),
        Some(other) => Err(LlmConfigError::new(
            format!("{at}.max_tokens_field"),
            format!(
                "{at}.max_tokens_field is `{other}`; use `max_tokens` or `max_completion_tokens`"
            ),
        )),
    }
}

impl OpenAiWire {
    pub fn build(
        &self,
        base: &str,
        api_key: Option<&str>,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<WireCall, LlmError> {
        let invalid = LlmError::InvalidRequest;
        let url = match &self.flavor {
            Flavor::OpenAi => endpoint(base, "/chat/completions").map_err(invalid)?,
            Flavor::Azure {
                deployment,
                api_version,
                ..
            } => {
                let deployment = deployment.as_deref().unwrap_or(model);
                check_deployment(deployment)?;
                let mut url = endpoint(base, "").map_err(invalid)?;
                // Each part is one path segment, percent-encoded: a name cannot reach another path.
                url.path_segments_mut()
                    .map_err(|()| invalid(format!("`{base}` cannot take a path")))?
                    .pop_if_empty()
                    .extend(["openai", "deployments", deployment, "chat", "completions"]);
                url.query_pairs_mut()
                    .append_pair("api-version", api_version);
                url
            }
        };
        let mut call = WireCall::new(url, self.body(request, model, stream));
        if let Some(key) = api_key {
            call = match &self.flavor {
                Flavor::Azure { bearer: false, .. } => call.secret_header("api-key", key),
                _ => call.secret_header("authorization", format!("Bearer {key}")),
            };
        }
        Ok(call)
    }

    fn body(&self, request: &ChatRequest, model: &str, stream: bool) -> Value {
        let mut body = Map::new();
        // Extra options first, so that the fields Kettle sets always win.
        body.extend(request.extra.clone());
        body.insert("model".into(), json!(model));
        body.insert(
            "messages".into(),
            Value::Array(request.messages.iter().map(message).collect()),
        );
        if let Some(t) = &request.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(max) = request.max_tokens {
            let field = if self.max_completion_tokens {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            body.insert(field.into(), json!(max));
        }
        if !request.stop.is_empty() {
            body.insert("stop".into(), json!(request.stop));
        }
        if let Some(seed) = request.seed {
            body.insert("seed".into(), json!(seed));
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(choice) = &request.tool_choice {
            let choice = match choice.as_str() {
                "auto" | "none" | "required" => json!(choice),
                name => json!({"type": "function", "function": {"name": name}}),
            };
            body.insert("tool_choice".into(), choice);
        }
        if let Some(format) = &request.response_format {
            body.insert("response_format".into(), format.clone());
        }
        if stream {
            body.insert("stream".into(), json!(true));
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Value::Object(body)
    }

    pub fn parse(&self, text: &str, requested_model: &str) -> Result<ChatResponse, LlmError> {
        let value: Value = parse_json(text, "a chat completion")?;
        if let Some(e) = body_error(&value) {
            return Err(e.error);
        }
        let completion: Completion = parse_json(text, "a chat completion")?;
        let Some(choice) = completion.choices.into_iter().next() else {
            return Err(LlmError::Provider(
                "the provider answered with no choices".into(),
            ));
        };
        let message = choice.message.unwrap_or_default();
        Ok(ChatResponse {
            id: completion.id,
            content: message.content.unwrap_or_default(),
            model: completion
                .model
                .unwrap_or_else(|| requested_model.to_string()),
            finish_reason: choice.finish_reason.unwrap_or_else(|| "unknown".into()),
            usage: completion.usage.map(Usage::from).unwrap_or_default(),
            tool_calls: message
                .tool_calls
                .into_iter()
                .map(|c| ToolCall {
                    id: c.id.unwrap_or_default(),
                    name: c.function.name.unwrap_or_default(),
                    arguments: c.function.arguments.unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// Applies one SSE message; returns the text it adds.
    pub fn on_event(
        &self,
        data: &str,
        state: &mut StreamState,
    ) -> Result<Option<String>, LlmError> {
        if data.trim() == "[DONE]" {
            state.done = true;
            return Ok(None);
        }
        let value: Value = parse_json(data, "a chat completion chunk")?;
        if let Some(e) = body_error(&value) {
            state.error_retryable = e.retryable;
            return Err(e.error);
        }
        let chunk: Chunk = parse_json(data, "a chat completion chunk")?;
        if chunk.id.is_some() {
            state.id = chunk.id;
        }
        if chunk.model.is_some() {
            state.model = chunk.model;
        }
        if let Some(usage) = chunk.usage {
            state.usage = usage.into();
        }
        let mut text = None;
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(reason) = choice.finish_reason {
                state.finish_reason = Some(reason);
            }
            let Some(delta) = choice.delta else { continue };
            if let Some(content) = delta.content.filter(|c| !c.is_empty()) {
                state.content.push_str(&content);
                text = Some(content);
            }
            for call in delta.tool_calls {
                let slot = state.tool_call(call.index);
                if let Some(id) = call.id {
                    slot.id = id;
                }
                if let Some(name) = call.function.name {
                    slot.name.push_str(&name);
                }
                if let Some(arguments) = call.function.arguments {
                    slot.arguments.push_str(&arguments);
                }
            }
        }
        Ok(text)
    }
}

fn message(m: &ChatMessage) -> Value {
    let mut out = Map::new();
    out.insert("role".into(), json!(m.role.as_str()));
    if m.role == Role::Assistant && !m.tool_calls.is_empty() {
        out.insert(
            "content".into(),
            if m.content.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            },
        );
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        out.insert("tool_calls".into(), Value::Array(calls));
    } else {
        out.insert("content".into(), json!(m.content));
    }
    if let Some(id) = &m.tool_call_id {
        out.insert("tool_call_id".into(), json!(id));
    }
    Value::Object(out)
}

#[derive(Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<CompletionUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct ChoiceMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    #[serde(default)]
    function: WireFunction,
}

#[derive(Deserialize, Default)]
struct WireFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct CompletionUsage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

impl From<CompletionUsage> for Usage {
    fn from(u: CompletionUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens.unwrap_or(0),
            output_tokens: u.completion_tokens.unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct Chunk {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<CompletionUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: usize,
    delta: Option<ChunkDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Tool;

    fn wire() -> OpenAiWire {
        OpenAiWire {
            flavor: Flavor::OpenAi,
            max_completion_tokens: false,
        }
    }

    #[test]
    fn body_keeps_kettle_fields_over_extra() {
        let mut extra = Map::new();
        extra.insert("model".into(), json!("sneaky"));
        extra.insert("logprobs".into(), json!(true));
        let request = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "hi")],
            max_tokens: Some(5),
            seed: Some(7),
            extra,
            ..ChatRequest::default()
        };
        let body = wire().body(&request, "gpt-4o-mini", false);
        assert_eq!(
            body,
            json!({"model": "gpt-4o-mini", "logprobs": true, "seed": 7, "max_tokens": 5,
                   "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn tools_and_tool_messages() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::new(Role::User, "weather?"),
                ChatMessage {
                    role: Role::Assistant,
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "weather".into(),
                        arguments: "{\"city\":\"Oslo\"}".into(),
                    }],
                    ..ChatMessage::default()
                },
                ChatMessage {
                    role: Role::Tool,
                    content: "rain".into(),
                    tool_call_id: Some("call_1".into()),
                    ..ChatMessage::default()
                },
            ],
            tools: vec![Tool {
                name: "weather".into(),
                description: "Weather in a city".into(),
                parameters: json!({"type": "object"}),
            }],
            tool_choice: Some("weather".into()),
            ..ChatRequest::default()
        };
        let body = OpenAiWire {
            flavor: Flavor::OpenAi,
            max_completion_tokens: true,
        }
        .body(&request, "m", true);
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]})
        );
        assert_eq!(
            body["messages"][2],
            json!({"role": "tool", "content": "rain", "tool_call_id": "call_1"})
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "weather"}})
        );
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn empty_choices_is_a_provider_error() {
        assert!(matches!(
            wire().parse(r#"{"choices":[]}"#, "m"),
            Err(LlmError::Provider(m)) if m.contains("no choices")
        ));
        assert!(matches!(
            wire().parse("{not json", "m"),
            Err(LlmError::Provider(m)) if m.contains("not a chat completion")
        ));
    }

    #[test]
    fn azure_url_and_key_header() {
        let wire = OpenAiWire {
            flavor: Flavor::Azure {
                deployment: None,
                api_version: "2024-10-21".into(),
                bearer: false,
            },
            max_completion_tokens: false,
        };
        let request = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "hi")],
            ..ChatRequest::default()
        };
        let call = wire
            .build(
                "https://x.openai.azure.com/",
                Some("k"),
                &request,
                "gpt4o",
                false,
            )
            .unwrap();
        assert_eq!(
            call.url.as_str(),
            "https://x.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(call.headers, vec![("api-key".into(), "k".into(), true)]);
        for hostile in ["../../admin/secrets?x=", "a/b", "..", "dep%2F", ""] {
            assert!(
                matches!(
                    wire.build("https://x.openai.azure.com", Some("k"), &request, hostile, false),
                    Err(LlmError::InvalidRequest(m)) if m.contains("deployment name")
                ),
                "{hostile:?} is refused"
            );
        }
        let under_a_path = wire
            .build(
                "https://proxy.example/azure/",
                None,
                &request,
                "gpt-4.1_mini",
                false,
            )
            .unwrap();
        assert_eq!(
            under_a_path.url.path(),
            "/azure/openai/deployments/gpt-4.1_mini/chat/completions"
        );
    }
}
