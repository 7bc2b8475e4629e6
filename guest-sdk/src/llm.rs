//! LLM calls, performed by the host and traced by it.

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
        Err(e) => Err(match e {
            wit::LlmError::Denied(m) => LlmError::Denied(m),
            wit::LlmError::InvalidRequest(m) => LlmError::InvalidRequest(m),
            wit::LlmError::RateLimited(m) => LlmError::RateLimited(m),
            wit::LlmError::Timeout(m) => LlmError::Timeout(m),
            wit::LlmError::Provider(m) => LlmError::Provider(m),
        }),
    }
}

/// Asks one question and returns the answer's text.
pub fn ask(prompt: impl Into<String>) -> Result<String, LlmError> {
    call(Request::user(prompt)).map(|r| r.content)
}
