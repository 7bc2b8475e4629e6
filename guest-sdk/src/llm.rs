//! LLM calls, performed by the host and traced by it: [`call`] and [`ask`] for plain text,
//! [`chat`] for tools, output formats and named providers, [`stream`] for text as it comes.

use crate::bindings::kettle::node::llm as wit;
use std::fmt;

pub use wit::{Role, Usage};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// A chat completion request; start from [`Request::user`] or [`Request::new`].
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub messages: Vec<Message>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    /// Provider options the record does not name, as a JSON object.
    pub extra: Option<serde_json::Value>,
}

impl Request {
    /// A request with the given messages.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// A request made of one user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(vec![Message {
            role: Role::User,
            content: content.into(),
        }])
    }

    /// Puts a system message first.
    pub fn system(mut self, content: impl Into<String>) -> Self {
        self.messages.insert(
            0,
            Message {
                role: Role::System,
                content: content.into(),
            },
        );
        self
    }

    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub content: String,
    pub model: String,
    pub finish_reason: String,
    pub usage: Usage,
}

/// Why an LLM call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmError {
    Denied(String),
    InvalidRequest(String),
    RateLimited(String),
    Timeout(String),
    Provider(String),
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "denied: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Self::RateLimited(m) => write!(f, "rate limited: {m}"),
            Self::Timeout(m) => write!(f, "timeout: {m}"),
            Self::Provider(m) => write!(f, "provider error: {m}"),
        }
    }
}

impl std::error::Error for LlmError {}

/// Performs one chat completion through the host.
pub fn call(request: Request) -> Result<Response, LlmError> {
    let request = wit::Request {
        messages: request
            .messages
            .into_iter()
            .map(|m| wit::Message {
                role: m.role,
                content: m.content,
            })
            .collect(),
        model: request.model,
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        stop: request.stop,
        extra: request.extra.map(|v| v.to_string()),
    };
    match wit::call(&request) {
        Ok(r) => Ok(Response {
            content: r.content,
            model: r.model,
            finish_reason: r.finish_reason,
            usage: r.usage,
        }),
        Err(e) => Err(e.into()),
    }
}

impl From<wit::LlmError> for LlmError {
    fn from(e: wit::LlmError) -> Self {
        match e {
            wit::LlmError::Denied(m) => LlmError::Denied(m),
            wit::LlmError::InvalidRequest(m) => LlmError::InvalidRequest(m),
            wit::LlmError::RateLimited(m) => LlmError::RateLimited(m),
            wit::LlmError::Timeout(m) => LlmError::Timeout(m),
            wit::LlmError::Provider(m) => LlmError::Provider(m),
        }
    }
}

/// Asks one question and returns the answer's text.
pub fn ask(prompt: impl Into<String>) -> Result<String, LlmError> {
    call(Request::user(prompt)).map(|r| r.content)
}

/// A function the model may ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

impl Tool {
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }
}

/// A call of a [`Tool`] the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: String,
}

impl ToolCall {
    /// The arguments as JSON (`null` when the model wrote something else).
    pub fn arguments_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.arguments).unwrap_or(serde_json::Value::Null)
    }
}

/// One message of a conversation that may use tools.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The assistant turn that asked for `calls` (send it back before the results).
    pub fn assistant_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::new(Role::Assistant, content)
        }
    }

    /// The result of the tool call `id`.
    pub fn tool_result(id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(id.into()),
            ..Self::new(Role::Tool, content)
        }
    }
}

/// A request with tools, output format and provider choice.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub tools: Vec<Tool>,
    /// `auto`, `none`, `required`, or one tool's name.
    pub tool_choice: Option<String>,
    /// OpenAI's form: `{"type": "json_object"}` or a `json_schema`.
    pub response_format: Option<serde_json::Value>,
    /// A provider named in `settings.llm.providers`.
    pub provider: Option<String>,
    pub extra: Option<serde_json::Value>,
}

impl ChatRequest {
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(vec![ChatMessage::new(Role::User, content)])
    }

    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    fn into_wit(self) -> wit::ChatRequest {
        wit::ChatRequest {
            messages: self
                .messages
                .into_iter()
                .map(|m| wit::ChatMessage {
                    role: m.role,
                    content: m.content,
                    tool_calls: m.tool_calls.into_iter().map(tool_call_to_wit).collect(),
                    tool_call_id: m.tool_call_id,
                })
                .collect(),
            model: self.model,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            stop: self.stop,
            seed: self.seed,
            tools: self
                .tools
                .into_iter()
                .map(|t| wit::Tool {
                    name: t.name,
                    description: t.description,
                    parameters: t.parameters.to_string(),
                })
                .collect(),
            tool_choice: self.tool_choice,
            response_format: self.response_format.map(|v| v.to_string()),
            provider: self.provider,
            extra: self.extra.map(|v| v.to_string()),
        }
    }
}

/// The answer to a [`ChatRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub content: String,
    pub model: String,
    pub finish_reason: String,
    pub usage: Usage,
    pub tool_calls: Vec<ToolCall>,
}

fn tool_call_to_wit(c: ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn chat_response(r: wit::ChatResponse) -> ChatResponse {
    ChatResponse {
        content: r.content,
        model: r.model,
        finish_reason: r.finish_reason,
        usage: r.usage,
        tool_calls: r
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect(),
    }
}

/// Performs one chat completion, with tools.
pub fn chat(request: ChatRequest) -> Result<ChatResponse, LlmError> {
    wit::chat(&request.into_wit())
        .map(chat_response)
        .map_err(LlmError::from)
}

/// What a [`Stream`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of text.
    Delta(String),
    /// The whole answer; nothing follows.
    End(ChatResponse),
}

/// A streamed answer; dropping it early abandons the call.
pub struct Stream {
    inner: wit::ChatStream,
}

impl Stream {
    /// The next event; `None` after the end.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, LlmError> {
        Ok(self.inner.next()?.map(|event| match event {
            wit::StreamEvent::Delta(text) => StreamEvent::Delta(text),
            wit::StreamEvent::End(r) => StreamEvent::End(chat_response(r)),
        }))
    }
}

/// Starts a streamed chat completion.
pub fn stream(request: ChatRequest) -> Result<Stream, LlmError> {
    wit::stream(&request.into_wit())
        .map(|inner| Stream { inner })
        .map_err(LlmError::from)
}
