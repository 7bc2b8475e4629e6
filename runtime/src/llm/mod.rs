//! LLM providers: the requests the host makes on behalf of nodes, and the clients that make
//! them (wire formats, retries, concurrency limits, streaming, record and replay).

mod anthropic;
mod client;
mod framing;
mod http;
mod messages;
mod mock;
mod ollama;
mod openai;
mod options;
mod retry;
mod shell;
mod stream;
mod tape;
mod types;
mod wire;

pub use client::{LlmClient, LlmConfigError, Provider, Resolved};
pub use http::{Attempt, Observer};
pub use messages::messages_from_value;
pub use mock::MockProvider;
pub use retry::RetryPolicy;
pub use shell::{
    ShellProvider, format_messages as shell_prompt, provider_key as shell_provider_key,
};
pub use stream::ChatStream;
pub use tape::{TapeEntry, TapeError};
pub use types::{
    ChatMessage, ChatRequest, ChatResponse, LlmError, Role, StreamItem, Tool, ToolCall, Usage,
    temperature_from_f32,
};
