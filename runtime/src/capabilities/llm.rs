//! The `llm` import: chat completions performed by the host, each one a `chat {model}` span
//! parented under the node's innermost open span (OpenTelemetry GenAI conventions).

use crate::bindings::llm::{self as wit};
use crate::capabilities::trace::NodeTrace;
use crate::llm::{ChatMessage, ChatRequest, ChatResponse, LlmClient, LlmError, Role};
use crate::telemetry::{
    ContentPolicy, SpanGuard, SpanHandle, chat_request_attributes, chat_response_attributes,
};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SdkTracer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::HasData;

/// LLM use of a whole run, summed over its nodes.
#[derive(Debug, Default)]
pub struct LlmUsage {
    pub calls: AtomicU64,
    pub failed_calls: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
}

impl LlmUsage {
    fn record(&self, outcome: &Result<ChatResponse, LlmError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(r) => {
                self.input_tokens
                    .fetch_add(u64::from(r.usage.input_tokens), Ordering::Relaxed);
                self.output_tokens
                    .fetch_add(u64::from(r.usage.output_tokens), Ordering::Relaxed);
            }
            Err(_) => {
                self.failed_calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Per-node LLM state, kept in the node's `Store`.
#[derive(Debug)]
pub struct NodeLlm {
    pub client: Arc<LlmClient>,
    pub usage: Arc<LlmUsage>,
    /// Whether prompts and answers go on the `chat` spans.
    pub content: ContentPolicy,
}

/// What the `llm` import sees of the store: its own state and, read-only, the node's trace.
pub struct LlmCtx<'a> {
    pub llm: &'a NodeLlm,
    pub trace: &'a NodeTrace,
}

/// Names [`LlmCtx`] for `add_to_linker`.
pub struct LlmCapability;

impl HasData for LlmCapability {
    type Data<'a> = LlmCtx<'a>;
}

impl wit::Host for LlmCtx<'_> {
    async fn call(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
        let request = match from_wit(request) {
            Ok(r) => r,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let parent = self.trace.innermost().clone();
        let outcome = traced_call(
            &self.llm.client,
            self.trace.tracer(),
            &parent,
            &self.llm.usage,
            self.llm.content,
            request,
        )
        .await;
        Ok(outcome.map(to_wit_response).map_err(to_wit_error))
    }
}

/// Performs one completion as a `chat {model}` CLIENT span, child of `parent`.
pub async fn traced_call(
    client: &LlmClient,
    tracer: &SdkTracer,
    parent: &SpanHandle,
    usage: &LlmUsage,
    content: ContentPolicy,
    request: ChatRequest,
) -> Result<ChatResponse, LlmError> {
    let model = client.model_for(&request).to_string();
    let attributes = chat_request_attributes(
        client.provider_name(),
        &model,
        &request,
        client.server(),
        content,
    );
    // Guarded: if the call is abandoned (run interrupted), the span still ends, marked cancelled.
    let guard = SpanGuard::new(parent.child(
        tracer,
        format!("chat {model}"),
        SpanKind::Client,
        attributes,
    ));
    let span = guard.handle();
    let outcome = client.complete(request, Some(&span.traceparent())).await;
    usage.record(&outcome);
    match &outcome {
        Ok(response) => {
            for attribute in chat_response_attributes(response, content) {
                span.set_attribute(attribute);
            }
            guard.finish_unset();
        }
        Err(error) => {
            span.set_attribute(KeyValue::new("error.type", error.kind()));
            guard.finish_error(error.to_string());
        }
    }
    outcome
}

fn from_wit(request: wit::Request) -> Result<ChatRequest, LlmError> {
    let extra = match request.extra.as_deref().map(str::trim) {
        None | Some("") => Default::default(),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                return Err(LlmError::InvalidRequest(
                    "`extra` must be a JSON object".into(),
                ));
            }
            Err(e) => {
                return Err(LlmError::InvalidRequest(format!(
                    "`extra` is not JSON: {e}"
                )));
            }
        },
    };
    Ok(ChatRequest {
        messages: request
            .messages
            .into_iter()
            .map(|m| ChatMessage {
                role: match m.role {
                    wit::Role::System => Role::System,
                    wit::Role::User => Role::User,
                    wit::Role::Assistant => Role::Assistant,
                    wit::Role::Tool => Role::Tool,
                },
                content: m.content,
            })
            .collect(),
        model: request.model,
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        stop: request.stop,
        extra,
    })
}

fn to_wit_response(response: ChatResponse) -> wit::Response {
    wit::Response {
        content: response.content,
        model: response.model,
        finish_reason: response.finish_reason,
        usage: wit::Usage {
            input_tokens: response.usage.input_tokens,
            output_tokens: response.usage.output_tokens,
        },
    }
}

fn to_wit_error(error: LlmError) -> wit::LlmError {
    match error {
        LlmError::Denied(m) => wit::LlmError::Denied(m),
        LlmError::InvalidRequest(m) => wit::LlmError::InvalidRequest(m),
        LlmError::RateLimited(m) => wit::LlmError::RateLimited(m),
        LlmError::Timeout(m) => wit::LlmError::Timeout(m),
        LlmError::Provider(m) => wit::LlmError::Provider(m),
    }
}
