//! LLM providers: the requests the host makes on behalf of nodes, and the clients that make them.

mod client;
mod mock;
mod openai;
mod types;

pub use client::{LlmClient, LlmConfigError};
pub use mock::MockProvider;
pub use openai::OpenAiProvider;
pub use types::{ChatMessage, ChatRequest, ChatResponse, LlmError, Role, Usage};
